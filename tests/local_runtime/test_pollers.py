"""SQS event source mappings: batches, partial failures, crashes, redrive to the DLQ, concurrency."""

from __future__ import annotations

import json
from typing import Any

from tests.local_runtime.conftest import VISIBILITY_TIMEOUT, Stack, wait_for
from tooling.local_runtime import LocalRuntime


def send(stack: Stack, queue: str, *actions: str) -> list[str]:
    """Send one message per action in a single SendMessageBatch; their ids, in order."""
    resp = stack.aws["sqs"].send_message_batch(
        QueueUrl=stack.queues[queue][0],
        Entries=[{"Id": str(i), "MessageBody": json.dumps({"action": a, "n": i})} for i, a in enumerate(actions)],
    )
    assert not resp.get("Failed")
    by_id = {e["Id"]: e["MessageId"] for e in resp["Successful"]}
    return [by_id[str(i)] for i in range(len(actions))]


def deliveries(ledger: list[dict[str, Any]]) -> dict[str, list[int]]:
    """message id -> the ApproximateReceiveCount of each delivery."""
    out: dict[str, list[int]] = {}
    for entry in ledger:
        for record in entry["records"]:
            out.setdefault(record["messageId"], []).append(record["receiveCount"])
    return out


def test_partial_batch_failure_redelivers_only_the_failed(stack: Stack, runtime: LocalRuntime) -> None:
    ok1, failing, ok2 = send(stack, "lr-partial", "ok", "fail_once", "ok")
    wait_for(lambda: stack.queue_depth("lr-partial") == 0, 20, "lr-partial to drain")
    ledger = stack.ledger("lr-partial")
    assert [r["messageId"] for r in ledger[0]["records"]] == [ok1, failing, ok2]  # one batch (window 1s)
    seen = deliveries(ledger)
    assert seen[ok1] == [1] and seen[ok2] == [1]  # deleted after the first delivery
    assert seen[failing] == [1, 2]  # reported in batchItemFailures: redelivered, then succeeded
    # a real SQS event record
    sample = ledger[0]["sample"]
    assert sample["messageId"] == ok1 and sample["receiptHandle"]
    assert json.loads(sample["body"]) == {"action": "ok", "n": 0}
    assert sample["eventSource"] == "aws:sqs"
    assert sample["eventSourceARN"] == stack.queues["lr-partial"][1]
    assert sample["awsRegion"] == "us-east-1"
    assert sample["md5OfBody"]
    attributes = sample["attributes"]
    assert attributes["ApproximateReceiveCount"] == "1"
    assert attributes["SentTimestamp"].isdigit() and attributes["ApproximateFirstReceiveTimestamp"].isdigit()


def test_a_crash_mid_batch_leaves_the_whole_batch(stack: Stack, runtime: LocalRuntime) -> None:
    first, crasher = send(stack, "lr-crash", "ok", "crash_once")
    wait_for(lambda: stack.queue_depth("lr-crash") == 0, 20, "lr-crash to drain")
    ledger = stack.ledger("lr-crash")
    assert len(ledger) == 2
    assert ledger[0]["pid"] != ledger[1]["pid"]  # the crashed process was replaced
    seen = deliveries(ledger)
    # the first message had been handled when the process died, but nothing was deleted
    assert seen == {first: [1, 2], crasher: [1, 2]}
    assert ledger[1]["start"] - ledger[0]["start"] >= VISIBILITY_TIMEOUT - 0.5


def test_poison_message_ends_in_the_dlq(stack: Stack, runtime: LocalRuntime) -> None:
    (poison,) = send(stack, "lr-poison", "poison")
    sqs = stack.aws["sqs"]
    dlq_url = stack.queues["lr-dlq"][0]

    def in_dlq() -> list[dict[str, Any]]:
        return sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])

    messages = wait_for(in_dlq, 25, "the poison message in the DLQ", interval=0.5)
    assert [m["MessageId"] for m in messages] == [poison]
    assert deliveries(stack.ledger("lr-poison")) == {poison: [1, 2]}  # maxReceiveCount 2
    assert stack.queue_depth("lr-poison") == 0


def test_maximum_concurrency_is_honoured(stack: Stack, runtime: LocalRuntime) -> None:
    send(stack, "lr-concurrency", *(["sleep"] * 6))
    ledger = wait_for(
        lambda: len(entries := stack.ledger("lr-concurrency")) >= 6 and entries, 30, "six sleeping invocations"
    )
    points = sorted([(e["start"], 1) for e in ledger] + [(e["end"], -1) for e in ledger])
    running = peak = 0
    for _, delta in points:
        running += delta
        peak = max(peak, running)
    assert peak == 2, f"MaximumConcurrency is 2, saw {peak} at once"
    assert all(len(e["records"]) == 1 for e in ledger)  # BatchSize 1
    wait_for(lambda: stack.queue_depth("lr-concurrency") == 0, 10, "lr-concurrency to drain")
