"""POST /jobs/batch through the real handlers on moto: per-item answers in order, all-or-nothing
validation, quotas counted as N jobs, one Idempotency-Key for the batch, and the partial
failures of BatchWriteItem / SendMessageBatch retried or reported FAILED, never left PENDING."""

from __future__ import annotations

import concurrent.futures
import json
import threading
from typing import Any

import pytest

from jobs.errors import TooManyRequests
from jobs.model import BATCH_MAX_JOBS
from jobs.quotas import Limits
from jobs.store import QUOTA_SLOT
from tests.unit.conftest import VALID_JOB, Stack, api_event, call_api, call_worker, claims, sqs_record
from tests.unit.test_api_quotas import atomic_dynamodb  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("stack")


def batch(jobs: Any, sub: str = "user-a", groups: str | None = None, headers: dict[str, str] | None = None):
    body = jobs if isinstance(jobs, str) else {"jobs": jobs}
    return call_api(api_event("POST", "/jobs/batch", body=body, claims_=claims(sub, groups=groups), headers=headers))


def job(n: int, **extra: Any) -> dict[str, Any]:
    return {**VALID_JOB, "name": f"job-{n}", **extra}


def jobs_of(stack: Stack, sub: str) -> dict[str, dict[str, Any]]:
    return {i["job_id"]["S"]: i for i in stack.items() if i["owner_id"]["S"] == sub}


def queued_ids(stack: Stack, sub: str) -> list[str]:
    """The job ids of the owner's messages in the queue (each received once, then made visible again)."""
    sqs, url = stack.sqs, stack.queue_url
    messages = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get("Messages", []):
        messages.extend(got)
    for m in messages:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    bodies = [json.loads(m["Body"]) for m in messages]
    return [b["job_id"] for b in bodies if b["owner_id"] == sub]


def active(stack: Stack, sub: str) -> int:
    return stack.counters().get(sub, {}).get("active_jobs", 0)


def nothing_written(stack: Stack, sub: str) -> bool:
    return not jobs_of(stack, sub) and not queued_ids(stack, sub) and active(stack, sub) == 0


# ---- accepted ---------------------------------------------------------------------------------


def test_a_batch_is_recorded_queued_and_answered_per_item_in_order(stack: Stack) -> None:
    resp = batch([job(0), job(1, format="json", action="word-count"), job(2)])
    assert resp.status == 202, resp.body
    items = resp.body["jobs"]
    assert [i["status"] for i in items] == ["PENDING"] * 3
    records = jobs_of(stack, "user-a")
    assert set(records) == {i["job_id"] for i in items}
    assert [records[i["job_id"]]["name"]["S"] for i in items] == ["job-0", "job-1", "job-2"]
    assert records[items[1]["job_id"]]["format"]["S"] == "json"
    assert all(QUOTA_SLOT in r for r in records.values())
    assert sorted(queued_ids(stack, "user-a")) == sorted(records)
    assert active(stack, "user-a") == 3
    assert "RateLimit" in resp.headers and "RateLimit-Policy" in resp.headers

    # Each is an ordinary job: readable, and run by the worker.
    for item in items:
        got = call_api(api_event("GET", "/job", query={"job_id": item["job_id"]}))
        assert got.status == 200 and got.body["status"] == "PENDING"
    call_worker(sqs_record(json.dumps({"owner_id": "user-a", "job_id": items[0]["job_id"]})))
    done = call_api(api_event("GET", "/job", query={"job_id": items[0]["job_id"]}))
    assert done.body["status"] == "COMPLETE"
    assert active(stack, "user-a") == 2


def test_a_full_batch_of_the_maximum_size_is_written_in_chunks(stack: Stack) -> None:
    resp = batch([job(n) for n in range(BATCH_MAX_JOBS)])
    assert resp.status == 202, resp.body
    assert len(resp.body["jobs"]) == BATCH_MAX_JOBS
    assert len(jobs_of(stack, "user-a")) == BATCH_MAX_JOBS
    assert len(queued_ids(stack, "user-a")) == BATCH_MAX_JOBS
    assert active(stack, "user-a") == BATCH_MAX_JOBS


# ---- refused: nothing written -------------------------------------------------------------------


