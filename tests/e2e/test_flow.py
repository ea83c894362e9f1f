"""Issue 5, end to end over HTTP through the local front, on the deployed stack.

Real Cognito ID tokens from the stack's pool; the api and worker Lambdas run as deployed;
results are read back through their presigned ``result_url``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import time
from typing import Any

import pytest
import requests

from tests.e2e.support import (
    TERMINAL,
    Api,
    User,
    assert_completed_once,
    dlq_bodies,
    forge,
    kill_a_busy_worker,
    records_of,
    unverified_claims,
    wait_for,
    with_flipped_signature,
    with_payload,
)
from tooling import deploy
from tooling.local_stack import LocalStack


def test_the_seed_curl_flow(alice: User) -> None:
    """POST a demo job, poll it to COMPLETE, read its result through result_url."""
    resp = alice.api.post_job({"name": "test", "action": "demo", "context1": "hello", "context2": "world"})
    assert resp.status_code == 202, resp.text
    created = resp.json()
    job_id = created["job_id"]
    assert created == {"job_id": job_id, "status": "PENDING"}
    assert resp.headers["Location"].endswith(f"/job?job_id={job_id}")

    job = alice.api.wait_terminal(job_id, timeout=60)
    assert job["status"] == "COMPLETE", job
    assert job["name"] == "test" and job["action"] == "demo"
    day = job["createdAt"][:10]
    assert job["S3FileKey"] == f"{alice.sub}/{day}/{job_id}.txt"
    assert job["startedAt"] <= job["completedAt"]

    result = requests.get(job["result_url"], timeout=30)  # presigned: no Authorization header
    assert result.status_code == 200
    assert result.text.strip() == "hello world"


def test_every_action_completes_with_its_result(alice: User) -> None:
    jobs = {
        "process-data": alice.api.submit("process-data", "left side", "right side"),
        "word-count": alice.api.submit("word-count", "a b a", "c a"),
        "checksum": alice.api.submit("checksum", "abc", "def"),
        "json-format": alice.api.submit("json-format", '{"b": 1, "a": [1, 2]}', "-"),
    }
    texts = {}
    for action, job_id in jobs.items():
        job = alice.api.wait_terminal(job_id, timeout=60)
        assert job["status"] == "COMPLETE", job
        texts[action] = requests.get(job["result_url"], timeout=30).text
    assert "left side" in texts["process-data"] and "right side" in texts["process-data"]
    assert "a" in texts["word-count"] and "3" in texts["word-count"]
    assert "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" in texts["checksum"]
    assert texts["json-format"].index('"a"') < texts["json-format"].index('"b"')


def test_json_and_csv_results_download_with_their_type_and_name(stack: LocalStack, alice: User) -> None:
    """Issue 14: a json and a csv job complete under .json/.csv keys, stored with their
    Content-Type; the presigned result_url answers that type and an attachment file name."""
    submitted = {}
    for action, fmt in (("word-count", "json"), ("checksum", "csv")):
        body = {"name": f"as {fmt}", "action": action, "context1": "abc abc", "context2": "def", "format": fmt}
        resp = alice.api.post_job(body)
        assert resp.status_code == 202, resp.text
        submitted[fmt] = resp.json()["job_id"]
    s3 = stack.client("s3")
    downloads = {}
    for fmt, job_id in submitted.items():
        job = alice.api.wait_terminal(job_id, timeout=60)
        assert job["status"] == "COMPLETE", job
        assert job["format"] == fmt
        assert job["S3FileKey"] == f"{alice.sub}/{job['createdAt'][:10]}/{job_id}.{fmt}"
        content_type = {"json": "application/json; charset=utf-8", "csv": "text/csv; charset=utf-8"}[fmt]
        stored = s3.head_object(Bucket=stack.outputs["bucket_name"], Key=job["S3FileKey"])
        assert stored["ContentType"] == content_type  # as the worker wrote it
        result = requests.get(job["result_url"], timeout=30)  # presigned: no Authorization header
        assert result.status_code == 200, result.text
        assert result.headers["Content-Type"] == content_type
        assert result.headers["Content-Disposition"] == f'attachment; filename="{job_id}.{fmt}"'
        downloads[fmt] = result.content.decode("utf-8")
    assert json.loads(downloads["json"]) == {
        "total_words": 3,
        "distinct_words": 2,
        "top_words": [{"word": "abc", "count": 2}, {"word": "def", "count": 1}],
    }
    sha = {text: hashlib.sha256(text.encode()).hexdigest() for text in ("abc abc", "def")}
    assert list(csv.reader(io.StringIO(downloads["csv"], newline=""))) == [
        ["input", "sha256"],
        ["context1", sha["abc abc"]],
        ["context2", sha["def"]],
    ]
    listed = {j["job_id"]: j["format"] for j in alice.api.list_jobs().json()}
    assert {listed[job_id] for job_id in submitted.values()} == {"json", "csv"}


def test_get_jobs_lists_newest_first(make_user: Any) -> None:
    user: User = make_user()
    ids = [user.api.submit(name=f"n{i}") for i in range(3)]
    resp = user.api.list_jobs()
    assert resp.status_code == 200
    listed = resp.json()
    assert [j["job_id"] for j in listed] == list(reversed(ids))
    assert [j["name"] for j in listed] == ["n2", "n1", "n0"]
    assert all("context1" not in j and "result_url" not in j for j in listed)

    first = user.api.list_jobs(limit=2)
    assert [j["job_id"] for j in first.json()] == [ids[2], ids[1]]
    rest = user.api.list_jobs(limit=2, next_token=first.headers["X-Next-Token"])
    assert [j["job_id"] for j in rest.json()] == [ids[0]]
    assert "X-Next-Token" not in rest.headers
    for job_id in ids:
        user.api.wait_terminal(job_id)
    complete = user.api.list_jobs(status="complete")
    assert [j["job_id"] for j in complete.json()] == list(reversed(ids))


def _job_count(stack: LocalStack, owner: str) -> int:
    return len(records_of(stack.client("dynamodb"), stack.outputs["table_name"], owner))


def test_missing_expired_and_tampered_tokens_are_refused(stack: LocalStack, alice: User) -> None:
    before = _job_count(stack, alice.sub)
    claims = unverified_claims(alice.token)
    now = int(time.time())
    refused = {
        "missing": None,
        "expired": forge({**claims, "iat": now - 7200, "auth_time": now - 7200, "exp": now - 3600}),
        "tampered payload": with_payload(alice.token, {"sub": "someone-else"}),
        "tampered signature": with_flipped_signature(alice.token),
    }
    body = {"name": "attack", "action": "demo", "context1": "a", "context2": "b"}
    for what, token in refused.items():
        for method, path in (("POST", "/job"), ("GET", "/jobs")):
            resp = alice.api.request(method, path, token=token, json=body if method == "POST" else None)
            assert resp.status_code == 401, (what, method, resp.text)
            assert resp.json()["message"] == "Unauthorized", what
    assert _job_count(stack, alice.sub) == before


def test_a_token_of_another_app_client_is_forbidden(stack: LocalStack, alice: User) -> None:
    """API Gateway accepts it (same pool, valid signature); the handler checks the client: 403."""
    cognito = stack.client("cognito-idp")
    other = cognito.create_user_pool_client(
        UserPoolId=stack.outputs["user_pool_id"],
        ClientName="e2e-other-client",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    assert other != stack.outputs["user_pool_client_id"]
    answer = cognito.initiate_auth(
        ClientId=other,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": alice.username, "PASSWORD": alice.password},
    )
    token = answer["AuthenticationResult"]["IdToken"]
    assert unverified_claims(token)["aud"] == other
    before = _job_count(stack, alice.sub)
    job_id = alice.api.submit()
    for resp in (
        alice.api.post_job({"name": "x", "action": "demo", "context1": "a", "context2": "b"}, token=token),
        alice.api.list_jobs(token=token),
        alice.api.get_job(job_id, token=token),
        alice.api.delete_job(job_id, token=token),
    ):
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"] == "forbidden"
    assert _job_count(stack, alice.sub) == before + 1


def test_another_users_job_is_not_found(alice: User, bob: User) -> None:
    job_id = alice.api.submit(context1="private", context2="data")
    for resp in (bob.api.get_job(job_id), bob.api.delete_job(job_id)):
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"] == "job_not_found"
        assert "private" not in resp.text
    assert job_id not in {j["job_id"] for j in bob.api.list_jobs().json()}
    job = alice.api.wait_terminal(job_id)
    assert job["status"] == "COMPLETE"  # bob's DELETE did not cancel it


@pytest.mark.slow
def test_a_poison_job_ends_failed_with_its_message_in_the_dlq(stack: LocalStack, alice: User) -> None:
    """json-format with invalid JSON: retried by the queue, FAILED on the last attempt, then DLQ."""
    job_id = alice.api.submit("json-format", "{not json", "x")
    visibility = int(stack.outputs["visibility_timeout_seconds"])
    receives = int(stack.outputs["max_receive_count"])
    budget = (receives + 1) * (visibility + 10) + 30

    job = alice.api.wait_terminal(job_id, timeout=budget)
    assert job["status"] == "FAILED", job
    assert "context1 is not valid JSON" in job["error"]
    assert "S3FileKey" not in job and "result_url" not in job

    sqs = stack.client("sqs")

    def in_dlq() -> bool:
        return any(b.get("job_id") == job_id for b in dlq_bodies(sqs, stack.outputs["dlq_url"]))

    wait_for(in_dlq, visibility + 60, f"job {job_id}'s message in the DLQ", interval=2.0)
    mine = records_of(stack.client("dynamodb"), stack.outputs["table_name"], alice.sub)
    assert [(r["status"], int(r["attempts"])) for r in mine if r["job_id"] == job_id] == [("FAILED", receives)]
    assert alice.api.job(job_id)["status"] == "FAILED"  # the DLQ hop did not move it


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_nothing(stack: LocalStack, console: Any, make_user: Any) -> None:
    user: User = make_user()
    job_ids: list[str] = []

    def submit_all() -> None:
        for i in range(60):
            job_ids.append(user.api.submit("process-data", f"left {i}", f"right {i}", name=f"k{i}"))

    submitter = threading.Thread(target=submit_all, name="e2e-submitter")
    submitter.start()
    try:
        pid = kill_a_busy_worker(stack)
    finally:
        submitter.join(120)
    assert len(job_ids) == 60
    wait_for(
        lambda: console.matching("Runtime exited with error: signal: 9"),
        30,
        f"the runtime to report worker {pid} killed",
    )
    visibility = int(stack.outputs["visibility_timeout_seconds"])

    def finished() -> list[dict[str, Any]] | None:
        records = records_of(stack.client("dynamodb"), stack.outputs["table_name"], user.sub)
        return records if all(r["status"] in TERMINAL for r in records) and len(records) == len(job_ids) else None

    records = wait_for(finished, 3 * visibility + 60, "every job of the killed batch to finish", interval=2.0)
    assert sorted(r["job_id"] for r in records) == sorted(job_ids)
    assert {r["status"] for r in records} == {"COMPLETE"}
    versions, markers = _versions_of(stack, user.sub)
    assert markers == 0
    assert set(versions) == {r["S3FileKey"] for r in records}
    for job_id in job_ids:
        job = user.api.job(job_id)
        assert job["status"] == "COMPLETE"
        assert f"left {job['name'][1:]}" in requests.get(job["result_url"], timeout=30).text
    assert_completed_once(stack, job_ids, records, 0, killed_batch=10)
    assert versions == dict.fromkeys(versions, 1), "a result object was written more than once"


def _versions_of(stack: LocalStack, owner: str) -> tuple[dict[str, int], int]:
    from tests.e2e.support import object_versions

    return object_versions(stack.client("s3"), stack.outputs["bucket_name"], f"{owner}/")


@pytest.mark.slow
def test_an_unchanged_redeploy_while_running_changes_nothing(
    stack: LocalStack, alice: User, endpoint_env: str, console: Any
) -> None:
    api_before = stack.runtime.pool(stack.outputs["api_function_name"])  # type: ignore[union-attr]
    base_url = stack.api_url
    lines: list[str] = []
    tf = deploy.terraform_for(stack.env, variables=stack.variables)
    summary = deploy.deploy(stack.env, yes=True, out=lines.append, tf=tf)
    assert (summary.add, summary.change, summary.destroy) == (0, 0, 0), "\n".join(lines)
    assert "env local is up to date: nothing to apply." in lines
    time.sleep(5)  # two refreshes of the runtime
    assert stack.api_url == base_url
    assert stack.runtime.pool(stack.outputs["api_function_name"]) is api_before  # type: ignore[union-attr]
    assert not console.matching("new code deployed") and not console.matching("new configuration deployed")
    job_id = alice.api.submit(context1="after", context2="redeploy")
    job = alice.api.wait_terminal(job_id)
    assert job["status"] == "COMPLETE"
    assert requests.get(job["result_url"], timeout=30).text.strip() == "after redeploy"


def test_unknown_route_and_preflight(stack: LocalStack, alice: User) -> None:
    resp = alice.api.request("GET", "/nope")  # API Gateway's MISSING_AUTHENTICATION_TOKEN, as deployed
    assert resp.status_code == 404
    assert resp.json()["error"] == "route_not_found"
    pre = Api(stack.api_url, None).request(
        "OPTIONS", "/job", headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"}
    )
    assert pre.status_code in (200, 204)
    assert pre.headers.get("Access-Control-Allow-Origin") in ("*", "https://example.com")
