"""DynamoDB stream event source mappings: one poller per enabled mapping, like Lambda's.

moto keeps a table's stream (one shard) and serves it through the DynamoDB Streams API
(DescribeStream, GetShardIterator, GetRecords), but does not run a mapping on it (the
embedded backend stops moto's own attempt, which needs Docker). A poller reads the shard
with those calls, as the function's execution role (as the mapping does on AWS), and invokes
the function with the event Lambda builds: ``Records`` of ``eventID``, ``eventName``,
``eventSource``, ``eventSourceARN``, ``awsRegion`` and ``dynamodb`` (``Keys``, ``NewImage``,
``OldImage``, ``SequenceNumber``, ``SizeBytes``, ``StreamViewType``,
``ApproximateCreationDateTime`` in epoch seconds).

What it honours, as Lambda does for a stream:
- ``StartingPosition`` (TRIM_HORIZON or LATEST), ``BatchSize``,
  ``MaximumBatchingWindowInSeconds``; one batch of a shard at a time, in order
  (ParallelizationFactor 1).
- ``ReportBatchItemFailures``: the records before the lowest reported sequence number are done;
  the batch is retried from it. An invalid response fails the whole batch.
- A function error, a timeout or a crash (a killed process) fails the whole batch: with
  ``BisectBatchOnFunctionError`` it is split in two and each half is retried on its own.
- ``MaximumRetryAttempts`` and ``MaximumRecordAgeInSeconds``: then the batch's description
  (shard, first and last sequence numbers, ...) goes to the ``OnFailure`` destination (an SQS
  queue), sent as the function's role, and the shard moves on. Nothing is skipped silently.

The position of each shard is kept per mapping in memory (``checkpoints``): a poller
re-created by a refresh goes on from where the last one stopped. A new runtime process starts
at ``StartingPosition`` again (moto's stream has no 24-hour trim: TRIM_HORIZON replays the
table's history; the events it gives are duplicates with the same ids, which consumers drop).
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tooling.local_runtime.discovery import StreamMappingConfig
from tooling.local_runtime.functions import InvocationResult
from tooling.local_runtime.logs import LogRouter
from tooling.local_runtime.pollers import failed_item_ids

StreamInvoker = Callable[[str, dict[str, Any], float | None], InvocationResult]
IDLE_POLL_SECONDS = 0.25  # Lambda polls a shard about four times a second
SHARDS_REFRESH_SECONDS = 10.0  # how often the stream's shards are described again
RETRY_PAUSE_SECONDS = 0.5  # first pause before a failed batch is retried (doubles, up to 5 s)


def _jsonable(value: Any) -> Any:
    """A GetRecords value as it appears in the Lambda event (JSON)."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return value


def stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """One record of the DynamoDB stream event Lambda builds from a GetRecords record."""
    out = _jsonable(record)
    out["eventSourceARN"] = stream_arn
    out.setdefault("eventSource", "aws:dynamodb")
    out.setdefault("eventVersion", "1.1")
    out["awsRegion"] = stream_arn.split(":")[3]
    return dict(out)


