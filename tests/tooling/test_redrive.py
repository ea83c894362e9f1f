"""`invoke redrive` against the embedded backend: dead letters of FAILED jobs go back, the rest stay.

The jobs are written and failed through the data layer the worker uses (``jobs.store``), and the
redriven job is run by the worker's own processor, so the record the task writes is the one
the worker reads.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest

from jobs.model import Job, Priority, Status, iso, new_job_id, utc_now
from jobs.quotas import Limits
from jobs.service import JobMessage, JobProcessor, Outcome, RetryLater
from jobs.settings import Settings
from jobs.store import JobTable, ResultBucket
from tests.support import create_jobs_table
from tooling import redrive
from tooling.errors import OperatorError

MAX_RECEIVE = 3


def submit(table: JobTable, owner: str, context1: str = "alpha", priority: Priority = Priority.NORMAL) -> Job:
    now = utc_now()
    job = Job(
        owner_id=owner,
        job_id=new_job_id(),
        name="redrive test",
        action="process-data",
        context1=context1,
        context2="beta",
        status=Status.PENDING,
        created_at=iso(now),
        updated_at=iso(now),
        expires_at=int(now.timestamp()) + 86_400,
        priority=priority,
    )
    table.create(job, None, int(now.timestamp()))
    return job


def fail_finally(table: JobTable, job: Job, error: str, attempts: int = MAX_RECEIVE) -> Job:
    """What the worker leaves behind: ``attempts`` claims, then FAILED with the error."""
    now = utc_now()
    for n in range(attempts):
        claimed = table.claim(job.owner_id, job.job_id, f"lease{n}", 0, iso(now), int(now.timestamp()))
        assert claimed is not None
    failed = table.fail(job.owner_id, job.job_id, f"lease{attempts - 1}", error, iso(utc_now()), int(now.timestamp()))
    assert failed is not None and failed.status is Status.FAILED and failed.attempts == attempts
    return failed


def body_of(job: Job) -> str:
    return json.dumps({"owner_id": job.owner_id, "job_id": job.job_id}, separators=(",", ":"))


def visible(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every visible message of the queue, left visible (a test-only look)."""
    found: dict[str, dict[str, Any]] = {}
    for _ in range(10):
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        new = [m for m in got if m["MessageId"] not in found]
        if not new:
            break
        found.update((m["MessageId"], m) for m in new)
    return list(found.values())


@pytest.fixture
def stack(access, unique) -> dict[str, Any]:
    """What redrive touches, as terraform builds it: the job queue, its DLQ and the jobs table.

    (The part of ``seeded_stack`` that redrive reads, without its functions and log groups.)
    """
    ddb, sqs = access.client("dynamodb"), access.client("sqs")
    prefix = f"r{unique}"
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-jobs",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE})},
    )["QueueUrl"]
    create_jobs_table(ddb, f"{prefix}-jobs")
    outputs = {"queue_url": queue_url, "dlq_url": dlq_url, "table_name": f"{prefix}-jobs"}
    return {
        "outputs": outputs,
        "table": JobTable(ddb, outputs["table_name"]),
        "sqs": sqs,
        "dlq": dlq_url,
        "queue": queue_url,
    }


def quiet(lines: list[str]):
    return lines.append


