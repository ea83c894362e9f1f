"""Execution environments: cold/warm, timeout, crash, init errors, environment, context, logs."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.local_runtime.conftest import Stack, wait_for
from tooling.local_runtime import CodeNotFoundError, LocalRuntime


def _body(result_payload: dict) -> dict:
    return json.loads(result_payload["body"])


def test_cold_start_then_warm_reuse(runtime: LocalRuntime) -> None:
    first = runtime.invoke("lr-warm", {"n": 1})
    second = runtime.invoke("lr-warm", {"n": 2})
    assert first.ok and second.ok, (first.error, second.error)
    assert first.cold and first.init_ms is not None
    assert not second.cold and second.init_ms is None
    assert first.environment_id == second.environment_id
    one, two = _body(first.payload), _body(second.payload)
    assert one["pid"] == two["pid"] != os.getpid()
    assert two["invocations"] == one["invocations"] + 1  # module state survives: same process


def test_environment_and_context(stack: Stack, runtime: LocalRuntime) -> None:
    result = runtime.invoke("lr-echo", {"hello": "world"})
    assert result.ok, result.error
    body = _body(result.payload)
    assert body["event"] == {"hello": "world"}
    env = body["env"]
    assert env["AWS_ENDPOINT_URL"] == stack.endpoint
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    # The function runs as its execution role (a role session), never as the administrator.
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert body["caller"].endswith(":assumed-role/lr-role/lr-echo")
    assert env["GREETING"] == "hello"  # deployed environment variable
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "lr-echo"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/lr-echo"
    assert env["_HANDLER"] == "handlers.echo"
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert body["cwd"] == env["LAMBDA_TASK_ROOT"]
    ctx = body["context"]
    assert ctx["function_name"] == "lr-echo"
    assert ctx["aws_request_id"] == result.request_id
    assert ctx["memory_limit_in_mb"] == "256"  # a string, as in the real Python runtime
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:lr-echo"
    assert 0 < ctx["remaining_ms"] <= 3000
    assert ctx["log_group_name"] == "/aws/lambda/lr-echo"
    assert ctx["log_stream_name"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert "[$LATEST]" in ctx["log_stream_name"]


def test_handler_exception_is_an_error_and_keeps_the_environment(runtime: LocalRuntime) -> None:
    first = runtime.invoke("lr-fail", {})
    second = runtime.invoke("lr-fail", {})
    assert not first.ok and first.function_error == "Unhandled"
    assert first.error is not None
    assert first.error["errorType"] == "ValueError"
    assert first.error["errorMessage"] == "boom from the handler"
    assert any("handlers.py" in line for line in first.error["stackTrace"])
    assert second.environment_id == first.environment_id and not second.cold


def test_timeout_is_enforced_and_the_process_replaced(runtime: LocalRuntime) -> None:
    started = time.monotonic()
    timed_out = runtime.invoke("lr-sleep", {"seconds": 10})
    took = time.monotonic() - started
    assert not timed_out.ok
    assert timed_out.error is not None and timed_out.error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in timed_out.error["errorMessage"]
    assert took < 4, f"the 1s timeout took {took:.1f}s"
    quick = runtime.invoke("lr-sleep", {"seconds": 0})
    assert quick.ok, quick.error
    assert quick.cold and quick.environment_id != timed_out.environment_id


def test_an_environment_whose_role_credentials_would_expire_is_replaced(runtime: LocalRuntime) -> None:
    """Lambda never runs an invocation on credentials that could expire during it."""
    first = runtime.invoke("lr-echo", {})
    assert first.ok, first.error
    idle = list(runtime.pool("lr-echo")._idle)
    assert first.environment_id in {e.id for e in idle}
    assert all(e.credentials_expire > time.time() + 900 for e in idle)  # hour-long role sessions
    for env in idle:
        env.credentials_expire = time.time() + 30  # less than the timeout + margin from now
    second = runtime.invoke("lr-echo", {})
    assert second.ok, second.error
    assert second.cold and second.environment_id not in {e.id for e in idle}
    for env in idle:  # the old ones were stopped
        assert env.process is None or env.process.wait(timeout=5) is not None
    assert _body(second.payload)["caller"].endswith(":assumed-role/lr-role/lr-echo")


def test_crash_is_an_error_and_the_process_replaced(runtime: LocalRuntime) -> None:
    crashed = runtime.invoke("lr-crash", {})
    assert not crashed.ok and crashed.error is not None
    assert crashed.error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in crashed.error["errorMessage"]
    again = runtime.invoke("lr-crash", {})
    assert again.cold and again.environment_id != crashed.environment_id


def test_import_error_is_reported_like_lambda(runtime: LocalRuntime) -> None:
    result = runtime.invoke("lr-bad-import", {})
    assert not result.ok and result.error is not None
    assert result.error["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'nomodule'" in result.error["errorMessage"]


def test_concurrency_is_bounded(runtime: LocalRuntime) -> None:
    pool = runtime.pool("lr-echo")
    assert pool.limit == 8  # no reserved concurrency: the runtime's default
    assert pool.environments <= pool.limit


def test_logs_reach_the_console_and_cloudwatch(stack: Stack, runtime: LocalRuntime) -> None:
    result = runtime.invoke("lr-echo", {"log": "me"})
    assert result.ok
    marker = f"echo says hello from lr-echo ({result.request_id})"
    # The function's stdout/stderr are pumped to the console asynchronously (as Lambda ships
    # logs apart from the response): wait for both lines, then require both exactly.
    wanted = {f"[lr-echo] {marker}", "[lr-echo] echo writes to stderr too"}
    wait_for(lambda: wanted <= set(stack.console), 10, "the invocation's console lines")
    assert any(line == f"[lr-echo] {marker}" for line in stack.console)
    assert any(line == "[lr-echo] echo writes to stderr too" for line in stack.console)
    assert runtime.logs.flush(10)
    logs = stack.aws["logs"]

    def found() -> list[str]:
        events = logs.filter_log_events(logGroupName="/aws/lambda/lr-echo", filterPattern=result.request_id)
        return [e["message"] for e in events["events"]]

    messages = wait_for(lambda: len(found()) >= 4 and found(), 10, "the invocation's log events")
    assert any(m.startswith(f"START RequestId: {result.request_id}") for m in messages)
    assert marker in messages
    assert any(m.startswith(f"REPORT RequestId: {result.request_id}") for m in messages)
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/lr-echo")["logStreams"]
    assert any("[$LATEST]" in s["logStreamName"] for s in streams)


def test_unknown_function(runtime: LocalRuntime) -> None:
    result = runtime.invoke("lr-does-not-exist", {})
    assert result.error is not None and result.error["errorType"] == "ResourceNotFoundException"


def test_code_not_in_the_zip_dir_is_a_clear_error(stack: Stack, runtime: LocalRuntime) -> None:
    # lr-stray is deployed from a zip that is not in zip_dir: invoking it says what to do.
    result = runtime.invoke("lr-stray", {})
    assert result.error is not None and result.error["errorType"] == "LocalRuntime.CodeNotFound"
    assert "invoke package" in result.error["errorMessage"]


def test_start_fails_when_the_fronted_functions_code_is_missing(stack: Stack, tmp_path: object) -> None:
    with pytest.raises(CodeNotFoundError) as caught:
        LocalRuntime(stack.endpoint, zip_dir=str(tmp_path), rest_api="lr-api", console=None).start()
    message = str(caught.value)
    assert "CodeSha256" in message and "run `invoke package` then `invoke deploy`" in message
