"""Job status events: which writes publish (the rule in jobs.events, on real writes of the api
and the worker), what the detail says, and the publisher's partial failures and retries."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from jobs.bus import EventBus
from jobs.events import StreamChange, status_detail
from jobs.settings import EventSettings, SettingsError
from tests.unit.conftest import (
    REGION,
    TABLE,
    VALID_JOB,
    FakeContext,
    Stack,
    api_event,
    call_api,
    call_worker,
    sqs_record,
)

BUS = "jobs-test-events"
SOURCE = "jobs.jobs"


def change(
    event_name: str, new: dict[str, Any] | None, old: dict[str, Any] | None = None, seq: str = "100", eid: str = "e-1"
) -> StreamChange:
    return StreamChange(event_id=eid, event_name=event_name, sequence_number=seq, old_image=old, new_image=new)


BASE = {
    "owner_id": "user-a",
    "job_id": "job-1",
    "name": "n",
    "action": "demo",
    "priority": "high",
    "createdAt": "2026-01-01T00:00:00.000Z",
    "updatedAt": "2026-01-01T00:00:05.000Z",
}


# ----------------------------------------------------------------------------- the rule


def test_an_insert_publishes_its_status_with_no_previous_status() -> None:
    detail = status_detail(change("INSERT", {**BASE, "status": "PENDING"}, eid="abc"))
    assert detail == {
        "event_id": "abc",
        "job_id": "job-1",
        "owner_id": "user-a",
        "name": "n",
        "action": "demo",
        "priority": "high",
        "previous_status": None,
        "status": "PENDING",
        "created_at": "2026-01-01T00:00:00.000Z",
        "changed_at": "2026-01-01T00:00:05.000Z",
    }


@pytest.mark.parametrize(
    ("event_name", "old", "new"),
    [
        ("MODIFY", {"status": "PROCESSING"}, {"status": "PROCESSING", "progress": {"fraction": 0.5}}),
        ("MODIFY", {"status": "PROCESSING"}, {"status": "PROCESSING", "cancelRequestedAt": "t"}),
        ("MODIFY", {"status": "COMPLETE"}, {"status": "COMPLETE", "webhook": {"state": "delivered"}}),
        ("REMOVE", {"status": "COMPLETE"}, None),
    ],
    ids=["progress", "cancel-request", "webhook-state", "ttl-remove"],
)
def test_writes_that_change_no_status_publish_nothing(event_name: str, old: dict, new: dict | None) -> None:
    assert status_detail(change(event_name, None if new is None else {**BASE, **new}, {**BASE, **old})) is None


def test_a_modify_publishes_previous_and_new_status() -> None:
    detail = status_detail(change("MODIFY", {**BASE, "status": "CANCELLED"}, {**BASE, "status": "SCHEDULED"}))
    assert detail is not None
    assert (detail["previous_status"], detail["status"]) == ("SCHEDULED", "CANCELLED")
    assert not {"result_key", "error", "callback_url"} & set(detail)


def test_result_key_only_when_complete_and_error_only_when_failed() -> None:
    done = status_detail(
        change(
            "MODIFY",
            {**BASE, "status": "COMPLETE", "S3FileKey": "user-a/2026-01-01/job-1.txt"},
            {"status": "PROCESSING"},
        )
    )
    assert done is not None and done["result_key"] == "user-a/2026-01-01/job-1.txt" and "error" not in done
    # a retried job keeps the error of its earlier attempt on the record until it completes
    failed = status_detail(
        change("MODIFY", {**BASE, "status": "FAILED", "error": "boom", "S3FileKey": "x"}, {"status": "PROCESSING"})
    )
    assert failed is not None and failed["error"] == "boom" and "result_key" not in failed
    processing = status_detail(
        change("MODIFY", {**BASE, "status": "PROCESSING", "error": "earlier"}, {"status": "PENDING"})
    )
    assert processing is not None and "error" not in processing


def test_callback_url_when_the_job_has_one_and_priority_defaults_to_normal() -> None:
    new = {k: v for k, v in BASE.items() if k != "priority"}
    detail = status_detail(change("INSERT", {**new, "status": "PENDING", "callbackUrl": "https://example.com/hook"}))
    assert detail is not None
    assert detail["callback_url"] == "https://example.com/hook" and detail["priority"] == "normal"


# ----------------------------------------------------------------------------- real writes


def stream_event(stack: Stack) -> dict[str, Any]:
    """Everything the jobs table's stream holds, as the Lambda event of one batch."""
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = stack.ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    for record in records:
        record["eventSourceARN"] = arn
        record["dynamodb"]["ApproximateCreationDateTime"] = record["dynamodb"][
            "ApproximateCreationDateTime"
        ].timestamp()
    return {"Records": records}