def test_dead_letters_of_failed_jobs_move_and_their_jobs_become_pending(access, stack):
    table, sqs = stack["table"], stack["sqs"]
    jobs = [fail_finally(table, submit(table, owner), f"ActionError: boom {owner}") for owner in ("alice", "bob")]
    for job in jobs:
        sqs.send_message(QueueUrl=stack["dlq"], MessageBody=body_of(job))
    lines: list[str] = []

    report = redrive.redrive(access, stack["outputs"], out=quiet(lines), wait_seconds=0)

    assert sorted((letter.job_id, letter.moved) for letter in report.letters) == sorted((j.job_id, True) for j in jobs)
    assert len(report.moved) == 2 and report.left == []
    assert visible(sqs, stack["dlq"]) == []
    back = visible(sqs, stack["queue"])
    assert sorted(m["Body"] for m in back) == sorted(body_of(j) for j in jobs)
    for job in jobs:
        now = table.get(job.owner_id, job.job_id)
        assert now is not None
        assert now.status is Status.PENDING
        assert now.attempts == MAX_RECEIVE  # kept: the next claim counts on from it
        assert now.error is None and now.completed_at is None and now.lease_owner is None
        [entry] = now.redrives
        assert entry["error"] == f"ActionError: boom {job.owner_id}"
        assert entry["attempts"] == MAX_RECEIVE
        assert entry["failed_at"] and entry["at"] >= entry["failed_at"]
        view = now.public_view()
        assert view["status"] == "PENDING" and "error" not in view
        assert view["redrives"] == [
            {"at": entry["at"], "error": entry["error"], "attempts": MAX_RECEIVE, "failed_at": entry["failed_at"]}
        ]
        # the status index follows: the job is listed as PENDING, no longer as FAILED
        pending, _ = table.list(job.owner_id, Status.PENDING, 10, None)
        failed, _ = table.list(job.owner_id, Status.FAILED, 10, None)
        assert [j.job_id for j in pending] == [job.job_id] and failed == []
    assert any("moved" in line and jobs[0].job_id in line and "boom alice" in line for line in lines)
    assert report.summary().startswith("moved 2 dead letters")


def test_a_redriven_job_gets_a_full_set_of_deliveries_and_completes(access, stack, unique):
    """The moved message starts at ApproximateReceiveCount 1 and carries no receives: the worker's
    last-attempt test is not fooled."""
    table, sqs = stack["table"], stack["sqs"]
    s3 = access.client("s3")
    bucket = f"redrive-{unique}"
    s3.create_bucket(Bucket=bucket)
    settings = Settings(
        table_name=stack["outputs"]["table_name"],
        bucket_name=bucket,
        # the worker sends nothing: one queue stands for the three priorities'
        queue_urls={
            Priority.HIGH: stack["queue"] + "-high",
            Priority.NORMAL: stack["queue"],
            Priority.LOW: stack["queue"] + "-low",
        },
        allowed_client_id="x",
        cors_allowed_origins=("https://example.com",),
        max_receive_count=MAX_RECEIVE,
        retention_days=1,
        result_url_ttl_seconds=60,
        quota_table_name=f"{stack['outputs']['table_name']}-quotas",  # not used: the worker only frees slots
        quota_defaults=Limits(100, 5, 20),
        quota_tiers={},
    )
    processor = JobProcessor(settings, table, ResultBucket(s3, bucket))
    job = fail_finally(table, submit(table, "carol", context1="gamma delta"), "ActionError: downstream down")
    # a message the worker once re-queued for lack of time carries the receives its job used:
    # redriven, the job still gets all its deliveries
    carried = json.dumps({"owner_id": job.owner_id, "job_id": job.job_id, "receives": MAX_RECEIVE - 1})
    sqs.send_message(QueueUrl=stack["dlq"], MessageBody=carried)
    redrive.redrive(access, stack["outputs"], out=quiet([]), wait_seconds=0)

    def deliver() -> tuple[JobMessage, int]:
        [message] = sqs.receive_message(
            QueueUrl=stack["queue"], MaxNumberOfMessages=10, VisibilityTimeout=0, MessageSystemAttributeNames=["All"]
        )["Messages"]
        return JobMessage.parse(message["Body"]), int(message["Attributes"]["ApproximateReceiveCount"])

    # still failing: deliveries 1 and 2 are retried (not marked FAILED), as for a new job
    with mock.patch("jobs.service.run_action", side_effect=RuntimeError("still down")):
        for expected in (1, 2):
            message, count = deliver()
            assert count == expected
            with pytest.raises(RetryLater):
                processor.process(message, count, 30.0)
            current = table.get(job.owner_id, job.job_id)
            assert current is not None and current.status is Status.PROCESSING
    # fixed: the third delivery runs it to COMPLETE
    message, count = deliver()
    assert count == 3
    result = processor.process(message, count, 30.0)
    assert result.outcome == Outcome.COMPLETED
    done = table.get(job.owner_id, job.job_id)
    assert done is not None and done.status is Status.COMPLETE
    assert done.attempts == MAX_RECEIVE + 3
    assert done.redrives[0]["error"] == "ActionError: downstream down"
    text = s3.get_object(Bucket=bucket, Key=done.s3_key)["Body"].read().decode()
    assert "gamma delta" in text


