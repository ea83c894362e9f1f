"""`invoke logs` against log events seeded on the embedded backend."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tooling import logs
from tooling.errors import OperatorError


def put(client, group, stream, events):
    with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    client.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": ts, "message": msg} for ts, msg in events],
    )


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def test_parse_since():
    now = datetime(2025, 7, 14, 12, 0, tzinfo=UTC)
    assert logs.parse_since("10m", now) == now - timedelta(minutes=10)
    assert logs.parse_since("30s", now) == now - timedelta(seconds=30)
    assert logs.parse_since("2h", now) == now - timedelta(hours=2)
    assert logs.parse_since("1d", now) == now - timedelta(days=1)
    assert logs.parse_since("2025-07-14T11:00:00Z", now) == datetime(2025, 7, 14, 11, tzinfo=UTC)
    with pytest.raises(OperatorError, match="cannot read --since 'ten minutes'"):
        logs.parse_since("ten minutes", now)


def test_pretty_message_renders_powertools_json():
    line = json.dumps({"level": "INFO", "message": "job claimed", "correlation_id": "abc", "service": "w"})
    assert logs.pretty_message(line) == "INFO job claimed correlation_id=abc"
    assert logs.pretty_message("START RequestId: 1\n") == "START RequestId: 1"


def test_fetch_returns_seeded_events_in_order_with_since_and_filter(access, seeded_stack):
    client = access.client("logs")
    group = seeded_stack["worker_log_group"]
    now = datetime.now(UTC)
    put(
        client,
        group,
        "2025/07/14/[$LATEST]aaaa1111",
        [
            (ms(now - timedelta(hours=2)), "too old"),
            (ms(now - timedelta(minutes=5)), "job 1 claimed"),
            (ms(now - timedelta(minutes=3)), "job 1 COMPLETE"),
        ],
    )
    put(client, group, "2025/07/14/[$LATEST]bbbb2222", [(ms(now - timedelta(minutes=4)), "job 2 claimed")])

    got = list(logs.fetch(client, group, logs.parse_since("10m")))
    assert [e.message for e in got] == ["job 1 claimed", "job 2 claimed", "job 1 COMPLETE"]
    assert got[1].render().endswith("[bbbb2222] job 2 claimed")

    assert next(e.message for e in logs.fetch(client, group, now - timedelta(days=1))) == "too old"
    assert [e.message for e in logs.fetch(client, group, logs.parse_since("10m"), filter_text="claimed")] == [
        "job 1 claimed",
        "job 2 claimed",
    ]
    assert list(logs.fetch(client, group, logs.parse_since("10m"), filter_text="no such text")) == []


def test_follow_prints_new_events_once(access, seeded_stack):
    client = access.client("logs")
    group = seeded_stack["api_log_group"]
    start = datetime.now(UTC) - timedelta(minutes=1)
    put(client, group, "s1", [(ms(start) + 1000, "first")])
    printed: list[str] = []
    rounds = iter([["second", "third"], []])

    def sleep(_seconds: float) -> None:
        batch = next(rounds)
        if batch:
            base = int(time.time() * 1000)
            put(client, group, "s1", [(base + i, m) for i, m in enumerate(batch)])

    emitted = logs.follow(client, group, start, lambda e: printed.append(e.message), max_polls=3, sleep=sleep)
    assert printed == ["first", "second", "third"]
    assert emitted == 3


def test_missing_log_group_is_an_operator_error(access):
    with pytest.raises(OperatorError, match="log group /aws/lambda/nope does not exist"):
        list(logs.fetch(access.client("logs"), "/aws/lambda/nope", datetime.now(UTC)))


def test_log_group_for_reads_outputs():
    assert logs.log_group_for({"api_log_group": "/a"}, "api") == "/a"
    with pytest.raises(OperatorError, match="unknown function 'db'"):
        logs.log_group_for({}, "db")


def test_logs_task_prints_the_functions_events(access, seeded_stack, monkeypatch, tmp_path, backend):
    from tooling import deploy
    from tooling.environments import Environment

    monkeypatch.setenv("JOBSTACK_ENDPOINT_URL", backend.endpoint)
    monkeypatch.setattr(deploy, "stack_outputs", lambda env: seeded_stack)
    env = Environment("local", tmp_path / "local.tfvars", None, {}, root=tmp_path)
    client = access.client("logs")
    now = datetime.now(UTC)
    put(
        client,
        seeded_stack["worker_log_group"],
        "2025/07/14/[$LATEST]cafe0001",
        [
            (ms(now - timedelta(minutes=2)), json.dumps({"level": "INFO", "message": "job claimed", "job_id": "j1"})),
            (ms(now - timedelta(minutes=1)), json.dumps({"level": "ERROR", "message": "job failed", "job_id": "j1"})),
        ],
    )
    lines: list[str] = []
    deploy.print_logs(env, function="worker", since="5m", filter_text="failed", out=lines.append)
    assert lines[0].startswith(f"{seeded_stack['worker_log_group']} since ")
    assert len(lines) == 2
    assert lines[1].endswith("[cafe0001] ERROR job failed job_id=j1")

    empty: list[str] = []
    deploy.print_logs(env, function="api", since="5m", out=empty.append)
    assert empty[1:] == ["(no log events in that window)"]
