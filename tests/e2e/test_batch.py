"""POST /jobs/batch on the deployed local stack, through the front: every job of a batch is
recorded (BatchWriteItem), queued (SendMessageBatch) and run, with the api function acting as
its own role (the batch calls' IAM is exercised here); one Idempotency-Key covers the batch;
a batch with an invalid item, or over the caller's limits, writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import requests

from tests.e2e.conftest import E2E_QUOTA_TIERS
from tests.e2e.support import User, records_of
from tooling.local_stack import LocalStack

ACTIONS = [("demo", "text"), ("word-count", "csv"), ("process-data", "json"), ("checksum", "text")]


def batch_of(count: int, tag: str) -> list[dict[str, str]]:
    return [
        {
            "name": f"{tag}-{n}",
            "action": ACTIONS[n % len(ACTIONS)][0],
            "format": ACTIONS[n % len(ACTIONS)][1],
            "context1": f"batch item {n}",
            "context2": "the quick brown fox",
        }
        for n in range(count)
    ]


def test_a_batch_runs_every_job_and_its_key_replays_it(stack: LocalStack, alice: User) -> None:
    jobs = batch_of(30, "e2e-batch")  # two BatchWriteItem calls, three SendMessageBatch calls
    key = {"Idempotency-Key": f"e2e-batch-{uuid.uuid4()}"}
    resp = alice.api.post_batch(jobs, headers=key)
    assert resp.status_code == 202, resp.text
    items = resp.json()["jobs"]
    assert [i["status"] for i in items] == ["PENDING"] * len(jobs)
    for item, sent in zip(items, jobs, strict=True):
        done = alice.api.wait_terminal(item["job_id"], timeout=120)
        assert done["status"] == "COMPLETE", done
        assert (done["name"], done["action"], done["format"]) == (sent["name"], sent["action"], sent["format"])
        result = requests.get(done["result_url"], timeout=10)
        assert result.status_code == 200 and result.content

    again = alice.api.post_batch(jobs, headers=key)
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert [i["job_id"] for i in again.json()["jobs"]] == [i["job_id"] for i in items]
    assert {i["status"] for i in again.json()["jobs"]} == {"COMPLETE"}
    owned = records_of(stack.client("dynamodb"), stack.outputs["table_name"], alice.sub)
    assert sum(1 for r in owned if r["name"].startswith("e2e-batch-")) == len(jobs)


def test_an_invalid_or_oversized_batch_writes_nothing(stack: LocalStack, make_member: Callable[[str], User]) -> None:
    user = make_member("e2e-capped")
    cap = int(E2E_QUOTA_TIERS["e2e-capped"]["max_active_jobs"])
    table, ddb = stack.outputs["table_name"], stack.client("dynamodb")

    bad = batch_of(3, "bad")
    bad[1]["action"] = "no-such-action"
    resp = user.api.post_batch(bad)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "invalid_batch"
    assert [(i["index"], i["error"]) for i in body["items"]] == [(1, "unknown_action")]

    too_big = user.api.post_batch(batch_of(cap + 1, "big"))
    assert too_big.status_code == 400 and too_big.json()["error"] == "batch_too_large"

    assert records_of(ddb, table, user.sub) == []

    # Due in 10 minutes: SCHEDULED, they hold their slots while the test counts (a job the
    # worker finished would give its slot back).
    fits = [{**job, "delay_seconds": 600} for job in batch_of(cap - 1, "fits")]
    first = user.api.post_batch(fits)
    assert first.status_code == 202, first.text
    assert {item["status"] for item in first.json()["jobs"]} == {"SCHEDULED"}
    over = user.api.post_batch(batch_of(2, "over"))
    assert over.status_code == 429 and over.json()["error"] == "quota_exceeded", over.text
    assert "Retry-After" in over.headers
    assert not [r for r in records_of(ddb, table, user.sub) if r["name"].startswith("over-")]
    for item in first.json()["jobs"]:  # cancelling frees the slots: one job fits again
        assert user.api.delete_job(item["job_id"]).status_code == 200
    assert user.api.post_batch(batch_of(1, "after")).status_code == 202
