"""Job status events on the deployed local stack: the jobs table's stream, read by the local
runtime's stream poller, invokes the publisher, which puts `Job Status Changed` events on the
stack's bus; a rule of this test's own sends them to this test's own SQS queue.

- every transition of a job arrives with its fields (a COMPLETE one its result key, a FAILED
  one its error), and the operators' topic gets the FAILED event, which a subscriber selects
  with a filter policy on the message body;
- the issue's test: jobs submitted while the publisher's process is killed mid-stream give
  every expected transition of every job, nothing missing; duplicates share their event id
  (the issue's 500 jobs).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.support import User, finished_count, records_of, wait_for
from tooling.local_stack import LocalStack

DETAIL_TYPE = "Job Status Changed"
LIFE = ["PENDING", "PROCESSING", "COMPLETE"]


class EventCollector:
    """A queue of this test's own, fed by its own rule on the bus, drained in the background
    (moto's SQS slows down as a queue grows) into a list of events."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sqs = stack.client("sqs")
        self.events_client = stack.client("events")
        name = f"e2e-events-{uuid.uuid4().hex[:8]}"
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.bus = stack.outputs["event_bus_name"]
        self.rule = name
        self.events_client.put_rule(
            Name=self.rule,
            EventBusName=self.bus,
            EventPattern=json.dumps({"source": [stack.outputs["event_source"]], "detail-type": [DETAIL_TYPE]}),
        )
        self.events_client.put_targets(Rule=self.rule, EventBusName=self.bus, Targets=[{"Id": "queue", "Arn": arn}])
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                    "Messages", []
                )
                if messages:
                    self.sqs.delete_message_batch(
                        QueueUrl=self.url,
                        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                    )
            except Exception:  # the backend is stopping: the test reports what it saw
                self._stop.wait(0.5)
                continue
            with self._lock:
                self.events.extend(json.loads(m["Body"]) for m in messages)

    def of(self, job_ids: set[str]) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["detail"].get("job_id") in job_ids]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        with contextlib.suppress(Exception):
            self.events_client.remove_targets(Rule=self.rule, EventBusName=self.bus, Ids=["queue"])
            self.events_client.delete_rule(Name=self.rule, EventBusName=self.bus)
            self.sqs.delete_queue(QueueUrl=self.url)


@pytest.fixture
def collector(stack: LocalStack) -> Iterator[EventCollector]:
    found = EventCollector(stack)
    yield found
    found.close()


def transitions(events: list[dict[str, Any]]) -> dict[str, set[tuple[str | None, str]]]:
    """job id -> the (previous, new) status pairs its events carry."""
    found: dict[str, set[tuple[str | None, str]]] = {}
    for event in events:
        detail = event["detail"]
        found.setdefault(detail["job_id"], set()).add((detail["previous_status"], detail["status"]))
    return found


def expected_life() -> set[tuple[str | None, str]]:
    return {(None, "PENDING"), ("PENDING", "PROCESSING"), ("PROCESSING", "COMPLETE")}


def fail_now(stack: LocalStack, user: User, job_id: str) -> None:
    """Run a poison job's last attempt at once (as the queue would after its retries): invoke the
    worker with its message at ApproximateReceiveCount = maxReceiveCount."""
    assert stack.runtime is not None
    body = json.dumps({"owner_id": user.sub, "job_id": job_id}, separators=(",", ":"))
    record = {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "direct",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(stack.outputs["max_receive_count"]), "SentTimestamp": "0"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:direct",
        "awsRegion": "us-east-1",
    }
    result = stack.runtime.invoke(stack.outputs["worker_function_name"], {"Records": [record]}, 30)
    assert result.ok, result.error


def test_each_transition_arrives_with_its_fields_and_failures_reach_the_operators_topic(
    stack: LocalStack, make_user: Callable[[], User], collector: EventCollector
) -> None:
    user = make_user()
    # the operators' topic: a subscriber that takes only this user's events, by the message body
    sns, sqs = stack.client("sns"), stack.client("sqs")
    inbox = sqs.create_queue(QueueName=f"e2e-operators-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=stack.outputs["job_events_topic_arn"],
        Protocol="sqs",
        Endpoint=inbox_arn,
        Attributes={
            "FilterPolicyScope": "MessageBody",
            "FilterPolicy": json.dumps({"detail": {"owner_id": [user.sub]}}),
        },
    )

    fine = [user.api.submit("demo", "hello", str(i), name=f"events-{i}") for i in range(3)]
    poison = user.api.submit("json-format", "{not json", "x", name="events-poison")
    for job_id in fine:
        assert user.api.wait_terminal(job_id)["status"] == "COMPLETE"
    # the poison job's first attempt fails (its message comes back later); its last one now
    ddb, table = stack.client("dynamodb"), stack.outputs["table_name"]

    def released() -> bool:
        [record] = [r for r in records_of(ddb, table, user.sub) if r["job_id"] == poison]
        return record["status"] == "PROCESSING" and bool(record.get("error")) and int(record["lease_until"]) == 0

    wait_for(released, 60, "the poison job's first attempt to fail")
    fail_now(stack, user, poison)
    failed_job = user.api.job(poison)
    assert failed_job["status"] == "FAILED"

    wanted = {*fine, poison}
    expected = {job_id: expected_life() for job_id in fine}
    expected[poison] = {(None, "PENDING"), ("PENDING", "PROCESSING"), ("PROCESSING", "FAILED")}
    wait_for(lambda: transitions(collector.of(wanted)) == expected or None, 60, "every job's events")

    events = collector.of(wanted)
    assert {(e["source"], e["detail-type"]) for e in events} == {(stack.outputs["event_source"], DETAIL_TYPE)}
    details = {(e["detail"]["job_id"], e["detail"]["status"]): e["detail"] for e in events}
    for job_id in fine:
        record = user.api.job(job_id)
        complete = details[(job_id, "COMPLETE")]
        assert complete["result_key"] == record["S3FileKey"]
        assert complete["owner_id"] == user.sub and complete["action"] == "demo" and complete["priority"] == "normal"
        assert complete["created_at"] == record["createdAt"] and complete["changed_at"] == record["updatedAt"]
        assert "error" not in complete
    failed = details[(poison, "FAILED")]
    assert failed["error"] == failed_job["error"] and "not valid JSON" in failed["error"]
    assert "result_key" not in failed
    # one event per stream record: the ids of different transitions differ
    assert len({e["detail"]["event_id"] for e in events}) == len({(d["job_id"], d["status"]) for d in details.values()})

    # the operators' topic: the FAILED event (and no other status: COMPLETE is off locally), as the body
    def operator_events() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        return [json.loads(json.loads(m["Body"])["Message"]) for m in got]

    received = wait_for(operator_events, 30, "the FAILED event on the operators' topic")
    assert {(e["detail"]["job_id"], e["detail"]["status"]) for e in received} == {(poison, "FAILED")}
    assert received[0]["detail"]["error"] == failed_job["error"]