def test_invalid_items_are_all_reported_and_nothing_is_written(stack: Stack) -> None:
    bad = [
        job(0),
        {"name": "x", "action": "demo", "context1": "a"},
        job(2, action="nope"),
        "not an object",
        job(4, format="csv"),  # demo cannot produce csv
    ]
    resp = batch(bad)
    assert resp.status == 400
    assert resp.body["error"] == "invalid_batch"
    assert "4 of 5" in resp.body["message"]
    assert [(i["index"], i["error"]) for i in resp.body["items"]] == [
        (1, "missing_field"),
        (2, "unknown_action"),
        (3, "invalid_body"),
        (4, "unsupported_format"),
    ]
    assert all(isinstance(i["message"], str) and i["message"] for i in resp.body["items"])
    assert nothing_written(stack, "user-a")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"jobs": []}, "invalid_batch_size"),
        ({"jobs": [VALID_JOB] * (BATCH_MAX_JOBS + 1)}, "invalid_batch_size"),
        ({"jobs": VALID_JOB}, "invalid_field"),
        ({}, "invalid_field"),
        ({"jobs": [VALID_JOB], "priority": "high"}, "unknown_field"),
        ([VALID_JOB], "invalid_body"),
        ("{not json", "invalid_json"),
    ],
)
def test_malformed_batches_are_refused(stack: Stack, body: Any, code: str) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)
    resp = batch(raw)
    assert resp.status == 400 and resp.body["error"] == code, resp.body
    assert nothing_written(stack, "user-a")


def test_a_batch_counts_as_n_jobs_against_the_active_cap(stack: Stack) -> None:
    assert batch([job(n) for n in range(4)], groups="capped").status == 202  # cap 5
    refused = batch([job(n) for n in range(2)], groups="capped")
    assert refused.status == 429 and refused.body["error"] == "quota_exceeded"
    assert "Retry-After" in refused.headers
    assert len(jobs_of(stack, "user-a")) == 4 and active(stack, "user-a") == 4
    assert batch([job(9)], groups="capped").status == 202
    assert active(stack, "user-a") == 5


def test_a_batch_counts_as_n_submissions_against_the_rate(stack: Stack) -> None:
    assert batch([job(n) for n in range(3)], groups="throttled").status == 202  # burst 3, 0.5/s
    refused = batch([job(3)], groups="throttled")
    assert refused.status == 429 and refused.body["error"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(jobs_of(stack, "user-a")) == 3


def test_a_batch_larger_than_the_limits_could_ever_admit_is_a_400(stack: Stack) -> None:
    resp = batch([job(n) for n in range(6)], groups="capped")  # cap 5: waiting would never help
    assert resp.status == 400 and resp.body["error"] == "batch_too_large"
    assert "at most 5" in resp.body["message"]
    assert nothing_written(stack, "user-a")


@pytest.mark.usefixtures("atomic_dynamodb")
def test_parallel_batches_against_a_cap_admit_whole_batches_only(stack: Stack) -> None:
    from jobs.api import service

    limits = Limits(max_active_jobs=10, submit_rate_per_second=1000, submit_burst=1000)
    body = json.dumps({"jobs": [job(n) for n in range(3)]})
    start = threading.Barrier(8)

    def submit(_: int) -> str:
        start.wait()
        try:
            service().submit_batch("racer", body, None, limits)
        except TooManyRequests as refused:
            return refused.code
        return "accepted"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(submit, range(8)))
    assert outcomes.count("accepted") == 3 and outcomes.count("quota_exceeded") == 5, outcomes
    assert len(jobs_of(stack, "racer")) == 9
    assert stack.counters()["racer"]["active_jobs"] == 9


# ---- one Idempotency-Key for the batch -----------------------------------------------------------


def test_a_retried_batch_returns_the_same_jobs_and_writes_nothing_new(stack: Stack) -> None:
    key = {"Idempotency-Key": "batch-1"}
    first = batch([job(0), job(1)], headers=key)
    assert first.status == 202
    again = batch([job(0), job(1)], headers=key)
    assert again.status == 202
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [i["job_id"] for i in again.body["jobs"]] == [i["job_id"] for i in first.body["jobs"]]
    assert len(jobs_of(stack, "user-a")) == 2 and len(queued_ids(stack, "user-a")) == 2
    assert active(stack, "user-a") == 2

    # The replay shows the jobs as they are now.
    call_worker(sqs_record(json.dumps({"owner_id": "user-a", "job_id": first.body["jobs"][1]["job_id"]})))
    later = batch([job(0), job(1)], headers=key)
    assert [i["status"] for i in later.body["jobs"]] == ["PENDING", "COMPLETE"]


def test_a_batch_key_reused_with_another_body_or_for_one_job_is_a_422(stack: Stack) -> None:
    key = {"Idempotency-Key": "batch-2"}
    assert batch([job(0), job(1)], headers=key).status == 202
    assert batch([job(1), job(0)], headers=key).status == 422  # order matters: another request
    single = call_api(api_event("POST", "/job", body=VALID_JOB, headers=key))
    assert single.status == 422 and single.body["error"] == "idempotency_key_reused"
    assert len(jobs_of(stack, "user-a")) == 2


# ---- partial failures ----------------------------------------------------------------------------


