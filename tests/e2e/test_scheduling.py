"""Scheduled jobs on the deployed local stack, through the front: an SQS-delayed job and a job
sent by a real EventBridge Scheduler one-time schedule (created by the api function as its
role, fired by the local runtime as the scheduler role), cancels of both kinds, and bad due
times refused with nothing written.

The e2e stack lowers the SQS-delay threshold to E2E_SCHEDULE_DELAY_THRESHOLD seconds
(tests/e2e/conftest.py), so a job due in ~8 s needs a schedule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.conftest import E2E_SCHEDULE_DELAY_THRESHOLD
from tests.e2e.support import User, records_of
from tooling.local_stack import LocalStack

JOB = {"name": "scheduled", "action": "demo", "context1": "hello", "context2": "world"}
# The local runtime fires within 2 s of run_at (measured by `invoke bench`); the bound here is
# generous for a loaded machine, and a job never starts before run_at.
START_BOUND_SECONDS = 5.0


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_names(stack: LocalStack) -> set[str]:
    scheduler = stack.client("scheduler")
    group = stack.outputs["schedule_group_name"]
    return {s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]}


def active_jobs(user: User) -> int:
    resp = user.api.request("GET", "/quota")
    assert resp.status_code == 200, resp.text
    return int(resp.json()["usage"]["active_jobs"])


@pytest.fixture
def user(make_user: Callable[[], User]) -> User:
    return make_user()


def test_a_delayed_job_stays_scheduled_then_runs_no_earlier_than_due(user: User, stack: LocalStack) -> None:
    resp = user.api.post_job({**JOB, "delay_seconds": 3})
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "SCHEDULED"
    job_id = resp.json()["job_id"]
    job = user.api.job(job_id)
    assert job["status"] == "SCHEDULED" and "schedule_name" not in job  # an SQS delay, no schedule
    due = epoch(job["run_at"])
    assert active_jobs(user) == 1
    time.sleep(max(0.0, due - time.time() - 1.0))
    assert user.api.job(job_id)["status"] == "SCHEDULED"  # a second before it is due
    done = user.api.wait_terminal(job_id, timeout=60)
    assert done["status"] == "COMPLETE", done
    started = epoch(done["startedAt"])
    assert due <= started <= due + START_BOUND_SECONDS, f"started {started - due:+.2f}s from run_at"
    assert active_jobs(user) == 0


def test_a_job_due_beyond_the_threshold_runs_from_a_real_schedule_deleted_after(user: User, stack: LocalStack) -> None:
    run_at = math.ceil(time.time()) + E2E_SCHEDULE_DELAY_THRESHOLD + 4
    resp = user.api.post_job({**JOB, "run_at": rfc3339(run_at)})
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    job = user.api.job(job_id)
    assert job["status"] == "SCHEDULED" and epoch(job["run_at"]) == run_at
    name = job["schedule_name"]
    assert name == f"job-{job_id}"
    schedule = stack.client("scheduler").get_schedule(Name=name, GroupName=stack.outputs["schedule_group_name"])
    assert schedule["ScheduleExpression"] == f"at({rfc3339(run_at)[:-1]})"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["RoleArn"] == stack.outputs["scheduler_role_arn"]
    assert schedule["Target"]["Arn"].endswith(":" + stack.outputs["queue_url"].rsplit("/", 1)[-1])
    done = user.api.wait_terminal(job_id, timeout=60)
    assert done["status"] == "COMPLETE", done
    started = epoch(done["startedAt"])
    assert run_at <= started <= run_at + START_BOUND_SECONDS, f"started {started - run_at:+.2f}s from run_at"
    assert name not in schedule_names(stack)  # ActionAfterCompletion DELETE
    assert stack.runtime is not None and stack.runtime.schedules is not None
    [firing] = [f for f in stack.runtime.schedules.firings if f.name == name]
    assert firing.delivered and firing.due == run_at


@pytest.mark.parametrize("kind", ["delay", "schedule"])
def test_cancel_of_a_scheduled_job_stops_it_and_frees_its_slot(user: User, stack: LocalStack, kind: str) -> None:
    extra: dict[str, Any] = {"delay_seconds": 2} if kind == "delay" else {"run_at": rfc3339(math.ceil(time.time()) + 8)}
    job_id = user.api.post_job({**JOB, **extra}).json()["job_id"]
    job = user.api.job(job_id)
    assert job["status"] == "SCHEDULED" and ("schedule_name" in job) == (kind == "schedule")
    assert active_jobs(user) == 1
    resp = user.api.delete_job(job_id)
    assert resp.status_code == 200 and resp.json()["status"] == "CANCELLED", resp.text
    assert active_jobs(user) == 0
    if kind == "schedule":
        assert job["schedule_name"] not in schedule_names(stack)
    again = user.api.delete_job(job_id)
    assert again.status_code == 409 and "PENDING or SCHEDULED" in again.json()["message"]
    time.sleep(max(0.0, epoch(job["run_at"]) - time.time() + 3))  # past its due time
    final = user.api.job(job_id)
    assert final["status"] == "CANCELLED" and "S3FileKey" not in final and "startedAt" not in final
    assert active_jobs(user) == 0


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"run_at": "2001-01-01T00:00:00Z"}, "schedule_out_of_range"),
        ({"delay_seconds": 400 * 86400}, "schedule_out_of_range"),
        ({"run_at": "2030-01-01T00:00:00+02:00"}, "invalid_run_at"),
        ({"run_at": "next week"}, "invalid_run_at"),
        ({"delay_seconds": -1}, "invalid_delay_seconds"),
        ({"delay_seconds": 5, "run_at": "2030-01-01T00:00:00Z"}, "conflicting_schedule"),
    ],
)
def test_a_bad_due_time_is_400_and_writes_nothing(
    user: User, stack: LocalStack, extra: dict[str, Any], code: str
) -> None:
    before = schedule_names(stack)
    resp = user.api.post_job({**JOB, **extra})
    assert resp.status_code == 400 and resp.json()["error"] == code, resp.text
    assert records_of(stack.client("dynamodb"), stack.outputs["table_name"], user.sub) == []
    assert active_jobs(user) == 0
    assert schedule_names(stack) == before
