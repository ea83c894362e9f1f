"""The job record, its states and the rules for input, ids and page tokens (pure: no I/O)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from jobs.callbacks import parse_callback_url
from jobs.errors import InvalidBatch, ValidationError
from jobs.formats import DEFAULT_FORMAT, ResultFormat
from jobs.scheduling import DEFAULT_MAX_SCHEDULE_DAYS, ScheduleRequest, schedule_from

NAME_MAX_CHARS = 128
CONTEXT_MAX_BYTES = 64 * 1024  # context1 + context2, UTF-8 encoded
IDEMPOTENCY_KEY_MAX_CHARS = 128
LIMIT_DEFAULT = 50
LIMIT_MAX = 100
REQUIRED_FIELDS = ("name", "action", "context1", "context2")
OPTIONAL_FIELDS = ("format", "run_at", "delay_seconds", "priority", "callback_url")
BATCH_MAX_JOBS = 100
# What GET /job shows of a job's webhook delivery state (the rest is the notifier's bookkeeping).
WEBHOOK_VIEW_FIELDS = ("state", "attempts", "lastAttemptAt", "lastError", "deliveredAt")

# (action, context1, context2) -> None, or a ValidationError: what an action says of its inputs
InputCheck = Callable[[str, str, str], None]


class Status(StrEnum):
    SCHEDULED = "SCHEDULED"  # waiting for its due time (run_at / delay_seconds)
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (Status.COMPLETE, Status.FAILED, Status.CANCELLED)


class Priority(StrEnum):
    """Which queue a job waits in (README "Flow control", priorities): ``high`` only for members
    of the configured Cognito group."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


