"""The floor: plain boto3 making exactly the AWS calls of creating and processing a job.

Create (one per job, from ``clients`` concurrent threads, as the stack's clients): a
consistent GetItem of the owner's quota counter, one TransactWriteItems of the PENDING
record (conditional Put) and the counter's charge, then SendMessage. Process (as the local
runtime's poller and worker do): one receiver (ReceiveMessage, up to 10, long polling)
handing batches to at most ``processors`` concurrent processors (the mapping's
MaximumConcurrency); for each message a conditional UpdateItem claim, PutObject of the
result, and one TransactWriteItems of the complete (which frees the slot) and the counter's
decrement; then one DeleteMessageBatch per batch. Same server as the stack, on a copy of its
tables (same keys and index), a queue with its visibility timeout and a fresh bucket, so the
stack's poller never sees the floor's messages.
"""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from tooling.bench import records
from tooling.bench.stats import percentile, summary_ms
from tooling.redrive import job_message_body

Out = Callable[[str], None]


@dataclass
class FloorResources:
    table: str
    queue_url: str
    bucket: str
    quota_table: str


@dataclass
class FloorResult:
    jobs: int
    clients: int
    processors: int
    first_create: float = 0.0
    last_complete: float = 0.0
    create_latency_s: list[float] = field(default_factory=list)
    create_started: list[float] = field(default_factory=list)
    submit_to_complete_s: list[float] = field(default_factory=list)
    complete_points: list[tuple[float, float]] = field(default_factory=list)  # (created, seconds to complete)
    completed: int = 0
    duplicates: int = 0
    timed_out: bool = False

    @property
    def wall_s(self) -> float:
        return max(self.last_complete - self.first_create, 1e-9)

    def figures(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "completed": self.completed,
            "clients": self.clients,
            "processors": self.processors,
            "wall_s": round(self.wall_s, 3),
            "jobs_per_s": round(self.completed / self.wall_s, 2),
            "create_latency": summary_ms(self.create_latency_s),
            "create_p50_ms": round(percentile([s * 1000 for s in self.create_latency_s], 50), 2),
            "submit_to_complete": summary_ms(self.submit_to_complete_s),
            "duplicate_deliveries": self.duplicates,
            "timed_out": self.timed_out,
        }


def clone_resources(ddb: Any, sqs: Any, s3: Any, outputs: dict[str, Any]) -> FloorResources:
    """A table with the deployed table's keys and indexes, a queue with its settings, a bucket."""
    suffix = secrets.token_hex(3)
    desc = ddb.describe_table(TableName=outputs["table_name"])["Table"]
    table = f"{outputs['table_name']}-floor-{suffix}"
    spec: dict[str, Any] = {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": desc["AttributeDefinitions"],
        "KeySchema": desc["KeySchema"],
    }
    if desc.get("GlobalSecondaryIndexes"):
        spec["GlobalSecondaryIndexes"] = [
            {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in desc["GlobalSecondaryIndexes"]
        ]
    ddb.create_table(**spec)
    quota_table = f"{outputs['quota_table_name']}-floor-{suffix}"
    quota_desc = ddb.describe_table(TableName=outputs["quota_table_name"])["Table"]
    ddb.create_table(
        TableName=quota_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=quota_desc["AttributeDefinitions"],
        KeySchema=quota_desc["KeySchema"],
    )
    attrs = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])["Attributes"]
    keep = ("VisibilityTimeout", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "DelaySeconds")
    queue_url = sqs.create_queue(
        QueueName=f"jobstack-bench-floor-{suffix}", Attributes={k: attrs[k] for k in keep if k in attrs}
    )["QueueUrl"]
    bucket = f"jobstack-bench-floor-{suffix}"
    s3.create_bucket(Bucket=bucket)
    return FloorResources(table, queue_url, bucket, quota_table)


