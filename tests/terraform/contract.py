"""What docs/architecture.md fixes for the Terraform: handlers, runtime, env var names, keys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()

HANDLERS = dict(re.findall(r"^\| (api|worker) \| `build/\w+\.zip` \| `([\w.]+)` \|", ARCHITECTURE, re.M))
ENV_SECTION = ARCHITECTURE.split("## Environment variables")[1].split("\n## ")[0]
ENV_VARS = set(re.findall(r"^\| `([A-Z_]+)` \|", ENV_SECTION, re.M))
SERVICE_NAMES = {"api": "jobs-api", "worker": "jobs-worker"}
RUNTIME = "python3.12"
# The root module's outputs the tooling and the issue rely on.
REQUIRED_OUTPUTS = {
    "api_url",
    "rest_api_id",
    "stage_name",
    "table_name",
    "bucket_name",
    "queue_url",
    "dlq_url",
    "api_function_name",
    "worker_function_name",
    "api_log_group",
    "worker_log_group",
    "user_pool_id",
    "user_pool_client_id",
    "issuer_url",
    "region",
}
DEFAULT_ARCHITECTURE = "arm64"

assert set(HANDLERS) == {"api", "worker"}, HANDLERS
assert len(ENV_VARS) >= 11, ENV_VARS


def planned_resources(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """address -> planned values of every resource in a JSON plan."""
    found: dict[str, dict[str, Any]] = {}

    def walk(module: dict[str, Any]) -> None:
        for resource in module.get("resources", []):
            found[resource["address"]] = resource.get("values", {})
        for child in module.get("child_modules", []):
            walk(child)

    walk(plan["planned_values"]["root_module"])
    return found


def planned_change(plan: dict[str, Any], address: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(after, after_unknown) of one resource change: known values, and which are unknown."""
    for change in plan["resource_changes"]:
        if change["address"] == address:
            return change["change"]["after"] or {}, change["change"].get("after_unknown") or {}
    raise KeyError(address)
