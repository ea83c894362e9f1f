"""Settings: one typed object, read once from the environment Terraform sets.

A missing or malformed variable fails at start-up (import of the handler module) with a
message that names it, instead of at the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jobs.model import Priority
from jobs.quotas import Limits, QuotaConfigError, is_group_name, parse_tiers
from jobs.scheduling import DEFAULT_MAX_SCHEDULE_DAYS, MAX_SCHEDULE_DAYS_LIMIT, SQS_MAX_DELAY_SECONDS

# The queue of each priority (README "Flow control"): normal keeps its historical name.
QUEUE_URL_VARIABLES = {
    Priority.HIGH: "JOBS_QUEUE_URL_HIGH",
    Priority.NORMAL: "JOBS_QUEUE_URL",
    Priority.LOW: "JOBS_QUEUE_URL_LOW",
}
# Their ARNs, which a job's schedule sends to.
QUEUE_ARN_VARIABLES = {
    Priority.HIGH: "JOBS_QUEUE_ARN_HIGH",
    Priority.NORMAL: "JOBS_QUEUE_ARN",
    Priority.LOW: "JOBS_QUEUE_ARN_LOW",
}


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    bucket_name: str
    queue_urls: dict[Priority, str]
    allowed_client_id: str
    cors_allowed_origins: tuple[str, ...]
    max_receive_count: int
    retention_days: int
    result_url_ttl_seconds: int
    quota_table_name: str
    quota_defaults: Limits
    quota_tiers: dict[str, Limits]
    # Members of this Cognito group may submit ``high`` jobs; None: nobody may.
    high_priority_group: str | None = None
    # Scheduled jobs (jobs.scheduling). The defaults serve code that builds Settings by hand
    # (tools, tests); from_env requires every one.
    queue_arns: dict[Priority, str] = field(default_factory=dict)  # where a due schedule sends
    dlq_arn: str = ""  # where a schedule's undeliverable message goes
    dlq_url: str = ""  # where the worker puts a finally failed job's message that SQS would redeliver
    schedule_group_name: str = ""
    scheduler_role_arn: str = ""
    max_schedule_days: int = DEFAULT_MAX_SCHEDULE_DAYS
    schedule_delay_threshold_seconds: int = SQS_MAX_DELAY_SECONDS
    # Callback URLs may lead to loopback addresses, over http too (WEBHOOK_ALLOW_LOOPBACK: true
    # only on the embedded default, where the receivers run on this machine; never on AWS).
    webhook_allow_loopback: bool = False

    @property
    def queue_url(self) -> str:
        """The normal-priority queue (the one queue before priorities existed)."""
        return self.queue_urls[Priority.NORMAL]

    def target_queue_arn(self, priority: Priority) -> str:
        """The queue a job's schedule sends its message to: its priority's."""
        return self.queue_arns[priority]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"environment variable {name} is required but not set")
            return value

        def positive_int(name: str) -> int:
            raw = required(name)
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"environment variable {name} must be an integer, got {raw!r}") from None
            if value < 1:
                raise SettingsError(f"environment variable {name} must be >= 1, got {value}")
            return value

        def number(name: str) -> float:
            raw = required(name)
            try:
                return float(raw)
            except ValueError:
                raise SettingsError(f"environment variable {name} must be a number, got {raw!r}") from None

        try:
            quota_defaults = Limits.parse(
                {
                    "max_active_jobs": positive_int("QUOTA_MAX_ACTIVE_JOBS"),
                    "submit_rate_per_second": number("QUOTA_SUBMIT_RATE_PER_SECOND"),
                    "submit_burst": positive_int("QUOTA_SUBMIT_BURST"),
                },
                "the default quota",
            )
        except QuotaConfigError as exc:
            raise SettingsError(f"environment variables QUOTA_*: {exc}") from None
        try:
            quota_tiers = parse_tiers(env.get("QUOTA_TIERS", "").strip() or "{}")
        except QuotaConfigError as exc:
            raise SettingsError(f"environment variable QUOTA_TIERS: {exc}") from None

        def bounded_int(name: str, low: int, high: int) -> int:
            raw = required(name)
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"environment variable {name} must be an integer, got {raw!r}") from None
            if not low <= value <= high:
                raise SettingsError(f"environment variable {name} must be from {low} to {high}, got {value}")
            return value

        queue_urls = {priority: required(name) for priority, name in QUEUE_URL_VARIABLES.items()}
        if len(set(queue_urls.values())) != len(queue_urls):
            raise SettingsError(
                f"environment variables {', '.join(QUEUE_URL_VARIABLES.values())} must name three different "
                "queues (one per priority)"
            )
        high_group = env.get("HIGH_PRIORITY_GROUP", "").strip() or None
        if high_group is not None and not is_group_name(high_group):
            raise SettingsError(
                f"environment variable HIGH_PRIORITY_GROUP must be a Cognito group name without spaces, "
                f"commas or brackets, got {high_group[:64]!r}"
            )

        origins = tuple(o.strip() for o in required("CORS_ALLOWED_ORIGINS").split(",") if o.strip())
        if not origins:
            raise SettingsError("environment variable CORS_ALLOWED_ORIGINS lists no origin")
        return cls(
            table_name=required("JOBS_TABLE_NAME"),
            bucket_name=required("RESULTS_BUCKET_NAME"),
            queue_urls=queue_urls,
            allowed_client_id=required("ALLOWED_CLIENT_ID"),
            cors_allowed_origins=origins,
            max_receive_count=positive_int("MAX_RECEIVE_COUNT"),
            retention_days=positive_int("JOB_RETENTION_DAYS"),
            result_url_ttl_seconds=positive_int("RESULT_URL_TTL_SECONDS"),
            quota_table_name=required("QUOTA_TABLE_NAME"),
            quota_defaults=quota_defaults,
            quota_tiers=quota_tiers,
            high_priority_group=high_group,
            queue_arns={priority: required(name) for priority, name in QUEUE_ARN_VARIABLES.items()},
            dlq_arn=required("JOBS_DLQ_ARN"),
            dlq_url=required("JOBS_DLQ_URL"),
            schedule_group_name=required("SCHEDULE_GROUP_NAME"),
            scheduler_role_arn=required("SCHEDULER_ROLE_ARN"),
            max_schedule_days=bounded_int("MAX_SCHEDULE_DAYS", 1, MAX_SCHEDULE_DAYS_LIMIT),
            schedule_delay_threshold_seconds=bounded_int("SCHEDULE_DELAY_THRESHOLD_SECONDS", 0, SQS_MAX_DELAY_SECONDS),
            webhook_allow_loopback=flag(env, "WEBHOOK_ALLOW_LOOPBACK"),
        )


def flag(env: Mapping[str, str], name: str) -> bool:
    """A true/false variable; absent: false (the safe side)."""
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "true", "false"):
        raise SettingsError(f"environment variable {name} must be true or false, got {raw[:16]!r}")
    return raw == "true"


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_env()


# --------------------------------------------------------------------------------------
# The job status event publisher (jobs.publisher): its own few settings, so that it needs
# none of the api's and worker's.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSettings:
    bus_name: str  # EVENT_BUS_NAME: the stack's custom bus
    source: str  # EVENT_SOURCE: "<project>.jobs"
    put_attempts: int  # EVENT_PUT_ATTEMPTS: tries of an entry PutEvents reports failed

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EventSettings:
        env = os.environ if env is None else env
        values = {name: env.get(name, "").strip() for name in ("EVENT_BUS_NAME", "EVENT_SOURCE")}
        for name, value in values.items():
            if not value:
                raise SettingsError(f"environment variable {name} is required but not set")
        raw = env.get("EVENT_PUT_ATTEMPTS", "").strip() or "4"
        try:
            attempts = int(raw)
        except ValueError:
            raise SettingsError(f"environment variable EVENT_PUT_ATTEMPTS must be an integer, got {raw!r}") from None
        if not 1 <= attempts <= 10:
            raise SettingsError(f"environment variable EVENT_PUT_ATTEMPTS must be from 1 to 10, got {attempts}")
        return cls(bus_name=values["EVENT_BUS_NAME"], source=values["EVENT_SOURCE"], put_attempts=attempts)


@cache
def get_event_settings() -> EventSettings:
    """The publisher's settings, read once."""
    return EventSettings.from_env()


