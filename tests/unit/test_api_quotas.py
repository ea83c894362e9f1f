"""Per-user quotas through the real handlers on moto: 429s, headers, GET /quota, slots freed
exactly once (complete, fail on the last attempt, cancel, enqueue failure), concurrency."""

from __future__ import annotations

import concurrent.futures
import json
import re
import threading
import time
import types
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from jobs.errors import TooManyRequests
from jobs.model import iso, new_job_id, utc_now
from jobs.quotas import Limits
from jobs.service import JobMessage
from jobs.store import QUOTA_SLOT
from tests.unit.conftest import (
    MAX_RECEIVE,
    TABLE,
    VALID_JOB,
    Stack,
    api_event,
    call_api,
    call_worker,
    claims,
    sqs_record,
)

pytestmark = pytest.mark.usefixtures("stack")

POLICY = re.compile(r'^"burst";q=(\d+);w=(\d+), "active";q=(\d+);qu="concurrent-requests"$')
LIMIT = re.compile(r'^"burst";r=(\d+)(?:;t=(\d+))?, "active";r=(\d+)$')


def post(sub: str = "user-a", groups: str | None = None, headers: dict[str, str] | None = None, body: Any = None):
    event = api_event("POST", "/job", body=body or VALID_JOB, claims_=claims(sub, groups=groups), headers=headers)
    return call_api(event)


def quota(sub: str = "user-a", groups: str | None = None):
    return call_api(api_event("GET", "/quota", claims_=claims(sub, groups=groups)))


def ratelimit(resp) -> tuple[int, int | None, int]:
    """(burst tokens left, seconds to the next token or None, free active slots) from RateLimit."""
    match = LIMIT.match(resp.headers["RateLimit"])
    assert match, resp.headers["RateLimit"]
    return int(match[1]), int(match[2]) if match[2] else None, int(match[3])


def jobs_of(stack: Stack, sub: str) -> list[dict]:
    return [i for i in stack.items() if i["owner_id"]["S"] == sub]


def active(stack: Stack, sub: str) -> int:
    return stack.counters().get(sub, {}).get("active_jobs", 0)


def messages_of(stack: Stack, sub: str) -> list[str]:
    return [m["Body"] for m in stack.messages() if json.loads(m["Body"])["owner_id"] == sub]


# ---- POST: headers, 429s, nothing written ---------------------------------------------------


