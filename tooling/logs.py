"""`invoke logs`: read (and follow) a function's CloudWatch log group.

Uses ``FilterLogEvents`` over the whole group (all streams, interleaved by time). ``--since``
takes ``30s``, ``10m``, ``2h``, ``1d`` or an ISO-8601 time; ``--filter TEXT`` keeps events
containing TEXT (sent as a quoted CloudWatch filter pattern, so spaces and punctuation are
literal). ``--follow`` polls every couple of seconds until Ctrl-C, never printing an event
twice. Structured (JSON) Powertools lines are shown as ``LEVEL message  key=value``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tooling.errors import OperatorError

FUNCTIONS = {
    "api": "api_log_group",
    "worker": "worker_log_group",
    "publisher": "publisher_log_group",
    "notifier": "notifier_log_group",
}
_SINCE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class LogEvent:
    timestamp_ms: int
    stream: str
    message: str
    event_id: str

    def render(self) -> str:
        when = datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return f"{when} {short_stream(self.stream)} {pretty_message(self.message)}"


def short_stream(stream: str) -> str:
    """Lambda streams are `YYYY/MM/DD/[$LATEST]<hex>`: keep a short instance tag."""
    tail = stream.rsplit("]", 1)[-1] or stream
    return f"[{tail[:8]}]"


def pretty_message(message: str) -> str:
    text = message.rstrip("\n")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if isinstance(data, dict) and "message" in data:
            level = data.get("level", "")
            extras = [
                f"{k}={data[k]}"
                for k in ("correlation_id", "job_id", "function_request_id", "xray_trace_id")
                if data.get(k)
            ]
            msg = data["message"] if isinstance(data["message"], str) else json.dumps(data["message"])
            return " ".join(part for part in (str(level), msg, "  ".join(extras)) if part)
    return text


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`10m` -> ten minutes ago; an ISO-8601 time -> that time (UTC if no zone)."""
    now = now or datetime.now(UTC)
    match = _SINCE.match(text)
    if match:
        amount, unit = match.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise OperatorError(
            f"cannot read --since {text!r}",
            "use a duration like 30s, 10m, 2h, 1d, or an ISO time like 2025-07-14T12:00:00Z",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def log_group_for(outputs: dict[str, Any], function: str) -> str:
    if function not in FUNCTIONS:
        raise OperatorError(f"unknown function {function!r}", f"use one of: {', '.join(FUNCTIONS)}")
    group = outputs.get(FUNCTIONS[function])
    if not isinstance(group, str) or not group:
        raise OperatorError(
            f"the stack has no output {FUNCTIONS[function]!r}", "deploy the environment first (invoke deploy)"
        )
    return group


def filter_pattern(text: str | None) -> str | None:
    if not text:
        return None
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fetch(
    logs: Any,
    group: str,
    start: datetime,
    end: datetime | None = None,
    filter_text: str | None = None,
    limit: int | None = None,
) -> Iterator[LogEvent]:
    """Events of ``group`` from ``start`` (to ``end``) in time order, all pages."""
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": int(start.timestamp() * 1000)}
    if end is not None:
        kwargs["endTime"] = int(end.timestamp() * 1000)
    pattern = filter_pattern(filter_text)
    if pattern:
        kwargs["filterPattern"] = pattern
    try:
        pages = logs.get_paginator("filter_log_events").paginate(**kwargs)
        events: list[LogEvent] = []
        for page in pages:
            for e in page.get("events", []):
                events.append(
                    LogEvent(
                        int(e["timestamp"]),
                        e.get("logStreamName", ""),
                        e.get("message", ""),
                        e.get("eventId", ""),
                    )
                )
    except logs.exceptions.ResourceNotFoundException:
        raise OperatorError(
            f"log group {group} does not exist", "deploy the environment, or invoke the function once"
        ) from None
    events.sort(key=lambda ev: (ev.timestamp_ms, ev.event_id))
    # filter patterns are matched by the service; keep a literal check too (cheap, and exact)
    if filter_text:
        events = [ev for ev in events if filter_text in ev.message]
    yield from events[:limit] if limit is not None else events


def follow(
    logs: Any,
    group: str,
    start: datetime,
    emit: Callable[[LogEvent], None],
    filter_text: str | None = None,
    poll_seconds: float = 2.0,
    max_polls: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print events as they arrive until Ctrl-C (or ``max_polls`` polls). Returns events emitted."""
    seen: dict[str, int] = {}  # event key -> timestamp; pruned as the cursor moves on
    cursor = start
    emitted = 0
    polls = 0
    while max_polls is None or polls < max_polls:
        polls += 1
        newest = cursor
        for event in fetch(logs, group, cursor, filter_text=filter_text):
            key = event.event_id or f"{event.timestamp_ms}:{event.stream}:{event.message}"
            if key in seen:
                continue
            seen[key] = event.timestamp_ms
            emit(event)
            emitted += 1
            newest = max(newest, datetime.fromtimestamp(event.timestamp_ms / 1000, UTC))
        # re-read the last millisecond next time (events can share it); `seen` drops repeats
        cursor = newest
        floor = int(cursor.timestamp() * 1000)
        seen = {key: ts for key, ts in seen.items() if ts >= floor}
        if max_polls is None or polls < max_polls:
            sleep(poll_seconds)
    return emitted
