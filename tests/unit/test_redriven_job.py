"""A job that failed its last delivery, redriven by `invoke redrive`: the API shows its history,
the worker gives it a full new set of deliveries (counted by the moved message) and can finish it.

The messages go through the queue for real (moto in-process), so the receive counts the worker
sees and the move to the DLQ are the queue's own.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import boto3
import pytest

from tests.unit.conftest import (
    MAX_RECEIVE,
    REGION,
    TABLE,
    VALID_JOB,
    Stack,
    api_event,
    call_api,
    call_worker,
    received_record,
)
from tests.unit.test_worker import CountingRun
from tooling import redrive

pytestmark = pytest.mark.usefixtures("stack")


class InProcess:
    """The tooling's AwsAccess, on moto in-process."""

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


def deliver(stack: Stack, url: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """Receive the queue's one message and run the worker on it, with the queue's receive count."""
    [m] = stack.sqs.receive_message(
        QueueUrl=url or stack.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    failed = call_worker(received_record(m))
    if not failed:
        stack.sqs.delete_message(QueueUrl=url or stack.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return failed, m


def queue_is_empty(stack: Stack) -> bool:
    """True when the job queue has nothing to deliver (moto moves a message past its
    maxReceiveCount to the DLQ on this receive, as SQS does on the next receive)."""
    return stack.sqs.receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=0).get("Messages") is None


def get_job(job_id: str) -> dict[str, Any]:
    resp = call_api(api_event("GET", "/job", query={"job_id": job_id}))
    assert resp.status == 200
    return resp.body


def list_ids(status: str) -> list[str]:
    resp = call_api(api_event("GET", "/jobs", query={"status": status}))
    assert resp.status == 200
    return [j["job_id"] for j in resp.body]


def test_a_redriven_job_shows_its_history_gets_full_retries_and_completes(stack: Stack) -> None:
    resp = call_api(api_event("POST", "/job", body=VALID_JOB))
    assert resp.status == 202
    job_id = resp.body["job_id"]
    outputs = {"queue_url": stack.queue_url, "dlq_url": stack.dlq_url, "table_name": TABLE}

    # three failing deliveries: FAILED on the last, and the queue moves the message to the DLQ
    counter = CountingRun(fail_times=MAX_RECEIVE + 1)
    with mock.patch("jobs.service.run_action", counter):
        for _ in range(MAX_RECEIVE):
            failed, _message = deliver(stack)
            assert failed
        assert queue_is_empty(stack)
        failed_view = get_job(job_id)
        assert failed_view["status"] == "FAILED" and "transient trouble" in failed_view["error"]
        assert "redrives" not in failed_view

        report = redrive.redrive(InProcess(), outputs, out=lambda _line: None, wait_seconds=0)
        assert [letter.job_id for letter in report.moved] == [job_id]
        assert stack.sqs.receive_message(QueueUrl=stack.dlq_url, VisibilityTimeout=0).get("Messages") is None

        view = get_job(job_id)
        assert view["status"] == "PENDING" and "error" not in view and "completedAt" not in view
        [entry] = view["redrives"]
        assert entry["error"] == failed_view["error"]
        assert entry["attempts"] == MAX_RECEIVE
        assert entry["failed_at"] == failed_view["completedAt"]
        assert set(entry) == {"at", "error", "attempts", "failed_at"}
        assert list_ids("PENDING") == [job_id] and list_ids("FAILED") == []
        # the moved message is new to the queue: delivery 1 of MAX_RECEIVE, so a failure is retried
        failed, message = deliver(stack)
        assert message["Attributes"]["ApproximateReceiveCount"] == "1"
        assert failed == [message["MessageId"]]
        assert get_job(job_id)["status"] == "PROCESSING"
        # the cause is fixed: the next delivery completes it
        failed, message = deliver(stack)
    assert failed == []
    assert message["Attributes"]["ApproximateReceiveCount"] == "2"
    done = get_job(job_id)
    assert done["status"] == "COMPLETE" and done["S3FileKey"] in stack.objects()
    assert done["redrives"] == view["redrives"]
    assert counter.runs[job_id] == MAX_RECEIVE + 2
    item = stack.ddb.get_item(TableName=TABLE, Key={"owner_id": {"S": "user-a"}, "job_id": {"S": job_id}})["Item"]
    assert item["attempts"]["N"] == str(MAX_RECEIVE + 2)
    assert json.loads(message["Body"]) == {"owner_id": "user-a", "job_id": job_id}


def test_a_redriven_job_that_fails_again_ends_failed_on_the_queue_s_last_delivery(stack: Stack) -> None:
    resp = call_api(api_event("POST", "/job", body=VALID_JOB))
    job_id = resp.body["job_id"]
    outputs = {"queue_url": stack.queue_url, "dlq_url": stack.dlq_url, "table_name": TABLE}
    with mock.patch("jobs.service.run_action", CountingRun(fail_times=99)):
        for _ in range(MAX_RECEIVE):
            deliver(stack)
        assert queue_is_empty(stack)
        redrive.redrive(InProcess(), outputs, out=lambda _line: None, wait_seconds=0)
        for n in range(1, MAX_RECEIVE + 1):
            assert get_job(job_id)["status"] == ("PENDING" if n == 1 else "PROCESSING")
            failed, _message = deliver(stack)
            assert failed
        assert queue_is_empty(stack)
    # FAILED again on the last delivery (not earlier: the job's attempts are not the count), dead-lettered again
    view = get_job(job_id)
    assert view["status"] == "FAILED" and "transient trouble" in view["error"]
    assert len(view["redrives"]) == 1 and view["redrives"][0]["attempts"] == MAX_RECEIVE
    [dead] = stack.sqs.receive_message(QueueUrl=stack.dlq_url, VisibilityTimeout=0)["Messages"]
    assert json.loads(dead["Body"])["job_id"] == job_id
