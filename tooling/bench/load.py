"""The stack under load: N jobs from C concurrent clients through the local HTTP front.

Each client is its own Cognito user with a real ID token, on a keep-alive HTTP session,
posting its share of the jobs back to back. "Last COMPLETE" is the largest ``completedAt``
of the measured jobs' records, written by the worker when it completes the job (same host
clock as the bench's), so the poll interval does not quantize the figure. To know when to
stop, the bench polls once a second with one COUNT Query per client on the status index
(``<sub>#COMPLETE``) directly on the backend, not through the API: that adds no Lambda
invocation and its requests are counted apart (caller ``jobstack-bench``).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from tooling.bench import records
from tooling.bench.stats import summary_ms

Out = Callable[[str], None]
STATUS_INDEX = "by_owner_status"
JOB_BODY = {"action": "demo", "context1": "hello", "context2": "world"}


@dataclass(frozen=True)
class Client:
    username: str
    token: str
    sub: str


def token_sub(token: str) -> str:
    """The ``sub`` claim of a JWT (payload only; the front verifies the signature)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


@dataclass
class Post:
    client: int
    started: float  # wall clock, seconds
    latency_s: float
    status: int
    job_id: str | None


@dataclass
class StackResult:
    jobs: int
    clients: int
    posts: list[Post] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    first_post: float = 0.0
    last_complete: float = 0.0
    timed_out: bool = False
    failed: int = 0

    @property
    def accepted(self) -> list[Post]:
        return [p for p in self.posts if p.status == 202 and p.job_id]

    @property
    def wall_s(self) -> float:
        return max(self.last_complete - self.first_post, 1e-9)

    def submit_to_complete_s(self) -> list[float]:
        out = []
        for item in self.records:
            if item.get("completedAt") and item.get("status") == "COMPLETE":
                done = records.parse_iso(item["completedAt"]) - records.parse_iso(item["createdAt"])
                out.append(done.total_seconds())
        return out

    def figures(self) -> dict[str, Any]:
        complete = sum(1 for r in self.records if r.get("status") == "COMPLETE")
        codes: dict[str, int] = {}
        for post in self.posts:
            codes[str(post.status)] = codes.get(str(post.status), 0) + 1
        return {
            "jobs": self.jobs,
            "clients": self.clients,
            "accepted": len(self.accepted),
            "post_status_codes": codes,
            "completed": complete,
            "failed": self.failed,
            "wall_s": round(self.wall_s, 3),
            "jobs_per_s": round(complete / self.wall_s, 2),
            "post_latency": summary_ms([p.latency_s for p in self.posts]),
            "submit_to_complete": summary_ms(self.submit_to_complete_s()),
            "timed_out": self.timed_out,
        }


def post_jobs(
    api_url: str, clients: list[Client], indexes: list[list[int]], prefix: str, timeout: float = 60.0
) -> list[Post]:
    """Each client posts the jobs of its index list back to back, all clients at once."""
    posts: list[Post] = []
    lock = threading.Lock()
    gate = threading.Barrier(len(clients))

    def run(number: int) -> None:
        client = clients[number]
        with requests.Session() as session:
            headers = {"Authorization": client.token, "Content-Type": "application/json"}
            gate.wait()
            for index in indexes[number]:
                body = json.dumps({"name": f"{prefix}-{index}", **JOB_BODY})
                started, began = time.time(), time.perf_counter()
                try:
                    resp = session.post(f"{api_url}/job", data=body, headers=headers, timeout=timeout)
                    status = resp.status_code
                    job_id = resp.json().get("job_id") if status == 202 else None
                except requests.RequestException:
                    status, job_id = 0, None
                latency = time.perf_counter() - began
                with lock:
                    posts.append(Post(number, started, latency, status, job_id))

    threads = [threading.Thread(target=run, args=(i,), name=f"bench-client-{i}") for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(posts, key=lambda p: p.started)


def count_status(ddb: Any, table: str, sub: str, status: str) -> int:
    total, start_key = 0, None
    for _ in range(1000):
        kwargs: dict[str, Any] = {
            "TableName": table,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "owner_status = :s",
            "ExpressionAttributeValues": {":s": {"S": f"{sub}#{status}"}},
            "Select": "COUNT",
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        resp = ddb.query(**kwargs)
        total += int(resp.get("Count", 0))
        start_key = resp.get("LastEvaluatedKey")
        if not start_key:
            break
    return total


def wait_until_finished(
    ddb: Any, table: str, expected: dict[str, int], timeout: float, out: Out, label: str = "stack"
) -> tuple[bool, int]:
    """Poll (1/s) until every client's COMPLETE + FAILED count reaches ``expected``; (done, failed)."""
    deadline = time.monotonic() + timeout
    last_note = 0.0
    target = sum(expected.values())
    failed = 0
    while True:
        complete = 0
        failed = 0
        for sub in expected:
            complete += count_status(ddb, table, sub, "COMPLETE")
            failed += count_status(ddb, table, sub, "FAILED")
        if complete + failed >= target:
            return True, failed
        if time.monotonic() > deadline:
            out(f"  {label}: gave up waiting: {complete}/{target} complete, {failed} failed")
            return False, failed
        if time.monotonic() - last_note > 5:
            last_note = time.monotonic()
            out(f"  {label}: {complete}/{target} complete")
        time.sleep(1.0)


def owner_records(ddb: Any, table: str, sub: str) -> list[dict[str, Any]]:
    """Every record of one owner (consistent Query of its partition), as plain dicts."""
    items: list[dict[str, Any]] = []
    start_key = None
    for _ in range(10_000):
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "owner_id = :o",
            "ExpressionAttributeValues": {":o": {"S": sub}},
            "ConsistentRead": True,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        resp = ddb.query(**kwargs)
        for item in resp.get("Items", []):
            items.append({k: next(iter(v.values())) for k, v in item.items()})
        start_key = resp.get("LastEvaluatedKey")
        if not start_key:
            break
    return items


def run(
    api_url: str,
    ddb: Any,
    table: str,
    clients: list[Client],
    jobs: int,
    timeout: float,
    out: Out = print,
    prefix: str = "bench",
) -> StackResult:
    """Post ``jobs`` jobs, wait until all are finished, read their records."""
    result = StackResult(jobs=jobs, clients=len(clients))
    before = {c.sub: sum(count_status(ddb, table, c.sub, s) for s in ("COMPLETE", "FAILED")) for c in clients}
    indexes = [list(range(i, jobs, len(clients))) for i in range(len(clients))]
    result.posts = post_jobs(api_url, clients, indexes, prefix)
    if not result.posts:
        return result
    result.first_post = result.posts[0].started
    out(f"  stack: {len(result.accepted)}/{jobs} POSTs accepted in {time.time() - result.first_post:.1f}s")
    per_client = {c.sub: before[c.sub] for c in clients}
    for post in result.accepted:
        per_client[clients[post.client].sub] += 1
    finished, result.failed = wait_until_finished(ddb, table, per_client, timeout, out)
    result.timed_out = not finished
    wanted = {p.job_id for p in result.accepted}
    for client in clients:
        result.records.extend(r for r in owner_records(ddb, table, client.sub) if r.get("job_id") in wanted)
    done = [records.parse_iso(r["completedAt"]).timestamp() for r in result.records if r.get("completedAt")]
    result.last_complete = max(done) if done else time.time()
    return result
