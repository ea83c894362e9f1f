"""Flow control under a backlog: fairness between users and priorities (README "Flow control").

Both measures go through the local HTTP front as real users and read the times from the job
records (``createdAt`` written by the api, ``completedAt`` by the worker, same host clock):

- **fairness**: user A's ``a_jobs`` are queued "at once": the normal queue's event source
  mapping is disabled while A posts them (``threads`` parallel POSTs; one POST at a time is
  slower than the worker, so without the pause there would be no backlog), then enabled;
  once A's first job is COMPLETE (the backlog is being served), user B submits ``b_jobs``.
  A's drain time is from the mapping's re-enabling to A's last ``completedAt``; B's latency
  is each job's ``completedAt - createdAt``. Figure: ``b_median_vs_a_drain`` = B's median /
  A's drain time (without fair queues, B's jobs wait behind A's backlog: about 1).
- **priorities**: a ``high`` job's submit-to-COMPLETE on an idle stack (median of
  ``samples``), then the same with ``backlog`` ``normal`` jobs queued (a job submitted, waited
  for, then the next). Figure: ``high_backlog_vs_idle``. A ``low`` job submitted with the
  backlog shows that low is not starved (it finishes before the backlog drains).

Used by ``invoke bench`` (the issue's figures: 1,000/10 and a backlog of 500) and by the e2e
tests (smaller figures, generous bounds).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from tooling.bench import load, records
from tooling.bench.stats import median, ratio

Out = Callable[[str], None]
JOB_BODY = {"action": "demo", "context1": "hello", "context2": "world"}
# How long the local runtime may take to notice a mapping's change (it re-reads them every
# 2 s, and a disabled mapping's poller stops after its in-flight batches).
PAUSE_TIMEOUT_S = 120.0
RETRIES = 5  # of a POST answered 503 (busy), with exponential back-off


@dataclass(frozen=True)
class User:
    token: str
    sub: str


class SubmitFailed(RuntimeError):
    """A POST of the measurement was not accepted (the figures would be meaningless)."""


def submit(
    api_url: str, user: User, count: int, prefix: str, threads: int = 8, extra: dict[str, Any] | None = None
) -> list[str]:
    """``count`` jobs of ``user`` posted by ``threads`` parallel keep-alive sessions; their ids."""
    body = {**JOB_BODY, **(extra or {})}
    headers = {"Authorization": user.token, "Content-Type": "application/json"}

    def post(chunk: Sequence[int]) -> list[str]:
        ids = []
        with requests.Session() as session:
            for index in chunk:
                payload = {"name": f"{prefix}-{index}", **body}
                for attempt in range(RETRIES + 1):
                    resp = session.post(f"{api_url}/job", json=payload, headers=headers)
                    # one user's parallel POSTs contend on their quota counter: 503 busy says
                    # "retry shortly", as a client would
                    if resp.status_code != 503 or attempt == RETRIES:
                        break
                    time.sleep(0.1 * 2**attempt)
                if resp.status_code != 202:
                    raise SubmitFailed(f"POST /job answered {resp.status_code}: {resp.text[:300]}")
                ids.append(str(resp.json()["job_id"]))
        return ids

    chunks = [range(i, count, threads) for i in range(min(threads, count))]
    with concurrent.futures.ThreadPoolExecutor(len(chunks)) as pool:
        return [job_id for ids in pool.map(post, chunks) for job_id in ids]


def wait_finished(ddb: Any, table: str, sub: str, count: int, timeout: float, out: Out, label: str) -> None:
    """Until ``sub`` has ``count`` COMPLETE or FAILED jobs (polled once a second on the index)."""
    finished, _ = load.wait_until_finished(ddb, table, {sub: count}, timeout, out, label)
    if not finished:
        raise TimeoutError(f"{label}: the jobs did not finish within {timeout:.0f}s")


def wait_job(ddb: Any, table: str, sub: str, job_id: str, timeout: float, label: str) -> str:
    """Until one job is finished (a consistent GetItem every 0.2 s); its status. The figures come
    from the record's own times, so the poll interval does not change them."""
    deadline = time.monotonic() + timeout
    key = {"owner_id": {"S": sub}, "job_id": {"S": job_id}}
    while True:
        item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {}
        status = str((item.get("status") or {}).get("S", ""))
        if status in ("COMPLETE", "FAILED", "CANCELLED"):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: job {job_id} is {status or 'missing'} after {timeout:.0f}s")
        time.sleep(0.2)


