"""JobWorker: at-least-once delivery never runs a job twice or moves it backwards."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from unittest import mock

import pytest

from jobs import actions
from jobs.service import JobMessage
from jobs.store import JobQueue
from jobs.worker import job_processor
from jobs.worker import settings as worker_settings
from tests.unit.conftest import (
    MAX_RECEIVE,
    TABLE,
    VALID_JOB,
    Stack,
    api_event,
    call_api,
    call_worker,
    claims,
    received_record,
    sqs_record,
)

pytestmark = pytest.mark.usefixtures("stack")


def new_job(stack: Stack, action: str = "process-data", **fields: str) -> tuple[str, str]:
    """Submit through the API; return (job_id, the queued message body)."""
    resp = call_api(api_event("POST", "/job", body={**VALID_JOB, "action": action, **fields}))
    assert resp.status == 202
    job_id = resp.body["job_id"]
    [body] = [m["Body"] for m in stack.messages() if json.loads(m["Body"])["job_id"] == job_id]
    return job_id, body


def job(job_id: str, sub: str = "user-a") -> dict:
    return call_api(api_event("GET", "/job", query={"job_id": job_id}, claims_=claims(sub))).body


def item(stack: Stack, job_id: str) -> dict:
    return stack.ddb.get_item(TableName=TABLE, Key={"owner_id": {"S": "user-a"}, "job_id": {"S": job_id}})["Item"]


class CountingRun:
    """Wraps the action runner to count runs per job and optionally fail or block."""

    def __init__(self, fail_times: int = 0, block: threading.Event | None = None) -> None:
        self.runs: Counter[str] = Counter()
        self.fail_times = fail_times
        self.block = block
        self.started = threading.Event()

    def __call__(self, job_input: actions.ActionInput) -> str:
        self.runs[job_input.job_id] += 1
        self.started.set()
        if self.block is not None:
            self.block.wait(10)
        if self.runs[job_input.job_id] <= self.fail_times:
            raise actions.ActionError("transient trouble")
        return actions.run_action(job_input)


def run_elsewhere(body: str) -> tuple[threading.Thread, list[str]]:
    """Process ``body`` in another thread, as another Lambda execution environment would.

    (One environment runs one invocation at a time, so the handler's batch processor is not
    shared between threads; the other environment is the domain processor itself.)
    """
    outcome: list[str] = []

    def run() -> None:
        outcome.append(job_processor().process(JobMessage.parse(body), 1, 30.0).outcome)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_success_writes_result_and_completes(stack: Stack) -> None:
    job_id, body = new_job(stack, context1="alpha beta", context2="gamma")
    assert call_worker(sqs_record(body)) == []
    record = job(job_id)
    assert record["status"] == "COMPLETE"
    key = record["S3FileKey"]
    assert key == f"user-a/{record['createdAt'][:10]}/{job_id}.txt"
    text = stack.s3.get_object(Bucket="jobs-test-results", Key=key)["Body"].read().decode()
    assert "alpha beta" in text and "gamma" in text and job_id in text
    raw = item(stack, job_id)
    assert raw["attempts"]["N"] == "1" and "startedAt" in raw and "completedAt" in raw
    assert "lease_owner" not in raw


def test_same_message_twice_runs_once_and_writes_one_object(stack: Stack) -> None:
    job_id, body = new_job(stack)
    counter = CountingRun()
    with mock.patch("jobs.service.run_action", counter):
        assert call_worker(sqs_record(body, message_id="m1")) == []
        assert call_worker(sqs_record(body, message_id="m1")) == []
    assert counter.runs[job_id] == 1
    assert len(stack.objects()) == 1
    versions = stack.s3.list_object_versions(Bucket="jobs-test-results").get("Versions", [])
    assert len(versions) == 1


def test_concurrent_duplicate_is_sent_back_not_run(stack: Stack) -> None:
    """Two copies in flight at once: the second sees a live lease and asks for redelivery."""
    job_id, body = new_job(stack)
    release = threading.Event()
    counter = CountingRun(block=release)
    with mock.patch("jobs.service.run_action", counter):
        first, outcome = run_elsewhere(body)
        assert counter.started.wait(10)
        assert call_worker(sqs_record(body, message_id="b")) == ["b"]  # retried later, not run
        release.set()
        first.join(10)
        assert outcome == ["completed"]
        # The redelivered copy finds the job COMPLETE and is acknowledged.
        assert call_worker(sqs_record(body, receive_count=2, message_id="b")) == []
    assert counter.runs[job_id] == 1
    assert job(job_id)["status"] == "COMPLETE"


def test_late_delivery_after_complete_changes_nothing(stack: Stack) -> None:
    job_id, body = new_job(stack)
    call_worker(sqs_record(body))
    before = item(stack, job_id)
    with mock.patch("jobs.service.run_action", CountingRun()) as _:
        assert call_worker(sqs_record(body, receive_count=MAX_RECEIVE)) == []
    assert item(stack, job_id) == before


def test_failure_then_success_on_retry(stack: Stack) -> None:
    job_id, body = new_job(stack)
    counter = CountingRun(fail_times=1)
    with mock.patch("jobs.service.run_action", counter):
        assert call_worker(sqs_record(body, receive_count=1, message_id="x")) == ["x"]
        mid = item(stack, job_id)
        assert mid["status"]["S"] == "PROCESSING"
        assert "transient trouble" in mid["error"]["S"]
        assert job(job_id)["status"] == "PROCESSING" and "error" not in job(job_id)
        assert call_worker(sqs_record(body, receive_count=2, message_id="x")) == []
    record = job(job_id)
    assert record["status"] == "COMPLETE" and "error" not in record
    assert item(stack, job_id)["attempts"]["N"] == "2"
    assert counter.runs[job_id] == 2


def test_final_attempt_marks_failed_before_the_dlq(stack: Stack) -> None:
    job_id, body = new_job(stack)
    counter = CountingRun(fail_times=99)
    with mock.patch("jobs.service.run_action", counter):
        for attempt in range(1, MAX_RECEIVE):
            assert call_worker(sqs_record(body, receive_count=attempt, message_id="p")) == ["p"]
            assert job(job_id)["status"] == "PROCESSING"
        assert call_worker(sqs_record(body, receive_count=MAX_RECEIVE, message_id="p")) == ["p"]
    record = job(job_id)
    assert record["status"] == "FAILED"
    assert "transient trouble" in record["error"]
    assert stack.objects() == []
    assert counter.runs[job_id] == MAX_RECEIVE


def test_poison_message_is_reported_failed(stack: Stack) -> None:
    for body in ["not json", "[]", json.dumps({"owner_id": "u"}), json.dumps({"owner_id": "u", "job_id": "zz"})]:
        assert call_worker(sqs_record(body, message_id="poison")) == ["poison"]
    assert stack.objects() == []


def test_poison_message_ends_in_the_dlq(stack: Stack) -> None:
    """With the queue's redrive policy, a message reported failed MAX_RECEIVE times moves to the DLQ."""
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="garbage")
    for _ in range(MAX_RECEIVE):
        msgs = stack.sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"], VisibilityTimeout=0
        )["Messages"]
        [m] = msgs
        assert call_worker(received_record(m)) == [m["MessageId"]]
    assert stack.sqs.receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=0).get("Messages") is None
    [dead] = stack.sqs.receive_message(QueueUrl=stack.dlq_url)["Messages"]
    assert dead["Body"] == "garbage"