class StreamPoller:
    """The poller of one DynamoDB stream event source mapping (every shard, one at a time)."""

    def __init__(
        self,
        mapping: StreamMappingConfig,
        invoker: StreamInvoker,
        streams: Any,
        sqs: Any,
        logs: LogRouter,
        function_arn: str,
        checkpoints: dict[str, str] | None = None,
    ) -> None:
        self.mapping = mapping
        self._invoker = invoker
        self._streams = streams  # acting as the function's execution role
        self._sqs = sqs  # the on-failure destination is written with that role too
        self._logs = logs
        self._function_arn = function_arn
        self.role = ""
        # shard id -> the sequence number of the next record to read ("" = StartingPosition)
        self.checkpoints = checkpoints if checkpoints is not None else {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""
        self.batches = 0
        self.invocations = 0
        self.records = 0
        self.sent_to_destination = 0

    @property
    def name(self) -> str:
        table = self.mapping.stream_arn.split(":table/", 1)[-1].split("/stream/", 1)[0]
        return f"{table} stream -> {self.mapping.function_name}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.mapping.uuid[:8]}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop reading; a batch in flight finishes (or fails and is read again next time)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _problem(self, text: str) -> None:
        if text != self._last_error:
            self._last_error = text
            self._logs.say(f"stream poller {self.name}: {text}")

    # -- reading -------------------------------------------------------------------------

    def _shards(self) -> list[str]:
        description = self._streams.describe_stream(StreamArn=self.mapping.stream_arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description.get("Shards", [])]

    def _iterator(self, shard: str) -> str:
        position = self.checkpoints.get(shard, "")
        if position:
            kwargs = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": position}
        else:
            kwargs = {"ShardIteratorType": self.mapping.starting_position}
        answer = self._streams.get_shard_iterator(StreamArn=self.mapping.stream_arn, ShardId=shard, **kwargs)
        return str(answer["ShardIterator"])

    def _read(self, shard: str, iterator: str) -> tuple[list[dict[str, Any]], str]:
        """Up to BatchSize records (gathered over the batching window), and the next iterator."""
        batch: list[dict[str, Any]] = []
        deadline: float | None = None
        while not self._stop.is_set():
            answer = self._streams.get_records(ShardIterator=iterator, Limit=self.mapping.batch_size - len(batch))
            iterator = answer.get("NextShardIterator") or iterator
            batch.extend(answer.get("Records", []))
            if len(batch) >= self.mapping.batch_size or self.mapping.batching_window <= 0:
                break
            if deadline is None:
                if not batch:
                    break
                deadline = time.monotonic() + self.mapping.batching_window
            if time.monotonic() >= deadline:
                break
            self._stop.wait(IDLE_POLL_SECONDS)
        return batch, iterator

    def _run(self) -> None:
        iterators: dict[str, str] = {}
        shards: list[str] = []
        described = 0.0
        while not self._stop.is_set():
            try:
                if not shards or time.monotonic() - described > SHARDS_REFRESH_SECONDS:
                    shards, described = self._shards(), time.monotonic()
                busy = False
                for shard in shards:
                    if self._stop.is_set():
                        break
                    iterator = iterators.get(shard) or self._iterator(shard)
                    batch, iterator = self._read(shard, iterator)
                    iterators[shard] = iterator
                    if batch:
                        busy = True
                        if self._process(shard, batch) is False:  # stopped mid-batch: read it again
                            iterators.pop(shard, None)
                        elif self.checkpoints.get(shard) != self._after(batch):
                            iterators.pop(shard, None)  # not everything went through: reread from the checkpoint
                self._last_error = ""
                if not busy:
                    self._stop.wait(IDLE_POLL_SECONDS)
            except (ClientError, BotoCoreError) as exc:
                iterators.clear()
                shards = []
                self._problem(f"reading the stream failed ({exc}); retrying")
                self._stop.wait(1.0)

    @staticmethod
    def _after(batch: list[dict[str, Any]]) -> str:
        return str(int(batch[-1]["dynamodb"]["SequenceNumber"]) + 1)

    # -- processing ----------------------------------------------------------------------

    def _process(self, shard: str, records: list[dict[str, Any]]) -> bool:
        """Run a batch to its end (done, or given up and described at the destination); False
        if the poller was stopped first. Moves the shard's checkpoint past what is done."""
        self.batches += 1
        pending = [records]
        while pending:
            batch = pending.pop(0)
            attempts = 0
            while True:
                if self._stop.is_set():
                    return False
                outcome, rest = self._invoke(batch)
                if outcome == "ok":
                    self.records += len(batch)
                    self.checkpoints[shard] = self._after(batch)
                    break
                if outcome == "partial":  # the records before the first failure are done
                    done = len(batch) - len(rest)
                    if done:
                        self.records += done
                        self.checkpoints[shard] = str(rest[0]["dynamodb"]["SequenceNumber"])
                    batch = rest
                attempts += 1
                condition = self._exhausted(batch, attempts)
                if condition:
                    self._give_up(shard, batch, condition, attempts)
                    self.checkpoints[shard] = self._after(batch)
                    break
                if outcome == "error" and self.mapping.bisect_on_error and len(batch) > 1:
                    half = len(batch) // 2
                    pending[:0] = [batch[:half], batch[half:]]
                    self._logs.say(
                        f"stream poller {self.name}: batch of {len(batch)} failed; bisected into {half} + "
                        f"{len(batch) - half}"
                    )
                    break
                self._stop.wait(min(RETRY_PAUSE_SECONDS * 2 ** (attempts - 1), 5.0))
        return True

    def _invoke(self, batch: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        """("ok", []) | ("partial", the records from the first reported failure on) | ("error", batch)."""
        event = {"Records": [stream_record(r, self.mapping.stream_arn) for r in batch]}
        result: InvocationResult | None = None
        while not self._stop.is_set():  # a throttled batch waits for a free environment
            self.invocations += 1
            result = self._invoker(self.mapping.function_name, event, 1.0)
            if not result.throttled:
                break
            self._stop.wait(0.5)
        if result is None or not result.ok:
            error = (result.error if result else None) or {"errorType": "Stopped", "errorMessage": "runtime stopping"}
            self._logs.say(
                f"stream poller {self.name}: batch of {len(batch)} failed "
                f"({error.get('errorType')}: {str(error.get('errorMessage'))[:200]}); it is retried"
            )
            return "error", batch
        if not self.mapping.report_batch_item_failures:
            return "ok", []
        sequence = [str(r["dynamodb"]["SequenceNumber"]) for r in batch]
        failed = failed_item_ids(result.payload, set(sequence))
        if failed is None:
            self._logs.say(
                f"stream poller {self.name}: invalid batchItemFailures response {result.payload!r}; "
                "the whole batch is retried"
            )
            return "error", batch
        if not failed:
            return "ok", []
        first = min(sequence.index(s) for s in failed)
        return "partial", batch[first:]

    def _exhausted(self, batch: list[dict[str, Any]], attempts: int) -> str | None:
        retries = self.mapping.maximum_retry_attempts
        if retries >= 0 and attempts > retries:
            return "RetryAttemptsExhausted"
        age = self.mapping.maximum_record_age
        created = batch[0]["dynamodb"].get("ApproximateCreationDateTime")
        if (
            age >= 0
            and isinstance(created, datetime.datetime)
            and (datetime.datetime.now(datetime.UTC) - created).total_seconds() > age
        ):
            return "RecordAgeExceeded"
        return None

    def _give_up(self, shard: str, batch: list[dict[str, Any]], condition: str, attempts: int) -> None:
        """Describe the batch at the OnFailure destination, as Lambda does (the records are not
        in the message: they stay readable in the stream until it trims them)."""
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]

        def when(value: Any) -> str | None:
            return value.isoformat() if isinstance(value, datetime.datetime) else None

        body = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self._function_arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": str(first["SequenceNumber"]),
                "endSequenceNumber": str(last["SequenceNumber"]),
                "approximateArrivalOfFirstRecord": when(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": when(last.get("ApproximateCreationDateTime")),
                "batchSize": len(batch),
                "streamArn": self.mapping.stream_arn,
            },
        }
        target = self.mapping.on_failure_arn
        if not target:
            self._logs.say(
                f"stream poller {self.name}: {condition}: {len(batch)} record(s) "
                f"{first['SequenceNumber']}..{last['SequenceNumber']} skipped (no on-failure destination)"
            )
            return
        try:
            _, _, _, _, account, queue_name = target.split(":", 5)
            url = self._sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self._sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
            self.sent_to_destination += len(batch)
            self._logs.say(
                f"stream poller {self.name}: {condition}: {len(batch)} record(s) "
                f"{first['SequenceNumber']}..{last['SequenceNumber']} described in {queue_name}"
            )
        except (ClientError, BotoCoreError) as exc:
            self._logs.say(f"stream poller {self.name}: could not write to the on-failure destination {target}: {exc}")
