"""EventBridge Scheduler one-time schedules fired by the local runtime (moto never fires them):
at their time and not before, as the schedule's role (IAM enforced), deleted after, the
dead-letter queue when the role may not send, nothing when deleted before its time."""

from __future__ import annotations

import json
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.local_runtime.conftest import Stack, wait_for
from tooling.local_runtime import LocalRuntime
from tooling.local_runtime.scheduler import due_epoch

ACCOUNT = "123456789012"
GROUP = "lr-schedules"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
    ],
}


def test_due_epoch_reads_one_time_expressions_in_their_time_zone() -> None:
    assert due_epoch("at(2030-01-01T00:00:00)", "UTC") == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert due_epoch("at(2030-01-01T01:00:00)", "Europe/Berlin") == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert due_epoch("at(2030-01-01T00:00:00)", None) == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert due_epoch("rate(5 minutes)", "UTC") is None
    assert due_epoch("cron(0 12 * * ? *)", "UTC") is None


def _queue(stack: Stack, name: str) -> tuple[str, str]:
    sqs = stack.aws["sqs"]
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def _role(stack: Stack, name: str, may_send_to: list[str]) -> str:
    iam = stack.aws["iam"]
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": may_send_to}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="send", PolicyDocument=json.dumps(policy))
    return str(arn)


@pytest.fixture(scope="module")
def group(stack: Stack) -> str:
    stack.aws["scheduler"].create_schedule_group(Name=GROUP)
    return GROUP


def _create(stack: Stack, name: str, at: float, target: dict[str, Any], after: str = "DELETE") -> None:
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    stack.aws["scheduler"].create_schedule(
        Name=name,
        GroupName=GROUP,
        ScheduleExpression=f"at({when})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion=after,
        Target=target,
    )


def _receive(stack: Stack, url: str, wait: int = 1) -> list[dict[str, Any]]:
    got = stack.aws["sqs"].receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, AttributeNames=["SentTimestamp"]
    )
    return list(got.get("Messages", []))


def _names(stack: Stack) -> set[str]:
    return {s["Name"] for s in stack.aws["scheduler"].list_schedules(GroupName=GROUP)["Schedules"]}


def test_a_one_time_schedule_fires_at_its_time_as_its_role_then_is_deleted(
    stack: Stack, runtime: LocalRuntime, group: str
) -> None:
    unique = uuid.uuid4().hex[:8]
    url, arn = _queue(stack, f"lr-due-{unique}")
    role = _role(stack, f"lr-sched-{unique}", [arn])
    due = math.ceil(time.time()) + 4
    body = json.dumps({"owner_id": "o", "job_id": unique})
    _create(stack, f"job-{unique}", due, {"Arn": arn, "RoleArn": role, "Input": body})
    assert _receive(stack, url, wait=0) == []
    messages: list[dict[str, Any]] = []
    while not messages and time.time() < due + 10:
        messages = _receive(stack, url)
    [message] = messages
    sent = int(message["Attributes"]["SentTimestamp"]) / 1000
    assert due <= sent <= due + 2, f"sent {sent - due:+.2f}s from its time"  # never early, within 2 s
    assert message["Body"] == body
    wait_for(lambda: f"job-{unique}" not in _names(stack), 5, "the fired schedule to be deleted")
    assert runtime.schedules is not None
    [firing] = [f for f in runtime.schedules.firings if f.name == f"job-{unique}"]
    assert firing.delivered and firing.due == due


def test_a_schedule_deleted_before_its_time_never_fires(stack: Stack, runtime: LocalRuntime, group: str) -> None:
    unique = uuid.uuid4().hex[:8]
    url, arn = _queue(stack, f"lr-cancel-{unique}")
    role = _role(stack, f"lr-sched-{unique}", [arn])
    due = math.ceil(time.time()) + 3
    _create(stack, f"job-{unique}", due, {"Arn": arn, "RoleArn": role, "Input": "{}"})
    time.sleep(1.5)  # listed by the firer by now
    stack.aws["scheduler"].delete_schedule(Name=f"job-{unique}", GroupName=GROUP)
    time.sleep(max(0.0, due + 2 - time.time()))
    assert _receive(stack, url, wait=1) == []


def test_a_role_that_may_not_send_to_the_target_ends_in_the_dead_letter_queue(
    stack: Stack, runtime: LocalRuntime, group: str
) -> None:
    unique = uuid.uuid4().hex[:8]
    url, arn = _queue(stack, f"lr-denied-{unique}")
    dlq_url, dlq_arn = _queue(stack, f"lr-sdlq-{unique}")
    role = _role(stack, f"lr-sched-{unique}", [dlq_arn])  # IAM refuses the target itself
    due = math.ceil(time.time()) + 2
    _create(
        stack,
        f"job-{unique}",
        due,
        {
            "Arn": arn,
            "RoleArn": role,
            "Input": "lost",
            "RetryPolicy": {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 60},
            "DeadLetterConfig": {"Arn": dlq_arn},
        },
    )
    messages: list[dict[str, Any]] = []
    while not messages and time.time() < due + 15:
        messages = _receive(stack, dlq_url)
    assert [m["Body"] for m in messages] == ["lost"]
    assert _receive(stack, url, wait=0) == []
    assert any("not delivered" in line and f"job-{unique}" in line for line in stack.console)
    wait_for(lambda: f"job-{unique}" not in _names(stack), 5, "the schedule to be deleted after its last attempt")


