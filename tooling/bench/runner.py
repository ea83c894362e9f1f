"""``invoke bench``: one run on one embedded backend, every figure of issue 6.

Order: start the local stack (backend with request counting on, terraform apply of
``environments/local.tfvars`` with the ``--var`` overrides on top, local runtime) -> cold
start (on an idle machine) -> floor -> stack (after a warm-up of one job per client) ->
flow control (fairness: one user's 1,000 jobs then another's 10; priorities: a high job idle
and behind 500 normal ones; tooling/bench/flow.py) -> listing (the stack's jobs deleted first,
so the baseline table holds only the listing user's 50 jobs) -> results (printed, JSON,
Markdown, PNG). Everything started is stopped at the end, failure or not.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tooling import local_stack, packaging
from tooling.aws_access import LOCAL_CREDENTIALS
from tooling.bench import (
    coldstart,
    counting,
    floor,
    flow,
    listing,
    load,
    prices,
    records,
    report,
    scheduling,
    webhooks,
)
from tooling.bench import variables as variables_mod
from tooling.bench.stats import ratio, summary_ms
from tooling.embedded_backend import COUNT_REQUESTS_ENV
from tooling.local_runtime.functions import PoolSettings

Out = Callable[[str], None]
DEFAULT_OUT_DIR = packaging.BUILD_DIR / "bench"
_REPORT = re.compile(r"^REPORT RequestId: \S+\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms\tMemory Size: (\d+) MB")
_LINE = re.compile(r"^\[([^\]]+)\] (.*)$", re.S)


@dataclass
class BenchConfig:
    jobs: int = 500
    clients: int = 8
    out_dir: Path = DEFAULT_OUT_DIR
    listing_items: int = 100_000
    listing_samples: int = 30
    skip_listing: bool = False
    cold_runs: int = 7
    seed_budget_s: float = 900.0
    completion_timeout_s: float | None = None  # default: 120 s + 1 s per job
    schedule_jobs: int = 20  # scheduled jobs whose start is measured against run_at (0: skip)
    webhook_jobs: int = 20  # jobs with a callback URL: status change -> webhook received (0: skip)
    skip_flow: bool = False
    fair_a_jobs: int = 1000  # fairness: user A's backlog, submitted at once
    fair_b_jobs: int = 10  # then user B's jobs
    priority_backlog: int = 500  # priorities: normal jobs queued ahead of the high ones
    command: str = "invoke bench"
    variables: dict[str, Any] = field(default_factory=dict)  # --var: over environments/local.tfvars


def config_from_flags(
    jobs: int = 0,
    clients: int = 8,
    out: str = "",
    listing_items: int = 0,
    skip_listing: bool = False,
    cold_runs: int = 0,
    quick: bool = False,
    var: list[str] | None = None,
    schedule_jobs: int = -1,
    skip_flow: bool = False,
) -> BenchConfig:
    """The task's flags (0 or "" = default; ``quick`` = smaller defaults) -> a config naming its command.

    ``var``: ``NAME=VALUE`` strings (``--var``, repeatable), Terraform variables of the bench's
    stack; an invalid one raises ``OperatorError`` before anything starts.
    """
    variables = variables_mod.parse(var or [])
    flags = {"jobs": jobs, "clients": clients if clients != 8 else 0, "out": out, "listing-items": listing_items}
    flags["cold-runs"] = cold_runs
    flags["schedule-jobs"] = schedule_jobs if schedule_jobs >= 0 else 0
    command = ["invoke bench", *(["--quick"] if quick else [])]
    command += [f"--{name}={value}" for name, value in flags.items() if value]
    command += ["--skip-listing"] if skip_listing else []
    command += ["--skip-flow"] if skip_flow else []
    command += [variables_mod.flag(name, value) for name, value in variables.items()]
    return BenchConfig(
        jobs=jobs or (100 if quick else 500),
        clients=clients,
        out_dir=Path(out) if out else DEFAULT_OUT_DIR,
        listing_items=listing_items or (10_000 if quick else 100_000),
        skip_listing=skip_listing,
        cold_runs=cold_runs or (3 if quick else 7),
        schedule_jobs=schedule_jobs if schedule_jobs >= 0 else (10 if quick else 20),
        command=" ".join(command),
        variables=variables,
        skip_flow=skip_flow,
        fair_a_jobs=300 if quick else 1000,
        priority_backlog=200 if quick else 500,
    )


@dataclass
class ConsoleTap:
    """Collects the local runtime's console: REPORT lines and log bytes per function."""

    functions: set[str] = field(default_factory=set)
    reports: list[tuple[str, float, int, int]] = field(default_factory=list)  # fn, ms, billed ms, MB
    log_bytes: dict[str, int] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)
    # the runtime's notes on its pollers ("polling <queue> -> ...", "event source mapping <uuid>:
    # disabled ..."): few, kept whole, so that a count of them only grows (flow.mapping_paused)
    runtime_lines: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, line: str) -> None:
        match = _LINE.match(line)
        if not match:
            return
        source, message = match.groups()
        with self._lock:
            self.tail = [*self.tail[-39:], line]
            if source not in self.functions:
                if message.startswith(("polling ", "event source mapping ")):
                    self.runtime_lines.append(line)
                return
            size = len(message.encode()) + prices.LOG_EVENT_OVERHEAD_BYTES
            self.log_bytes[source] = self.log_bytes.get(source, 0) + size
            report_match = _REPORT.match(message)
            if report_match:
                ms, billed, memory = report_match.groups()
                self.reports.append((source, float(ms), int(billed), int(memory)))

    def matching(self, *needles: str) -> list[str]:
        """The runtime's notes holding every needle (e.g. a mapping's "disabled")."""
        with self._lock:
            return [line for line in self.runtime_lines if all(n in line for n in needles)]

    def reset(self) -> None:
        with self._lock:
            self.reports.clear()
            self.log_bytes.clear()


