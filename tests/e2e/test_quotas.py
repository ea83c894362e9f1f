"""Per-user quotas on the deployed local stack, through the front: 20 parallel POSTs against a
cap of 5, the token bucket, the headers, GET /quota, and slots freed by the worker and by a
cancel (each function acting as its own role: the quotas table's IAM is exercised here).

The users are members of the small tiers tests/e2e/conftest.py adds (E2E_QUOTA_TIERS); the
defaults stay local.tfvars' generous ones.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import E2E_QUOTA_TIERS, Console
from tests.e2e.support import TERMINAL, User, records_of, wait_for
from tooling.local_stack import LocalStack

JOB = {"name": "quota", "action": "demo", "context1": "hello", "context2": "world"}
LIMIT = re.compile(r'^"burst";r=(\d+)(?:;t=(\d+))?, "active";r=(\d+)$')


def ratelimit(resp: Any) -> tuple[int, int | None, int]:
    match = LIMIT.match(resp.headers["RateLimit"])
    assert match, resp.headers["RateLimit"]
    return int(match[1]), int(match[2]) if match[2] else None, int(match[3])


def counter(stack: LocalStack, sub: str) -> int:
    item = stack.client("dynamodb").get_item(
        TableName=stack.outputs["quota_table_name"], Key={"owner_id": {"S": sub}}, ConsistentRead=True
    )
    return int(item.get("Item", {}).get("active_jobs", {}).get("N", 0))


@contextlib.contextmanager
def worker_paused(stack: LocalStack, console: Console) -> Iterator[None]:
    """Disable the SQS -> worker mapping (the local runtime stops its poller at its next
    refresh), so that no job finishes while the test counts; enabled again on the way out."""
    lam = stack.client("lambda")
    uuid = stack.outputs["event_source_mapping_uuid"]
    stopped = len(console.matching(uuid, "disabled"))
    polling = len(console.matching("polling", stack.outputs["queue_url"]))
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    try:
        wait_for(lambda: len(console.matching(uuid, "disabled")) > stopped, 60, "the runtime to stop polling")
        yield
    finally:
        lam.update_event_source_mapping(UUID=uuid, Enabled=True)
        wait_for(
            lambda: len(console.matching("polling", stack.outputs["queue_url"])) > polling,
            60,
            "the runtime to poll the job queue again",
        )


def test_parallel_posts_against_a_cap_create_exactly_the_cap_and_finishing_frees_the_slots(
    stack: LocalStack, make_member: Callable[[str], User], console: Console, queue_drained: None
) -> None:
    user = make_member("e2e-capped")
    cap = int(E2E_QUOTA_TIERS["e2e-capped"]["max_active_jobs"])
    table = stack.outputs["table_name"]
    ddb = stack.client("dynamodb")
    with worker_paused(stack, console):
        start = threading.Barrier(20)

        def post(i: int) -> Any:
            start.wait()
            return user.api.post_job({**JOB, "name": f"race-{i}"})

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(post, range(20)))
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [202] * cap + [429] * (20 - cap), [(r.status_code, r.text) for r in answers]
        for refused in (r for r in answers if r.status_code == 429):
            assert refused.json()["error"] == "quota_exceeded", refused.text
            assert refused.headers["Retry-After"] == "5"
            assert ratelimit(refused)[2] == 0
        for resp in answers:
            assert resp.headers["RateLimit-Policy"] == f'"burst";q=100;w=1, "active";q={cap};qu="concurrent-requests"'
        records = records_of(ddb, table, user.sub)
        assert len(records) == cap and {r["status"] for r in records} == {"PENDING"}
        assert counter(stack, user.sub) == cap

        # a cancel frees one slot (the api's role: quotas UpdateItem in the cancel's transaction)
        victim = records[0]["job_id"]
        assert user.api.delete_job(victim).status_code == 200
        assert user.api.delete_job(victim).status_code == 409
        assert counter(stack, user.sub) == cap - 1
        assert user.api.post_job(JOB).status_code == 202
        again = user.api.post_job(JOB)
        assert again.status_code == 429 and again.json()["error"] == "quota_exceeded"
        shown = user.api.request("GET", "/quota")
        assert shown.status_code == 200, shown.text
        assert shown.json()["tiers"] == ["e2e-capped"]
        assert shown.json()["usage"]["active_jobs"] == cap and shown.json()["usage"]["free_slots"] == 0

    # the worker completes them and frees their slots (the worker's role, in its transactions)
    def finished() -> bool:
        return all(r["status"] in TERMINAL for r in records_of(ddb, table, user.sub))

    wait_for(finished, 120, "the capped user's jobs to finish", interval=1.0)
    statuses = sorted(r["status"] for r in records_of(ddb, table, user.sub))
    assert statuses == ["CANCELLED"] + ["COMPLETE"] * cap
    assert counter(stack, user.sub) == 0
    assert user.api.request("GET", "/quota").json()["usage"]["active_jobs"] == 0
    assert user.api.post_job(JOB).status_code == 202


def test_the_submission_bucket_through_the_front(
    stack: LocalStack, make_member: Callable[[str], User], make_user: Callable[[], User], queue_drained: None
) -> None:
    tier = E2E_QUOTA_TIERS["e2e-throttled"]  # burst 3, then one every 2 s
    user = make_member("e2e-throttled")
    answers = [user.api.post_job(JOB) for _ in range(3)]
    assert [r.status_code for r in answers] == [202] * 3
    assert [ratelimit(r)[0] for r in answers] == [2, 1, 0]
    assert answers[0].headers["RateLimit-Policy"] == (
        f'"burst";q=3;w=6, "active";q={int(tier["max_active_jobs"])};qu="concurrent-requests"'
    )
    refused = user.api.post_job(JOB)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "rate_limited"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    burst, t, _ = ratelimit(refused)
    assert burst == 0 and t == retry_after
    assert len(records_of(stack.client("dynamodb"), stack.outputs["table_name"], user.sub)) == 3
    quota = user.api.request("GET", "/quota").json()
    assert quota["tiers"] == ["e2e-throttled"] and quota["usage"]["submit_tokens"] == 0
    time.sleep(retry_after)
    assert user.api.post_job(JOB).status_code == 202

    # a user in no tier gets local.tfvars' defaults
    plain = make_user()
    resp = plain.api.post_job(JOB)
    assert resp.status_code == 202
    assert resp.headers["RateLimit-Policy"] == '"burst";q=2000;w=10, "active";q=5000;qu="concurrent-requests"'
    assert plain.api.request("GET", "/quota").json()["tiers"] == []


@pytest.mark.parametrize("path", ["/quota"])
def test_get_quota_needs_a_token(stack: LocalStack, alice: User, path: str) -> None:
    assert alice.api.request("GET", path, token=None).status_code == 401
