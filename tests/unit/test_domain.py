"""Pure domain rules: settings, ids, actions, page tokens."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from jobs import actions
from jobs.errors import ValidationError
from jobs.model import PageToken, Status, new_job_id
from jobs.settings import Settings, SettingsError
from tests.unit.conftest import ENV

ROOT = Path(__file__).resolve().parents[2]


def test_settings_read_every_variable() -> None:
    s = Settings.from_env(ENV)
    assert s.table_name == "jobs-test"
    assert s.cors_allowed_origins == ("https://app.example.com", "https://admin.example.com")
    assert s.max_receive_count == 3 and s.retention_days == 30 and s.result_url_ttl_seconds == 300


@pytest.mark.parametrize(
    "name",
    [
        "JOBS_TABLE_NAME",
        "RESULTS_BUCKET_NAME",
        "JOBS_QUEUE_URL",
        "ALLOWED_CLIENT_ID",
        "CORS_ALLOWED_ORIGINS",
        "MAX_RECEIVE_COUNT",
        "JOB_RETENTION_DAYS",
        "RESULT_URL_TTL_SECONDS",
    ],
)
def test_missing_setting_is_named(name: str) -> None:
    env = {k: v for k, v in ENV.items() if k != name}
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


@pytest.mark.parametrize("value", ["zero", "0", "-3", "1.5"])
def test_malformed_number_is_named(value: str) -> None:
    with pytest.raises(SettingsError, match="MAX_RECEIVE_COUNT"):
        Settings.from_env({**ENV, "MAX_RECEIVE_COUNT": value})


@pytest.mark.parametrize("module", ["jobs.api", "jobs.worker"])
def test_handler_fails_at_import_naming_the_missing_variable(module: str) -> None:
    env = {k: v for k, v in ENV.items() if k != "JOBS_TABLE_NAME"}
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        env={**env, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "lambda_src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "JOBS_TABLE_NAME is required" in proc.stderr


def test_job_ids_are_uuid7_in_time_order() -> None:
    ids = [new_job_id(ms) for ms in (1_000, 1_001, 2_000_000_000_000)]
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids)
    assert len({new_job_id(5) for _ in range(1000)}) == 1000


def test_actions_registry() -> None:
    assert {"process-data", "demo", "word-count", "checksum"} <= set(actions.known_actions())
    job = actions.ActionInput("id", "n", "word-count", "the cat the", "dog", "2025-01-01T00:00:00.000Z")
    out = actions.run_action(job)
    assert "total words: 4" in out and "2  the" in out
    with pytest.raises(ValueError, match="already registered"):
        actions.action("demo", "twice", text=str)(lambda j: "")


def test_demo_action_matches_the_readme_example() -> None:
    job = actions.ActionInput("id", "test", "demo", "hello", "world", "2025-01-01T00:00:00.000Z")
    assert actions.run_action(job) == "hello world\n"


def test_unknown_action_at_run_time_is_an_action_error() -> None:
    with pytest.raises(actions.ActionError, match="known actions"):
        actions.get_action("gone")


def test_page_token_round_trip_and_binding() -> None:
    tok = PageToken("0190a0b0-0000-7000-8000-000000000001", Status.COMPLETE).encode("alice")
    assert PageToken.decode(tok, "alice", Status.COMPLETE) == PageToken(
        "0190a0b0-0000-7000-8000-000000000001", Status.COMPLETE
    )
    for owner, status in (("bob", Status.COMPLETE), ("alice", None), ("alice", Status.FAILED)):
        with pytest.raises(ValidationError):
            PageToken.decode(tok, owner, status)


def test_json_format_action_pretty_prints_or_fails_clearly() -> None:
    ok = actions.ActionInput("id", "n", "json-format", '{"b": 1, "a": [1, 2]}', "-", "2025-01-01T00:00:00.000Z")
    assert actions.run_action(ok) == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    bad = actions.ActionInput("id", "n", "json-format", "{not json", "-", "2025-01-01T00:00:00.000Z")
    with pytest.raises(actions.ActionError, match="context1 is not valid JSON"):
        actions.run_action(bad)


def test_only_the_s3_client_carries_a_signature_setting() -> None:
    from jobs import aws

    aws.client.cache_clear()
    try:
        s3 = aws.client("s3").meta.config
        assert s3.signature_version == "s3v4"
        assert s3.retries == {"mode": "standard", "total_max_attempts": 9}  # the shared settings too
        for service in ("dynamodb", "sqs"):
            config = aws.client(service).meta.config
            assert config.signature_version is None or config.signature_version == "v4", service
            assert config.retries == {"mode": "standard", "total_max_attempts": 9}  # 8 retries
    finally:
        aws.client.cache_clear()