@pytest.fixture
def still_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quota arithmetic's clocks stand still (the service's charge, the api's RateLimit
    headers): the test's posts happen at one instant however slow the machine, so no token
    refills between two of them (at 2 per second one would after 0.5 s)."""
    import jobs.api
    import jobs.service

    now = time.time()
    monkeypatch.setattr(jobs.service, "utc_now", lambda: datetime.fromtimestamp(now, UTC))
    monkeypatch.setattr(jobs.api, "time", types.SimpleNamespace(time=lambda: now))


def test_every_post_carries_the_policy_and_the_current_limit(stack: Stack, still_clock: None) -> None:
    resp = post(groups="lifted")  # 8 active, burst 5, 2 per second
    assert resp.status == 202
    assert POLICY.match(resp.headers["RateLimit-Policy"]).groups() == ("5", "3", "8")
    assert ratelimit(resp) == (4, 1, 7)
    assert "Retry-After" not in resp.headers
    second = post(groups="lifted")
    assert ratelimit(second)[0] == 3 and ratelimit(second)[2] == 6
    # errors of a known caller advertise the policy too (nothing was counted: no RateLimit)
    bad = post(groups="lifted", body={"name": "x"})
    assert bad.status == 400 and "RateLimit-Policy" in bad.headers and "RateLimit" not in bad.headers
    # browsers may read them
    exposed = resp.headers["Access-Control-Expose-Headers"]
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= {h.strip() for h in exposed.split(",")}
    assert active(stack, "user-a") == 2


def test_over_the_active_cap_is_429_quota_exceeded_and_writes_nothing(stack: Stack) -> None:
    accepted = [post(groups="capped") for _ in range(5)]  # capped: 5 active jobs
    assert [r.status for r in accepted] == [202] * 5
    assert ratelimit(accepted[-1])[2] == 0
    before_items, before_counters, before_messages = stack.items(), stack.counters(), len(stack.messages())
    refused = post(groups="capped")
    assert refused.status == 429
    assert refused.body["error"] == "quota_exceeded" and "5" in refused.body["message"]
    assert set(refused.body) == {"error", "message"}
    assert refused.headers["Retry-After"] == "5"
    assert POLICY.match(refused.headers["RateLimit-Policy"]).group(3) == "5"
    assert ratelimit(refused)[2] == 0
    assert refused.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert stack.items() == before_items
    assert stack.counters() == before_counters == {"user-a": stack.counters()["user-a"]}
    assert len(stack.messages()) == before_messages == 5
    # other users have their own counters
    assert post("user-b", groups="capped").status == 202


def test_over_the_rate_is_429_rate_limited_with_retry_after(stack: Stack, still_clock: None) -> None:
    statuses = [post(groups="throttled") for _ in range(3)]  # burst 3, then one per 2 s
    assert [r.status for r in statuses] == [202] * 3
    assert ratelimit(statuses[-1])[:2] == (0, 2)
    refused = post(groups="throttled")
    assert refused.status == 429 and refused.body["error"] == "rate_limited"
    assert refused.headers["Retry-After"] == "2"
    burst, t, slots = ratelimit(refused)
    assert (burst, t, slots) == (0, 2, 97)  # the effective window ends when Retry-After does
    assert POLICY.match(refused.headers["RateLimit-Policy"]).groups() == ("3", "6", "100")
    assert len(jobs_of(stack, "user-a")) == 3 and active(stack, "user-a") == 3


def test_a_group_lifts_the_caller_to_its_tier() -> None:
    assert all(post("user-c", groups="capped").status == 202 for _ in range(5))
    assert post("user-c", groups="capped").status == 429
    # in two groups: the largest of each limit (capped: 5 active; lifted: 8)
    lifted = post("user-c", groups="capped,lifted")
    assert lifted.status == 202
    assert POLICY.match(lifted.headers["RateLimit-Policy"]).groups() == ("1000", "1", "8")
    # the HTTP API's "[a b]" form is understood too
    assert post("user-c", groups="[lifted capped]").status == 202


def test_a_refused_retry_of_an_accepted_request_is_still_its_replay(stack: Stack) -> None:
    first = post(groups="capped", headers={"Idempotency-Key": "k-1"})
    for i in range(4):
        assert post(groups="capped", headers={"Idempotency-Key": f"k-{i + 2}"}).status == 202
    assert post(groups="capped", headers={"Idempotency-Key": "k-new"}).status == 429
    again = post(groups="capped", headers={"Idempotency-Key": "k-1"})
    assert again.status == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.body["job_id"] == first.body["job_id"]
    assert active(stack, "user-a") == 5 and len(messages_of(stack, "user-a")) == 5


def test_a_replay_costs_no_quota(stack: Stack) -> None:
    first = post(groups="throttled", headers={"Idempotency-Key": "same"})
    for _ in range(4):
        again = post(groups="throttled", headers={"Idempotency-Key": "same"})
        assert again.status == 202 and again.body["job_id"] == first.body["job_id"]
        assert ratelimit(again)[0] == 2  # the bucket as the first request left it
    assert active(stack, "user-a") == 1


# ---- GET /quota -----------------------------------------------------------------------------


def test_get_quota_shows_limits_and_use() -> None:
    fresh = quota(groups="lifted")
    assert fresh.status == 200
    assert fresh.body == {
        "tiers": ["lifted"],
        "limits": {"max_active_jobs": 8, "submit_rate_per_second": 2.0, "submit_burst": 5},
        "usage": {"active_jobs": 0, "free_slots": 8, "submit_tokens": 5, "next_token_seconds": None},
    }
    assert ratelimit(fresh) == (5, None, 8)
    post(groups="lifted")
    post(groups="lifted")
    used = quota(groups="lifted").body["usage"]
    assert used == {"active_jobs": 2, "free_slots": 6, "submit_tokens": 3, "next_token_seconds": 1}
    defaults = quota("user-z").body
    assert defaults["tiers"] == [] and defaults["limits"]["max_active_jobs"] == 10000
    assert quota("user-z").headers["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_get_quota_needs_an_identity() -> None:
    resp = call_api(api_event("GET", "/quota", no_claims=True))
    assert resp.status == 401 and resp.body["error"] == "unauthorized"


# ---- slots freed exactly once ---------------------------------------------------------------


def test_completing_a_job_frees_its_slot_once(stack: Stack) -> None:
    for _ in range(5):
        assert post(groups="capped").status == 202
    bodies = messages_of(stack, "user-a")
    assert call_worker(*(sqs_record(b) for b in bodies)) == []
    assert active(stack, "user-a") == 0
    assert all(QUOTA_SLOT not in i for i in jobs_of(stack, "user-a"))
    # every message delivered again (at-least-once): acknowledged, nothing freed twice
    assert call_worker(*(sqs_record(b) for b in bodies)) == []
    assert active(stack, "user-a") == 0
    assert [post(groups="capped").status for _ in range(6)] == [202] * 5 + [429]


def test_a_duplicated_completion_frees_one_slot(stack: Stack) -> None:
    from jobs.api import service

    assert post(groups="capped").status == 202
    assert post(groups="capped").status == 202
    [job_id, _] = [i["job_id"]["S"] for i in jobs_of(stack, "user-a")]
    table = service().table
    now = utc_now()
    assert table.claim("user-a", job_id, "lease-1", int(now.timestamp()) + 60, iso(now), int(now.timestamp()))
    done = table.complete("user-a", job_id, "lease-1", "user-a/x.txt", iso(now))
    assert done is not None and done.status.value == "COMPLETE"
    assert active(stack, "user-a") == 1
    # the same transition again (a retried call, a duplicate message), then others after it
    assert table.complete("user-a", job_id, "lease-1", "user-a/x.txt", iso(now)) is None
    assert table.fail("user-a", job_id, "lease-1", "late", iso(now), int(now.timestamp())) is None
    assert table.cancel("user-a", job_id, iso(now)) is None
    assert active(stack, "user-a") == 1


def test_cancelling_frees_the_slot_once(stack: Stack) -> None:
    for _ in range(5):
        assert post(groups="capped").status == 202
    job_id = jobs_of(stack, "user-a")[0]["job_id"]["S"]
    cancel = call_api(api_event("DELETE", "/job", query={"job_id": job_id}, claims_=claims(groups="capped")))
    assert cancel.status == 200 and cancel.body["status"] == "CANCELLED"
    assert active(stack, "user-a") == 4
    again = call_api(api_event("DELETE", "/job", query={"job_id": job_id}, claims_=claims(groups="capped")))
    assert again.status == 409 and again.body["error"] == "not_cancellable"
    assert active(stack, "user-a") == 4
    assert post(groups="capped").status == 202
    assert post(groups="capped").status == 429


def test_failing_on_the_last_attempt_frees_the_slot_once(stack: Stack) -> None:
    from jobs import actions

    assert post(groups="capped").status == 202
    [body] = messages_of(stack, "user-a")
    boom = actions.ActionError("always broken")
    with mock.patch("jobs.service.run_action", side_effect=boom):
        for attempt in range(1, MAX_RECEIVE + 1):
            call_worker(sqs_record(body, receive_count=attempt))
        assert active(stack, "user-a") == 0
        # the last attempt delivered twice (the DLQ move raced a duplicate): still once
        call_worker(sqs_record(body, receive_count=MAX_RECEIVE))
    [job] = jobs_of(stack, "user-a")
    assert job["status"]["S"] == "FAILED" and QUOTA_SLOT not in job
    assert active(stack, "user-a") == 0


def test_an_unqueued_job_frees_its_slot(stack: Stack) -> None:
    from jobs.api import service

    err = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
    with mock.patch.object(service().queue, "send", side_effect=err):
        resp = post(groups="capped")
    assert resp.status == 503 and resp.body["error"] == "enqueue_failed"
    [job] = jobs_of(stack, "user-a")
    assert job["status"]["S"] == "FAILED" and QUOTA_SLOT not in job
    assert active(stack, "user-a") == 0


def test_a_job_without_a_slot_finishes_without_touching_the_counter(stack: Stack) -> None:
    """Jobs created before quotas existed (or made PENDING again by `invoke redrive`)."""
    assert post(groups="capped").status == 202
    now = utc_now()
    legacy = new_job_id()
    item = {
        "owner_id": {"S": "user-a"},
        "job_id": {"S": legacy},
        "name": {"S": "old"},
        "action": {"S": "demo"},
        "context1": {"S": "a"},
        "context2": {"S": "b"},
        "status": {"S": "PENDING"},
        "owner_status": {"S": "user-a#PENDING"},
        "createdAt": {"S": iso(now)},
        "updatedAt": {"S": iso(now)},
        "expires_at": {"N": str(int(now.timestamp()) + 3600)},
    }
    stack.ddb.put_item(TableName=TABLE, Item=item)
    cancel = call_api(api_event("DELETE", "/job", query={"job_id": legacy}))
    assert cancel.status == 200 and cancel.body["status"] == "CANCELLED"
    assert active(stack, "user-a") == 1
    again = call_api(api_event("DELETE", "/job", query={"job_id": legacy}))
    assert again.status == 409 and active(stack, "user-a") == 1


# ---- races ----------------------------------------------------------------------------------


@pytest.fixture
def atomic_dynamodb() -> None:
    """DynamoDB applies each request atomically; moto in-process does not (it checks a
    condition, then writes, with nothing held in between). The embedded backend's lock makes
    it so, here as on the local stack: what is tested is then our conditions, not moto's races."""
    from tooling.embedded_backend import patch_dynamodb_atomic_requests

    global _ATOMIC
    if not _ATOMIC:
        patch_dynamodb_atomic_requests()
        _ATOMIC = True


