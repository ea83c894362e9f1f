"""Issue 9: the embedded default enforces IAM, so a missing permission fails here as on AWS.

Each test takes one statement out of a deployed execution role's policy (what deploying the
stack without it would give), runs the flow that needs it, and checks that the flow fails
with AccessDenied in the function's log and the job's outcome; then it puts the statement
back and checks that the same flow goes through again, losing nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.e2e.support import User, log_messages, records_of, wait_for
from tooling.local_stack import LocalStack


@contextmanager
def without_statement(stack: LocalStack, function_output: str, sid: str) -> Iterator[None]:
    """The function's role policy minus the statement ``sid``, restored afterwards."""
    iam, lam = stack.client("iam"), stack.client("lambda")
    role = lam.get_function_configuration(FunctionName=stack.outputs[function_output])["Role"].rsplit("/", 1)[-1]
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    original = document if isinstance(document, dict) else json.loads(document)
    kept = [s for s in original["Statement"] if s.get("Sid") != sid]
    assert len(kept) == len(original["Statement"]) - 1, f"no statement {sid} in {role}'s policy"
    iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps({**original, "Statement": kept}))
    try:
        yield
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(original))


def _logged(stack: LocalStack, group_output: str, phrase: str, start_ms: int) -> list[dict[str, Any]]:
    assert stack.runtime is not None
    stack.runtime.logs.flush(30)
    return log_messages(stack.client("logs"), stack.outputs[group_output], phrase, start_ms)


def test_the_api_without_sqs_send_message_answers_503_and_logs_access_denied(stack: LocalStack, make_user: Any) -> None:
    user: User = make_user()
    start_ms = int(time.time() * 1000)
    body = {"name": "no-send", "action": "demo", "context1": "a", "context2": "b"}
    with without_statement(stack, "api_function_name", "EnqueueJobs"):
        resp = user.api.post_job(body)
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"] == "enqueue_failed"

    records = records_of(stack.client("dynamodb"), stack.outputs["table_name"], user.sub)
    assert [(r["name"], r["status"]) for r in records] == [("no-send", "FAILED")]

    def denial() -> list[dict[str, Any]] | None:
        found = [
            e
            for e in _logged(stack, "api_log_group", "request failed", start_ms)
            if e.get("error") == "enqueue_failed" and "AccessDenied" in str(e.get("cause"))
        ]
        return found or None

    (logged,) = wait_for(denial, 30, "the api's log to show the AccessDenied")
    assert "sqs:SendMessage" in logged["cause"]
    # With the statement back, the same request goes through.
    again = user.api.post_job(body)
    assert again.status_code == 202, again.text
    assert user.api.wait_terminal(again.json()["job_id"])["status"] == "COMPLETE"


def test_the_worker_without_s3_put_object_cannot_complete_and_nothing_is_lost(
    stack: LocalStack, make_user: Any
) -> None:
    user: User = make_user()
    start_ms = int(time.time() * 1000)
    table = stack.outputs["table_name"]
    with without_statement(stack, "worker_function_name", "WriteResults"):
        job_id = user.api.submit(name="no-put")

        def attempt_failed() -> dict[str, Any] | None:
            (record,) = records_of(stack.client("dynamodb"), table, user.sub)
            return record if "AccessDenied" in str(record.get("error", "")) else None

        record = wait_for(attempt_failed, 60, "the job's first attempt to fail with AccessDenied")
        assert record["status"] != "COMPLETE"
        assert "s3:PutObject" in record["error"]
        assert (
            not stack.client("s3")
            .list_objects_v2(Bucket=stack.outputs["bucket_name"], Prefix=f"{user.sub}/")
            .get("KeyCount")
        )
        logged = [
            e
            for e in _logged(stack, "worker_log_group", "attempt failed; the message comes back", start_ms)
            if e.get("correlation_id") == job_id
        ]
        assert logged and "AccessDenied" in logged[0]["reason"]
    # The message came back: with the permission restored the job completes, result written.
    job = user.api.wait_terminal(job_id, timeout=120)
    assert job["status"] == "COMPLETE", job
    (record,) = records_of(stack.client("dynamodb"), table, user.sub)
    assert int(record["attempts"]) >= 2  # the denied attempt, then the one that wrote the result
