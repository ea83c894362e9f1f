"""The boto3 clients and the data layer objects, built once per process on first use.

Clients use the standard retry mode (exponential back-off with jitter on throttling and
transient errors). Endpoints come from boto3's own configuration: on the embedded backend
``AWS_ENDPOINT_URL`` points every client at it, with no branch in this code.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from jobs.bus import EventBus
from jobs.settings import EventSettings, Settings, get_event_settings, get_settings
from jobs.store import JobQueue, JobScheduler, JobTable, ResultBucket

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=3,
    read_timeout=10,
)
# Per service on top of that: presigned result URLs are SigV4 (the only scheme S3 accepts in
# every region); no other service needs a signature setting.
_SERVICE_CONFIG = {"s3": Config(signature_version="s3v4")}


@cache
def client(service: str) -> Any:
    config = _CONFIG.merge(_SERVICE_CONFIG[service]) if service in _SERVICE_CONFIG else _CONFIG
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


def job_table(settings: Settings | None = None) -> JobTable:
    settings = settings or get_settings()
    return JobTable(client("dynamodb"), settings.table_name, settings.quota_table_name)


def result_bucket(settings: Settings | None = None) -> ResultBucket:
    return ResultBucket(client("s3"), (settings or get_settings()).bucket_name)


def job_queue(settings: Settings | None = None) -> JobQueue:
    settings = settings or get_settings()
    return JobQueue(client("sqs"), settings.queue_urls, settings.dlq_url)


def job_scheduler(settings: Settings | None = None) -> JobScheduler:
    settings = settings or get_settings()
    return JobScheduler(
        client("scheduler"), settings.schedule_group_name, settings.scheduler_role_arn, settings.dlq_arn
    )


def event_bus(settings: EventSettings | None = None) -> EventBus:
    return EventBus(client("events"), (settings or get_event_settings()).put_attempts)


def reset() -> None:
    """Forget cached clients and settings (tests that switch AWS mocks)."""
    client.cache_clear()
    get_settings.cache_clear()
    get_event_settings.cache_clear()