def times(ddb: Any, table: str, sub: str, job_ids: Sequence[str]) -> dict[str, tuple[float, float | None]]:
    """job id -> (createdAt, completedAt or None), epoch seconds."""
    wanted = set(job_ids)
    found: dict[str, tuple[float, float | None]] = {}
    for item in load.owner_records(ddb, table, sub):
        if item.get("job_id") in wanted:
            done = item.get("completedAt") if item.get("status") == "COMPLETE" else None
            found[item["job_id"]] = (
                records.parse_iso(item["createdAt"]).timestamp(),
                records.parse_iso(done).timestamp() if done else None,
            )
    return found


def waits(ddb: Any, table: str, sub: str, job_ids: Sequence[str]) -> list[float]:
    """Each COMPLETE job's queue wait: createdAt to startedAt (the worker's claim), seconds."""
    wanted = set(job_ids)
    return [
        records.parse_iso(item["startedAt"]).timestamp() - records.parse_iso(item["createdAt"]).timestamp()
        for item in load.owner_records(ddb, table, sub)
        if item.get("job_id") in wanted and item.get("status") == "COMPLETE" and item.get("startedAt")
    ]


def _latencies(found: dict[str, tuple[float, float | None]]) -> list[float]:
    return [done - created for created, done in found.values() if done is not None]


class Console(Protocol):
    """The local runtime's console lines (the e2e tests' ``Console``, the bench's ``ConsoleTap``)."""

    def matching(self, *needles: str) -> list[str]: ...


