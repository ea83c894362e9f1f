"""GET /jobs for a user with 50 jobs, with 0 and then K other users' jobs in the table.

The jobs are written straight to the backend with BatchWriteItem (items shaped like the
stack's records), the listing goes through the HTTP front with a real token. Next to it the
same Query the data layer makes (``JobTable.list``: consistent, newest first, projection,
limit + 1) is timed with plain boto3: the floor of the listing on this backend.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import requests

from tooling.bench import records
from tooling.bench.stats import summary_ms

Out = Callable[[str], None]
JOBS_PER_OWNER = 50
BATCH = 25
# What the data layer lists (everything but the contexts), as JobTable.list projects it.
LIST_PROJECTION = (
    "owner_id, job_id, #name, #action, #status, createdAt, updatedAt, startedAt, completedAt, "
    "S3FileKey, #error, attempts, lease_owner, lease_until, expires_at"
)


def owner_items(owner: str, count: int, prefix: str) -> Iterator[dict[str, Any]]:
    base = records.utc_now() - timedelta(hours=1)
    start_ms = int(base.timestamp() * 1000)
    for i in range(count):
        moment = base + timedelta(milliseconds=i)
        yield records.complete_item(owner, records.uuid7(start_ms + i), f"{prefix}-{i}", moment)


def batch_write(ddb: Any, table: str, items: list[dict[str, Any]], delete: bool = False) -> None:
    """One BatchWriteItem of at most 25 puts/deletes, retrying unprocessed items (bounded)."""
    if delete:
        requests_ = [{"DeleteRequest": {"Key": {"owner_id": i["owner_id"], "job_id": i["job_id"]}}} for i in items]
    else:
        requests_ = [{"PutRequest": {"Item": i}} for i in items]
    pending: dict[str, list[dict[str, Any]]] = {table: requests_}
    for attempt in range(10):
        resp = ddb.batch_write_item(RequestItems=pending)
        pending = resp.get("UnprocessedItems") or {}
        if not pending:
            return
        time.sleep(0.05 * (attempt + 1))
    raise RuntimeError(f"BatchWriteItem left {sum(len(v) for v in pending.values())} items unprocessed")


def seed_others(
    ddb: Any, table: str, total: int, budget_s: float, threads: int = 4, out: Out = print
) -> dict[str, Any]:
    """Write ``total`` jobs of ``total / 50`` other users; stop early at ``budget_s`` seconds."""
    started = time.monotonic()
    written = 0
    lock = threading.Lock()
    stop = threading.Event()
    owners = max(1, -(-total // JOBS_PER_OWNER))

    def batches() -> Iterator[list[dict[str, Any]]]:
        remaining = total
        for _ in range(owners):
            items = list(owner_items(str(uuid.uuid4()), min(JOBS_PER_OWNER, remaining), "other"))
            remaining -= len(items)
            for i in range(0, len(items), BATCH):
                yield items[i : i + BATCH]

    def write(chunk: list[dict[str, Any]]) -> None:
        nonlocal written
        if stop.is_set():
            return
        batch_write(ddb, table, chunk)
        with lock:
            written += len(chunk)

    next_note = total // 10 or 1
    with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="bench-seed") as pool:
        window: list[concurrent.futures.Future[None]] = []
        for chunk in batches():
            window.append(pool.submit(write, chunk))
            if len(window) >= threads * 4:
                window.pop(0).result()
            if written >= next_note:
                elapsed = time.monotonic() - started
                out(f"  seeding: {written:,}/{total:,} items in {elapsed:.0f}s ({written / elapsed:,.0f} items/s)")
                next_note += total // 10 or 1
            if time.monotonic() - started > budget_s:
                stop.set()
                out(f"  seeding: budget of {budget_s:.0f}s reached at {written:,} items: stopping there")
                break
        for future in window:
            future.result()
    elapsed = time.monotonic() - started
    return {
        "requested_items": total,
        "seeded_items": written,
        "seconds": round(elapsed, 1),
        "items_per_s": round(written / elapsed, 1) if elapsed else None,
        "stopped_at_budget": written < total,
        "budget_s": budget_s,
    }


def time_listing(api_url: str, token: str, samples: int, warmup: int = 3) -> tuple[list[float], int]:
    """GET /jobs (default page of 50) ``samples`` times after ``warmup``; (latencies, jobs in a page)."""
    latencies: list[float] = []
    size = 0
    with requests.Session() as session:
        for i in range(warmup + samples):
            began = time.perf_counter()
            resp = session.get(f"{api_url}/jobs", headers={"Authorization": token}, timeout=120)
            elapsed = time.perf_counter() - began
            if resp.status_code != 200:
                raise RuntimeError(f"GET /jobs answered {resp.status_code}: {resp.text[:200]}")
            size = len(resp.json())
            if i >= warmup:
                latencies.append(elapsed)
    return latencies, size


def time_query(ddb: Any, table: str, owner: str, samples: int, warmup: int = 3) -> tuple[list[float], dict[str, Any]]:
    """The data layer's listing Query, with plain boto3; (latencies, what one Query read)."""
    latencies = []
    read: dict[str, Any] = {}
    for i in range(warmup + samples):
        began = time.perf_counter()
        resp = ddb.query(
            TableName=table,
            KeyConditionExpression="owner_id = :pk",
            ExpressionAttributeValues={":pk": {"S": owner}},
            ExpressionAttributeNames={"#status": "status", "#name": "name", "#action": "action", "#error": "error"},
            ProjectionExpression=LIST_PROJECTION,
            ScanIndexForward=False,
            Limit=JOBS_PER_OWNER + 1,
            ConsistentRead=True,
            ReturnConsumedCapacity="TOTAL",
        )
        if i >= warmup:
            latencies.append(time.perf_counter() - began)
        read = {
            "scanned_count": resp.get("ScannedCount"),
            "capacity_units": (resp.get("ConsumedCapacity") or {}).get("CapacityUnits"),
        }
    return latencies, read


def measure(api_url: str, token: str, ddb: Any, table: str, owner: str, samples: int) -> dict[str, Any]:
    api, page = time_listing(api_url, token, samples)
    raw, read = time_query(ddb, table, owner, samples)
    return {"get_jobs": summary_ms(api), "raw_query": summary_ms(raw), "page_size": page, "query_read": read}


def count_items(ddb: Any, table: str) -> int:
    return int(ddb.describe_table(TableName=table)["Table"].get("ItemCount", 0))
