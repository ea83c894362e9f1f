"""Unit ring: the real handlers against moto in-process (no network, no server)."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobs.deadline import RecordTimer
from tests.support import create_jobs_table, create_quota_table

CLIENT_ID = "test-client-id"
OTHER_CLIENT_ID = "some-other-app-client"
REGION = "us-east-1"
TABLE = "jobs-test"
QUOTA_TABLE = "jobs-test-quotas"
BUCKET = "jobs-test-results"
MAX_RECEIVE = 3
ACCOUNT = "123456789012"
SCHEDULE_GROUP = "jobs-test-jobs"
SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/jobs-test-scheduler"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs-test"
DLQ_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs-test-dlq"
MAX_SCHEDULE_DAYS = 30
HIGH_GROUP = "priority-high"  # members may submit priority high

ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "JOBS_TABLE_NAME": TABLE,
    "RESULTS_BUCKET_NAME": BUCKET,
    "JOBS_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/123456789012/jobs-test",
    "JOBS_QUEUE_URL_HIGH": f"https://sqs.{REGION}.amazonaws.com/123456789012/jobs-test-high",
    "JOBS_QUEUE_URL_LOW": f"https://sqs.{REGION}.amazonaws.com/123456789012/jobs-test-low",
    "HIGH_PRIORITY_GROUP": HIGH_GROUP,
    "ALLOWED_CLIENT_ID": CLIENT_ID,
    "CORS_ALLOWED_ORIGINS": "https://app.example.com,https://admin.example.com",
    "MAX_RECEIVE_COUNT": str(MAX_RECEIVE),
    "JOB_RETENTION_DAYS": "30",
    "RESULT_URL_TTL_SECONDS": "300",
    "QUOTA_TABLE_NAME": QUOTA_TABLE,
    "JOBS_QUEUE_ARN": QUEUE_ARN,
    "JOBS_QUEUE_ARN_HIGH": f"{QUEUE_ARN}-high",
    "JOBS_QUEUE_ARN_LOW": f"{QUEUE_ARN}-low",
    "JOBS_DLQ_ARN": DLQ_ARN,
    "JOBS_DLQ_URL": f"https://sqs.{REGION}.amazonaws.com/123456789012/jobs-test-dlq",
    "SCHEDULE_GROUP_NAME": SCHEDULE_GROUP,
    "SCHEDULER_ROLE_ARN": SCHEDULER_ROLE,
    "MAX_SCHEDULE_DAYS": str(MAX_SCHEDULE_DAYS),
    "SCHEDULE_DELAY_THRESHOLD_SECONDS": "900",
    # Defaults that no other test reaches; the quota tests use the tiers (cognito:groups).
    "QUOTA_MAX_ACTIVE_JOBS": "10000",
    "QUOTA_SUBMIT_RATE_PER_SECOND": "1000",
    "QUOTA_SUBMIT_BURST": "10000",
    "QUOTA_TIERS": json.dumps(
        {
            "capped": {"max_active_jobs": 5, "submit_rate_per_second": 1000, "submit_burst": 1000},
            "throttled": {"max_active_jobs": 100, "submit_rate_per_second": 0.5, "submit_burst": 3},
            "lifted": {"max_active_jobs": 8, "submit_rate_per_second": 2, "submit_burst": 5},
        }
    ),
    "POWERTOOLS_SERVICE_NAME": "jobs-test",
    # the event publisher (jobs.publisher)
    "EVENT_BUS_NAME": "jobs-test-events",
    "EVENT_SOURCE": "jobs.jobs",
    "EVENT_PUT_ATTEMPTS": "3",
    "POWERTOOLS_METRICS_NAMESPACE": "JobsTest",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}
os.environ.update(ENV)
os.environ.pop("AWS_ENDPOINT_URL", None)


def create_resources() -> dict[str, str]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    create_jobs_table(ddb, TABLE)
    create_quota_table(ddb, QUOTA_TABLE)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="jobs-test-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE})}
    urls = {
        name: sqs.create_queue(QueueName=f"jobs-test{suffix}", Attributes=redrive)["QueueUrl"]
        for name, suffix in (("queue_url", ""), ("high_queue_url", "-high"), ("low_queue_url", "-low"))
    }
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=SCHEDULE_GROUP)
    return {**urls, "dlq_url": dlq}


@dataclass
class Stack:
    queue_url: str  # normal priority
    dlq_url: str
    high_queue_url: str = ""
    low_queue_url: str = ""

    @property
    def ddb(self) -> Any:
        return boto3.client("dynamodb", region_name=REGION)

    @property
    def s3(self) -> Any:
        return boto3.client("s3", region_name=REGION)

    @property
    def sqs(self) -> Any:
        return boto3.client("sqs", region_name=REGION)

    def items(self) -> list[dict[str, Any]]:
        """Every item in the table (test-only inspection; the code never scans)."""
        return self.ddb.scan(TableName=TABLE)["Items"]

    def counters(self) -> dict[str, dict[str, int]]:
        """owner -> its quota counter item (test-only inspection)."""
        items = self.ddb.scan(TableName=QUOTA_TABLE)["Items"]
        return {i["owner_id"]["S"]: {k: int(v["N"]) for k, v in i.items() if "N" in v} for i in items}

    def objects(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]

    @property
    def scheduler(self) -> Any:
        return boto3.client("scheduler", region_name=REGION)

    def schedules(self) -> dict[str, dict[str, Any]]:
        """name -> the schedule (GetSchedule) of every schedule in the stack's group."""
        names = [s["Name"] for s in self.scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"]]
        return {n: self.scheduler.get_schedule(Name=n, GroupName=SCHEDULE_GROUP) for n in names}

    def messages(self, url: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(20):
            got = self.sqs.receive_message(
                QueueUrl=url or self.queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                VisibilityTimeout=0,
            ).get("Messages", [])
            new = [m for m in got if m["MessageId"] not in {o["MessageId"] for o in out}]
            if not new:
                break
            out.extend(new)
        return out


@pytest.fixture(autouse=True, scope="session")
def one_sdk_model_loader() -> Iterator[None]:
    """Every test builds the functions' clients afresh (``jobs.aws.reset``), each from a new
    boto3 Session as in a new Lambda environment, and each Session read botocore's JSON models
    (endpoints, partitions, the service's API) from disk again: over half of this ring's time
    (py-spy). Here the Sessions share one loader, so those files are read once per run;
    credentials, region and configuration stay each Session's own, as before."""
    import boto3.session
    import botocore.loaders

    loader = botocore.loaders.create_loader()
    original = boto3.session.Session.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._session.register_component("data_loader", loader)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(boto3.session.Session, "__init__", init)
        yield


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        urls = create_resources()
        monkeypatch.setenv("JOBS_QUEUE_URL", urls["queue_url"])
        monkeypatch.setenv("JOBS_QUEUE_URL_HIGH", urls["high_queue_url"])
        monkeypatch.setenv("JOBS_QUEUE_URL_LOW", urls["low_queue_url"])
        from jobs import aws

        aws.reset()
        import jobs.api as api
        import jobs.worker as worker

        api.settings = aws.get_settings()
        worker.settings = api.settings
        api.service.cache_clear()
        worker.job_processor.cache_clear()
        worker.timer = RecordTimer()  # what a record needs is learnt per test, not across tests
        yield Stack(**urls)
        aws.reset()
        api.service.cache_clear()
        worker.job_processor.cache_clear()


class DeadlineContext:
    """A Lambda context whose remaining time runs down with the clock, as Lambda's does."""

    function_name = "jobs-test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:jobs-test"
    aws_request_id = "req-deadline"

    def __init__(self, timeout_s: float) -> None:
        self.deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


class FakeContext:
    function_name = "jobs-test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:jobs-test"
    aws_request_id = "req-1"

    def __init__(self, remaining_ms: int = 30_000) -> None:
        self._remaining = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining


def claims(
    sub: str = "user-a", client_id: str = CLIENT_ID, token_use: str = "id", groups: str | None = None
) -> dict[str, str]:
    base = {"sub": sub, "token_use": token_use, "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test"}
    if groups is not None:
        base["cognito:groups"] = groups  # as API Gateway passes it: a list joined with commas
    if token_use == "id":
        base["aud"] = client_id
    else:
        base["client_id"] = client_id
    return base


def api_event(
    method: str,
    resource: str,
    *,
    query: dict[str, str] | None = None,
    body: str | dict[str, Any] | list[Any] | None = None,
    headers: dict[str, str] | None = None,
    claims_: dict[str, str] | None = None,
    no_claims: bool = False,
    base64_body: bool = False,
) -> dict[str, Any]:
    """A REST API (v1) Lambda proxy event as API Gateway sends it through a Cognito authorizer."""
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    if base64_body and body is not None:
        body = base64.b64encode(body.encode()).decode()
    hdrs = {"Origin": "https://app.example.com", "Content-Type": "application/json", **(headers or {})}
    request_context: dict[str, Any] = {
        "resourcePath": resource,
        "httpMethod": method,
        "path": f"/dev{resource}",
        "stage": "dev",
        "requestId": str(uuid.uuid4()),
        "accountId": "123456789012",
        "apiId": "abc123",
        "identity": {"sourceIp": "203.0.113.7", "userAgent": "pytest"},
    }
    if not no_claims:
        request_context["authorizer"] = {"claims": claims_ if claims_ is not None else claims()}
    return {
        "resource": resource,
        "path": resource,
        "httpMethod": method,
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": request_context,
        "body": body,
        "isBase64Encoded": base64_body,
    }


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any


def call_api(event: dict[str, Any]) -> ApiResponse:
    from jobs.api import lambda_handler

    raw = lambda_handler(event, FakeContext())
    headers = {k: v for k, v in (raw.get("headers") or {}).items()}
    for k, v in (raw.get("multiValueHeaders") or {}).items():
        headers[k] = v[0] if isinstance(v, list) and len(v) == 1 else ",".join(v)
    body = json.loads(raw["body"]) if raw.get("body") else None
    return ApiResponse(raw["statusCode"], headers, body)


def sqs_record(body: str, receive_count: int = 1, message_id: str | None = None) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": f"rh-{uuid.uuid4()}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs-test",
        "awsRegion": REGION,
    }


def received_record(message: dict[str, Any]) -> dict[str, Any]:
    """The SQS event record of a message received with ``AttributeNames=["All"]``."""
    return sqs_record(message["Body"], int(message["Attributes"]["ApproximateReceiveCount"]), message["MessageId"])


def call_worker(*records: dict[str, Any], remaining_ms: int = 30_000) -> list[str]:
    """Run the worker on a batch; return the ids it reported as failed."""
    from jobs.worker import lambda_handler

    result = lambda_handler({"Records": list(records)}, FakeContext(remaining_ms))
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


VALID_JOB = {"name": "test", "action": "demo", "context1": "hello", "context2": "world"}