def _client(name: str) -> Any:
    from jobs.api import service

    return service().table._db if name == "dynamodb" else service().queue._sqs


def test_unprocessed_writes_are_retried(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _client("dynamodb")
    real = db.batch_write_item
    calls: list[int] = []

    def flaky(**kwargs: Any) -> dict[str, Any]:
        requests = kwargs["RequestItems"]["jobs-test"]
        calls.append(len(requests))
        if len(calls) == 1:  # the first call writes only its first item: DynamoDB throttled the rest
            real(RequestItems={"jobs-test": requests[:1]})
            return {"UnprocessedItems": {"jobs-test": requests[1:]}}
        return real(**kwargs)

    monkeypatch.setattr(db, "batch_write_item", flaky)
    resp = batch([job(n) for n in range(4)])
    assert resp.status == 202
    assert [i["status"] for i in resp.body["jobs"]] == ["PENDING"] * 4
    assert calls == [4, 3]
    assert len(jobs_of(stack, "user-a")) == 4 and active(stack, "user-a") == 4


def test_records_that_cannot_be_written_are_failed_in_their_slot_and_their_quota_given_back(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _client("dynamodb")
    real = db.batch_write_item

    def never_the_last(**kwargs: Any) -> dict[str, Any]:
        requests = kwargs["RequestItems"]["jobs-test"]
        stuck = [r for r in requests if r["PutRequest"]["Item"]["name"]["S"] == "job-2"]
        rest = [r for r in requests if r not in stuck]
        if rest:
            real(RequestItems={"jobs-test": rest})
        return {"UnprocessedItems": {"jobs-test": stuck} if stuck else {}}

    monkeypatch.setattr(db, "batch_write_item", never_the_last)
    monkeypatch.setattr("jobs.store.time.sleep", lambda _: None)
    resp = batch([job(n) for n in range(3)])
    assert resp.status == 202
    items = resp.body["jobs"]
    assert [i["status"] for i in items] == ["PENDING", "PENDING", "FAILED"]
    assert items[2]["error"] == "the job could not be recorded"
    assert set(jobs_of(stack, "user-a")) == {items[0]["job_id"], items[1]["job_id"]}
    assert sorted(queued_ids(stack, "user-a")) == sorted([items[0]["job_id"], items[1]["job_id"]])
    assert active(stack, "user-a") == 2  # the unwritten job's slot was given back


def test_messages_sqs_fails_are_retried_then_the_job_is_failed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = _client("sqs")
    real = sqs.send_message_batch
    attempts: dict[str, int] = {}

    def flaky(**kwargs: Any) -> dict[str, Any]:
        """job-1 fails once (then goes through); job-2 always fails (not the sender's fault)."""
        ok, failed = [], []
        for entry in kwargs["Entries"]:
            name = next(
                n for n in ("job-0", "job-1", "job-2") if json.loads(entry["MessageBody"])["job_id"] in NAMES[n]
            )
            attempts[name] = attempts.get(name, 0) + 1
            if name == "job-2" or (name == "job-1" and attempts[name] == 1):
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "ServiceUnavailable", "Message": "try"})
            else:
                ok.append(entry)
        resp = real(QueueUrl=kwargs["QueueUrl"], Entries=ok) if ok else {"Successful": []}
        return {"Successful": resp.get("Successful", []), "Failed": failed}

    NAMES: dict[str, set[str]] = {}
    db = _client("dynamodb")
    real_write = db.batch_write_item

    def remember(**kwargs: Any) -> dict[str, Any]:
        for r in kwargs["RequestItems"]["jobs-test"]:
            item = r["PutRequest"]["Item"]
            NAMES.setdefault(item["name"]["S"], set()).add(item["job_id"]["S"])
        return real_write(**kwargs)

    monkeypatch.setattr(db, "batch_write_item", remember)
    monkeypatch.setattr(sqs, "send_message_batch", flaky)
    monkeypatch.setattr("jobs.store.time.sleep", lambda _: None)
    resp = batch([job(n) for n in range(3)])
    assert resp.status == 202
    items = resp.body["jobs"]
    assert [i["status"] for i in items] == ["PENDING", "PENDING", "FAILED"]
    assert items[2]["error"] == "the job could not be queued"
    assert attempts["job-1"] == 2 and attempts["job-2"] > 2
    records = jobs_of(stack, "user-a")
    assert records[items[2]["job_id"]]["status"]["S"] == "FAILED"  # never left PENDING
    assert QUOTA_SLOT not in records[items[2]["job_id"]]
    assert active(stack, "user-a") == 2
    assert sorted(queued_ids(stack, "user-a")) == sorted([items[0]["job_id"], items[1]["job_id"]])