def test_dry_run_lists_the_dead_letters_and_changes_nothing(access, stack):
    table, sqs = stack["table"], stack["sqs"]
    job = fail_finally(table, submit(table, "dave"), "ValueError: bad input")
    sqs.send_message(QueueUrl=stack["dlq"], MessageBody=body_of(job))
    sqs.send_message(QueueUrl=stack["dlq"], MessageBody="not json")
    before = table.get(job.owner_id, job.job_id)
    lines: list[str] = []

    report = redrive.redrive(access, stack["outputs"], dry_run=True, out=quiet(lines), wait_seconds=0)

    by_job = {letter.job_id: letter for letter in report.letters}
    letter = by_job[job.job_id]
    assert (letter.owner_id, letter.status, letter.error, letter.attempts) == (
        "dave",
        "FAILED",
        "ValueError: bad input",
        MAX_RECEIVE,
    )
    assert letter.decision == redrive.MOVE and not letter.moved
    assert by_job[None].decision == redrive.LEAVE and by_job[None].reason == "not a job message"
    assert len(report.to_move) == 1 and len(report.left) == 1 and report.moved == []
    # nothing changed, and the dead letters are visible again at once (not held for HOLD_SECONDS)
    assert table.get(job.owner_id, job.job_id) == before
    assert sorted(m["Body"] for m in visible(sqs, stack["dlq"])) == sorted([body_of(job), "not json"])
    assert visible(sqs, stack["queue"]) == []
    assert any(line.lstrip().startswith("would move") and "dave" in line and "bad input" in line for line in lines)
    assert report.summary().startswith("dry run: 2 dead letters") and "Nothing was changed." in report.summary()


def test_dead_letters_of_missing_unfinished_or_finished_jobs_and_other_messages_stay(access, stack):
    table, sqs = stack["table"], stack["sqs"]
    failed = fail_finally(table, submit(table, "erin"), "boom")
    complete = submit(table, "erin")
    table.claim(complete.owner_id, complete.job_id, "l", 0, iso(utc_now()), 0)
    table.complete(complete.owner_id, complete.job_id, "l", "erin/x.txt", iso(utc_now()))
    never_failed = submit(table, "erin")  # PENDING with a dead letter: the worker could not write FAILED
    missing = {"owner_id": "erin", "job_id": new_job_id()}
    bodies = {
        "failed": body_of(failed),
        "complete": body_of(complete),
        "pending": body_of(never_failed),
        "missing": json.dumps(missing),
        "poison": "poison",
        "no_job_id": json.dumps({"owner_id": "erin"}),
    }
    for body in bodies.values():
        sqs.send_message(QueueUrl=stack["dlq"], MessageBody=body)
    complete_before = table.get(complete.owner_id, complete.job_id)

    report = redrive.redrive(access, stack["outputs"], out=quiet([]), wait_seconds=0)

    assert [letter.job_id for letter in report.moved] == [failed.job_id]
    reasons = {(letter.job_id, letter.status): letter.reason for letter in report.left}
    assert reasons == {
        (complete.job_id, "COMPLETE"): "job is COMPLETE: nothing to retry",
        (never_failed.job_id, "PENDING"): (
            "job is PENDING but was never marked FAILED: check the worker's log before retrying it"
        ),
        (missing["job_id"], None): "no such job: expired or deleted",
        (None, None): "not a job message",
    }
    assert len(report.left) == 5  # the two non-job messages share a key above
    left_bodies = sorted(m["Body"] for m in visible(sqs, stack["dlq"]))
    assert left_bodies == sorted(b for k, b in bodies.items() if k != "failed")
    assert [m["Body"] for m in visible(sqs, stack["queue"])] == [bodies["failed"]]
    assert table.get(complete.owner_id, complete.job_id) == complete_before
    still = table.get(never_failed.owner_id, never_failed.job_id)
    assert still is not None and still.status is Status.PENDING and still.redrives == []


