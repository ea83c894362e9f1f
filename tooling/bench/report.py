"""Targets, the printed summary, the JSON and Markdown files and the latency plot."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ZIP_LIMIT_BYTES = 5_000_000


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    op: str  # ">=", "<=", "<"
    limit: float
    unit: str = "x"


TARGETS: tuple[Target, ...] = (
    Target("stack_vs_floor_jobs_per_s", "stack jobs/s vs floor jobs/s", ">=", 0.8),
    Target("post_p50_vs_floor_create_p50", "POST p50 vs floor create p50", "<=", 1.3),
    Target("listing_ratio", "GET /jobs p50, big table vs empty", "<=", 1.5),
    Target("cold_start_api_vs_boto3", "api import (tracing on) vs import boto3", "<=", 1.5),
    Target("cold_start_worker_vs_boto3", "worker import (tracing on) vs import boto3", "<=", 1.5),
    Target("zip_api_bytes", "api.zip size", "<", ZIP_LIMIT_BYTES, " bytes"),
    Target("zip_worker_bytes", "worker.zip size", "<", ZIP_LIMIT_BYTES, " bytes"),
    Target("aws_requests_per_job", "AWS requests per job", "<=", 6.0, ""),
    Target("schedule_start_max_ms", "scheduled job start after run_at, max", "<=", 2000.0, " ms"),
    Target("fairness_b_median_vs_a_drain", "fairness: B's median vs A's drain time", "<=", 0.10),
    Target("high_backlog_vs_idle", "high job behind 500 normal vs idle", "<=", 2.0),
)


def check(target: Target, value: float | None) -> dict[str, Any]:
    """Whether ``value`` meets ``target``, and if not by how much (absolute and relative)."""
    goal = f"{target.op} {target.limit:g}{target.unit}"
    row: dict[str, Any] = {"label": target.label, "value": value, "target": goal}
    if value is None or (isinstance(value, float) and math.isnan(value)):
        row.update(met=None, verdict="not measured")
        return row
    met = {">=": value >= target.limit, "<=": value <= target.limit, "<": value < target.limit}[target.op]
    row["met"] = met
    if met:
        row["verdict"] = "met"
    else:
        gap = abs(value - target.limit)
        row["missed_by"] = round(gap, 3)
        row["missed_by_pct"] = round(100 * gap / target.limit, 1)
        row["verdict"] = f"missed by {gap:,.3g}{target.unit} ({row['missed_by_pct']}%)"
    return row


def evaluate(values: dict[str, float | None]) -> dict[str, dict[str, Any]]:
    return {t.key: check(t, values.get(t.key)) for t in TARGETS}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.3g}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    cfg = results["config"]
    lines = [
        "# invoke bench results",
        "",
        f"Run {results['started_at']} on {results['machine']}; {cfg['jobs']} jobs, {cfg['clients']} clients; "
        f"command: `{results['command']}`.",
        "",
    ]
    if results.get("variables"):
        shown = ", ".join(f"`{name} = {json.dumps(value)}`" for name, value in results["variables"].items())
        lines += [f"Terraform variables over `environments/local.tfvars`: {shown}.", ""]
    lines += [
        "## Targets",
        "",
        "| target | value | goal | verdict |",
        "|---|---:|---|---|",
    ]
    for row in results["targets"].values():
        lines.append(f"| {row['label']} | {_fmt(row['value'])} | {row['target']} | {row['verdict']} |")
    lines += ["", "## Figures", "", "| figure | value |", "|---|---:|"]
    for key, value in flatten(results["figures"]):
        lines.append(f"| {key} | {_fmt(value)} |")
    cost = results.get("cost") or {}
    if cost.get("requests_per_job_by_operation"):
        lines += ["", "## AWS requests per job (measured phase)", ""]
        lines += ["| source | request | per job |", "|---|---|---:|"]
        for source, ops in cost["requests_per_job_by_operation"].items():
            for op, per_job in ops.items():
                lines.append(f"| {source} | {op} | {per_job:.3f} |")
    if cost.get("estimate"):
        lines += ["", "## Estimated cost, USD per million jobs (us-east-1)", "", "| item | USD |", "|---|---:|"]
        for item, usd in cost["estimate"]["breakdown_usd_per_million_jobs"].items():
            lines.append(f"| {item} | {usd:,.2f} |")
        lines.append(f"| **total** | **{cost['estimate']['usd_per_million_jobs']:,.2f}** |")
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            rows.extend(flatten(value, name))
        elif not isinstance(value, list):
            rows.append((name, value))
    return rows


def write(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "results.md"}
    paths["json"].write_text(json.dumps(results, indent=2, default=str) + "\n")
    paths["markdown"].write_text(markdown(results))
    return paths


def plot(series: dict[str, list[tuple[float, float]]], path: Path) -> Path | None:
    """Latency (ms) over the run (s since its start), one series per label; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(2, 1, figsize=(10, 8), constrained_layout=True)
    panels = (
        ("create latency (POST through the stack vs PutItem+SendMessage floor)", ("stack POST", "floor create")),
        ("submit to COMPLETE", ("stack submit-to-complete", "floor submit-to-complete")),
    )
    for ax, (title, labels) in zip(axes, panels, strict=True):
        for label in labels:
            points = series.get(label) or []
            if points:
                ax.scatter([p[0] for p in points], [p[1] for p in points], s=6, label=label, alpha=0.6)
        ax.set_title(title)
        ax.set_xlabel("seconds since the first request of the run")
        ax.set_ylabel("ms")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