def test_message_for_a_vanished_job_is_acknowledged(stack: Stack) -> None:
    body = json.dumps({"owner_id": "user-a", "job_id": "01890000-0000-7000-8000-000000000000"})
    assert call_worker(sqs_record(body)) == []


def test_mixed_batch_reports_exactly_the_failed_ids(stack: Stack) -> None:
    good1, body1 = new_job(stack)
    bad, body2 = new_job(stack)
    good2, body3 = new_job(stack)

    def flaky(job_input: actions.ActionInput) -> str:
        if job_input.job_id == bad:
            raise actions.ActionError("only this one")
        return actions.run_action(job_input)

    with mock.patch("jobs.service.run_action", flaky):
        failed = call_worker(
            sqs_record(body1, message_id="m1"),
            sqs_record(body2, message_id="m2"),
            sqs_record("{{poison", message_id="m3"),
            sqs_record(body3, message_id="m4"),
        )
    assert sorted(failed) == ["m2", "m3"]
    assert job(good1)["status"] == "COMPLETE" and job(good2)["status"] == "COMPLETE"
    assert job(bad)["status"] == "PROCESSING"


def test_all_records_failing_still_returns_partial_response(stack: Stack) -> None:
    assert call_worker(sqs_record("x", message_id="a"), sqs_record("y", message_id="b")) == ["a", "b"]