# ----------------------------------------------------------------------------- the test

LOAD_JOBS = 500  # the figure
LOAD_USERS = 4
LOAD_CLIENTS = 8


def busy_pids(stack: LocalStack, function_name: str) -> list[int]:
    """The function's execution environments running an invocation right now."""
    assert stack.runtime is not None
    pool = stack.runtime.pool(function_name)
    with pool._lock:
        busy = [env for env in pool._all if env not in pool._idle]
    return [env.process.pid for env in busy if env.process is not None and env.process.poll() is None]


@pytest.mark.slow
def test_every_transition_of_many_jobs_arrives_when_the_publisher_is_killed_mid_stream(
    stack: LocalStack, make_user: Callable[[], User], collector: EventCollector, console: Any
) -> None:
    users = [make_user() for _ in range(LOAD_USERS)]
    publisher = stack.outputs["publisher_function_name"]

    def submit(i: int) -> str:
        return users[i % LOAD_USERS].api.submit("demo", "left", str(i), name=f"events-load-{i}")

    killed: list[int] = []

    def kill_when_busy() -> None:
        pids = wait_for(lambda: busy_pids(stack, publisher), 120, "the publisher busy with a batch", 0.005)
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    with concurrent.futures.ThreadPoolExecutor(LOAD_CLIENTS) as pool:
        first = list(pool.map(submit, range(LOAD_JOBS // 5)))
        killer.start()  # the stream is busy now: kill the publisher during one of its batches
        rest = list(pool.map(submit, range(LOAD_JOBS // 5, LOAD_JOBS)))
    killer.join(130)
    job_ids = set(first + rest)
    assert len(job_ids) == LOAD_JOBS
    assert killed, "the publisher was never caught mid-batch"

    ddb, table = stack.client("dynamodb"), stack.outputs["table_name"]
    owners = [u.sub for u in users]
    wait_for(
        lambda: sum(finished_count(ddb, table, owner) for owner in owners) >= LOAD_JOBS,
        600,  # a bound, not a wait: on CI they finish within a minute
        f"the {LOAD_JOBS} jobs to finish",
        interval=2.0,
    )
    expected = expected_life()

    def missing() -> dict[str, int]:
        """How many jobs lack each expected transition (empty: everything arrived)."""
        found = transitions(collector.of(job_ids))
        lacking: dict[str, int] = {}
        for job_id in job_ids:
            for pair in expected - found.get(job_id, set()):
                lacking[f"{pair[0]}->{pair[1]}"] = lacking.get(f"{pair[0]}->{pair[1]}", 0) + 1
        return lacking

    try:
        wait_for(lambda: not missing(), 180, f"every transition of the {LOAD_JOBS} jobs", interval=1.0)
    except TimeoutError:
        pollers = stack.runtime.stream_pollers() if stack.runtime else []
        stats = [(p.batches, p.invocations, p.records, p.sent_to_destination) for p in pollers]
        pytest.fail(
            f"transitions missing (jobs lacking each): {missing()}; stream pollers (batches, "
            f"invocations, records, sent to the failures queue): {stats}"
        )
    events = collector.of(job_ids)
    found = transitions(events)
    # exactly the expected transitions per job: nothing missing, nothing else
    assert {job_id: pairs for job_id, pairs in found.items() if pairs != expected} == {}
    # duplicates (a batch retried after the kill) carry the id of the event they repeat
    ids: dict[tuple[str, str], set[str]] = {}
    for event in events:
        detail = event["detail"]
        ids.setdefault((detail["job_id"], detail["status"]), set()).add(detail["event_id"])
    assert {key: found_ids for key, found_ids in ids.items() if len(found_ids) != 1} == {}
    assert console.matching("stream poller", publisher, "signal: 9"), "the killed batch was not retried"
    duplicates = len(events) - len(ids)
    print(f"\n{LOAD_JOBS} jobs, publisher killed once: {len(events)} events, {duplicates} duplicate(s)")