def test_a_redrive_that_stopped_after_the_update_is_finished_by_the_next_run(access, stack):
    """Job made PENDING, then the task died before the send: the next run moves its dead letter."""
    table, sqs = stack["table"], stack["sqs"]
    ddb = access.client("dynamodb")
    job = fail_finally(table, submit(table, "frank"), "boom")
    sqs.send_message(QueueUrl=stack["dlq"], MessageBody=body_of(job))
    raw = redrive.read_job(ddb, stack["outputs"]["table_name"], job.owner_id, job.job_id)
    assert raw is not None
    assert redrive.make_pending(ddb, stack["outputs"]["table_name"], raw, "m-1", "2025-07-14T12:00:00.000Z")

    report = redrive.redrive(access, stack["outputs"], out=quiet([]), wait_seconds=0)

    [letter] = report.letters
    assert letter.moved and letter.status == "PENDING" and "earlier redrive" in letter.reason
    assert visible(sqs, stack["dlq"]) == []
    assert [m["Body"] for m in visible(sqs, stack["queue"])] == [body_of(job)]
    now = table.get(job.owner_id, job.job_id)
    assert now is not None and now.status is Status.PENDING and len(now.redrives) == 1  # not redriven twice


def test_the_state_change_is_conditional_on_the_record_read(access, stack):
    table = stack["table"]
    ddb, name = access.client("dynamodb"), stack["outputs"]["table_name"]
    job = fail_finally(table, submit(table, "gina"), "boom")
    stale = redrive.read_job(ddb, name, job.owner_id, job.job_id)
    assert stale is not None
    # the record changes after it was read (here: another redrive made it PENDING)
    assert redrive.make_pending(ddb, name, dict(stale), "m-1", iso(utc_now()))
    assert not redrive.make_pending(ddb, name, stale, "m-2", iso(utc_now()))
    now = table.get(job.owner_id, job.job_id)
    assert now is not None and [r["dead_letter"] for r in now.redrives] == ["m-1"]
    # a job that is not FAILED is never changed
    complete = submit(table, "gina")
    pending = redrive.read_job(ddb, name, complete.owner_id, complete.job_id)
    assert pending is not None
    assert not redrive.make_pending(ddb, name, pending, "m-3", iso(utc_now()))
    assert table.get(complete.owner_id, complete.job_id) == complete


def test_the_task_asks_before_moving_and_a_no_changes_nothing(access, stack):
    table, sqs = stack["table"], stack["sqs"]
    job = fail_finally(table, submit(table, "hank"), "boom")
    sqs.send_message(QueueUrl=stack["dlq"], MessageBody=body_of(job))
    questions: list[str] = []

    def decline(question: str) -> bool:
        questions.append(question)
        return False

    lines: list[str] = []
    with pytest.raises(OperatorError, match="redrive cancelled: nothing was changed"):
        redrive.run_with(access, stack["outputs"], "test", out=quiet(lines), confirm=decline)
    assert len(questions) == 1 and questions[0].startswith("Move 1 dead letters back to")
    assert lines[0].startswith(f"DLQ {stack['dlq'].rsplit('/', 1)[-1]} of env 'test': about 1 dead letters")
    assert any("would move" in line for line in lines)
    failed = table.get(job.owner_id, job.job_id)
    assert failed is not None and failed.status is Status.FAILED
    assert [m["Body"] for m in visible(sqs, stack["dlq"])] == [body_of(job)]

    report = redrive.run_with(access, stack["outputs"], "test", out=quiet(lines), yes=True)
    assert [letter.job_id for letter in report.moved] == [job.job_id]
    assert lines[-1].startswith("moved 1 dead letters")
    pending = table.get(job.owner_id, job.job_id)
    assert pending is not None and pending.status is Status.PENDING