def test_cancel_wins_race_against_claim(stack: Stack) -> None:
    job_id, body = new_job(stack)
    assert call_api(api_event("DELETE", "/job", query={"job_id": job_id})).status == 200
    counter = CountingRun()
    with mock.patch("jobs.service.run_action", counter):
        assert call_worker(sqs_record(body)) == []
    assert counter.runs[job_id] == 0
    assert job(job_id)["status"] == "CANCELLED"


def test_claim_wins_race_against_cancel(stack: Stack) -> None:
    """Claimed first: DELETE only records a cancel request (202), and an action that never
    reports progress cannot be stopped, so the job completes (README: cancelling running jobs)."""
    job_id, body = new_job(stack)
    release = threading.Event()
    counter = CountingRun(block=release)
    with mock.patch("jobs.service.run_action", counter):
        worker, outcome = run_elsewhere(body)
        assert counter.started.wait(10)
        resp = call_api(api_event("DELETE", "/job", query={"job_id": job_id}))
        assert resp.status == 202 and resp.body["status"] == "PROCESSING"
        assert resp.body["cancel_requested_at"]
        release.set()
        worker.join(10)
    assert outcome == ["completed"]
    record = job(job_id)
    assert record["status"] == "COMPLETE" and record["cancel_requested_at"] == resp.body["cancel_requested_at"]
    assert len(stack.objects()) == 1


def test_processing_job_whose_attempt_died_is_retried(stack: Stack) -> None:
    job_id, body = new_job(stack)
    # An earlier attempt claimed the job, then its process died: its lease has run out.
    stack.ddb.update_item(
        TableName=TABLE,
        Key={"owner_id": {"S": "user-a"}, "job_id": {"S": job_id}},
        UpdateExpression="SET #s = :p, owner_status = :os, lease_owner = :lo, lease_until = :lu, attempts = :one",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":p": {"S": "PROCESSING"},
            ":os": {"S": "user-a#PROCESSING"},
            ":lo": {"S": "dead-attempt"},
            ":lu": {"N": str(int(time.time()) - 5)},
            ":one": {"N": "1"},
        },
    )
    assert call_worker(sqs_record(body, receive_count=2)) == []
    assert job(job_id)["status"] == "COMPLETE"
    assert item(stack, job_id)["attempts"]["N"] == "2"


def test_final_attempt_while_another_attempt_holds_the_job_does_not_fail_it(stack: Stack) -> None:
    job_id, body = new_job(stack)
    release = threading.Event()
    counter = CountingRun(block=release)
    with mock.patch("jobs.service.run_action", counter):
        worker, _ = run_elsewhere(body)
        assert counter.started.wait(10)
        assert call_worker(sqs_record(body, receive_count=MAX_RECEIVE, message_id="late")) == ["late"]
        release.set()
        worker.join(10)
    assert job(job_id)["status"] == "COMPLETE"


def test_dynamodb_throttling_is_retried(stack: Stack) -> None:
    """botocore's standard retry mode absorbs throttling: nothing fails, nothing is lost."""
    job_id, body = new_job(stack)
    from jobs import aws

    ddb = aws.client("dynamodb")
    throttles = {"left": 3, "sent": 0}

    class _Raw:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def stream(self, **_: object):
            yield self.data

    def throttle(request, **_: object):
        if throttles["left"] > 0:
            throttles["left"] -= 1
            throttles["sent"] += 1
            body = json.dumps(
                {
                    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table was exceeded",
                }
            ).encode()
            from botocore.awsrequest import AWSResponse

            return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body))
        return None

    ddb.meta.events.register("before-send.dynamodb.UpdateItem", throttle)
    try:
        assert call_worker(sqs_record(body)) == []
    finally:
        ddb.meta.events.unregister("before-send.dynamodb.UpdateItem", throttle)
    assert throttles["sent"] == 3  # three throttled answers, each retried by the client
    assert job(job_id)["status"] == "COMPLETE"


