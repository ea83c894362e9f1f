"""Scheduled jobs: the due-time rules (pure), and submit / cancel / run of a SCHEDULED job
through the real handlers on moto in-process (SQS DelaySeconds, EventBridge Scheduler)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from jobs.actions import action_formats
from jobs.errors import ValidationError
from jobs.model import NewJob, Priority
from jobs.scheduling import at_expression, delay_seconds, schedule_from
from tests.unit.conftest import (
    DLQ_ARN,
    MAX_SCHEDULE_DAYS,
    QUEUE_ARN,
    SCHEDULER_ROLE,
    VALID_JOB,
    Stack,
    api_event,
    call_api,
    call_worker,
    claims,
    sqs_record,
)

NOW = datetime(2025, 7, 14, 12, 0, 0, tzinfo=UTC)


def z(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


# ---- the rules (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "due"),
    [
        ("2025-07-14T12:00:30Z", NOW + timedelta(seconds=30)),
        ("2025-07-14T12:00:30z", NOW + timedelta(seconds=30)),
        ("2025-07-14t12:00:30+00:00", NOW + timedelta(seconds=30)),
        ("2025-07-14T12:00:30.250Z", NOW + timedelta(seconds=30.25)),
        ("2025-07-15T12:00:00-00:00", NOW + timedelta(days=1)),
    ],
)
def test_run_at_accepts_rfc3339_utc(raw: str, due: datetime) -> None:
    request = schedule_from({"run_at": raw}, NOW, 30)
    assert request is not None and request.due == due
    assert request.given == f"run_at={z(due)}"


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        ({"run_at": "2025-07-14T11:59:00Z"}, "schedule_out_of_range", "not in the future"),
        ({"run_at": "2025-07-14T12:00:00.500Z"}, "schedule_out_of_range", "not in the future"),  # < 1 s ahead
        ({"run_at": "2025-08-14T12:00:01Z"}, "schedule_out_of_range", "too far ahead"),
        ({"delay_seconds": 30 * 86400 + 1}, "schedule_out_of_range", "too far ahead"),
        ({"run_at": "2025-07-14T14:00:30+02:00"}, "invalid_run_at", "UTC"),
        ({"run_at": "2025-07-14T12:00:30-05:30"}, "invalid_run_at", "UTC"),
        ({"run_at": "2025-07-14T12:00:30"}, "invalid_run_at", "RFC 3339"),  # no offset
        ({"run_at": "2025-07-14 12:00:30Z"}, "invalid_run_at", "RFC 3339"),
        ({"run_at": "2025-07-14T12:00Z"}, "invalid_run_at", "RFC 3339"),  # no seconds
        ({"run_at": "tomorrow"}, "invalid_run_at", "RFC 3339"),
        ({"run_at": "2025-02-30T12:00:00Z"}, "invalid_run_at", "not a valid date"),
        ({"run_at": 1752494430}, "invalid_run_at", "string"),
        ({"run_at": None}, "invalid_run_at", "string"),
        ({"delay_seconds": -1}, "invalid_delay_seconds", "0 or more"),
        ({"delay_seconds": 1.5}, "invalid_delay_seconds", "whole number"),
        ({"delay_seconds": "30"}, "invalid_delay_seconds", "whole number"),
        ({"delay_seconds": True}, "invalid_delay_seconds", "whole number"),
        ({"run_at": "2025-07-14T12:00:30Z", "delay_seconds": 30}, "conflicting_schedule", "not both"),
    ],
)
def test_bad_due_times_are_400_saying_what_is_allowed(data: dict, code: str, words: str) -> None:
    with pytest.raises(ValidationError) as err:
        schedule_from(data, NOW, 30)
    assert err.value.code == code and err.value.status == 400
    assert words in err.value.message


def test_out_of_range_message_says_what_is_allowed() -> None:
    with pytest.raises(ValidationError, match=r"from 1 s to 30 days \(2592000 s\) ahead"):
        schedule_from({"delay_seconds": 10**9}, NOW, 30)


def test_delay_seconds_zero_is_not_scheduled_and_the_limits_are_inclusive() -> None:
    assert schedule_from({"delay_seconds": 0}, NOW, 30) is None
    assert schedule_from({}, NOW, 30) is None
    one = schedule_from({"delay_seconds": 1.0}, NOW, 30)  # a JSON 1.0 is a whole number
    assert one is not None and one.due == NOW + timedelta(seconds=1) and one.given == "delay_seconds=1"
    far = schedule_from({"run_at": "2025-08-13T12:00:00Z"}, NOW, 30)
    assert far is not None and far.due == NOW + timedelta(days=30)


def test_fingerprint_of_a_plain_job_is_unchanged_and_a_schedule_changes_it() -> None:
    formats = action_formats()
    plain = NewJob.from_data(dict(VALID_JOB), formats, NOW)
    # The digest recorded for plain jobs before schedules existed (json of the four fields).
    import hashlib

    legacy = hashlib.sha256(json.dumps(["test", "demo", "hello", "world"]).encode()).hexdigest()
    assert plain.fingerprint() == legacy
    assert NewJob.from_data({**VALID_JOB, "delay_seconds": 0}, formats, NOW).fingerprint() == legacy
    delayed = NewJob.from_data({**VALID_JOB, "delay_seconds": 60}, formats, NOW)
    later = NewJob.from_data({**VALID_JOB, "delay_seconds": 60}, formats, NOW + timedelta(seconds=5))
    assert delayed.fingerprint() != legacy
    assert delayed.fingerprint() == later.fingerprint()  # a retry of the same request
    at = NewJob.from_data({**VALID_JOB, "run_at": "2025-07-14T12:01:00Z"}, formats, NOW)
    same = NewJob.from_data({**VALID_JOB, "run_at": "2025-07-14T12:01:00.000+00:00"}, formats, NOW)
    assert at.fingerprint() == same.fingerprint() != delayed.fingerprint()


def test_sqs_delay_and_at_expression_are_never_early() -> None:
    assert delay_seconds(NOW + timedelta(seconds=2.1), NOW) == 3
    assert delay_seconds(NOW + timedelta(seconds=2), NOW) == 2
    assert delay_seconds(NOW - timedelta(seconds=1), NOW) == 0
    assert delay_seconds(NOW + timedelta(hours=1), NOW) == 900
    assert at_expression(NOW + timedelta(seconds=30)) == "at(2025-07-14T12:00:30)"
    assert at_expression(NOW + timedelta(seconds=30.001)) == "at(2025-07-14T12:00:31)"


# ---- through the handlers --------------------------------------------------------------------


def submit(extra: dict, sub: str = "user-a", headers: dict | None = None):
    return call_api(api_event("POST", "/job", body={**VALID_JOB, **extra}, claims_=claims(sub), headers=headers))


def get(job_id: str, sub: str = "user-a") -> dict:
    return call_api(api_event("GET", "/job", query={"job_id": job_id}, claims_=claims(sub))).body


def cancel(job_id: str, sub: str = "user-a"):
    return call_api(api_event("DELETE", "/job", query={"job_id": job_id}, claims_=claims(sub)))


def active_jobs(stack: Stack, sub: str = "user-a") -> int:
    return stack.counters().get(sub, {}).get("active_jobs", 0)


def delayed_messages(stack: Stack) -> int:
    attrs = stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessagesDelayed"])


def test_delay_job_is_scheduled_and_its_message_delayed(stack: Stack) -> None:
    before = datetime.now(UTC)
    resp = submit({"delay_seconds": 120})
    assert resp.status == 202 and resp.body["status"] == "SCHEDULED"
    job = get(resp.body["job_id"])
    assert job["status"] == "SCHEDULED" and "schedule_name" not in job
    due = datetime.fromisoformat(job["run_at"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=119) <= due <= datetime.now(UTC) + timedelta(seconds=120)
    assert stack.messages() == [] and delayed_messages(stack) == 1  # not visible before it is due
    assert stack.schedules() == {}
    assert active_jobs(stack) == 1  # a scheduled job holds a slot
    [item] = [i for i in stack.items() if i["job_id"]["S"] == job["job_id"]]
    # kept job_retention_days (30) after its due time
    assert int(item["expires_at"]["N"]) >= int((due + timedelta(days=30)).timestamp()) - 1


def test_job_beyond_the_delay_threshold_gets_a_one_time_schedule(stack: Stack) -> None:
    run_at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    resp = submit({"run_at": run_at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert resp.status == 202 and resp.body["status"] == "SCHEDULED"
    job_id = resp.body["job_id"]
    job = get(job_id)
    assert job["run_at"] == z(run_at) and job["schedule_name"] == f"job-{job_id}"
    assert stack.messages() == [] and delayed_messages(stack) == 0
    schedule = stack.schedules()[f"job-{job_id}"]
    assert schedule["ScheduleExpression"] == f"at({run_at.strftime('%Y-%m-%dT%H:%M:%S')})"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    target = schedule["Target"]
    assert target["Arn"] == QUEUE_ARN and target["RoleArn"] == SCHEDULER_ROLE
    assert json.loads(target["Input"]) == {"owner_id": "user-a", "job_id": job_id}  # what the worker reads
    assert target["DeadLetterConfig"] == {"Arn": DLQ_ARN}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_due_message_of_a_scheduled_job_runs_it(stack: Stack) -> None:
    run_at = datetime.now(UTC) + timedelta(hours=2)
    job_id = submit({"run_at": run_at.strftime("%Y-%m-%dT%H:%M:%SZ")}).body["job_id"]
    schedule = stack.schedules()[f"job-{job_id}"]
    assert call_worker(sqs_record(schedule["Target"]["Input"])) == []  # the schedule fires
    done = get(job_id)
    assert done["status"] == "COMPLETE" and done["startedAt"]
    assert active_jobs(stack) == 0


def test_cancel_of_a_scheduled_job_deletes_its_schedule_frees_the_slot_once_and_skips_its_message(
    stack: Stack,
) -> None:
    run_at = datetime.now(UTC) + timedelta(hours=2)
    job_id = submit({"run_at": run_at.strftime("%Y-%m-%dT%H:%M:%SZ")}).body["job_id"]
    body = stack.schedules()[f"job-{job_id}"]["Target"]["Input"]
    assert active_jobs(stack) == 1
    resp = cancel(job_id)
    assert resp.status == 200 and resp.body["status"] == "CANCELLED"
    assert stack.schedules() == {}
    assert active_jobs(stack) == 0
    again = cancel(job_id)
    assert again.status == 409 and "PENDING or SCHEDULED" in again.body["message"]
    assert active_jobs(stack) == 0
    assert call_worker(sqs_record(body)) == []  # a message that still arrives: acknowledged, not run
    assert get(job_id)["status"] == "CANCELLED" and stack.objects() == []


def test_cancel_of_a_delayed_job_skips_its_message(stack: Stack) -> None:
    job_id = submit({"delay_seconds": 1}).body["job_id"]
    assert cancel(job_id).body["status"] == "CANCELLED"
    assert active_jobs(stack) == 0
    body = json.dumps({"owner_id": "user-a", "job_id": job_id}, separators=(",", ":"))
    assert call_worker(sqs_record(body)) == []
    assert get(job_id)["status"] == "CANCELLED" and stack.objects() == []


def test_cancel_survives_a_schedule_that_already_fired_or_cannot_be_deleted(stack: Stack) -> None:
    from jobs.api import service

    run_at = datetime.now(UTC) + timedelta(hours=2)
    gone = submit({"run_at": run_at.strftime("%Y-%m-%dT%H:%M:%SZ")}).body["job_id"]
    stack.scheduler.delete_schedule(Name=f"job-{gone}", GroupName="jobs-test-jobs")  # it fired
    assert cancel(gone).body["status"] == "CANCELLED"
    stuck = submit({"run_at": run_at.strftime("%Y-%m-%dT%H:%M:%SZ")}).body["job_id"]
    err = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DeleteSchedule")
    with mock.patch.object(service().scheduler._scheduler, "delete_schedule", side_effect=err):
        resp = cancel(stuck)
    assert resp.status == 200 and resp.body["status"] == "CANCELLED"
    assert active_jobs(stack) == 0


def test_schedule_failure_is_503_the_job_failed_and_its_slot_freed(stack: Stack) -> None:
    from jobs.api import service

    err = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "CreateSchedule")
    run_at = datetime.now(UTC) + timedelta(hours=2)
    with mock.patch.object(service().scheduler._scheduler, "create_schedule", side_effect=err):
        resp = submit({"run_at": run_at.strftime("%Y-%m-%dT%H:%M:%SZ")}, headers={"Idempotency-Key": "k1"})
    assert resp.status == 503 and resp.body["error"] == "enqueue_failed" and "scheduled" in resp.body["message"]
    [item] = [i for i in stack.items() if i["owner_id"]["S"] == "user-a"]
    assert item["status"]["S"] == "FAILED" and "scheduled" in item["error"]["S"]
    assert active_jobs(stack) == 0
    retry = submit({"run_at": run_at.strftime("%Y-%m-%dT%H:%M:%SZ")}, headers={"Idempotency-Key": "k1"})
    assert retry.status == 202 and retry.body["job_id"] != item["job_id"]["S"]


def test_delayed_send_failure_is_503_and_the_job_failed(stack: Stack) -> None:
    from jobs.api import service

    err = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
    with mock.patch.object(service().queue._sqs, "send_message", side_effect=err):
        resp = submit({"delay_seconds": 5})
    assert resp.status == 503 and resp.body["error"] == "enqueue_failed"
    [item] = stack.items()
    assert item["status"]["S"] == "FAILED" and active_jobs(stack) == 0


def test_idempotent_replay_of_a_delayed_submit_returns_the_first_job(stack: Stack) -> None:
    first = submit({"delay_seconds": 60}, headers={"Idempotency-Key": "same"})
    again = submit({"delay_seconds": 60}, headers={"Idempotency-Key": "same"})
    assert again.status == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.body["job_id"] == first.body["job_id"]
    other = submit({"delay_seconds": 61}, headers={"Idempotency-Key": "same"})
    assert other.status == 422


@pytest.mark.parametrize(
    "extra",
    [
        {"run_at": "2000-01-01T00:00:00Z"},
        {"run_at": "2999-01-01T00:00:00Z"},
        {"run_at": "2030-01-01T00:00:00+01:00"},
        {"run_at": "soon"},
        {"delay_seconds": -5},
        {"delay_seconds": "10"},
        {"delay_seconds": MAX_SCHEDULE_DAYS * 86400 + 1},
        {"delay_seconds": 10, "run_at": "2030-01-01T00:00:00Z"},
    ],
)
def test_bad_due_time_is_400_and_writes_nothing(stack: Stack, extra: dict) -> None:
    resp = submit(extra)
    assert resp.status == 400, resp.body
    assert resp.body["error"] in (
        "schedule_out_of_range",
        "invalid_run_at",
        "invalid_delay_seconds",
        "conflicting_schedule",
    )
    assert stack.items() == [] and stack.counters() == {} and stack.schedules() == {}
    assert stack.messages() == [] and delayed_messages(stack) == 0


def test_scheduled_jobs_are_listed_by_status(stack: Stack) -> None:
    job_id = submit({"delay_seconds": 300}).body["job_id"]
    submit({})
    resp = call_api(api_event("GET", "/jobs", query={"status": "scheduled"}))
    assert resp.status == 200 and [j["job_id"] for j in resp.body] == [job_id]
    assert resp.body[0]["run_at"]


# ---- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "JOBS_QUEUE_ARN",
        "JOBS_DLQ_ARN",
        "JOBS_DLQ_URL",
        "SCHEDULE_GROUP_NAME",
        "SCHEDULER_ROLE_ARN",
        "MAX_SCHEDULE_DAYS",
        "SCHEDULE_DELAY_THRESHOLD_SECONDS",
    ],
)
def test_a_missing_scheduling_setting_is_named(name: str) -> None:
    from jobs.settings import Settings, SettingsError
    from tests.unit.conftest import ENV

    with pytest.raises(SettingsError, match=name):
        Settings.from_env({k: v for k, v in ENV.items() if k != name})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_SCHEDULE_DAYS", "0"),
        ("MAX_SCHEDULE_DAYS", "366"),
        ("MAX_SCHEDULE_DAYS", "a week"),
        ("SCHEDULE_DELAY_THRESHOLD_SECONDS", "-1"),
        ("SCHEDULE_DELAY_THRESHOLD_SECONDS", "901"),
        ("SCHEDULE_DELAY_THRESHOLD_SECONDS", "1.5"),
    ],
)
def test_a_scheduling_setting_out_of_range_is_named(name: str, value: str) -> None:
    from jobs.settings import Settings, SettingsError
    from tests.unit.conftest import ENV

    with pytest.raises(SettingsError, match=name):
        Settings.from_env({**ENV, name: value})


def test_scheduling_settings_are_read() -> None:
    from jobs.settings import Settings
    from tests.unit.conftest import ENV

    s = Settings.from_env({**ENV, "SCHEDULE_DELAY_THRESHOLD_SECONDS": "0"})
    assert (s.max_schedule_days, s.schedule_delay_threshold_seconds) == (MAX_SCHEDULE_DAYS, 0)
    assert (
        s.target_queue_arn(Priority.NORMAL) == QUEUE_ARN
        and s.scheduler_role_arn == SCHEDULER_ROLE
        and s.dlq_arn == DLQ_ARN
    )
