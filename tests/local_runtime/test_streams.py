"""DynamoDB stream event source mappings (tooling/local_runtime/streams.py), against a stream
served like moto's DynamoDB Streams API: the event's shape, batch size, partial batch failures
(resumed from the first failed sequence number), bisect on a crash, retries exhausted ending at
the on-failure destination, and the position kept for a poller created again."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tooling.local_runtime.discovery import StreamMappingConfig
from tooling.local_runtime.functions import InvocationResult
from tooling.local_runtime.logs import LogRouter
from tooling.local_runtime.streams import StreamPoller

STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:failures"
FIRST = 1000
MAPPING = StreamMappingConfig(
    uuid="11111111-2222-3333-4444-555555555555",
    function_name="publisher",
    stream_arn=STREAM,
    batch_size=4,
    batching_window=0,
    starting_position="TRIM_HORIZON",
    report_batch_item_failures=True,
    bisect_on_error=True,
    maximum_retry_attempts=2,
    maximum_record_age=3600,
    on_failure_arn=QUEUE_ARN,
    enabled=True,
)


class FakeStreams:
    """One shard of ``count`` records, read with moto's iterator semantics."""

    def __init__(self, count: int) -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.records = [
            {
                "eventID": f"e{i}",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": now,
                    "Keys": {"id": {"S": str(i)}},
                    "NewImage": {"id": {"S": str(i)}, "blob": {"B": b"\x00\x01"}},
                    "SequenceNumber": str(FIRST + i),
                    "SizeBytes": 10,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
            for i in range(count)
        ]

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        assert StreamArn == STREAM
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str, **kw: Any) -> dict[str, Any]:
        start = {"TRIM_HORIZON": FIRST, "LATEST": FIRST + len(self.records)}.get(ShardIteratorType)
        if ShardIteratorType == "AT_SEQUENCE_NUMBER":
            start = int(kw["SequenceNumber"])
        return {"ShardIterator": str(start)}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        start = int(ShardIterator) - FIRST
        got = self.records[start : start + Limit]
        return {"Records": got, "NextShardIterator": str(FIRST + start + len(got))}


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def get_queue_url(self, QueueName: str, QueueOwnerAWSAccountId: str) -> dict[str, str]:
        return {"QueueUrl": f"http://q/{QueueOwnerAWSAccountId}/{QueueName}"}

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, str]:
        self.sent.append(json.loads(MessageBody))
        return {"MessageId": "m"}


class Function:
    """The invoked function: records each batch's sequence numbers, answers what ``answer`` says."""

    def __init__(self, answer: Callable[[list[str], int], InvocationResult]) -> None:
        self.batches: list[list[str]] = []
        self.events: list[dict[str, Any]] = []
        self.answer = answer
        self.lock = threading.Lock()

    def __call__(self, name: str, event: dict[str, Any], wait: float | None) -> InvocationResult:
        json.dumps(event)  # the event must be JSON, as Lambda's is
        seqs = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        with self.lock:
            self.batches.append(seqs)
            self.events.append(event)
            return self.answer(seqs, len(self.batches))

    def delivered(self) -> list[str]:
        return [s for batch in self.batches for s in batch]


def ok(payload: Any = None) -> InvocationResult:
    return InvocationResult("publisher", "r", payload={"batchItemFailures": []} if payload is None else payload)


def crashed() -> InvocationResult:
    return InvocationResult("publisher", "r", error={"errorType": "Runtime.ExitError", "errorMessage": "signal: 9"})


def run(poller: StreamPoller, done: Callable[[], bool], timeout: float = 20.0) -> None:
    poller.start()
    try:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "the poller did not finish in time"
            time.sleep(0.02)
    finally:
        poller.stop()


def poller(
    function: Function, streams: FakeStreams, sqs: FakeSqs, mapping: StreamMappingConfig = MAPPING, **kw: Any
) -> StreamPoller:
    return StreamPoller(mapping, function, streams, sqs, LogRouter(None, console=None), "arn:fn", **kw)


def test_batches_are_real_stream_events_of_at_most_batch_size() -> None:
    streams, sqs = FakeStreams(10), FakeSqs()
    function = Function(lambda seqs, n: ok())
    stream_poller = poller(function, streams, sqs)
    run(stream_poller, lambda: len(function.delivered()) == 10)
    assert function.delivered() == [str(FIRST + i) for i in range(10)]  # in order, once
    assert all(len(b) <= 4 for b in function.batches)
    record = function.events[0]["Records"][0]
    assert record["eventID"] == "e0" and record["eventName"] == "INSERT" and record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == STREAM and record["awsRegion"] == "us-east-1"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    assert record["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}  # binary as base64, as in Lambda's JSON
    assert stream_poller.checkpoints == {"shard-1": str(FIRST + 10)}


def test_a_partial_failure_is_retried_from_the_first_failed_record() -> None:
    streams, sqs = FakeStreams(4), FakeSqs()

    def answer(seqs: list[str], n: int) -> InvocationResult:
        if n == 1:  # the second and fourth failed: retry from the second
            return ok({"batchItemFailures": [{"itemIdentifier": seqs[3]}, {"itemIdentifier": seqs[1]}]})
        return ok()

    function = Function(answer)
    run(poller(function, streams, sqs), lambda: len(function.batches) >= 2)
    assert function.batches == [["1000", "1001", "1002", "1003"], ["1001", "1002", "1003"]]
    assert sqs.sent == []


def test_a_crashed_batch_is_bisected_and_every_record_delivered() -> None:
    streams, sqs = FakeStreams(4), FakeSqs()
    function = Function(lambda seqs, n: crashed() if n == 1 else ok())
    run(poller(function, streams, sqs), lambda: len(function.batches) >= 3)
    assert function.batches == [["1000", "1001", "1002", "1003"], ["1000", "1001"], ["1002", "1003"]]


def test_retries_exhausted_describe_the_batch_at_the_destination_and_the_shard_moves_on() -> None:
    streams, sqs = FakeStreams(5), FakeSqs()
    mapping = replace(MAPPING, bisect_on_error=False)
    # record 1001 is refused every time; the rest of the stream goes on after it
    function = Function(
        lambda seqs, n: ok({"batchItemFailures": [{"itemIdentifier": "1001"}]}) if "1001" in seqs else ok()
    )
    run(poller(function, streams, sqs, mapping), lambda: "1004" in function.delivered())
    # first try, then retries 1 and 2 from 1001; then given up
    assert function.batches[:3] == [
        ["1000", "1001", "1002", "1003"],
        ["1001", "1002", "1003"],
        ["1001", "1002", "1003"],
    ]
    [message] = sqs.sent
    info = message["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("1001", "1003", 3)
    assert info["streamArn"] == STREAM and info["shardId"] == "shard-1"
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert function.batches[-1] == ["1004"]


def test_a_poller_created_again_goes_on_from_the_kept_position() -> None:
    streams, sqs = FakeStreams(6), FakeSqs()
    checkpoints: dict[str, str] = {}
    first = Function(lambda seqs, n: ok())
    run(poller(first, streams, sqs, checkpoints=checkpoints), lambda: len(first.delivered()) == 6)
    streams.records += FakeStreams(8).records[6:]
    again = Function(lambda seqs, n: ok())
    run(poller(again, streams, sqs, checkpoints=checkpoints), lambda: len(again.delivered()) == 2)
    assert again.delivered() == ["1006", "1007"]