def test_takeover_after_result_written_does_not_run_or_write_again(stack: Stack) -> None:
    """An attempt died after its S3 PUT and before COMPLETE: the next one completes from the result."""
    job_id, body = new_job(stack)
    counter = CountingRun()
    with mock.patch("jobs.service.run_action", counter):
        # The first attempt: claim, run, write... then its process dies before COMPLETE.
        with mock.patch("jobs.store.JobTable.complete", side_effect=SystemExit("killed")), pytest.raises(SystemExit):
            job_processor().process(JobMessage.parse(body), 1, 0.0)
        assert counter.runs[job_id] == 1 and len(stack.objects()) == 1
        time.sleep(3.1)  # its lease (at least 1 s, rounded up to whole seconds) runs out
        assert call_worker(sqs_record(body, receive_count=2)) == []
    assert counter.runs[job_id] == 1
    versions = stack.s3.list_object_versions(Bucket="jobs-test-results").get("Versions", [])
    assert len(versions) == 1
    assert job(job_id)["status"] == "COMPLETE"
    assert item(stack, job_id)["attempts"]["N"] == "2"


def test_takeover_without_a_result_runs_the_action(stack: Stack) -> None:
    job_id, body = new_job(stack)
    counter = CountingRun()
    with mock.patch("jobs.service.run_action", counter):
        with mock.patch("jobs.store.ResultBucket.put", side_effect=SystemExit("killed")), pytest.raises(SystemExit):
            job_processor().process(JobMessage.parse(body), 1, 0.0)
        time.sleep(3.1)
        assert call_worker(sqs_record(body, receive_count=2)) == []
    assert counter.runs[job_id] == 2
    assert len(stack.objects()) == 1 and job(job_id)["status"] == "COMPLETE"


def take_messages(stack: Stack) -> list[dict]:
    """Receive and delete what the normal queue holds, as the event source mapping would."""
    taken: list[dict] = []
    while got := stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages", []):
        for message in got:
            stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
        taken += got
    return taken


def test_a_slow_batch_ends_in_time_and_every_job_completes_on_its_first_attempt(stack: Stack) -> None:
    """Records slower than the timeout allows for a whole batch: each invocation starts only
    what it can finish and re-queues the rest untouched as new messages (so waiting costs no
    attempt), ending before its deadline; the next invocations run them, each job exactly once."""
    from jobs.worker import lambda_handler
    from tests.unit.conftest import DeadlineContext

    timeout_s, action_s = 2.5, 0.4
    jobs = [new_job(stack) for _ in range(6)]
    take_messages(stack)  # the API's messages: this test delivers them itself
    counter = CountingRun()

    def slow(job_input: actions.ActionInput) -> str:
        time.sleep(action_s)
        return counter(job_input)

    batch = [sqs_record(body, message_id=job_id) for job_id, body in jobs]
    invocations: list[tuple[int, float]] = []  # (records, seconds left at the end)
    requeued: list[dict] = []
    with mock.patch("jobs.service.run_action", slow):
        for _ in range(len(jobs)):
            context = DeadlineContext(timeout_s)
            assert lambda_handler({"Records": batch}, context)["batchItemFailures"] == []
            invocations.append((len(batch), context.get_remaining_time_in_millis() / 1000))
            taken = take_messages(stack)
            requeued += [json.loads(m["Body"]) for m in taken]
            batch = [received_record(m) for m in taken]
            if not batch:
                break
    assert batch == [], invocations
    assert all(left > 0 for _, left in invocations), invocations
    assert requeued, "no invocation needed to stop early: the test shows nothing"
    # untouched: the new messages carry no receive (the one that found no time does not count)
    assert {m.get("receives", 0) for m in requeued} == {0}
    assert {job(job_id)["status"] for job_id, _ in jobs} == {"COMPLETE"}
    assert counter.runs == {job_id: 1 for job_id, _ in jobs}
    assert {item(stack, job_id)["attempts"]["N"] for job_id, _ in jobs} == {"1"}
    assert len(stack.objects()) == len(jobs)