def test_a_schedule_kept_after_completion_fires_once(stack: Stack, runtime: LocalRuntime, group: str) -> None:
    unique = uuid.uuid4().hex[:8]
    url, arn = _queue(stack, f"lr-once-{unique}")
    role = _role(stack, f"lr-sched-{unique}", [arn])
    due = math.ceil(time.time()) + 2
    _create(stack, f"keep-{unique}", due, {"Arn": arn, "RoleArn": role, "Input": "once"}, after="NONE")
    messages: list[dict[str, Any]] = []
    while not messages and time.time() < due + 10:
        messages = _receive(stack, url)
    assert [m["Body"] for m in messages] == ["once"]
    stack.aws["sqs"].delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    time.sleep(2.5)  # two more listings
    assert _receive(stack, url, wait=1) == []
    assert f"keep-{unique}" in _names(stack)


# ---- the firer alone, on fakes (no backend): deterministic edge cases --------------------------


class _FakeScheduler:
    def __init__(self, schedules: dict[str, dict[str, Any]], fail_delete: bool = False) -> None:
        self.schedules = schedules
        self.fail_delete = fail_delete
        self.deletes = 0

    def list_schedule_groups(self, **_: Any) -> dict[str, Any]:
        return {"ScheduleGroups": [{"Name": "g"}]}

    def list_schedules(self, GroupName: str, **_: Any) -> dict[str, Any]:
        return {"Schedules": [{"Name": n, "GroupName": "g", "State": "ENABLED"} for n in self.schedules]}

    def get_schedule(self, Name: str, GroupName: str) -> dict[str, Any]:
        return self.schedules[Name]

    def delete_schedule(self, Name: str, GroupName: str) -> None:
        from botocore.exceptions import EndpointConnectionError

        self.deletes += 1
        if self.fail_delete:
            raise EndpointConnectionError(endpoint_url="http://backend")
        del self.schedules[Name]


class _FakeSqs:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def get_queue_url(self, QueueName: str, QueueOwnerAWSAccountId: str) -> dict[str, str]:
        return {"QueueUrl": f"http://q/{QueueOwnerAWSAccountId}/{QueueName}"}

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.sent.append((QueueUrl, MessageBody))


class _FakeBackend:
    def __init__(self, scheduler: _FakeScheduler, sqs: _FakeSqs) -> None:
        self.clients = {"scheduler": scheduler, "sqs": sqs}

    def client(self, service: str) -> Any:
        return self.clients[service]


class _FakeRoles:
    def __init__(self, sqs: _FakeSqs) -> None:
        self.sqs = sqs
        self.roles: list[str] = []

    def client(self, role_arn: str, session: str, service: str) -> Any:
        self.roles.append(role_arn)
        return self.sqs


class _Logs:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        self.lines.append(line)


def _firer(schedules: dict[str, dict[str, Any]], fail_delete: bool = False) -> tuple[Any, _FakeScheduler, _FakeSqs]:
    from tooling.local_runtime.scheduler import ScheduleFirer

    scheduler, sqs = _FakeScheduler(schedules, fail_delete), _FakeSqs()
    firer = ScheduleFirer(_FakeBackend(scheduler, sqs), _FakeRoles(sqs), _Logs(), interval=0.2)  # type: ignore[arg-type]
    return firer, scheduler, sqs


def _one_time(at: float, after: str = "DELETE") -> dict[str, Any]:
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "ScheduleExpression": f"at({when})",
        "ScheduleExpressionTimezone": "UTC",
        "State": "ENABLED",
        "ActionAfterCompletion": after,
        "Target": {"Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs", "RoleArn": "arn:aws:iam::1:role/r", "Input": "m"},
    }


def test_a_schedule_whose_delete_fails_is_not_fired_twice() -> None:
    firer, scheduler, sqs = _firer({"job-1": _one_time(time.time() - 1)}, fail_delete=True)
    firer.start()
    try:
        time.sleep(1.2)  # several listings after the firing
    finally:
        firer.stop()
    assert sqs.sent == [(f"http://q/{ACCOUNT}/jobs", "m")]
    assert scheduler.deletes == 1 and "job-1" in scheduler.schedules


def test_rate_and_cron_schedules_are_noted_once_and_not_fired() -> None:
    recurring = {**_one_time(time.time()), "ScheduleExpression": "rate(1 minute)"}
    firer, _, sqs = _firer({"every-minute": recurring})
    firer.start()
    try:
        time.sleep(0.8)
    finally:
        firer.stop()
    assert sqs.sent == []
    assert [line for line in firer._logs.lines if "every-minute" in line] == [
        "schedule every-minute: rate(1 minute) is not fired here"
    ]
