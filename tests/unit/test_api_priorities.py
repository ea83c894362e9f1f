"""Priorities and fair-queue groups through the real api handler on moto: the ``priority``
field (validation, default, who may use ``high``), which queue a job lands in, its
``MessageGroupId``, the record and the idempotency fingerprint."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobs.errors import ValidationError
from jobs.formats import ResultFormat
from jobs.model import DEFAULT_PRIORITY, NewJob, Priority
from jobs.settings import Settings, SettingsError
from tests.unit.conftest import ENV, HIGH_GROUP, VALID_JOB, Stack, api_event, call_api, claims

FORMATS = {"demo": [ResultFormat.TEXT]}


def post(body: dict[str, Any], sub: str = "user-a", groups: str | None = None, headers: dict[str, str] | None = None):
    return call_api(api_event("POST", "/job", body=body, claims_=claims(sub, groups=groups), headers=headers))


def get(job_id: str, sub: str = "user-a"):
    return call_api(api_event("GET", "/job", query={"job_id": job_id}, claims_=claims(sub)))


def bodies(stack: Stack, url: str) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in stack.messages(url)]


# ---------------------------------------------------------------------- model (pure)


@pytest.mark.parametrize("value", ["high", "normal", "low"])
def test_priority_is_read_from_the_body(value: str) -> None:
    assert NewJob.from_data({**VALID_JOB, "priority": value}, FORMATS).priority is Priority(value)


def test_priority_defaults_to_normal() -> None:
    assert NewJob.from_data(dict(VALID_JOB), FORMATS).priority is DEFAULT_PRIORITY is Priority.NORMAL


@pytest.mark.parametrize(
    ("value", "code"),
    [("urgent", "invalid_priority"), ("HIGH", "invalid_priority"), ("", "invalid_priority"), (1, "invalid_field"),
     (None, "invalid_field"), (["high"], "invalid_field")],
)  # fmt: skip
def test_a_bad_priority_is_a_400_naming_the_choices(value: Any, code: str) -> None:
    with pytest.raises(ValidationError) as raised:
        NewJob.from_data({**VALID_JOB, "priority": value}, FORMATS)
    assert raised.value.code == code and "priority" in raised.value.message
    if code == "invalid_priority":
        assert "high, normal, low" in raised.value.message


def test_fingerprint_names_the_priority_only_when_not_the_default() -> None:
    plain = NewJob.from_data(dict(VALID_JOB), FORMATS).fingerprint()
    assert NewJob.from_data({**VALID_JOB, "priority": "normal"}, FORMATS).fingerprint() == plain
    low = NewJob.from_data({**VALID_JOB, "priority": "low"}, FORMATS).fingerprint()
    high = NewJob.from_data({**VALID_JOB, "priority": "high"}, FORMATS).fingerprint()
    assert len({plain, low, high}) == 3


# ---------------------------------------------------------------------- settings


def test_settings_read_the_three_queues_and_the_group() -> None:
    s = Settings.from_env(ENV)
    assert s.queue_urls == {
        Priority.HIGH: ENV["JOBS_QUEUE_URL_HIGH"],
        Priority.NORMAL: ENV["JOBS_QUEUE_URL"],
        Priority.LOW: ENV["JOBS_QUEUE_URL_LOW"],
    }
    assert s.queue_url == ENV["JOBS_QUEUE_URL"] and s.high_priority_group == HIGH_GROUP


@pytest.mark.parametrize("name", ["JOBS_QUEUE_URL_HIGH", "JOBS_QUEUE_URL_LOW"])
def test_a_missing_priority_queue_is_named(name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({k: v for k, v in ENV.items() if k != name})


def test_one_queue_for_two_priorities_is_refused() -> None:
    with pytest.raises(SettingsError, match="three different queues"):
        Settings.from_env({**ENV, "JOBS_QUEUE_URL_LOW": ENV["JOBS_QUEUE_URL"]})


def test_no_group_means_nobody_may_use_high() -> None:
    assert Settings.from_env({k: v for k, v in ENV.items() if k != "HIGH_PRIORITY_GROUP"}).high_priority_group is None
    assert Settings.from_env({**ENV, "HIGH_PRIORITY_GROUP": "  "}).high_priority_group is None


def test_a_group_name_that_no_token_can_carry_is_refused() -> None:
    with pytest.raises(SettingsError, match="HIGH_PRIORITY_GROUP"):
        Settings.from_env({**ENV, "HIGH_PRIORITY_GROUP": "a,b"})


# ---------------------------------------------------------------------- through the handler


@pytest.mark.parametrize(
    ("priority", "queue"), [(None, "queue_url"), ("normal", "queue_url"), ("low", "low_queue_url")]
)
def test_a_job_goes_to_its_priority_queue_grouped_by_owner(stack: Stack, priority: str | None, queue: str) -> None:
    body = dict(VALID_JOB) if priority is None else {**VALID_JOB, "priority": priority}
    resp = post(body, sub="owner-1")
    assert resp.status == 202
    job_id = resp.body["job_id"]
    messages = stack.messages(getattr(stack, queue))
    assert [json.loads(m["Body"]) for m in messages] == [{"owner_id": "owner-1", "job_id": job_id}]
    assert messages[0]["Attributes"]["MessageGroupId"] == "owner-1"  # the fair queue's tenant
    others = {"queue_url", "high_queue_url", "low_queue_url"} - {queue}
    assert all(bodies(stack, getattr(stack, other)) == [] for other in others)
    view = get(job_id, sub="owner-1").body
    assert view["priority"] == (priority or "normal")


def test_a_member_of_the_group_may_submit_high(stack: Stack) -> None:
    resp = post({**VALID_JOB, "priority": "high"}, groups=f"other,{HIGH_GROUP}")
    assert resp.status == 202
    assert [b["job_id"] for b in bodies(stack, stack.high_queue_url)] == [resp.body["job_id"]]
    assert bodies(stack, stack.queue_url) == []
    assert get(resp.body["job_id"]).body["priority"] == "high"


@pytest.mark.parametrize("groups", [None, "", "other", f"{HIGH_GROUP}-not", "capped"])
def test_others_get_403_priority_not_allowed_and_nothing_changes(stack: Stack, groups: str | None) -> None:
    resp = post({**VALID_JOB, "priority": "high"}, groups=groups)
    assert resp.status == 403
    assert resp.body["error"] == "priority_not_allowed" and HIGH_GROUP in resp.body["message"]
    assert stack.items() == [] and stack.counters() == {}
    assert all(bodies(stack, getattr(stack, q)) == [] for q in ("queue_url", "high_queue_url", "low_queue_url"))


def test_a_bad_priority_is_a_400_before_anything_is_written(stack: Stack) -> None:
    resp = post({**VALID_JOB, "priority": "urgent"}, groups=HIGH_GROUP)
    assert resp.status == 400 and resp.body["error"] == "invalid_priority"
    assert stack.items() == [] and bodies(stack, stack.queue_url) == []


def test_a_record_without_priority_reads_as_normal(stack: Stack) -> None:
    job_id = post(dict(VALID_JOB)).body["job_id"]
    stack.ddb.update_item(
        TableName=ENV["JOBS_TABLE_NAME"],
        Key={"owner_id": {"S": "user-a"}, "job_id": {"S": job_id}},
        UpdateExpression="REMOVE priority",
    )
    assert get(job_id).body["priority"] == "normal"


def test_the_same_key_with_another_priority_is_another_request(stack: Stack) -> None:
    key = {"Idempotency-Key": "prio-key-1"}
    first = post(dict(VALID_JOB), headers=key)
    assert first.status == 202
    same = post({**VALID_JOB, "priority": "normal"}, headers=key)  # the default, named: the same request
    assert same.status == 202 and same.body["job_id"] == first.body["job_id"]
    assert same.headers.get("Idempotent-Replayed") == "true"
    other = post({**VALID_JOB, "priority": "low"}, headers=key)
    assert other.status == 422 and other.body["error"] == "idempotency_key_reused"