def run(
    ddb: Any,
    sqs: Any,
    s3: Any,
    res: FloorResources,
    jobs: int,
    clients: int,
    processors: int,
    timeout: float,
    out: Out = print,
) -> FloorResult:
    result = FloorResult(jobs=jobs, clients=clients, processors=processors)
    owners = [str(uuid.uuid4()) for _ in range(clients)]
    lock = threading.Lock()
    created_at: dict[str, float] = {}
    done: set[str] = set()
    all_done = threading.Event()
    start_gate = threading.Barrier(clients + 1)

    def create(worker: int) -> None:
        owner = owners[worker]
        start_gate.wait()
        for index in range(worker, jobs, clients):
            job_id = records.uuid7()
            began_wall, began = time.time(), time.perf_counter()
            counter = ddb.get_item(TableName=res.quota_table, Key={"owner_id": {"S": owner}}, ConsistentRead=True)
            item = records.pending_item(owner, job_id, f"floor-{index}", records.utc_now())
            item[records.QUOTA_SLOT] = {"N": "1"}
            ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": res.table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(job_id)",
                        }
                    },
                    {
                        "Update": records.charge_update(
                            res.quota_table, owner, counter.get("Item"), int(time.time() * 1000)
                        )
                    },
                ]
            )
            sqs.send_message(QueueUrl=res.queue_url, MessageBody=job_message_body(owner, job_id))
            latency = time.perf_counter() - began
            with lock:
                created_at[job_id] = began_wall
                result.create_latency_s.append(latency)
                result.create_started.append(began_wall)

    def process(messages: list[dict[str, Any]]) -> None:
        try:
            for message in messages:
                body = json.loads(message["Body"])
                owner, job_id = body["owner_id"], body["job_id"]
                now = records.utc_now()
                lease = uuid.uuid4().hex
                try:
                    ddb.update_item(
                        TableName=res.table,
                        Key={"owner_id": {"S": owner}, "job_id": {"S": job_id}},
                        UpdateExpression=records.CLAIM_UPDATE,
                        ConditionExpression=records.CLAIM_CONDITION,
                        ExpressionAttributeNames={"#status": "status"},
                        ExpressionAttributeValues={
                            ":processing": {"S": "PROCESSING"},
                            ":pending": {"S": "PENDING"},
                            ":os": {"S": f"{owner}#PROCESSING"},
                            ":now": {"S": records.iso(now)},
                            ":zero": {"N": "0"},
                            ":one": {"N": "1"},
                            ":lo": {"S": lease},
                            ":lu": {"N": str(int(now.timestamp()) + 60)},
                            ":epoch": {"N": str(int(now.timestamp()))},
                        },
                        ReturnValues="ALL_NEW",
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                        raise
                    with lock:
                        result.duplicates += 1
                    continue
                key = records.result_key(owner, job_id, now)
                s3.put_object(
                    Bucket=res.bucket, Key=key, Body=b"hello world\n", ContentType="text/plain; charset=utf-8"
                )
                complete = {
                    "TableName": res.table,
                    "Key": {"owner_id": {"S": owner}, "job_id": {"S": job_id}},
                    "UpdateExpression": f"{records.COMPLETE_UPDATE}, {records.QUOTA_SLOT}",
                    "ConditionExpression": f"({records.COMPLETE_CONDITION}) AND attribute_exists({records.QUOTA_SLOT})",
                    "ExpressionAttributeNames": {"#status": "status", "#error": "error"},
                    "ExpressionAttributeValues": {
                        ":complete": {"S": "COMPLETE"},
                        ":processing": {"S": "PROCESSING"},
                        ":os": {"S": f"{owner}#COMPLETE"},
                        ":key": {"S": key},
                        ":now": {"S": records.iso(records.utc_now())},
                        ":lo": {"S": lease},
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
                ddb.transact_write_items(
                    TransactItems=[{"Update": complete}, {"Update": records.free_slot(res.quota_table, owner)}]
                )
                finished = time.time()
                with lock:
                    if job_id not in done:
                        done.add(job_id)
                        result.last_complete = max(result.last_complete, finished)
                        if job_id in created_at:
                            result.submit_to_complete_s.append(finished - created_at[job_id])
                            result.complete_points.append((created_at[job_id], finished - created_at[job_id]))
                    if len(done) >= jobs:
                        all_done.set()
            sqs.delete_message_batch(
                QueueUrl=res.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        finally:
            slots.release()

    slots = threading.Semaphore(processors)
    creators = [threading.Thread(target=create, args=(i,), name=f"floor-client-{i}") for i in range(clients)]
    for thread in creators:
        thread.start()
    deadline = time.monotonic() + timeout
    with concurrent.futures.ThreadPoolExecutor(processors, thread_name_prefix="floor-worker") as pool:
        result.first_create = time.time()
        start_gate.wait()
        futures = []
        last_note = time.monotonic()
        while not all_done.is_set() and time.monotonic() < deadline:
            if not slots.acquire(timeout=1.0):
                continue
            messages = sqs.receive_message(
                QueueUrl=res.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                slots.release()
            else:
                futures.append(pool.submit(process, messages))
            broken = next((f for f in futures if f.done() and f.exception() is not None), None)
            if broken is not None:
                broken.result()  # a processor failed: stop here, with its error
            if time.monotonic() - last_note > 5:
                last_note = time.monotonic()
                out(f"  floor: {len(done)}/{jobs} complete")
        for future in futures:
            future.result()  # surface any error of a processor
    for thread in creators:
        thread.join(timeout=30)
    result.completed = len(done)
    result.timed_out = not all_done.is_set()
    if result.create_started:
        result.first_create = min(result.create_started)
    return result