def _clients(endpoint: str, region: str, app_id: str, pool: int) -> dict[str, Any]:
    """Clients on the backend whose requests carry ``app/<app_id>`` (how the backend counts them apart)."""
    session = boto3.session.Session(
        aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
        region_name=region,
    )
    settings: dict[str, Any] = {
        "user_agent_appid": app_id,
        "max_pool_connections": pool,
        "retries": {"mode": "standard", "max_attempts": 8},
        "connect_timeout": 5,
        "read_timeout": 120,
        "s3": {"addressing_style": "path"},
    }
    config = Config(**settings)
    services = ("dynamodb", "sqs", "s3", "lambda", "cognito-idp", "events")
    return {s: session.client(s, endpoint_url=endpoint, config=config) for s in services}  # type: ignore[call-overload]


def _per_job(counts: dict[str, int], jobs: int) -> dict[str, float]:
    return {k: round(v / jobs, 3) for k, v in counts.items()}


def cost_figures(
    stack_counts: counting.RequestCounts,
    tap: ConsoleTap,
    stack: load.StackResult,
    functions: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Requests per job by source and operation, and the $/million-jobs estimate."""
    jobs = max(len(stack.accepted), 1)
    api_requests = len(stack.posts)
    function_calls = stack_counts.total("function")
    esm_calls = stack_counts.total("event_source_mapping")
    requests_per_job = (api_requests + function_calls + esm_calls) / jobs
    invocations = {label: 0 for label in functions}
    gb_s = 0.0
    names = {cfg["FunctionName"]: label for label, cfg in functions.items()}
    for fn, _ms, billed, memory in tap.reports:
        invocations[names.get(fn, fn)] = invocations.get(names.get(fn, fn), 0) + 1
        gb_s += billed / 1000.0 * memory / 1024.0
    item_bytes = max((records.item_bytes({k: {"S": str(v)} for k, v in r.items()}) for r in stack.records), default=0)
    get = stack_counts.get
    per_job = {
        "apigw_requests": api_requests / jobs,
        "lambda_invocations": sum(invocations.values()) / jobs,
        "lambda_gb_s": gb_s / jobs,
        "sqs_requests": (stack_counts.total("function", "sqs") + esm_calls) / jobs,
        "ddb_put": get("function", "dynamodb:PutItem") / jobs,
        "ddb_update": get("function", "dynamodb:UpdateItem") / jobs,
        "ddb_transactions": get("function", "dynamodb:TransactWriteItems") / jobs,
        "ddb_reads": (get("function", "dynamodb:GetItem") + get("function", "dynamodb:Query")) / jobs,
        "s3_put": get("function", "s3:PutObject") / jobs,
        "s3_get": get("function", "s3:GetObject") / jobs,
        "log_bytes": sum(tap.log_bytes.values()) / jobs,
    }
    architecture = (functions.get("worker", {}).get("Architectures") or ["x86_64"])[0]
    by_operation = {"api_gateway": {"apigateway:POST /job": round(api_requests / jobs, 3)}}
    for source in ("function", "event_source_mapping", "log_shipping", "runtime_other", "bench"):
        if stack_counts.by_category.get(source):
            by_operation[source] = _per_job(stack_counts.by_category[source], jobs)
    return {
        "counted_at": "the embedded backend (request-counting patch), by User-Agent caller; API Gateway requests "
        "counted by the bench client",
        "aws_requests_per_job": round(requests_per_job, 3),
        "aws_requests_per_job_definition": "API Gateway POSTs + every AWS call of the functions + the event source "
        "mapping's SQS receive/delete calls, over accepted jobs; log shipping, runtime discovery and the bench's "
        "own polling are shown but not counted",
        "requests_per_job_by_operation": by_operation,
        "lambda_invocations": invocations,
        "lambda_gb_s_per_job": round(gb_s / jobs, 6),
        "log_bytes_per_job": round(per_job["log_bytes"], 1),
        "per_job_quantities": {k: round(v, 6) for k, v in per_job.items()},
        "estimate": prices.estimate(per_job, architecture, item_bytes / 1024.0),
    }


def worker_mapping(lam: Any, function_name: str, queue_name: str | None = None) -> dict[str, Any]:
    """The worker's event source mapping ({} if none); with ``queue_name``, the one of that
    queue (the worker has one per priority: the bench's jobs go to normal's).

    Listed without the ``FunctionName`` filter: moto matches that filter against what the
    mapping was created with (Terraform passes the function's ARN), so a name finds nothing.
    """
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        for mapping in page.get("EventSourceMappings", []):
            arn = str(mapping.get("FunctionArn", ""))
            if arn.split(":function:", 1)[-1].split(":", 1)[0] != function_name:
                continue
            if queue_name is None or str(mapping.get("EventSourceArn", "")).endswith(f":{queue_name}"):
                return dict(mapping)
    return {}


def deployed_settings(
    aws: dict[str, Any], outputs: dict[str, Any], functions: dict[str, dict[str, Any]], mapping: dict[str, Any]
) -> dict[str, Any]:
    """The tuning knobs as deployed (read back from the backend, not from the tfvars)."""
    settings: dict[str, Any] = {}
    for label, cfg in functions.items():
        reserved = aws["lambda"].get_function_concurrency(FunctionName=cfg["FunctionName"])
        settings[f"{label}_memory_mb"] = cfg.get("MemorySize")
        settings[f"{label}_timeout_s"] = cfg.get("Timeout")
        settings[f"{label}_reserved_concurrency"] = reserved.get("ReservedConcurrentExecutions", "unreserved")
    settings["worker_batch_size"] = mapping.get("BatchSize")
    settings["worker_batching_window_s"] = mapping.get("MaximumBatchingWindowInSeconds", 0)
    settings["worker_max_concurrency"] = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency", "unset")
    attributes = aws["sqs"].get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])["Attributes"]
    settings["queue_visibility_timeout_s"] = int(attributes.get("VisibilityTimeout", 0))
    redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    settings["queue_max_receive_count"] = int(redrive["maxReceiveCount"]) if redrive else "no DLQ"
    return settings


def _delete_owner_jobs(ddb: Any, table: str, subs: list[str]) -> int:
    deleted = 0
    for sub in subs:
        items = load.owner_records(ddb, table, sub)
        keys = [{"owner_id": {"S": i["owner_id"]}, "job_id": {"S": i["job_id"]}} for i in items]
        for i in range(0, len(keys), listing.BATCH):
            listing.batch_write(ddb, table, keys[i : i + listing.BATCH], delete=True)
        deleted += len(keys)
    return deleted


def run(config: BenchConfig, out: Out = print) -> dict[str, Any]:
    """Run the whole benchmark; write results to ``config.out_dir``; return them."""
    started_at = records.iso(records.utc_now())
    began = time.monotonic()
    tap = ConsoleTap()
    notes: list[str] = []
    figures: dict[str, Any] = {}
    cost: dict[str, Any] = {}
    timeout = config.completion_timeout_s or 120.0 + config.jobs
    previous = os.environ.get(COUNT_REQUESTS_ENV)
    os.environ[COUNT_REQUESTS_ENV] = "1"  # read by the backend process at start
    if config.variables:
        shown = ", ".join(f"{name}={value!r}" for name, value in config.variables.items())
        out(f"terraform variables over environments/local.tfvars: {shown}")
    try:
        stack = local_stack.start(out, console=tap, variables=config.variables)
    finally:
        if previous is None:
            os.environ.pop(COUNT_REQUESTS_ENV, None)
        else:
            os.environ[COUNT_REQUESTS_ENV] = previous
    try:
        outputs = stack.outputs
        endpoint, region = stack.backend.endpoint, stack.env.region
        aws = _clients(endpoint, region, counting.BENCH_APP_ID, config.clients + 8)
        ddb, table = aws["dynamodb"], outputs["table_name"]
        functions = {
            label: aws["lambda"].get_function_configuration(FunctionName=outputs[f"{label}_function_name"])
            for label in ("api", "worker")
        }
        tap.functions = {cfg["FunctionName"] for cfg in functions.values()}
        normal_queue = str(outputs["queue_url"]).rstrip("/").rsplit("/", 1)[-1]
        mapping = worker_mapping(aws["lambda"], outputs["worker_function_name"], normal_queue)
        scaling = mapping.get("ScalingConfig") or {}
        processors = int(scaling.get("MaximumConcurrency") or 4)
        figures["settings"] = deployed_settings(aws, outputs, functions, mapping)

        # ---- cold start -------------------------------------------------------------
        out(f"cold start: {config.cold_runs} runs of each import in a fresh process ...")
        zips = {label: packaging.BUILD_DIR / f"{label}.zip" for label in functions}
        for label, path in zips.items():
            if packaging.code_sha256(path) != functions[label]["CodeSha256"]:
                notes.append(f"{path.name} differs from the deployed code of {label}: cold start measured the zip")
        cold = coldstart.measure(zips, functions, region, endpoint, runs=config.cold_runs, out=out)
        cold["method"] = coldstart.environment_note()
        figures["cold_start"] = {k: v for k, v in cold.items() if k != "samples_ms"}

        # ---- users ----------------------------------------------------------------------
        out(f"creating {config.clients} users with ID tokens ...")
        clients = []
        for _ in range(config.clients):
            username, password = stack.create_user()
            token = stack.id_token(username, password)
            clients.append(load.Client(username, token, load.token_sub(token)))

        # ---- floor ----------------------------------------------------------------------
        out(
            f"floor: {config.jobs} jobs with plain boto3 "
            f"({config.clients} creators, 1 receiver, {processors} processors) ..."
        )
        floor_aws = _clients(endpoint, region, counting.FLOOR_APP_ID, config.clients + processors + 4)
        resources = floor.clone_resources(aws["dynamodb"], aws["sqs"], aws["s3"], outputs)
        counting.fetch(endpoint, reset=True)
        floor_result = floor.run(
            floor_aws["dynamodb"], floor_aws["sqs"], floor_aws["s3"], resources,
            config.jobs, config.clients, processors, timeout, out,
        )  # fmt: skip
        floor_counts = counting.RequestCounts.from_rows(counting.fetch(endpoint, reset=True))
        figures["floor"] = floor_result.figures()
        figures["floor"]["requests"] = floor_counts.by_category.get("floor", {})
        out(f"  floor: {figures['floor']['jobs_per_s']} jobs/s, create p50 {figures['floor']['create_p50_ms']} ms")

        # ---- stack ----------------------------------------------------------------------
        out(f"stack: warm-up, one job per client ({config.clients}) ...")
        warm = load.run(stack.api_url, ddb, table, clients, len(clients), timeout, out, prefix="warmup")
        if warm.timed_out or len(warm.accepted) < len(clients):
            notes.append(f"warm-up incomplete: {len(warm.accepted)} accepted, timed out: {warm.timed_out}")
        out(f"stack: {config.jobs} jobs from {config.clients} clients through {stack.api_url} ...")
        counting.fetch(endpoint, reset=True)
        tap.reset()
        stack_result = load.run(stack.api_url, ddb, table, clients, config.jobs, timeout, out)
        time.sleep(2.0)  # let the poller delete the last batch and the runtime report it
        stack_counts = counting.RequestCounts.from_rows(counting.fetch(endpoint, reset=True))
        stack_figures = stack_result.figures()
        stack_figures["jobs_per_s_vs_floor"] = ratio(stack_figures["jobs_per_s"], figures["floor"]["jobs_per_s"])
        stack_figures["post_p50_vs_floor_create_p50"] = ratio(
            stack_figures["post_latency"]["p50_ms"], figures["floor"]["create_p50_ms"]
        )
        for label, cfg in functions.items():
            durations = [ms / 1000 for fn, ms, _b, _m in tap.reports if fn == cfg["FunctionName"]]
            stack_figures[f"{label}_invocation_duration"] = summary_ms(durations)
        figures["stack"] = stack_figures
        out(
            f"  stack: {stack_figures['jobs_per_s']} jobs/s ({stack_figures['jobs_per_s_vs_floor']}x floor), "
            f"POST p50 {stack_figures['post_latency']['p50_ms']} ms"
        )
        cost = cost_figures(stack_counts, tap, stack_result, functions)
        figures["cost"] = {
            "aws_requests_per_job": cost["aws_requests_per_job"],
            "usd_per_million_jobs": cost["estimate"]["usd_per_million_jobs"],
            "lambda_gb_s_per_job": cost["lambda_gb_s_per_job"],
            "log_bytes_per_job": cost["log_bytes_per_job"],
        }

        # ---- scheduling ---------------------------------------------------------------------
        if config.schedule_jobs > 0:
            env = (functions["api"].get("Environment") or {}).get("Variables") or {}
            threshold = int(env.get("SCHEDULE_DELAY_THRESHOLD_SECONDS", "900"))
            out(f"scheduling: {config.schedule_jobs} scheduled jobs, run_at -> startedAt ...")
            figures["scheduling"] = scheduling.measure(stack.api_url, clients, threshold, config.schedule_jobs, out)
            if figures["scheduling"]["path"] == "sqs_delay":
                notes.append(
                    "scheduling measured the SQS-delay path (threshold "
                    f"{threshold} s); --var schedule_delay_threshold_seconds=2 measures EventBridge Scheduler schedules"
                )
        # ---- webhooks (README "Webhooks") -----------------------------------------------------
        if config.webhook_jobs > 0 and "event_bus_name" in outputs:
            out(f"webhooks: {config.webhook_jobs} jobs with a callback URL, status change -> webhook received ...")
            figures["webhooks"] = webhooks.measure(stack.api_url, clients, config.webhook_jobs, aws, outputs, out)
            figures["webhooks"]["cost_first_attempt"] = prices.webhook_estimate(attempts=1)
            figures["webhooks"]["cost_fourth_attempt"] = prices.webhook_estimate(attempts=4)
        # ---- flow control -----------------------------------------------------------------
        if not config.skip_flow:
            figures["flow"] = _flow(stack, aws, table, functions["api"], config, tap, out)

        # ---- listing ----------------------------------------------------------------------
        if not config.skip_listing:
            figures["listing"] = _listing(stack, aws, table, clients, config, out, notes)

        series = {
            "stack POST": [(p.started - stack_result.first_post, p.latency_s * 1000) for p in stack_result.posts],
            "floor create": [
                (s - floor_result.first_create, lat * 1000)
                for s, lat in zip(floor_result.create_started, floor_result.create_latency_s, strict=True)
            ],
            "floor submit-to-complete": [
                (created - floor_result.first_create, seconds * 1000)
                for created, seconds in floor_result.complete_points
            ],
            "stack submit-to-complete": [
                (records.parse_iso(r["createdAt"]).timestamp() - stack_result.first_post, d * 1000)
                for r, d in zip(
                    [r for r in stack_result.records if r.get("status") == "COMPLETE" and r.get("completedAt")],
                    stack_result.submit_to_complete_s(),
                    strict=True,
                )
            ],
        }
    except BaseException:
        out("the bench failed; the runtime's last console lines:")
        for line in tap.tail:
            out(f"  {line}")
        raise
    finally:
        stack.stop()

    values: dict[str, float | None] = {
        "stack_vs_floor_jobs_per_s": figures["stack"]["jobs_per_s_vs_floor"],
        "post_p50_vs_floor_create_p50": figures["stack"]["post_p50_vs_floor_create_p50"],
        "listing_ratio": (figures.get("listing") or {}).get("ratio_get_jobs_p50"),
        "cold_start_api_vs_boto3": figures["cold_start"]["functions"]["api"]["ratio_traced_vs_boto3"],
        "cold_start_worker_vs_boto3": figures["cold_start"]["functions"]["worker"]["ratio_traced_vs_boto3"],
        "zip_api_bytes": figures["cold_start"]["functions"]["api"]["zip_bytes"],
        "zip_worker_bytes": figures["cold_start"]["functions"]["worker"]["zip_bytes"],
        "aws_requests_per_job": cost.get("aws_requests_per_job"),
        "schedule_start_max_ms": ((figures.get("scheduling") or {}).get("run_at_to_started") or {}).get("max_ms"),
        "fairness_b_median_vs_a_drain": ((figures.get("flow") or {}).get("fairness") or {}).get("b_median_vs_a_drain"),
        "high_backlog_vs_idle": ((figures.get("flow") or {}).get("priorities") or {}).get("high_backlog_vs_idle"),
    }
    results: dict[str, Any] = {
        "started_at": started_at,
        "duration_s": round(time.monotonic() - began, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, moto",
        "command": config.command,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "variables": dict(config.variables),
        "targets": report.evaluate(values),
        "figures": figures,
        "cost": cost,
        "notes": notes + _standing_notes(figures),
    }
    paths = report.write(results, config.out_dir)
    png = report.plot(series, config.out_dir / "latency.png")
    results["files"] = {k: str(v) for k, v in paths.items()} | ({"png": str(png)} if png else {})
    report.write(results, config.out_dir)
    _print_summary(results, out)
    return results


def _flow(
    stack: Any,
    aws: dict[str, Any],
    table: str,
    api_config: dict[str, Any],
    config: BenchConfig,
    tap: ConsoleTap,
    out: Out,
) -> dict[str, Any]:
    """Fairness and priorities (tooling/bench/flow.py) with users of their own."""
    timeout = 300.0 + config.fair_a_jobs + config.priority_backlog

    def user(group: str | None = None) -> flow.User:
        username, password = stack.create_user()
        if group:
            cognito, pool = aws["cognito-idp"], stack.outputs["user_pool_id"]
            with contextlib.suppress(cognito.exceptions.GroupExistsException):
                cognito.create_group(GroupName=group, UserPoolId=pool)
            cognito.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=group)
        token = stack.id_token(username, password)
        return flow.User(token, load.token_sub(token))

    ddb = aws["dynamodb"]
    figures: dict[str, Any] = {}
    mapping = stack.outputs["event_source_mapping_uuid"]  # the normal queue's, paused while A submits
    figures["fairness"] = flow.fairness(
        stack.api_url, ddb, aws["lambda"], table, mapping, stack.outputs["queue_url"], tap, user(), user(),
        config.fair_a_jobs, config.fair_b_jobs, timeout, out,
    )  # fmt: skip
    group = ((api_config.get("Environment") or {}).get("Variables") or {}).get("HIGH_PRIORITY_GROUP")
    if not group:
        out("priorities: skipped, the stack names no high_priority_group")
        return figures
    figures["priorities"] = flow.priorities(
        stack.api_url, ddb, table, user(group), user(), config.priority_backlog, timeout, out
    )
    return figures


def _listing(
    stack: local_stack.LocalStack,
    aws: dict[str, Any],
    table: str,
    clients: list[load.Client],
    config: BenchConfig,
    out: Out,
    notes: list[str],
) -> dict[str, Any]:
    ddb = aws["dynamodb"]
    deleted = _delete_owner_jobs(ddb, table, [c.sub for c in clients])
    out(f"listing: deleted the stack run's {deleted} jobs; a user with {listing.JOBS_PER_OWNER} jobs ...")
    username, password = stack.create_user()
    token = stack.id_token(username, password)
    owner = load.token_sub(token)
    mine = list(listing.owner_items(owner, listing.JOBS_PER_OWNER, "mine"))
    for i in range(0, len(mine), listing.BATCH):
        listing.batch_write(ddb, table, mine[i : i + listing.BATCH])
    baseline_items = listing.count_items(ddb, table)
    empty = listing.measure(stack.api_url, token, ddb, table, owner, config.listing_samples)
    out(f"  0 other jobs: GET /jobs p50 {empty['get_jobs']['p50_ms']} ms (raw Query {empty['raw_query']['p50_ms']} ms)")
    out(f"listing: seeding {config.listing_items:,} other users' jobs with BatchWriteItem ...")
    seeded = listing.seed_others(ddb, table, config.listing_items, config.seed_budget_s, out=out)
    big = listing.measure(stack.api_url, token, ddb, table, owner, config.listing_samples)
    out(
        f"  {seeded['seeded_items']:,} other jobs: GET /jobs p50 {big['get_jobs']['p50_ms']} ms "
        f"(raw Query {big['raw_query']['p50_ms']} ms)"
    )
    if seeded["stopped_at_budget"]:
        notes.append(
            f"listing: seeding stopped at the {config.seed_budget_s:.0f}s budget with {seeded['seeded_items']:,} of "
            f"{config.listing_items:,} items; the ratio is for that count"
        )
    return {
        "user_jobs": listing.JOBS_PER_OWNER,
        "items_in_table_baseline": baseline_items,
        "other_jobs": seeded["seeded_items"],
        "seeding": seeded,
        "empty": empty,
        "big": big,
        "ratio_get_jobs_p50": ratio(big["get_jobs"]["p50_ms"], empty["get_jobs"]["p50_ms"]),
        "ratio_raw_query_p50": ratio(big["raw_query"]["p50_ms"], empty["raw_query"]["p50_ms"]),
    }


def _standing_notes(figures: dict[str, Any]) -> list[str]:
    notes = [
        "jobs/s of the stack: accepted jobs COMPLETE / (largest completedAt of their records - first POST "
        "start); the bench polls a COUNT Query per client on the status index once a second only to know when "
        "to stop (its requests are not counted as cost)",
        "the floor runs on a copy of the deployed table (same keys and index), a queue with the same settings "
        "and its own bucket, on the same backend, before the stack run",
        "all figures come from one run on one backend on a shared 2-core machine: absolute numbers are noisy, "
        "ratios within the run are what counts",
    ]
    stack = figures.get("stack") or {}
    reserved = (figures.get("settings") or {}).get("api_reserved_concurrency")
    api_limit = reserved if isinstance(reserved, int) else PoolSettings.default_concurrency
    if stack.get("clients", 0) > api_limit:
        notes.append(
            f"POST latency: the local runtime runs at most {api_limit} execution environments of the api function "
            f"(its reserved concurrency, else LocalRuntime default_concurrency), so the {stack['clients']} clients "
            "share them and a POST may wait for one; the floor's creators never wait (compare "
            "stack.api_invocation_duration, the time inside the function)"
        )
    per_job = ((figures.get("cost") or {}).get("aws_requests_per_job")) or 0
    if per_job > 6:
        notes.append(
            "AWS requests per job: 1 API call + 3 DynamoDB writes (create, conditional claim, complete) + 1 "
            "SendMessage + 1 PutObject = 6 before the event source mapping's receive/delete share (at least 0.2 with "
            "batches of 10); the claim is what keeps a duplicate delivery from running a job twice"
        )
    listing_figs = figures.get("listing")
    if listing_figs and listing_figs.get("ratio_raw_query_p50", 0) > 1.5:
        notes.append(
            "listing: the raw boto3 Query slows down as much as GET /jobs: moto's Query reads every item of the "
            "table (moto/dynamodb/models/table.py Table.query loops over all_items()), so the ratio measures the "
            "backend, not the design; on DynamoDB a Query reads only the caller's partition"
        )
    return notes


def _print_summary(results: dict[str, Any], out: Out) -> None:
    out("")
    out(f"bench finished in {results['duration_s']:.0f}s ({results['command']})")
    for row in results["targets"].values():
        value = row["value"]
        shown = "n/a" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:.3g}"
        out(f"  {row['label']:<45} {shown:>12}  goal {row['target']:<18} {row['verdict']}")
    cost = results.get("cost") or {}
    if cost.get("estimate"):
        out(f"  estimated cost: ${cost['estimate']['usd_per_million_jobs']:,.2f} per million jobs (us-east-1)")
    for kind, path in (results.get("files") or {}).items():
        out(f"  {kind}: {path}")
