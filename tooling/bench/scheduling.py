"""Scheduling accuracy: how long after its ``run_at`` a scheduled job starts (``startedAt``).

Jobs are submitted through the front, due a few seconds after the SQS-delay threshold of the
deployed stack when that is short (so each goes through a real EventBridge Scheduler schedule
that the local runtime fires), otherwise a few seconds ahead with ``delay_seconds`` (an SQS
message delay). Their due times are whole seconds (what ``at(...)`` takes; a ``run_at`` with
a fraction fires at the next whole second) spread over a few seconds, so the firer's
re-listing and the poller's long polls meet them at every phase. A job must never start
before its ``run_at``: the figure counts any that did. The figure includes what the poller
spends gathering a batch (up to the mapping's batching window) and the worker's claim.

Run with ``--var schedule_delay_threshold_seconds=2`` to measure the schedule path (the
bench's stack otherwise keeps local.tfvars' 900 s and measures the SQS-delay path).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from tooling.bench.load import JOB_BODY, Client
from tooling.bench.records import parse_iso
from tooling.bench.stats import summary_ms

Out = Callable[[str], None]
SCHEDULE_PATH_MAX_THRESHOLD_S = 30  # beyond this the measurement would wait too long for a schedule
LEAD_S = 3  # seconds past the threshold (or from now) of the first due time
SPREAD_S = 5  # due times spread over this many whole seconds


def measure(api_url: str, clients: list[Client], threshold_s: int, jobs: int, out: Out) -> dict[str, Any]:
    """Submit ``jobs`` scheduled jobs, wait for them, return the run_at -> startedAt figures."""
    via_schedule = threshold_s <= SCHEDULE_PATH_MAX_THRESHOLD_S
    base = math.ceil(time.time()) + (threshold_s if via_schedule else 0) + LEAD_S
    http = requests.Session()
    submitted: list[tuple[Client, str]] = []
    for i in range(jobs):
        client = clients[i % len(clients)]
        body: dict[str, Any] = {**JOB_BODY, "name": f"bench-schedule-{i}"}
        due = base + i * SPREAD_S // max(jobs, 1)
        if via_schedule:
            body["run_at"] = datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            body["delay_seconds"] = max(1, round(due - time.time()))
        resp = http.post(f"{api_url}/job", json=body, headers={"Authorization": client.token}, timeout=30)
        if resp.status_code != 202:
            raise RuntimeError(f"scheduled job {i} refused: {resp.status_code} {resp.text[:200]}")
        submitted.append((client, resp.json()["job_id"]))
    out(
        f"  {jobs} jobs due in {base - time.time():.0f}-{base + SPREAD_S - time.time():.0f} s "
        f"({'EventBridge Scheduler schedules' if via_schedule else 'SQS DelaySeconds'}); waiting ..."
    )
    deadline = time.time() + threshold_s + LEAD_S + SPREAD_S + 120
    records: dict[str, dict[str, Any]] = {}
    while len(records) < len(submitted) and time.time() < deadline:
        for client, job_id in submitted:
            if job_id in records:
                continue
            resp = http.get(f"{api_url}/job", params={"job_id": job_id}, headers={"Authorization": client.token})
            if resp.status_code == 200 and resp.json().get("status") in ("COMPLETE", "FAILED", "CANCELLED"):
                records[job_id] = resp.json()
        time.sleep(0.5)
    lags = [
        (parse_iso(r["startedAt"]) - parse_iso(r["run_at"])).total_seconds()
        for r in records.values()
        if r.get("startedAt") and r.get("run_at")
    ]
    figures: dict[str, Any] = {
        "path": "schedule" if via_schedule else "sqs_delay",
        "threshold_s": threshold_s,
        "jobs": jobs,
        "finished": len(records),
        "complete": sum(1 for r in records.values() if r.get("status") == "COMPLETE"),
        "with_schedule_name": sum(1 for r in records.values() if r.get("schedule_name")),
        "started_early": sum(1 for lag in lags if lag < 0),
        "run_at_to_started": summary_ms(lags),
    }
    lag = figures["run_at_to_started"]
    out(
        f"  run_at -> startedAt: p50 {lag['p50_ms']} ms, p95 {lag['p95_ms']} ms, max {lag['max_ms']} ms "
        f"({figures['complete']}/{jobs} complete, {figures['started_early']} early)"
    )
    return figures
