"""Scheduled jobs: when a job is due, and how its message gets to the queue then (pure: no I/O).

A POST may name a due time, as ``run_at`` (RFC 3339 in UTC) or ``delay_seconds`` (from now),
never both. The job is then SCHEDULED until it is due. A due time up to
``delay_threshold_seconds`` away (900 s, SQS's maximum ``DelaySeconds``) is reached by
sending the message with ``DelaySeconds``; a later one by an EventBridge Scheduler one-time
schedule that sends the job's message at the due time (``schedule_name`` of the job).

``delay_seconds`` 0 means "now": the job is an ordinary PENDING job, as if the field were
absent (SQS's meaning of ``DelaySeconds`` 0). Any other due time must be at least
``MIN_LEAD_SECONDS`` ahead and at most ``max_schedule_days`` ahead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobs.errors import ValidationError

MIN_LEAD_SECONDS = 1
SQS_MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds limit (15 minutes)
DEFAULT_MAX_SCHEDULE_DAYS = 30
MAX_SCHEDULE_DAYS_LIMIT = 365
SCHEDULE_NAME_PREFIX = "job-"
FIELDS = ("run_at", "delay_seconds")

# RFC 3339 date-time, UTC only: "Z" (either case) or a zero offset; seconds required,
# fractions optional (kept to the millisecond).
_RFC3339_UTC = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?P<fraction>\.\d{1,9})?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)


@dataclass(frozen=True)
class ScheduleRequest:
    """A validated due time: when (UTC), and the field as the client gave it (for fingerprints)."""

    due: datetime
    given: str  # "run_at=<ISO Z>" or "delay_seconds=<n>"


def parse_run_at(raw: object) -> datetime:
    """``run_at`` as an aware UTC datetime, or a 400 saying what is accepted."""
    if not isinstance(raw, str):
        raise ValidationError(f"field run_at must be a string, got {type(raw).__name__}", "invalid_run_at")
    match = _RFC3339_UTC.fullmatch(raw.strip())
    if match is None:
        raise ValidationError(
            f"run_at {raw[:64]!r} is not an RFC 3339 date-time in UTC, e.g. 2025-07-14T12:00:00Z",
            "invalid_run_at",
        )
    offset = match["offset"]
    if offset not in ("Z", "z", "+00:00", "-00:00"):
        raise ValidationError(f"run_at must be in UTC (ending in Z or +00:00), got offset {offset}", "invalid_run_at")
    fraction = (match["fraction"] or ".0")[1:7].ljust(6, "0")
    try:
        value = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}+00:00")
    except ValueError:
        raise ValidationError(f"run_at {raw[:64]!r} is not a valid date and time", "invalid_run_at") from None
    return value.astimezone(UTC)


def parse_delay_seconds(raw: object) -> int:
    """``delay_seconds``: a whole number of seconds, 0 or more, or a 400."""
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ValidationError(
            f"field delay_seconds must be a whole number of seconds, got {type(raw).__name__}",
            "invalid_delay_seconds",
        )
    if raw < 0:
        raise ValidationError(f"delay_seconds must be 0 or more, got {raw}", "invalid_delay_seconds")
    return raw


def schedule_from(data: dict[str, Any], now: datetime, max_schedule_days: int) -> ScheduleRequest | None:
    """The due time a POST body asks for, None for "now", or a 400 (nothing written)."""
    given = [f for f in FIELDS if f in data]
    if len(given) > 1:
        raise ValidationError("give either run_at or delay_seconds, not both", "conflicting_schedule")
    if not given:
        return None
    horizon = timedelta(days=max_schedule_days)
    allowed = (
        f"a job may be scheduled from {MIN_LEAD_SECONDS} s to {max_schedule_days} days "
        f"({int(horizon.total_seconds())} s) ahead"
    )
    if given[0] == "delay_seconds":
        delay = parse_delay_seconds(data["delay_seconds"])
        if delay == 0:
            return None
        if delay > horizon.total_seconds():
            raise ValidationError(f"delay_seconds {delay} is too far ahead: {allowed}", "schedule_out_of_range")
        return ScheduleRequest(now + timedelta(seconds=delay), f"delay_seconds={delay}")
    due = parse_run_at(data["run_at"])
    lead = (due - now).total_seconds()
    if lead < MIN_LEAD_SECONDS:
        raise ValidationError(
            f"run_at {iso_z(due)} is not in the future (now is {iso_z(now)}): {allowed}", "schedule_out_of_range"
        )
    if due - now > horizon:
        raise ValidationError(f"run_at {iso_z(due)} is too far ahead: {allowed}", "schedule_out_of_range")
    return ScheduleRequest(due, f"run_at={iso_z(due)}")


def iso_z(ts: datetime) -> str:
    """ISO-8601 UTC with a Z and milliseconds (as every timestamp of a job record)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def needs_schedule(due: datetime, now: datetime, delay_threshold_seconds: int) -> bool:
    """Whether the due time is beyond what an SQS message delay reaches."""
    return (due - now).total_seconds() > delay_threshold_seconds


def delay_seconds(due: datetime, now: datetime) -> int:
    """The ``DelaySeconds`` that makes a message sent ``now`` visible no earlier than ``due``."""
    return max(0, min(SQS_MAX_DELAY_SECONDS, math.ceil((due - now).total_seconds())))


def schedule_name(job_id: str) -> str:
    """The one-time schedule of a job (1-64 of [0-9A-Za-z-_.]: 40 here)."""
    return f"{SCHEDULE_NAME_PREFIX}{job_id}"


def at_expression(due: datetime) -> str:
    """EventBridge Scheduler's one-time expression (whole seconds, UTC), never before ``due``."""
    whole = due.astimezone(UTC).replace(microsecond=0)
    if whole < due:
        whole += timedelta(seconds=1)
    return f"at({whole.strftime('%Y-%m-%dT%H:%M:%S')})"