class RecordingEvents:
    """An EventBridge client that records PutEvents and fails what ``fail`` says."""

    def __init__(self, fail: Any = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.fail = fail or (lambda call, index, entry: None)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        results = []
        for index, entry in enumerate(Entries):
            code = self.fail(len(self.calls), index, entry)
            results.append(
                {"ErrorCode": code, "ErrorMessage": "no"} if code else {"EventId": f"id-{len(self.calls)}-{index}"}
            )
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}

    def details(self) -> list[dict[str, Any]]:
        return [json.loads(e["Detail"]) for call in self.calls for e in call]


def run_publisher(event: dict[str, Any], client: Any) -> list[str]:
    from jobs import publisher

    with (
        mock.patch.object(publisher, "event_bus", lambda: EventBus(client, attempts=3)),
        mock.patch("jobs.bus._back_off"),
    ):
        result = publisher.lambda_handler(event, FakeContext())
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


@pytest.fixture
def streamed(stack: Stack) -> Stack:
    stack.ddb.update_table(
        TableName=TABLE, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    return stack


def submit(stack: Stack, **fields: str) -> tuple[str, str]:
    resp = call_api(api_event("POST", "/job", body={**VALID_JOB, **fields}))
    assert resp.status == 202, resp.body
    job_id = resp.body["job_id"]
    [body] = [m["Body"] for m in stack.messages() if json.loads(m["Body"])["job_id"] == job_id]
    return job_id, body


def test_the_api_and_worker_writes_publish_each_transition_once(streamed: Stack) -> None:
    ok, ok_body = submit(streamed, name="fine")
    flaky, flaky_body = submit(streamed, name="flaky", action="json-format", context1="{not json")
    cancelled = call_api(api_event("POST", "/job", body={**VALID_JOB, "delay_seconds": 60})).body["job_id"]
    assert call_api(api_event("DELETE", "/job", query={"job_id": cancelled})).status == 200
    assert call_worker(sqs_record(ok_body)) == []
    call_worker(sqs_record(flaky_body, receive_count=1))  # fails, released: PROCESSING stays PROCESSING
    call_worker(sqs_record(flaky_body, receive_count=3))  # the last attempt: FAILED

    client = RecordingEvents()
    assert run_publisher(stream_event(streamed), client) == []
    entries = [e for call in client.calls for e in call]
    assert all(len(call) <= 10 for call in client.calls)
    assert {(e["EventBusName"], e["Source"], e["DetailType"]) for e in entries} == {(BUS, SOURCE, "Job Status Changed")}
    by_job: dict[str, list[tuple[str | None, str]]] = {}
    for detail in client.details():
        by_job.setdefault(detail["job_id"], []).append((detail["previous_status"], detail["status"]))
    assert by_job[ok] == [(None, "PENDING"), ("PENDING", "PROCESSING"), ("PROCESSING", "COMPLETE")]
    # the released attempt and the take-over claim change no status: no event for them
    assert by_job[flaky] == [(None, "PENDING"), ("PENDING", "PROCESSING"), ("PROCESSING", "FAILED")]
    assert by_job[cancelled] == [(None, "SCHEDULED"), ("SCHEDULED", "CANCELLED")]
    details = {(d["job_id"], d["status"]): d for d in client.details()}
    assert details[(ok, "COMPLETE")]["result_key"].endswith(f"/{ok}.txt")
    assert "not valid JSON" in details[(flaky, "FAILED")]["error"]
    assert len({d["event_id"] for d in client.details()}) == len(entries)  # one id per stream record


def test_the_same_stream_records_again_give_events_with_the_same_ids(streamed: Stack) -> None:
    submit(streamed)
    event = stream_event(streamed)
    first, second = RecordingEvents(), RecordingEvents()
    run_publisher(event, first)
    run_publisher(event, second)
    assert [d["event_id"] for d in first.details()] == [d["event_id"] for d in second.details()]
    assert [d["event_id"] for d in first.details()] == [r["eventID"] for r in event["Records"]]


# ----------------------------------------------------------------------------- the publisher


def synthetic_batch(count: int) -> dict[str, Any]:
    """``count`` INSERT records of distinct jobs (DynamoDB JSON images), sequence numbers 1000.."""
    records = []
    for i in range(count):
        image = {k: {"S": v} for k, v in {**BASE, "job_id": f"job-{i}", "status": "PENDING"}.items()}
        records.append(
            {
                "eventID": f"e-{i}",
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
                "dynamodb": {
                    "Keys": {},
                    "NewImage": image,
                    "SequenceNumber": str(1000 + i),
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        )
    return {"Records": records}


@pytest.mark.usefixtures("stack")
def test_entries_putevents_reports_failed_are_retried_alone() -> None:
    # the first call fails entries 2 and 7 (throttled); the retry puts them
    client = RecordingEvents(
        lambda call, index, entry: "ThrottlingException" if call == 1 and index in (2, 7) else None
    )
    assert run_publisher(synthetic_batch(10), client) == []
    assert [len(call) for call in client.calls] == [10, 2]
    assert [json.loads(e["Detail"])["job_id"] for e in client.calls[1]] == ["job-2", "job-7"]


@pytest.mark.usefixtures("stack")
def test_events_are_put_ten_per_call_in_stream_order() -> None:
    client = RecordingEvents()
    assert run_publisher(synthetic_batch(23), client) == []
    assert [len(call) for call in client.calls] == [10, 10, 3]
    assert [d["job_id"] for d in client.details()] == [f"job-{i}" for i in range(23)]


@pytest.mark.usefixtures("stack")
def test_an_entry_never_put_fails_its_record_and_every_later_one() -> None:
    # job-13 (second chunk) is refused on every attempt: the batch resumes from its record
    client = RecordingEvents(lambda call, index, entry: "InternalFailure" if '"job-13"' in entry["Detail"] else None)
    failed = run_publisher(synthetic_batch(25), client)
    assert failed == [str(1000 + i) for i in range(13, 25)]
    assert [len(call) for call in client.calls] == [10, 10, 1, 1]  # chunk 3 never sent
    put = {d["job_id"] for d in client.details()} - {"job-13"}
    assert {f"job-{i}" for i in range(13)} <= put


@pytest.mark.usefixtures("stack")
def test_a_putevents_call_that_errors_is_retried_then_fails_the_records() -> None:
    class Broken:
        calls = 0

        def put_events(self, Entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
            Broken.calls += 1
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents")

    assert run_publisher(synthetic_batch(3), Broken()) == ["1000", "1001", "1002"]
    assert Broken.calls == 3


@pytest.mark.usefixtures("stack")
def test_records_that_publish_nothing_are_not_failures() -> None:
    batch = synthetic_batch(2)
    batch["Records"][1]["eventName"] = "REMOVE"
    client = RecordingEvents()
    assert run_publisher(batch, client) == []
    assert [d["job_id"] for d in client.details()] == ["job-0"]


def test_publisher_settings_name_what_is_missing() -> None:
    with pytest.raises(SettingsError, match="EVENT_BUS_NAME"):
        EventSettings.from_env({"EVENT_SOURCE": "jobs.jobs"})
    with pytest.raises(SettingsError, match="EVENT_PUT_ATTEMPTS"):
        EventSettings.from_env({"EVENT_SOURCE": "s", "EVENT_BUS_NAME": "b", "EVENT_PUT_ATTEMPTS": "0"})
    assert EventSettings.from_env({"EVENT_SOURCE": "s", "EVENT_BUS_NAME": "b"}).put_attempts == 4
