"""SQS event source mappings: one poller per enabled mapping, like Lambda's.

A poller long-polls the queue, gathers up to ``BatchSize`` messages within
``MaximumBatchingWindowInSeconds`` (with no window, what one receive returns), invokes the
function with an SQS event, deletes the messages that succeeded, and leaves the rest for
redelivery when their visibility timeout ends: the reported ``batchItemFailures`` with
``ReportBatchItemFailures``, the whole batch on an error, a timeout or a crash. At most
``MaximumConcurrency`` batches (default: the function's concurrency) are in flight; the
poller receives only when a slot is free, so no message waits invisibly for a slot. There is
a single receiver per mapping (moto's SQS is slow on deep queues and can hand a message out
twice under concurrent receives); the queue's redrive policy moves a message to its DLQ when
it is received after ``maxReceiveCount`` receives (moto does that on receive, as SQS does).
"""

from __future__ import annotations

import base64
import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tooling.local_runtime.discovery import EventSourceMappingConfig
from tooling.local_runtime.functions import InvocationResult
from tooling.local_runtime.logs import LogRouter

SqsInvoker = Callable[[str, dict[str, Any], float | None], InvocationResult]
RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
)


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of the SQS event Lambda builds from a received message."""
    attributes = message.get("Attributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {k: attributes[k] for k in RECORD_ATTRIBUTES if k in attributes},
        "messageAttributes": {
            name: {
                **({"stringValue": attr["StringValue"]} if "StringValue" in attr else {}),
                **({"binaryValue": base64.b64encode(attr["BinaryValue"]).decode()} if "BinaryValue" in attr else {}),
                "stringListValues": list(attr.get("StringListValues") or []),
                "binaryListValues": [base64.b64encode(v).decode() for v in attr.get("BinaryListValues") or []],
                "dataType": attr.get("DataType", "String"),
            }
            for name, attr in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_item_ids(payload: Any, batch_ids: set[str]) -> set[str] | None:
    """The item identifiers (SQS: message ids; DynamoDB streams: sequence numbers) a
    ReportBatchItemFailures response names; None if the response is invalid (then, as on AWS,
    the whole batch counts as failed)."""
    if payload is None or payload == {} or payload == "":
        return set()
    if not isinstance(payload, dict):
        return None
    failures = payload.get("batchItemFailures")
    if failures is None or failures == []:
        return set()
    if not isinstance(failures, list):
        return None
    ids: set[str] = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in batch_ids:
            return None
        ids.add(ident)
    return ids


class QueuePoller:
    """The poller of one SQS event source mapping."""

    def __init__(
        self,
        mapping: EventSourceMappingConfig,
        invoker: SqsInvoker,
        sqs: Any,
        logs: LogRouter,
        concurrency: int,
        wait_seconds: int = 2,
    ) -> None:
        self.mapping = mapping
        self._invoker = invoker
        self._sqs = sqs  # acting as the function's execution role, as the mapping does on AWS
        self.role = ""  # the ARN of the role it acts as
        self._logs = logs
        self.concurrency = max(concurrency, 1)
        self._wait_seconds = wait_seconds
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._stop = threading.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"esm-{mapping.uuid[:8]}"
        )
        self._thread: threading.Thread | None = None
        self._last_error = ""
        self.batches = 0
        self.deleted = 0
        self.left = 0

    @property
    def name(self) -> str:
        return f"{self.mapping.queue_arn.rsplit(':', 1)[-1]} -> {self.mapping.function_name}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"poller-{self.mapping.uuid[:8]}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Stop receiving new batches (returns at once; ``stop`` waits)."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop receiving; in-flight batches finish (or fail and stay on the queue)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._wait_seconds + 10)
            self._thread = None
        deadline = time.monotonic() + timeout
        for _ in range(self.concurrency):  # wait until every slot is back (in-flight batches done)
            if not self._slots.acquire(timeout=max(deadline - time.monotonic(), 0)):
                break
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _problem(self, text: str) -> None:
        if text != self._last_error:
            self._last_error = text
            self._logs.say(f"poller {self.name}: {text}")

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            handed_off = False
            try:
                batch = self._gather()
                if batch and not self._stop.is_set():
                    self._executor.submit(self._process, batch)
                    handed_off = True
                self._last_error = ""
            except (ClientError, BotoCoreError) as exc:
                self._problem(f"receive failed ({exc}); retrying")
                self._stop.wait(1.0)
            except RuntimeError:  # executor shut down while stopping
                pass
            finally:
                if not handed_off:
                    self._slots.release()

    def _gather(self) -> list[dict[str, Any]]:
        mapping = self.mapping
        batch: list[dict[str, Any]] = []
        seen: set[str] = set()
        deadline: float | None = None
        for _ in range(10_000):  # bounded; ends far sooner (batch full, window over, or stop)
            if len(batch) >= mapping.batch_size or self._stop.is_set():
                break
            if deadline is None:
                wait = self._wait_seconds
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait = min(int(remaining), 20)
            messages = self._sqs.receive_message(
                QueueUrl=mapping.queue_url,
                MaxNumberOfMessages=min(10, mapping.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            for message in messages:
                if message["MessageId"] not in seen:
                    seen.add(message["MessageId"])
                    batch.append(message)
            if deadline is None:
                if not messages or mapping.batching_window <= 0:
                    break
                deadline = time.monotonic() + mapping.batching_window
            elif not messages and wait == 0:
                break
        return batch

    def _process(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._deliver(batch)
        except (ClientError, BotoCoreError) as exc:
            self._problem(f"could not delete processed messages ({exc}); they will be redelivered")
        finally:
            self._slots.release()

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        mapping = self.mapping
        event = {"Records": [sqs_record(m, mapping.queue_arn) for m in batch]}
        self.batches += 1
        result: InvocationResult | None = None
        while not self._stop.is_set():  # a throttled batch waits for a free environment
            result = self._invoker(mapping.function_name, event, 1.0)
            if not result.throttled:
                break
            self._stop.wait(0.5)
        if result is None or not result.ok:
            self.left += len(batch)
            error = (result.error if result else None) or {"errorType": "Stopped", "errorMessage": "runtime stopping"}
            self._logs.say(
                f"poller {self.name}: batch of {len(batch)} failed "
                f"({error.get('errorType')}: {str(error.get('errorMessage'))[:200]}); "
                "left on the queue for redelivery"
            )
            return
        keep: set[str] = set()
        if mapping.report_batch_item_failures:
            failed = failed_item_ids(result.payload, {m["MessageId"] for m in batch})
            if failed is None:
                self._logs.say(
                    f"poller {self.name}: invalid batchItemFailures response {result.payload!r}; "
                    "the whole batch is left for redelivery"
                )
                self.left += len(batch)
                return
            keep = failed
        done = [m for m in batch if m["MessageId"] not in keep]
        self.left += len(batch) - len(done)
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            resp = self._sqs.delete_message_batch(
                QueueUrl=mapping.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            self.deleted += len(resp.get("Successful", []))
            for failure in resp.get("Failed", []):
                self._problem(f"delete failed: {failure.get('Code')}: {failure.get('Message')}")