def test_a_batch_none_of_which_can_be_queued_is_a_503_and_frees_its_key(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    sqs = _client("sqs")

    def down(**_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessageBatch")

    monkeypatch.setattr(sqs, "send_message_batch", down)
    key = {"Idempotency-Key": "batch-3"}
    resp = batch([job(0), job(1)], headers=key)
    assert resp.status == 503 and resp.body["error"] == "enqueue_failed"
    assert {r["status"]["S"] for r in jobs_of(stack, "user-a").values()} == {"FAILED"}
    assert active(stack, "user-a") == 0
    monkeypatch.undo()
    retried = batch([job(0), job(1)], headers=key)  # the key is free again: a real retry
    assert retried.status == 202 and "Idempotent-Replayed" not in retried.headers
    assert [i["status"] for i in retried.body["jobs"]] == ["PENDING", "PENDING"]


# ---- scheduled items -----------------------------------------------------------------------------


def test_scheduled_items_are_delayed_or_get_a_schedule_each(stack: Stack) -> None:
    from datetime import UTC, datetime, timedelta

    later = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    resp = batch([job(0), job(1, delay_seconds=120), job(2, run_at=later)])
    assert resp.status == 202, resp.body
    items = resp.body["jobs"]
    assert [i["status"] for i in items] == ["PENDING", "SCHEDULED", "SCHEDULED"]
    attrs = stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"  # the delayed one, not visible yet
    assert queued_ids(stack, "user-a") == [items[0]["job_id"]]
    schedules = stack.schedules()
    assert list(schedules) == [f"job-{items[2]['job_id']}"]
    target = schedules[f"job-{items[2]['job_id']}"]["Target"]
    assert json.loads(target["Input"]) == {"owner_id": "user-a", "job_id": items[2]["job_id"]}
    assert active(stack, "user-a") == 3  # scheduled jobs hold their slots


def test_a_schedule_that_cannot_be_created_fails_only_its_item(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    from botocore.exceptions import ClientError

    from jobs.api import service

    def refused(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "CreateSchedule")

    monkeypatch.setattr(service().scheduler._scheduler, "create_schedule", refused)
    later = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    resp = batch([job(0), job(1, run_at=later)])
    assert resp.status == 202
    items = resp.body["jobs"]
    assert [i["status"] for i in items] == ["PENDING", "FAILED"]
    assert items[1]["error"] == "the job could not be scheduled"
    assert jobs_of(stack, "user-a")[items[1]["job_id"]]["status"]["S"] == "FAILED"
    assert active(stack, "user-a") == 1


def test_an_invalid_due_time_is_reported_with_its_index(stack: Stack) -> None:
    resp = batch([job(0), job(1, delay_seconds=-5), job(2, run_at="2020-01-01T00:00:00Z")])
    assert resp.status == 400
    assert [(i["index"], i["error"]) for i in resp.body["items"]] == [
        (1, "invalid_delay_seconds"),
        (2, "schedule_out_of_range"),
    ]
    assert nothing_written(stack, "user-a")


# ---- priorities ----------------------------------------------------------------------------------


def _messages(stack: Stack, url: str) -> list[dict[str, Any]]:
    got = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
    return got.get("Messages", [])


def test_items_go_to_their_priority_queues_grouped_by_owner(stack: Stack) -> None:
    from tests.unit.conftest import HIGH_GROUP

    resp = batch([job(0, priority="high"), job(1), job(2, priority="low"), job(3, priority="high")], groups=HIGH_GROUP)
    assert resp.status == 202, resp.body
    ids = [i["job_id"] for i in resp.body["jobs"]]
    by_queue = {
        name: _messages(stack, url)
        for name, url in (("high", stack.high_queue_url), ("normal", stack.queue_url), ("low", stack.low_queue_url))
    }
    assert sorted(json.loads(m["Body"])["job_id"] for m in by_queue["high"]) == sorted([ids[0], ids[3]])
    assert [json.loads(m["Body"])["job_id"] for m in by_queue["normal"]] == [ids[1]]
    assert [json.loads(m["Body"])["job_id"] for m in by_queue["low"]] == [ids[2]]
    assert {m["Attributes"]["MessageGroupId"] for ms in by_queue.values() for m in ms} == {"user-a"}
    assert jobs_of(stack, "user-a")[ids[0]]["priority"]["S"] == "high"


def test_a_high_item_its_caller_may_not_use_is_a_403_and_nothing_is_written(stack: Stack) -> None:
    resp = batch([job(0), job(1, priority="high")], groups="other")
    assert resp.status == 403 and resp.body["error"] == "priority_not_allowed"
    assert resp.body["message"].startswith("job 1 of the batch: ")
    assert nothing_written(stack, "user-a")