_ATOMIC = False


@pytest.mark.usefixtures("atomic_dynamodb")
def test_parallel_submissions_against_a_cap_create_exactly_the_cap(stack: Stack) -> None:
    """20 concurrent POSTs (the service, in threads: one Lambda environment per request) by a
    user with room for 5: exactly 5 jobs, 15 refusals, and a counter of 5."""
    from jobs.api import service

    limits = Limits(max_active_jobs=5, submit_rate_per_second=1000, submit_burst=1000)
    start = threading.Barrier(20)

    def submit(i: int) -> str:
        start.wait()
        try:
            service().submit("racer", json.dumps({**VALID_JOB, "name": f"r{i}"}), None, limits)
        except TooManyRequests as refused:
            return refused.code
        return "accepted"

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(submit, range(20)))
    assert outcomes.count("accepted") == 5, outcomes
    assert outcomes.count("quota_exceeded") == 15, outcomes
    assert len(jobs_of(stack, "racer")) == 5
    assert len(messages_of(stack, "racer")) == 5
    assert stack.counters()["racer"]["active_jobs"] == 5


@pytest.mark.usefixtures("atomic_dynamodb")
def test_parallel_submissions_against_a_burst_create_exactly_the_burst(stack: Stack) -> None:
    from jobs.api import service

    limits = Limits(max_active_jobs=1000, submit_rate_per_second=0.01, submit_burst=7)  # no refill in the test
    start = threading.Barrier(20)

    def submit(i: int) -> str:
        start.wait()
        try:
            service().submit("burster", json.dumps(VALID_JOB), None, limits)
        except TooManyRequests as refused:
            return refused.code
        return "accepted"

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(submit, range(20)))
    assert outcomes.count("accepted") == 7 and outcomes.count("rate_limited") == 13, outcomes
    assert len(jobs_of(stack, "burster")) == 7