def test_a_record_on_its_last_attempt_is_requeued_still_on_its_last_attempt(stack: Stack) -> None:
    """Sent back on its last attempt it would reach the DLQ unrun: re-queued, its new message
    carries the receives it used, so its next delivery is still its last attempt (a failure
    there marks the job FAILED), not a fresh start."""
    from jobs.worker import lambda_handler
    from tests.unit.conftest import DeadlineContext

    first_id, first = new_job(stack)
    last_id, last = new_job(stack)
    take_messages(stack)
    with mock.patch("jobs.service.run_action", lambda job_input: time.sleep(0.3) or "done"):
        result = lambda_handler(
            {"Records": [sqs_record(first, message_id="a"), sqs_record(last, MAX_RECEIVE, message_id="b")]},
            DeadlineContext(0.5),
        )
    assert result["batchItemFailures"] == []
    assert job(first_id)["status"] == "COMPLETE" and job(last_id)["status"] == "PENDING"
    [again] = take_messages(stack)
    assert json.loads(again["Body"]) == {"owner_id": "user-a", "job_id": last_id, "receives": MAX_RECEIVE - 1}
    with mock.patch("jobs.service.run_action", CountingRun(fail_times=99)):
        # failed finally on the new message's first receive, which SQS would hand out again:
        # the worker puts it in the DLQ itself (for `invoke redrive`) and acknowledges it
        assert call_worker(received_record(again)) == []
    record = job(last_id)
    assert record["status"] == "FAILED" and "transient trouble" in record["error"]
    dead = stack.sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead if json.loads(m["Body"])["job_id"] == last_id] == [again["Body"]]


def test_a_record_that_cannot_be_requeued_comes_back_as_a_failure(stack: Stack) -> None:
    """SQS refusing the new message loses nothing: the record is reported failed, so its
    original message comes back after its visibility timeout."""
    from jobs.worker import lambda_handler
    from tests.unit.conftest import DeadlineContext

    first_id, first = new_job(stack)
    second_id, second = new_job(stack)
    take_messages(stack)
    refused = {"Successful": [], "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError", "Message": "x"}]}
    sqs = mock.Mock(send_message_batch=mock.Mock(return_value=refused))
    with (
        mock.patch("jobs.service.run_action", lambda job_input: time.sleep(0.3) or "done"),
        mock.patch("jobs.worker.job_queue", return_value=JobQueue(sqs, worker_settings.queue_urls)),
    ):
        result = lambda_handler(
            {"Records": [sqs_record(first, message_id="a"), sqs_record(second, message_id="b")]},
            DeadlineContext(0.5),
        )
    assert result["batchItemFailures"] == [{"itemIdentifier": "b"}]
    assert job(first_id)["status"] == "COMPLETE" and job(second_id)["status"] == "PENDING"


def test_a_late_record_not_from_a_job_queue_is_sent_back_except_on_its_last_attempt(stack: Stack) -> None:
    """Invoked directly (no job queue to re-queue to): sent back as a failure; on its last
    attempt it runs, whatever is left."""
    from jobs.worker import lambda_handler
    from tests.unit.conftest import DeadlineContext

    ids, records = [], []
    for message_id, receives in (("a", 1), ("b", 1), ("c", MAX_RECEIVE)):
        job_id, body = new_job(stack)
        ids.append(job_id)
        record = sqs_record(body, receives, message_id=message_id)
        records.append({**record, "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:elsewhere"})
    with mock.patch("jobs.service.run_action", lambda job_input: time.sleep(0.3) or "done"):
        result = lambda_handler({"Records": records}, DeadlineContext(0.5))
    assert result["batchItemFailures"] == [{"itemIdentifier": "b"}]
    assert [job(job_id)["status"] for job_id in ids] == ["COMPLETE", "PENDING", "COMPLETE"]


@pytest.mark.parametrize("receives", [-1, "2", 2.0, True, 1001])
def test_a_message_carrying_a_bad_receive_count_is_poison(stack: Stack, receives: object) -> None:
    body = json.dumps({"owner_id": "user-a", "job_id": "01890000-0000-7000-8000-000000000000", "receives": receives})
    assert call_worker(sqs_record(body, message_id="bad")) == ["bad"]
