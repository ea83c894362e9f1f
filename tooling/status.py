"""`invoke status`: how the deployed stack is doing, in one screen.

What it reads (all read-only):

- **Queues**: ``GetQueueAttributes`` on each priority's jobs queue (``queue_urls``: high, normal,
  low; ``queue_url`` alone on a stack from before priorities), the DLQ, and, on a stack with
  events and webhooks, the publisher's failures queue (``publisher_failures_queue_url``: stream
  batches given up on) and the webhooks DLQ (``webhook_dlq_url``): visible, in flight, delayed.
  The age of the oldest message is the CloudWatch metric
  ``AWS/SQS ApproximateAgeOfOldestMessage`` (maximum over the last 15 minutes): SQS has no
  API that tells it without receiving, and receiving would change what it measures.
- **Functions**: ``GetFunction`` for each Lambda (state, last update status and time,
  code hash) and the worker's event source mapping state.
- **Jobs by status over a recent window** (default 24 h): a *bounded, paginated Scan* of the
  jobs table projected to three attributes, counted by status client-side. This is an
  operator task, never a request path: the Scan is capped (default 10,000 items read; the
  report says when the cap was hit and the counts are partial), and the table stays small
  because records expire through TTL after ``job_retention_days``. The time of a job is
  the timestamp inside its UUIDv7 ``job_id`` (``createdAt`` when the id is not a UUIDv7).
  Idempotency records (owner ``<sub>#idempotency``) are left out.
- **Alarms**: ``DescribeAlarms``, keeping the alarms whose dimensions name one of this
  stack's queues (those above), functions (api, worker, and the publisher and notifier when the
  stack has them), table or API, or whose name starts with the stack's name
  prefix (the ``name_prefix`` output, else what its two function names share, e.g. ``jobs-dev-``).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tooling.errors import OperatorError

STATUSES = ("PENDING", "PROCESSING", "COMPLETE", "FAILED", "CANCELLED")
# Queues where a message means something an operator must act on: label -> what the row warns.
ATTENTION = {
    "dlq": "messages in the DLQ",
    "publisher-failures": "stream batches not published: events missing",
    "webhooks-dlq": "webhook deliveries that gave up",
}
# Optional queues (a stack deployed before events/webhooks has none): label -> output with the URL.
OPTIONAL_QUEUES = {"publisher-failures": "publisher_failures_queue_url", "webhooks-dlq": "webhook_dlq_url"}
# Optional functions whose alarms are the stack's too: output with the name.
OPTIONAL_FUNCTIONS = ("publisher_function_name", "notifier_function_name")
DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_SCAN_CAP = 10_000
_PAGE = 1_000


@dataclass
class QueueStatus:
    label: str
    url: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: float | None  # None: no metric data (idle queue, or the embedded backend)


@dataclass
class FunctionStatus:
    label: str
    name: str
    state: str
    last_update_status: str
    last_modified: str
    code_sha256: str
    runtime: str
    event_source_states: list[str] = field(default_factory=list)


@dataclass
class JobCounts:
    window: timedelta
    counts: dict[str, int]
    items_read: int
    truncated: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class AlarmStatus:
    name: str
    state: str
    reason: str


@dataclass
class StatusReport:
    env: str
    queues: list[QueueStatus]
    functions: list[FunctionStatus]
    jobs: JobCounts | None
    alarms: list[AlarmStatus]


def require_output(outputs: dict[str, Any], key: str) -> str:
    """A string output of the deployed stack; an OperatorError saying to deploy when it is missing."""
    value = outputs.get(key)
    if not isinstance(value, str) or not value:
        raise OperatorError(
            f"the stack has no output {key!r}",
            "deploy the environment first (invoke deploy --env <env>)",
        )
    return value


def _named(outputs: dict[str, Any], key: str) -> bool:
    """The stack has a (non-empty string) output ``key``: optional ones are absent on older stacks."""
    return isinstance(outputs.get(key), str) and bool(outputs[key])


# ----------------------------------------------------------------------------- queues


def oldest_message_age(cloudwatch: Any, queue_name: str, now: datetime | None = None) -> float | None:
    now = now or datetime.now(UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_name}],
        StartTime=now - timedelta(minutes=15),
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None


def queue_status(sqs: Any, cloudwatch: Any, label: str, url: str) -> QueueStatus:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return QueueStatus(
        label=label,
        url=url,
        visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        oldest_age_seconds=oldest_message_age(cloudwatch, url.rstrip("/").rsplit("/", 1)[-1]),
    )


# ----------------------------------------------------------------------------- functions


def function_status(lambda_client: Any, label: str, name: str) -> FunctionStatus:
    config = lambda_client.get_function(FunctionName=name)["Configuration"]
    # by name, then by ARN: the embedded backend matches a mapping only by the form it was made
    # with (AWS takes either)
    mappings: dict[str, dict[str, Any]] = {}
    for target in dict.fromkeys([name, str(config.get("FunctionArn") or name)]):
        for mapping in lambda_client.list_event_source_mappings(FunctionName=target).get("EventSourceMappings", []):
            mappings.setdefault(str(mapping.get("UUID")), mapping)
    return FunctionStatus(
        label=label,
        name=name,
        state=str(config.get("State", "Active")),
        last_update_status=str(config.get("LastUpdateStatus", "Successful")),
        last_modified=str(config.get("LastModified", "?")),
        code_sha256=str(config.get("CodeSha256", "?")),
        runtime=str(config.get("Runtime", "?")),
        event_source_states=[
            f"{m.get('EventSourceArn', '?').rsplit(':', 1)[-1]}: {m.get('State', '?')}" for m in mappings.values()
        ],
    )


# ----------------------------------------------------------------------------- jobs


def job_time(item: dict[str, Any]) -> datetime | None:
    """When a job was created: from its UUIDv7 id, else its createdAt attribute."""
    job_id = item.get("job_id")
    if isinstance(job_id, str):
        try:
            parsed = uuid.UUID(job_id)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.version == 7:
            return datetime.fromtimestamp((parsed.int >> 80) / 1000, UTC)
    created = item.get("createdAt")
    if isinstance(created, str) and created:
        try:
            value = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(created, int | float):
        return datetime.fromtimestamp(float(created), UTC)
    return None


def job_counts(
    dynamodb: Any,
    table_name: str,
    window: timedelta = DEFAULT_WINDOW,
    cap: int = DEFAULT_SCAN_CAP,
    now: datetime | None = None,
) -> JobCounts:
    """Count jobs by status created within ``window``: a bounded, paginated Scan (see module doc)."""
    now = now or datetime.now(UTC)
    since = now - window
    counts = dict.fromkeys(STATUSES, 0)
    read = 0
    start_key: dict[str, Any] | None = None
    truncated = False
    while True:  # bounded: every page reads >= 1 item or ends the table, and `cap` ends the loop
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "ProjectionExpression": "#o, job_id, #s, createdAt",
            "FilterExpression": "attribute_exists(#s) AND NOT contains(#o, :idem)",
            "ExpressionAttributeNames": {"#s": "status", "#o": "owner_id"},
            "ExpressionAttributeValues": {":idem": {"S": "#idempotency"}},
            "Limit": min(_PAGE, cap - read),
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        page = dynamodb.scan(**kwargs)
        read += int(page.get("ScannedCount", 0))
        for raw in page.get("Items", []):
            item = {key: next(iter(value.values())) for key, value in raw.items()}
            created = job_time(item)
            if created is not None and created < since:
                continue
            status = str(item.get("status", "?"))
            counts[status] = counts.get(status, 0) + 1
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            break
        if read >= cap:
            truncated = True
            break
    return JobCounts(window=window, counts=counts, items_read=read, truncated=truncated)


# ----------------------------------------------------------------------------- alarms


def stack_alarms(cloudwatch: Any, names: set[str], prefixes: tuple[str, ...] = ()) -> list[AlarmStatus]:
    found: list[AlarmStatus] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            dims = {d.get("Value") for d in alarm.get("Dimensions", [])}
            for metric in alarm.get("Metrics", []) or []:
                stat = metric.get("MetricStat", {}).get("Metric", {})
                dims |= {d.get("Value") for d in stat.get("Dimensions", [])}
            name = alarm["AlarmName"]
            if dims & names or (prefixes and name.startswith(prefixes)):
                found.append(AlarmStatus(name, alarm.get("StateValue", "?"), alarm.get("StateReason", "").strip()))
    return sorted(found, key=lambda a: (a.state != "ALARM", a.name))


# ----------------------------------------------------------------------------- report


def collect(
    clients: Any,
    outputs: dict[str, Any],
    env: str,
    window: timedelta = DEFAULT_WINDOW,
    scan_cap: int = DEFAULT_SCAN_CAP,
    alarm_prefix: str | None = None,
) -> StatusReport:
    """Gather the status. ``clients`` has ``client(service)`` (an AwsAccess)."""
    sqs, cloudwatch = clients.client("sqs"), clients.client("cloudwatch")
    lam, ddb = clients.client("lambda"), clients.client("dynamodb")
    queue_url, dlq_url = require_output(outputs, "queue_url"), require_output(outputs, "dlq_url")
    api_fn, worker_fn = require_output(outputs, "api_function_name"), require_output(outputs, "worker_function_name")
    table = require_output(outputs, "table_name")
    # one queue per priority (a stack deployed before priorities has only queue_url: "jobs")
    urls = outputs.get("queue_urls")
    by_priority = (
        {f"jobs-{p}": urls[p] for p in ("high", "normal", "low") if isinstance(urls.get(p), str)}
        if isinstance(urls, dict)
        else {}
    )
    job_queues = by_priority or {"jobs": queue_url}
    queues = [queue_status(sqs, cloudwatch, label, url) for label, url in job_queues.items()]
    queues.append(queue_status(sqs, cloudwatch, "dlq", dlq_url))
    extra_queues = {label: outputs[key] for label, key in OPTIONAL_QUEUES.items() if _named(outputs, key)}
    queues += [queue_status(sqs, cloudwatch, label, url) for label, url in extra_queues.items()]
    functions = [function_status(lam, "api", api_fn), function_status(lam, "worker", worker_fn)]
    jobs = job_counts(ddb, table, window, scan_cap)
    urls_shown = (*job_queues.values(), dlq_url, *extra_queues.values())
    names = {api_fn, worker_fn, table, *(u.rstrip("/").rsplit("/", 1)[-1] for u in urls_shown)}
    names |= {outputs[key] for key in OPTIONAL_FUNCTIONS if _named(outputs, key)}
    for key in ("rest_api_id", "api_name", "stage_name"):
        if isinstance(outputs.get(key), str):
            names.add(outputs[key])
    if alarm_prefix is None and isinstance(outputs.get("name_prefix"), str) and outputs["name_prefix"]:
        alarm_prefix = f"{outputs['name_prefix']}-"
    if alarm_prefix is None:
        # else the stack's name prefix is what its function names share (e.g. "jobs-dev-")
        shared = os.path.commonprefix([api_fn, worker_fn])  # noqa: RUF071 - a string prefix on purpose
        alarm_prefix = shared if len(shared) >= 3 and shared.endswith(("-", "_")) else None
    prefixes = (alarm_prefix,) if alarm_prefix else ()
    alarms = stack_alarms(cloudwatch, names, prefixes)
    return StatusReport(env=env, queues=queues, functions=functions, jobs=jobs, alarms=alarms)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "no data"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _window(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g}h" if hours >= 1 else f"{delta.total_seconds() / 60:g}m"


def render(report: StatusReport) -> str:
    width = max([12, *(len(q.label) for q in report.queues)])
    lines = [f"status of env {report.env!r}", "", f"{'queues':<{width + 4}}visible  in-flight  delayed  oldest"]
    for q in report.queues:
        warn = f"  <- {ATTENTION[q.label]}" if q.label in ATTENTION and (q.visible or q.in_flight) else ""
        age = _age(q.oldest_age_seconds)
        lines.append(f"  {q.label:<{width}} {q.visible:>7}  {q.in_flight:>9}  {q.delayed:>7}  {age}{warn}")
    lines += ["", "functions"]
    for f in report.functions:
        lines.append(
            f"  {f.label:<7} {f.name}  state={f.state} last-update={f.last_update_status} "
            f"at {f.last_modified}  {f.runtime}  sha256={f.code_sha256[:12]}"
        )
        for esm in f.event_source_states:
            lines.append(f"          event source {esm}")
    if report.jobs is not None:
        j = report.jobs
        partial = f" (partial: scan cap reached after {j.items_read} items)" if j.truncated else ""
        lines += ["", f"jobs created in the last {_window(j.window)}: {j.total}{partial}"]
        lines.append("  " + "  ".join(f"{status}={count}" for status, count in j.counts.items()))
    lines += ["", "alarms"]
    if not report.alarms:
        lines.append("  (none found for this stack)")
    for a in report.alarms:
        lines.append(f"  {a.state:<17} {a.name}" + (f"  ({a.reason[:100]})" if a.state == "ALARM" else ""))
    return "\n".join(lines)