@pytest.mark.usefixtures("atomic_dynamodb")
def test_parallel_duplicate_transitions_free_one_slot_each(stack: Stack) -> None:
    """Every transition of 5 jobs raced by 4 threads each (complete x2, fail, cancel): each job
    ends in one final status and the counter drops by exactly 5."""
    from jobs.api import service

    for _ in range(5):
        assert post("dup", groups="capped").status == 202
    table = service().table
    now = utc_now()
    epoch = int(now.timestamp())
    job_ids = [i["job_id"]["S"] for i in jobs_of(stack, "dup")]
    for job_id in job_ids:
        assert table.claim("dup", job_id, "lease", epoch + 60, iso(now), epoch)
    start = threading.Barrier(20)

    def transition(n: int) -> bool:
        job_id = job_ids[n % 5]
        start.wait()
        kind = n // 5
        if kind in (0, 1):
            return table.complete("dup", job_id, "lease", f"dup/{job_id}.txt", iso(now)) is not None
        if kind == 2:
            return table.fail("dup", job_id, "lease", "boom", iso(now), epoch) is not None
        return table.cancel("dup", job_id, iso(now)) is not None  # PROCESSING: never applies

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        applied = list(pool.map(transition, range(20)))
    assert sum(applied) == 5, applied
    assert stack.counters()["dup"]["active_jobs"] == 0
    statuses = sorted(i["status"]["S"] for i in jobs_of(stack, "dup"))
    assert set(statuses) <= {"COMPLETE", "FAILED"} and len(statuses) == 5


