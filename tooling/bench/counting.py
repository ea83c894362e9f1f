"""AWS requests counted at the embedded backend, grouped by who made them.

The Lambda code runs in the local runtime's worker processes, where a botocore hook of the
bench cannot see its calls; so the backend counts every request it serves (opt-in patch
``tooling.embedded_backend.patch_request_counts``), keyed by caller (from the User-Agent),
service and operation. Callers:

- ``function``: the deployed Lambda code (botocore adds ``exec-env/AWS_Lambda_...``);
- ``other`` SQS receive/delete calls: the local runtime's poller, i.e. Lambda's SQS event
  source mapping, whose requests AWS bills to the queue's owner;
- ``other`` CloudWatch Logs calls: the runtime shipping function output (on AWS Lambda's
  log delivery, billed by ingested bytes, not per request);
- ``other`` anything else: the runtime's deployment discovery (no per-job AWS counterpart);
- ``jobstack-bench*``: the bench's own setup, polling and floor clients (never per-job cost).
"""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tooling.embedded_backend import REQUEST_COUNTS_PATH

BENCH_APP_ID = "jobstack-bench"
FLOOR_APP_ID = "jobstack-bench-floor"
ESM_SQS_OPERATIONS = {
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
}


def fetch(endpoint: str, reset: bool = False) -> list[dict[str, Any]]:
    """The backend's counts since the last reset (``reset`` zeroes them after reading)."""
    url = f"{endpoint}{REQUEST_COUNTS_PATH}" + ("?reset=1" if reset else "")
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback backend)
        rows: list[dict[str, Any]] = json.load(resp)["counts"]
    return rows


def category(row: dict[str, Any]) -> str:
    caller, service, operation = row["caller"], row["service"], row["operation"]
    if caller == "function":
        return "function"
    if caller.startswith(BENCH_APP_ID):
        return "floor" if caller == FLOOR_APP_ID else "bench"
    if service == "sqs" and operation in ESM_SQS_OPERATIONS:
        return "event_source_mapping"
    if service == "logs":
        return "log_shipping"
    return "runtime_other"


@dataclass
class RequestCounts:
    """Counts by category -> "service:Operation" -> n."""

    by_category: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> RequestCounts:
        grouped: dict[str, dict[str, int]] = defaultdict(dict)
        for row in rows:
            key = f"{row['service']}:{row['operation']}"
            bucket = grouped[category(row)]
            bucket[key] = bucket.get(key, 0) + int(row["count"])
        return cls({k: dict(sorted(v.items())) for k, v in sorted(grouped.items())})

    def get(self, cat: str, key: str) -> int:
        return self.by_category.get(cat, {}).get(key, 0)

    def total(self, cat: str, service: str | None = None) -> int:
        rows = self.by_category.get(cat, {}).items()
        return sum(n for k, n in rows if service is None or k.startswith(service + ":"))