# ------------------------------------------------------------------------------------------
# The notifier (jobs.notifier): its own settings, its own environment (README "Webhooks").
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotifierSettings:
    table_name: str
    queue_url: str  # the webhooks queue: a failed record's visibility is set there (back-off)
    secret_parameter: str  # the SSM SecureString holding the signing secret
    timeout_seconds: float  # per attempt: connect, send and read the answer
    max_receive_count: int  # the webhooks queue's: the attempt that fails at this count is the last
    backoff_base_seconds: int
    backoff_cap_seconds: int
    allow_loopback: bool = False
    secret_max_age_seconds: int = 300  # how long a read of the secret is cached

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifierSettings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"environment variable {name} is required but not set")
            return value

        def bounded(name: str, low: float, high: float, kind: type = int) -> Any:
            raw = required(name)
            try:
                value = kind(raw)
            except ValueError:
                raise SettingsError(f"environment variable {name} must be a number, got {raw!r}") from None
            if not low <= value <= high:
                raise SettingsError(f"environment variable {name} must be from {low:g} to {high:g}, got {value}")
            return value

        base = bounded("WEBHOOK_BACKOFF_BASE_SECONDS", 0, 43_200)
        cap = bounded("WEBHOOK_BACKOFF_CAP_SECONDS", 0, 43_200)  # SQS's longest visibility timeout
        if cap < base:
            raise SettingsError(f"WEBHOOK_BACKOFF_CAP_SECONDS ({cap}) is below WEBHOOK_BACKOFF_BASE_SECONDS ({base})")
        return cls(
            table_name=required("JOBS_TABLE_NAME"),
            queue_url=required("WEBHOOK_QUEUE_URL"),
            secret_parameter=required("WEBHOOK_SECRET_PARAMETER"),
            timeout_seconds=bounded("WEBHOOK_TIMEOUT_SECONDS", 0.1, 60, float),
            max_receive_count=bounded("WEBHOOK_MAX_RECEIVE_COUNT", 1, 1000),
            backoff_base_seconds=base,
            backoff_cap_seconds=cap,
            allow_loopback=flag(env, "WEBHOOK_ALLOW_LOOPBACK"),
        )


@cache
def get_notifier_settings() -> NotifierSettings:
    """The notifier's settings, read once."""
    return NotifierSettings.from_env()