def test_an_empty_dlq_or_one_without_failed_jobs_asks_nothing(access, stack):
    sqs = stack["sqs"]
    sqs.send_message(QueueUrl=stack["dlq"], MessageBody="poison")
    lines: list[str] = []

    def never(question: str) -> bool:
        raise AssertionError("asked")

    report = redrive.run_with(access, stack["outputs"], "test", out=quiet(lines), confirm=never)
    assert report.moved == [] and len(report.left) == 1
    assert lines[-1] == "nothing to redrive: 1 dead letters, none of a FAILED job. Nothing was changed."
    assert [m["Body"] for m in visible(sqs, stack["dlq"])] == ["poison"]


def test_parse_job_message_follows_the_worker():
    job_id = new_job_id()
    assert redrive.parse_job_message(json.dumps({"owner_id": "a", "job_id": job_id.upper()})) == ("a", job_id)
    for body in ("", "[]", "null", '{"owner_id": "", "job_id": "x"}', '{"owner_id": "a", "job_id": "nope"}'):
        assert redrive.parse_job_message(body) is None


def test_a_scheduled_jobs_message_its_schedule_dead_lettered_goes_to_the_queue(access, stack):
    """EventBridge Scheduler puts a message it could not deliver in the job DLQ; the job is
    still SCHEDULED (nothing marked it FAILED). Redrive sends it on; the worker then runs it."""
    table, sqs = stack["table"], stack["sqs"]
    job = submit(table, "carol")
    scheduled = table._update(  # as a job due later is written: SCHEDULED
        job.owner_id,
        job.job_id,
        "SET #status = :s, owner_status = :os",
        "attribute_exists(job_id)",
        {":s": "SCHEDULED", ":os": f"{job.owner_id}#SCHEDULED"},
    )
    assert scheduled is not None and scheduled.status is Status.SCHEDULED
    sqs.send_message(QueueUrl=stack["dlq"], MessageBody=body_of(job))

    report = redrive.redrive(access, stack["outputs"], out=quiet([]), wait_seconds=0)

    [letter] = report.letters
    assert letter.moved and "SCHEDULED" in letter.reason
    assert [m["Body"] for m in visible(sqs, stack["queue"])] == [body_of(job)]
    assert visible(sqs, stack["dlq"]) == []
    now = table.get(job.owner_id, job.job_id)
    assert now is not None and now.status is Status.SCHEDULED and now.redrives == []  # the worker claims it


def test_a_dead_letter_goes_back_to_its_priority_queue_grouped_by_owner(access, stack):
    """A high (or low) job's dead letter returns to the high (low) queue, with the owner as its
    fair-queue group even when the dead letter carried none (sent before fair queues)."""
    table, sqs = stack["table"], stack["sqs"]
    urls = {"normal": stack["queue"]}
    for priority in ("high", "low"):
        urls[priority] = sqs.create_queue(QueueName=f"{stack['queue'].rsplit('/', 1)[1]}-{priority}")["QueueUrl"]
    outputs = {**stack["outputs"], "queue_urls": urls}
    jobs = {}
    for owner, priority in (("alice", Priority.HIGH), ("bob", Priority.LOW), ("carol", Priority.NORMAL)):
        job = submit(table, owner, priority=priority)
        jobs[owner] = fail_finally(table, job, "ActionError: boom")
        sqs.send_message(QueueUrl=stack["dlq"], MessageBody=body_of(job))

    report = redrive.redrive(access, outputs, out=quiet([]), wait_seconds=0)

    assert len(report.moved) == 3
    for owner, priority in (("alice", "high"), ("bob", "low"), ("carol", "normal")):
        [message] = visible(sqs, urls[priority])
        assert message["Body"] == body_of(jobs[owner])
        assert message["Attributes"]["MessageGroupId"] == owner