def _wait_lines(console: Console, needles: tuple[str, ...], before: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while len(console.matching(*needles)) <= before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the local runtime did not {what} within {timeout:.0f}s")
        time.sleep(0.2)


@contextlib.contextmanager
def mapping_paused(lam: Any, mapping_uuid: str, queue_url: str, console: Console) -> Iterator[None]:
    """The event source mapping disabled until the block ends, as the runtime confirms it: its
    poller is stopped (after its in-flight batches) before the block runs, and polls again
    before this returns."""
    stopped = len(console.matching(mapping_uuid, "disabled"))
    polling = len(console.matching("polling", queue_url))
    lam.update_event_source_mapping(UUID=mapping_uuid, Enabled=False)
    try:
        _wait_lines(console, (mapping_uuid, "disabled"), stopped, PAUSE_TIMEOUT_S, "stop polling")
        yield
    finally:
        lam.update_event_source_mapping(UUID=mapping_uuid, Enabled=True)
        _wait_lines(console, ("polling", queue_url), polling, PAUSE_TIMEOUT_S, "poll the queue again")


def fairness(
    api_url: str,
    ddb: Any,
    lam: Any,
    table: str,
    mapping_uuid: str,
    queue_url: str,
    console: Console,
    a: User,
    b: User,
    a_jobs: int,
    b_jobs: int,
    timeout: float,
    out: Out = print,
    threads: int = 8,
) -> dict[str, Any]:
    """A's backlog, then B's few jobs: B's median submit-to-COMPLETE against A's drain time.

    ``mapping_uuid`` and ``queue_url``: the normal queue's event source mapping (paused while
    A submits) and queue; ``console``: the local runtime's, which confirms the pause.
    """
    out(f"fairness: user A queues {a_jobs} jobs ({threads} parallel clients, the normal mapping paused) ...")
    began = time.monotonic()
    with mapping_paused(lam, mapping_uuid, queue_url, console):
        a_ids = submit(api_url, a, a_jobs, "fair-a", threads)
        a_submit_s = time.monotonic() - began
    resumed = time.time()
    out(f"  A's {a_jobs} jobs accepted in {a_submit_s:.1f}s; mapping enabled; waiting for A's first COMPLETE ...")
    wait_finished(ddb, table, a.sub, 1, timeout, out, "fairness A (first)")
    out(f"  user B submits {b_jobs} jobs ...")
    b_ids = submit(api_url, b, b_jobs, "fair-b", min(threads, b_jobs))
    wait_finished(ddb, table, b.sub, b_jobs, timeout, out, "fairness B")
    wait_finished(ddb, table, a.sub, a_jobs, timeout, out, "fairness A")
    a_times, b_times = times(ddb, table, a.sub, a_ids), times(ddb, table, b.sub, b_ids)
    a_done = [done for _, done in a_times.values() if done is not None]
    if len(a_done) != a_jobs or len(_latencies(b_times)) != b_jobs:
        raise RuntimeError(
            f"fairness: {len(a_done)}/{a_jobs} of A and {len(_latencies(b_times))}/{b_jobs} of B COMPLETE"
        )
    a_drain = max(a_done) - resumed
    b_median = median(_latencies(b_times))
    b_last = max(done for _, done in b_times.values() if done is not None)
    figures = {
        "a_jobs": a_jobs,
        "b_jobs": b_jobs,
        "a_submit_s": round(a_submit_s, 2),
        "a_drain_s": round(a_drain, 2),
        "a_jobs_per_s": round(a_jobs / a_drain, 2) if a_drain > 0 else None,
        "b_median_s": round(b_median, 3),
        "b_max_s": round(max(_latencies(b_times)), 3),
        # A's jobs still waiting when B's last one finished (B did not wait for the backlog)
        "a_left_when_b_done": sum(1 for done in a_done if done > b_last),
        "b_median_vs_a_drain": ratio(b_median, a_drain),
    }
    out(
        f"  fairness: B's median {figures['b_median_s']}s vs A's drain {figures['a_drain_s']}s "
        f"= {figures['b_median_vs_a_drain']} (goal <= 0.10); {figures['a_left_when_b_done']} of A's jobs "
        "were still to finish when B's last one did"
    )
    return figures


def _one_by_one(
    api_url: str, ddb: Any, table: str, user: User, priority: str, samples: int, timeout: float, out: Out, label: str
) -> dict[str, tuple[float, float | None]]:
    """``samples`` jobs of ``priority``, each submitted once the previous one is COMPLETE."""
    found: dict[str, tuple[float, float | None]] = {}
    for n in range(samples):
        [job_id] = submit(api_url, user, 1, f"{label}-{n}", 1, {"priority": priority})
        wait_job(ddb, table, user.sub, job_id, timeout, label)
        found.update(times(ddb, table, user.sub, [job_id]))
    if len(_latencies(found)) != samples:
        raise RuntimeError(f"{label}: {len(_latencies(found))}/{samples} {priority} jobs COMPLETE")
    return found


def priorities(
    api_url: str,
    ddb: Any,
    table: str,
    member: User,
    other: User,
    backlog: int,
    timeout: float,
    out: Out = print,
    samples: int = 3,
    threads: int = 8,
) -> dict[str, Any]:
    """A high job's submit-to-COMPLETE idle and behind ``backlog`` normal jobs of ``other``.

    ``member`` belongs to the high-priority group (its own high and low jobs are measured).
    """
    out(f"priorities: {samples} high jobs on the idle stack, one at a time ...")
    idle = _one_by_one(api_url, ddb, table, member, "high", samples, timeout, out, "high-idle")
    out(f"priorities: a backlog of {backlog} normal jobs, then {samples} high jobs and 1 low job ...")
    began = time.monotonic()
    normal_ids = submit(api_url, other, backlog, "backlog", threads)
    out(f"  backlog accepted in {time.monotonic() - began:.1f}s")
    [low_id] = submit(api_url, member, 1, "low-behind-backlog", 1, {"priority": "low"})
    under = _one_by_one(api_url, ddb, table, member, "high", samples, timeout, out, "high-backlog")
    wait_finished(ddb, table, other.sub, backlog, timeout, out, "backlog")
    normal = times(ddb, table, other.sub, normal_ids)
    normal_done = [done for _, done in normal.values() if done is not None]
    low = times(ddb, table, member.sub, [low_id]).get(low_id)
    if len(normal_done) != backlog or low is None or low[1] is None:
        raise RuntimeError(f"priorities: {len(normal_done)}/{backlog} of the backlog COMPLETE, low job: {low}")
    backlog_drain = max(normal_done) - min(created for created, _ in normal.values())
    idle_s, under_s = _latencies(idle), _latencies(under)
    # where the time goes: waiting to be claimed (the queue's share) vs the rest (the run)
    idle_wait, under_wait = waits(ddb, table, member.sub, list(idle)), waits(ddb, table, member.sub, list(under))
    figures = {
        "backlog": backlog,
        "samples": samples,
        "high_idle_median_s": round(median(idle_s), 3),
        "high_backlog_median_s": round(median(under_s), 3),
        "high_backlog_max_s": round(max(under_s), 3),
        "high_idle_wait_median_s": round(median(idle_wait), 3),
        "high_backlog_wait_median_s": round(median(under_wait), 3),
        # the measure means something only if the high jobs ran while the backlog was there
        "high_done_before_backlog_drained": max(d for _, d in under.values() if d is not None) < max(normal_done),
        "backlog_drain_s": round(backlog_drain, 2),
        "low_behind_backlog_s": round(low[1] - low[0], 3),
        "low_done_before_backlog_drained": low[1] < max(normal_done),
        "high_backlog_vs_idle": ratio(median(under_s), median(idle_s)),
    }
    out(
        f"  priorities: high {figures['high_backlog_median_s']}s under a backlog of {backlog} vs "
        f"{figures['high_idle_median_s']}s idle = {figures['high_backlog_vs_idle']}x (goal <= 2; waiting to be "
        f"claimed {figures['high_backlog_wait_median_s']}s vs {figures['high_idle_wait_median_s']}s idle); "
        f"low {figures['low_behind_backlog_s']}s, backlog drained in {figures['backlog_drain_s']}s"
    )
    return figures