def test_a_stale_read_is_corrected_by_the_condition(stack: Stack) -> None:
    """The counter read before the write is only a guess: the write's condition decides."""
    from jobs.api import service
    from jobs.quotas import Usage

    for _ in range(3):
        assert post(groups="throttled").status == 202  # the bucket is now empty
    table = service().table
    with mock.patch.object(table, "usage", return_value=Usage()):  # as if read before those 3
        refused = post(groups="throttled")
    assert refused.status == 429 and refused.body["error"] == "rate_limited"
    assert refused.headers["Retry-After"] == "2"
    assert len(jobs_of(stack, "user-a")) == 3 and active(stack, "user-a") == 3
    # a counter only moves forward between a read and a write (tat grows, and slots freed since
    # only make room): a read showing an idle bucket that another request has charged since
    # writes the "idle" form, which fails its condition; the fresh item then decides
    assert post("user-b", groups="lifted").status == 202  # 2 per second: the bucket stays "busy" 500 ms
    writes = mock.Mock(wraps=table.create)
    with mock.patch.object(table, "usage", return_value=Usage()), mock.patch.object(table, "create", writes):
        assert post("user-b", groups="lifted").status == 202
    assert writes.call_count == 2  # the "idle" form refused by its condition, then the "busy" one
    assert active(stack, "user-b") == 2
    assert table.usage("user-b").tokens(Limits(8, 2, 5), int(utc_now().timestamp() * 1000)) == 3


def test_transaction_conflicts_are_retried(stack: Stack) -> None:
    from jobs.api import service

    table = service().table
    real = table._db.transact_write_items
    conflict = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
            "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
        },
        "TransactWriteItems",
    )
    calls: list[int] = []

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= 2:
            raise conflict
        return real(**kwargs)

    with mock.patch.object(table._db, "transact_write_items", side_effect=flaky):
        assert post().status == 202
    assert len(calls) == 3 and active(stack, "user-a") == 1
    with mock.patch.object(table._db, "transact_write_items", side_effect=conflict):
        busy = post()
    assert busy.status == 503 and busy.body["error"] == "busy"
    assert active(stack, "user-a") == 1 and len(jobs_of(stack, "user-a")) == 1


def test_the_worker_frees_slots_through_its_own_processor(stack: Stack) -> None:
    """JobProcessor.process (the worker's domain path) on a duplicated message."""
    from jobs.api import service
    from jobs.worker import job_processor

    assert post(groups="capped").status == 202
    [body] = messages_of(stack, "user-a")
    done = job_processor().process(JobMessage.parse(body), 1, 30.0)
    assert done.outcome == "completed"
    # the record it reports (built from the claim, not read back) is the one stored
    assert done.job == service().table.get("user-a", json.loads(body)["job_id"])
    assert job_processor().process(JobMessage.parse(body), 2, 30.0).outcome == "skipped"
    assert active(stack, "user-a") == 0
