"""AWS us-east-1 list prices used for the $/million-jobs estimate (the README's Benchmarks table).

Prices as published on the AWS pricing pages for us-east-1, on-demand, without free tier,
as of ``PRICES_AS_OF`` (not re-checked from this offline machine): keep this table and the
README's in step (a test compares them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PRICES_AS_OF = "2025-06"


@dataclass(frozen=True)
class Price:
    key: str
    service: str
    item: str
    usd: float
    per: str


PRICES: tuple[Price, ...] = (
    Price("lambda_request", "Lambda", "requests", 0.20, "1M requests"),
    Price("lambda_gb_s_arm64", "Lambda", "compute, arm64", 0.0000133334, "GB-second"),
    Price("lambda_gb_s_x86_64", "Lambda", "compute, x86_64", 0.0000166667, "GB-second"),
    Price("apigw_rest_request", "API Gateway", "REST API requests (first 333M/month)", 3.50, "1M requests"),
    Price("sqs_request", "SQS", "standard queue requests (per 64 KB chunk)", 0.40, "1M requests"),
    Price("ddb_wru", "DynamoDB", "on-demand write request units", 0.625, "1M WRU"),
    Price("ddb_rru", "DynamoDB", "on-demand read request units", 0.125, "1M RRU"),
    Price("s3_put", "S3", "Standard PUT/COPY/POST/LIST requests", 0.005, "1,000 requests"),
    Price("s3_get", "S3", "Standard GET/SELECT requests", 0.0004, "1,000 requests"),
    Price("logs_ingest", "CloudWatch Logs", "standard log ingestion", 0.50, "GB"),
    Price("eventbridge_event", "EventBridge", "custom events published (rule deliveries free)", 1.00, "1M events"),
)
PRICE = {p.key: p.usd for p in PRICES}

# CloudWatch Logs bills each event as its UTF-8 message plus 26 bytes.
LOG_EVENT_OVERHEAD_BYTES = 26
# DynamoDB: 1 WRU per started KB written; 1 RRU per 4 KB strongly consistent (0.5 eventually).
DDB_WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}
DDB_READ_OPERATIONS = {"GetItem": 1.0, "Query": 1.0}


def markdown_table() -> str:
    """The price table as Markdown (what the README's Benchmarks section shows)."""
    lines = ["| service | item | USD | per |", "|---|---|---:|---|"]
    lines += [f"| {p.service} | {p.item} | {p.usd:.10f}".rstrip("0").rstrip(".") + f" | {p.per} |" for p in PRICES]
    return "\n".join(lines)


def estimate(
    per_job: dict[str, float],
    architecture: str,
    item_kb: float,
    gsi_writes_per_update: int = 2,
) -> dict[str, Any]:
    """USD per million jobs from per-job quantities measured by the bench.

    ``per_job`` keys: ``apigw_requests``, ``lambda_invocations``, ``lambda_gb_s``,
    ``sqs_requests``, ``ddb_put``, ``ddb_update``, ``ddb_transactions``, ``ddb_reads``,
    ``s3_put``, ``s3_get``, ``log_bytes``. DynamoDB writes: ``ceil(item_kb)`` WRU each on the
    table; the status index (projection ALL) costs one more write per PutItem and
    ``gsi_writes_per_update`` per UpdateItem (every update here is a state transition that
    changes the index key, which is a delete plus a put in the index). A TransactWriteItems
    here writes a job record and its owner's quota counter (README "Flow control"), 2 WRU per
    item and KB; the index is written once when it creates a job and ``gsi_writes_per_update``
    times when it finishes one, as many of each: their mean per transaction.
    """
    kb = max(1, math.ceil(item_kb))
    wru = (per_job.get("ddb_put", 0) * (1 + 1) + per_job.get("ddb_update", 0) * (1 + gsi_writes_per_update)) * kb
    index_per_transaction = (1 + gsi_writes_per_update) / 2
    wru += per_job.get("ddb_transactions", 0) * (2 * kb + 2 * 1 + index_per_transaction * kb)
    rru = per_job.get("ddb_reads", 0) * 1.0
    gb_s_price = PRICE["lambda_gb_s_arm64" if architecture == "arm64" else "lambda_gb_s_x86_64"]
    lines = {
        "API Gateway requests": per_job.get("apigw_requests", 0) * PRICE["apigw_rest_request"],
        "Lambda requests": per_job.get("lambda_invocations", 0) * PRICE["lambda_request"],
        "Lambda compute": per_job.get("lambda_gb_s", 0) * 1e6 * gb_s_price,
        "SQS requests": per_job.get("sqs_requests", 0) * PRICE["sqs_request"],
        "DynamoDB writes": wru * PRICE["ddb_wru"],
        "DynamoDB reads": rru * PRICE["ddb_rru"],
        "S3 PUT": per_job.get("s3_put", 0) * 1000 * PRICE["s3_put"],
        "S3 GET": per_job.get("s3_get", 0) * 1000 * PRICE["s3_get"],
        "CloudWatch Logs ingestion": per_job.get("log_bytes", 0) * 1e6 / 1e9 * PRICE["logs_ingest"],
    }
    total = sum(lines.values())
    return {
        "usd_per_million_jobs": round(total, 2),
        "breakdown_usd_per_million_jobs": {k: round(v, 3) for k, v in lines.items()},
        "assumptions": {
            "architecture": architecture,
            "item_kb": round(item_kb, 3),
            "wru_per_job": round(wru, 3),
            "rru_per_job": round(rru, 3),
            "gsi_writes_per_update": gsi_writes_per_update,
            "prices_as_of": PRICES_AS_OF,
            "excluded": "storage (DynamoDB, S3, logs), data transfer, X-Ray traces, API Gateway access logs, "
            "free tiers, reading results back",
        },
    }


# ------------------------------------------------------------------------------------------
# Webhooks (README "Webhooks"): what one delivered webhook adds to a job, by construction.
# ------------------------------------------------------------------------------------------


def webhook_requests(attempts: int = 1, batch_size: int = 5) -> dict[str, float]:
    """AWS requests one webhook makes when delivered at attempt ``attempts``: the rule's
    SendMessage (its PutEvents is the event publisher's, counted once per status change), per
    attempt a ReceiveMessage share and the notifier's UpdateItems (``jobs.webhook_store``), a
    ChangeMessageVisibility per failed attempt, the DeleteMessage, and one notifier invocation
    share per attempt."""
    return {
        "sqs_requests": 1 + attempts / batch_size + (attempts - 1) + 1,
        "lambda_invocations": attempts / batch_size,
        # the first attempt: begin + outcome; each retry: begin's fresh write (its condition
        # fails, still 1 write), its update of the attempt count, the outcome
        "ddb_update": 2.0 + 3.0 * (attempts - 1),
    }


def webhook_estimate(
    attempts: int = 1,
    batch_size: int = 5,
    seconds_per_attempt: float = 0.2,
    memory_mb: int = 256,
    architecture: str = "arm64",
    item_kb: float = 1.0,
) -> dict[str, Any]:
    """USD per million webhooks (and requests per webhook): SQS, Lambda requests and compute
    (``seconds_per_attempt``: mostly the receiver's answer time), DynamoDB writes (the
    ``webhook`` map is projected into the status index: 2 WRU per KB per write)."""
    requests = webhook_requests(attempts, batch_size)
    gb_s = attempts * seconds_per_attempt * memory_mb / 1024
    gb_s_price = PRICE["lambda_gb_s_arm64" if architecture == "arm64" else "lambda_gb_s_x86_64"]
    wru = requests["ddb_update"] * 2 * max(1, math.ceil(item_kb))
    lines = {
        "SQS requests": requests["sqs_requests"] * PRICE["sqs_request"],
        "Lambda requests": requests["lambda_invocations"] * PRICE["lambda_request"],
        "Lambda compute": gb_s * 1e6 * gb_s_price,
        "DynamoDB writes": wru * PRICE["ddb_wru"],
    }
    return {
        "aws_requests_per_webhook": round(sum(requests.values()), 2),
        "usd_per_million_webhooks": round(sum(lines.values()), 2),
        "breakdown_usd_per_million_webhooks": {k: round(v, 3) for k, v in lines.items()},
        "assumptions": {
            "attempts": attempts,
            "batch_size": batch_size,
            "seconds_per_attempt": seconds_per_attempt,
            "memory_mb": memory_mb,
            "architecture": architecture,
            "wru_per_webhook": wru,
        },
    }