DEFAULT_PRIORITY = Priority.NORMAL


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """ISO-8601 in UTC with a Z and millisecond precision, e.g. 2025-07-14T12:00:00.000Z."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def new_job_id(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds then random bits, so ids sort by creation time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a (12 bits)
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)  # rand_b (62 bits)
    return str(uuid.UUID(int=value))


def parse_job_id(raw: str | None) -> str:
    """The canonical form of a job id from a request, or a 400."""
    if raw is None or raw == "":
        raise ValidationError("query parameter job_id is required", "missing_job_id")
    try:
        return str(uuid.UUID(raw))
    except (ValueError, AttributeError, TypeError):
        raise ValidationError(f"job_id must be a UUID, got {raw[:64]!r}", "invalid_job_id") from None


@dataclass(frozen=True)
class NewJob:
    """A validated POST /job body."""

    name: str
    action: str
    context1: str
    context2: str
    format: ResultFormat = DEFAULT_FORMAT
    schedule: ScheduleRequest | None = None  # a due time in the future: the job starts SCHEDULED
    priority: Priority = DEFAULT_PRIORITY
    # Where to POST the job's final status (README "Webhooks"); its form is checked here, where
    # it leads by the service (jobs.callbacks.check_callback_url), which resolves it.
    callback_url: str | None = None

    @classmethod
    def from_body(
        cls,
        body: str | None,
        action_formats: Mapping[str, Collection[ResultFormat]],
        now: datetime | None = None,
        max_schedule_days: int = DEFAULT_MAX_SCHEDULE_DAYS,
        check_inputs: InputCheck | None = None,
    ) -> NewJob:
        """Validate a body against the registered actions (name -> the formats it produces)."""
        return cls.from_data(parse_json_object(body), action_formats, now, max_schedule_days, check_inputs)

    @classmethod
    def from_data(
        cls,
        data: dict[str, Any],
        action_formats: Mapping[str, Collection[ResultFormat]],
        now: datetime | None = None,
        max_schedule_days: int = DEFAULT_MAX_SCHEDULE_DAYS,
        check_inputs: InputCheck | None = None,
    ) -> NewJob:
        """Validate one job's fields (a POST /job body, or one item of a batch).

        ``now``: the time a due time (``run_at``/``delay_seconds``) is checked against and
        counted from (the request's time; the clock if not given). ``check_inputs``: what the
        action says of its contexts (jobs.actions.check_inputs).
        """
        unknown = sorted(set(data) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
        if unknown:
            raise ValidationError(f"unknown field(s): {', '.join(unknown)}", "unknown_field")
        missing = [f for f in REQUIRED_FIELDS if f not in data]
        if missing:
            raise ValidationError(f"missing field(s): {', '.join(missing)}", "missing_field")
        for name in REQUIRED_FIELDS:
            value = data[name]
            if not isinstance(value, str):
                raise ValidationError(f"field {name} must be a string, got {type(value).__name__}", "invalid_field")
            if value.strip() == "":
                raise ValidationError(f"field {name} must not be empty", "empty_field")
        if len(data["name"]) > NAME_MAX_CHARS:
            raise ValidationError(
                f"field name is {len(data['name'])} characters; at most {NAME_MAX_CHARS} are allowed",
                "name_too_long",
            )
        try:
            size = len(data["context1"].encode()) + len(data["context2"].encode())
        except UnicodeEncodeError:
            raise ValidationError("context1 and context2 must be valid Unicode text", "invalid_field") from None
        if size > CONTEXT_MAX_BYTES:
            raise ValidationError(
                f"context1 + context2 are {size} bytes (UTF-8); at most {CONTEXT_MAX_BYTES} are allowed",
                "context_too_large",
            )
        if data["action"] not in action_formats:
            known = ", ".join(sorted(action_formats))
            raise ValidationError(f"unknown action {data['action'][:64]!r}; known actions: {known}", "unknown_action")
        result_format = parse_format(data["format"]) if "format" in data else DEFAULT_FORMAT
        produces = action_formats[data["action"]]
        if result_format not in produces:
            raise ValidationError(
                f"action {data['action']!r} cannot produce {result_format.value}; "
                f"it produces {', '.join(f.value for f in produces)}",
                "unsupported_format",
            )
        if check_inputs is not None:
            check_inputs(data["action"], data["context1"], data["context2"])
        schedule = schedule_from(data, now or utc_now(), max_schedule_days)
        priority = parse_priority(data["priority"]) if "priority" in data else DEFAULT_PRIORITY
        callback_url = parse_callback_url(data["callback_url"]) if "callback_url" in data else None
        return cls(
            data["name"],
            data["action"],
            data["context1"],
            data["context2"],
            result_format,
            schedule,
            priority,
            callback_url,
        )

    def fingerprint(self) -> str:
        """A digest of the request, to tell a replay from a different request under the same key.

        The default format and priority are left out, so a body that names ``text`` (or
        ``normal``) and one that does not are the same request, and keys recorded before
        formats or priorities existed keep their digests. So is an absent schedule: a scheduled
        request adds the field as given (``delay_seconds`` counts from each request, so a retry
        of it is the same request).
        """
        fields = [self.name, self.action, self.context1, self.context2]
        if self.format is not DEFAULT_FORMAT:
            fields.append(self.format.value)
        if self.schedule is not None:
            fields.append(self.schedule.given)
        if self.priority is not DEFAULT_PRIORITY:
            fields.append(f"priority={self.priority.value}")
        if self.callback_url is not None:
            fields.append(f"callback_url={self.callback_url}")
        canonical = json.dumps(fields, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_batch(
    body: str | None,
    action_formats: Mapping[str, Collection[ResultFormat]],
    now: datetime | None = None,
    max_schedule_days: int = DEFAULT_MAX_SCHEDULE_DAYS,
    check_inputs: InputCheck | None = None,
) -> list[NewJob]:
    """A POST /jobs/batch body, ``{"jobs": [job, ...]}`` with 1 to BATCH_MAX_JOBS jobs, each
    validated as a POST /job body (due times against ``now``, the request's time). Every item
    is checked before anything is refused, so one answer lists every invalid item
    (InvalidBatch)."""
    now = now or utc_now()
    data = parse_json_object(body)
    unknown = sorted(set(data) - {"jobs"})
    if unknown:
        raise ValidationError(f'unknown field(s): {", ".join(unknown)}; a batch is {{"jobs": [...]}}', "unknown_field")
    items = data.get("jobs")
    if not isinstance(items, list):
        got = "nothing" if items is None else type(items).__name__
        raise ValidationError(f"field jobs must be a list of job objects, got {got}", "invalid_field")
    if not 1 <= len(items) <= BATCH_MAX_JOBS:
        raise ValidationError(f"a batch holds 1 to {BATCH_MAX_JOBS} jobs, got {len(items)}", "invalid_batch_size")
    jobs: list[NewJob] = []
    errors: list[dict[str, object]] = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValidationError(f"a job must be a JSON object, got {type(item).__name__}", "invalid_body")
            jobs.append(NewJob.from_data(item, action_formats, now, max_schedule_days, check_inputs))
        except ValidationError as exc:
            errors.append({"index": index, "error": exc.code, "message": exc.message})
    if errors:
        raise InvalidBatch(f"{len(errors)} of {len(items)} jobs are invalid (see items); nothing was submitted", errors)
    return jobs


def batch_fingerprint(jobs: list[NewJob]) -> str:
    """A digest of a whole batch (its jobs in order), for its Idempotency-Key."""
    canonical = json.dumps(["batch", [job.fingerprint() for job in jobs]])
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_json_object(body: str | None) -> dict[str, Any]:
    """A request body that must be a JSON object, or a 400."""
    if body is None or body.strip() == "":
        raise ValidationError("the request body must be a JSON object", "invalid_body")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"the request body is not valid JSON: {exc.msg}", "invalid_json") from None
    if not isinstance(data, dict):
        raise ValidationError(f"the request body must be a JSON object, got {type(data).__name__}", "invalid_body")
    return data


def parse_format(raw: object) -> ResultFormat:
    """The ``format`` a POST body names, or a 400."""
    return _parse_choice(raw, "format", ResultFormat)


def parse_priority(raw: object) -> Priority:
    """The ``priority`` a POST body names, or a 400."""
    return _parse_choice(raw, "priority", Priority)


_Choice = TypeVar("_Choice", bound=StrEnum)


def _parse_choice(raw: object, field_name: str, choices: type[_Choice]) -> _Choice:
    """One of ``choices`` by its value (case matters), or a 400 ``invalid_<field>`` listing them."""
    if not isinstance(raw, str):
        raise ValidationError(f"field {field_name} must be a string, got {type(raw).__name__}", "invalid_field")
    try:
        return choices(raw)
    except ValueError:
        known = ", ".join(c.value for c in choices)
        raise ValidationError(
            f"unknown {field_name} {raw[:32]!r}; use one of {known}", f"invalid_{field_name}"
        ) from None


def parse_idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX_CHARS or not key.isprintable():
        raise ValidationError(
            f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX_CHARS} printable characters",
            "invalid_idempotency_key",
        )
    return key


@dataclass
class Job:
    """A job record as the domain sees it."""

    owner_id: str
    job_id: str
    name: str
    action: str
    context1: str
    context2: str
    status: Status
    created_at: str
    updated_at: str
    expires_at: int
    attempts: int = 0
    started_at: str | None = None
    completed_at: str | None = None
    s3_key: str | None = None
    error: str | None = None
    lease_owner: str | None = None
    lease_until: int = 0
    format: ResultFormat = DEFAULT_FORMAT  # a record written before formats existed has none: text
    run_at: str | None = None  # a scheduled job's due time (ISO Z)
    schedule_name: str | None = None  # its EventBridge Scheduler schedule, when it needs one
    priority: Priority = DEFAULT_PRIORITY  # a record written before priorities existed has none: normal
    # One entry per `invoke redrive` that made this FAILED job PENDING again, oldest first:
    # {"at", "error", "attempts", "failed_at", "dead_letter"} (the failure it followed).
    redrives: list[dict[str, Any]] = field(default_factory=list)
    # Progress and cancelling running jobs (jobs.progress): the last progress the worker wrote,
    # {"fraction", "message", "updatedAt"}, and when DELETE /job asked to stop the running job.
    progress: dict[str, Any] | None = None
    cancel_requested_at: str | None = None
    # Webhooks (README "Webhooks"): where the final status is POSTed, and how that went, as the
    # notifier records it: {"state": pending|delivered|failed, "attempts", "lastAttemptAt",
    # "lastError", "deliveredAt", "eventId", "changedAt"}.
    callback_url: str | None = None
    webhook: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def result_key(self) -> str:
        """Where the result goes: <owner_id>/<YYYY-MM-DD (UTC creation date)>/<job_id>.<txt|json|csv>."""
        day = parse_iso(self.created_at).strftime("%Y-%m-%d")
        return f"{self.owner_id}/{day}/{self.result_file_name()}"

    def result_file_name(self) -> str:
        """The result's file name, as a browser saves it: <job_id>.<extension of the format>."""
        return f"{self.job_id}.{self.format.extension}"

    def public_view(self, result_url: str | None = None) -> dict[str, Any]:
        """The record as the API returns it (the seed's field names, plus a few)."""
        view: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status.value,
            "name": self.name,
            "action": self.action,
            "format": self.format.value,
            "priority": self.priority.value,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if self.run_at:
            view["run_at"] = self.run_at
        if self.schedule_name:
            view["schedule_name"] = self.schedule_name
        if self.started_at:
            view["startedAt"] = self.started_at
        if self.completed_at:
            view["completedAt"] = self.completed_at
        if self.s3_key:
            view["S3FileKey"] = self.s3_key
        if self.status is Status.FAILED and self.error:
            view["error"] = self.error
        if self.redrives:
            view["redrives"] = [
                {k: r[k] for k in ("at", "error", "attempts", "failed_at") if r.get(k) is not None}
                for r in self.redrives
            ]
        if self.progress:
            view["progress"] = {k: self.progress[k] for k in ("fraction", "message", "updatedAt") if k in self.progress}
        if self.cancel_requested_at:
            view["cancel_requested_at"] = self.cancel_requested_at
        if self.callback_url:
            view["callback_url"] = self.callback_url
        if self.webhook:
            view["webhook"] = {k: v for k, v in self.webhook.items() if k in WEBHOOK_VIEW_FIELDS}
        if result_url:
            view["result_url"] = result_url
        return view


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return LIMIT_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"limit must be an integer between 1 and {LIMIT_MAX}", "invalid_limit") from None
    if not 1 <= value <= LIMIT_MAX:
        raise ValidationError(f"limit must be between 1 and {LIMIT_MAX}, got {value}", "invalid_limit")
    return value


def parse_status_filter(raw: str | None) -> Status | None:
    if raw is None or raw == "":
        return None
    try:
        return Status(raw.upper())
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise ValidationError(f"unknown status {raw[:32]!r}; use one of {known}", "invalid_status") from None


def _owner_tag(owner_id: str) -> str:
    return hashlib.sha256(owner_id.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PageToken:
    """Where the next page of a listing starts. Opaque to clients, bound to its owner and filter."""

    last_job_id: str
    status: Status | None

    def encode(self, owner_id: str) -> str:
        payload = {"v": 1, "o": _owner_tag(owner_id), "k": self.last_job_id, "s": self.status}
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str | None, owner_id: str, status: Status | None) -> PageToken | None:
        if token is None or token == "":
            return None
        bad = ValidationError("next_token is not a token this API issued for this listing", "invalid_next_token")
        try:
            padded = token + "=" * (-len(token) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        except (ValueError, binascii.Error, UnicodeError):
            raise bad from None
        if not isinstance(payload, dict) or payload.get("v") != 1:
            raise bad
        if payload.get("o") != _owner_tag(owner_id):
            raise bad  # another user's token (or a forged one): never a way into their partition
        if payload.get("s") != (status.value if status else None):
            raise ValidationError(
                "next_token belongs to a listing with a different status filter", "invalid_next_token"
            )
        last = payload.get("k")
        if not isinstance(last, str):
            raise bad
        try:
            last = str(uuid.UUID(last))
        except ValueError:
            raise bad from None
        return cls(last, status)
