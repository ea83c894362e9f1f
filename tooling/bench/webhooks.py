"""Webhook latency (README "Webhooks"): from a job's final status change to its webhook
arriving at a receiver on loopback, p50/p95, locally.

Jobs are submitted through the front with a ``callback_url`` of a receiver this bench runs on
127.0.0.1. The latency of one webhook is its arrival time minus the event's ``changed_at`` (the
COMPLETE write's ``updatedAt``): stream -> publisher -> bus -> rule -> webhooks queue -> poller
-> notifier -> POST.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from tooling import loopback
from tooling.bench.load import JOB_BODY, Client
from tooling.bench.records import parse_iso
from tooling.bench.stats import summary_ms

Out = Callable[[str], None]


class _Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}  # job_id -> first arrival (epoch seconds)
        self.lock = threading.Lock()


def _receiver(arrivals: _Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            now = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            job_id = str(json.loads(body).get("job_id", ""))
            with arrivals.lock:
                arrivals.at.setdefault(job_id, now)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return loopback.serve(Handler, name="bench-webhook-receiver")


def measure(
    api_url: str, clients: list[Client], jobs: int, aws: dict[str, Any], outputs: dict[str, Any], out: Out
) -> dict[str, Any]:
    """Submit ``jobs`` jobs with a callback URL; the change -> arrival figures."""
    arrivals = _Arrivals()
    server = _receiver(arrivals)
    url = f"{loopback.base_url(server)}/bench"
    http = requests.Session()
    submitted: dict[str, Client] = {}
    try:
        for i in range(jobs):
            client = clients[i % len(clients)]
            body = {**JOB_BODY, "name": f"bench-webhook-{i}", "callback_url": url}
            resp = http.post(f"{api_url}/job", json=body, headers={"Authorization": client.token}, timeout=30)
            if resp.status_code != 202:
                raise RuntimeError(f"webhook job {i} refused: {resp.status_code} {resp.text[:200]}")
            submitted[resp.json()["job_id"]] = client
        out(f"  {jobs} jobs with a callback URL; waiting ...")
        changed: dict[str, float] = {}
        deadline = time.time() + 120 + jobs
        while time.time() < deadline and (len(changed) < jobs or len(arrivals.at) < jobs):
            for job_id, client in submitted.items():
                if job_id in changed:
                    continue
                resp = http.get(f"{api_url}/job", params={"job_id": job_id}, headers={"Authorization": client.token})
                record = resp.json() if resp.status_code == 200 else {}
                if record.get("status") not in ("COMPLETE", "FAILED", "CANCELLED"):
                    continue
                changed[job_id] = parse_iso(record["updatedAt"]).timestamp()
            time.sleep(0.2)
    finally:
        loopback.stop(server)
    latencies = [arrivals.at[j] - changed[j] for j in arrivals.at if j in changed]
    figures: dict[str, Any] = {
        "jobs": jobs,
        "delivered": len(arrivals.at),
        "measured_from": "changed_at (the final status write's updatedAt)",
        "change_to_webhook": summary_ms(latencies),
    }
    lat = figures["change_to_webhook"]
    out(f"  change -> webhook received: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms ({len(arrivals.at)}/{jobs})")
    return figures
