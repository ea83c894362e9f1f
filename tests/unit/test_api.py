"""JobHandler: every route and every error row of the API reference, through the real handler."""

from __future__ import annotations

import json
import uuid
from unittest import mock

import pytest
import requests

from tests.unit.conftest import (
    OTHER_CLIENT_ID,
    VALID_JOB,
    Stack,
    api_event,
    call_api,
    call_worker,
    claims,
    sqs_record,
)

pytestmark = pytest.mark.usefixtures("stack")


def submit(body: dict | None = None, sub: str = "user-a", headers: dict | None = None):
    return call_api(api_event("POST", "/job", body=body or VALID_JOB, claims_=claims(sub), headers=headers))


def assert_error(resp, status: int, code: str) -> None:
    assert resp.status == status, resp.body
    assert resp.body["error"] == code, resp.body
    assert isinstance(resp.body["message"], str) and resp.body["message"]
    assert resp.headers.get("Access-Control-Allow-Origin") == "https://app.example.com"


# ---- POST /job ---------------------------------------------------------------------------


def test_post_creates_pending_job_and_enqueues_it(stack: Stack) -> None:
    resp = submit()
    assert resp.status == 202
    job_id = resp.body["job_id"]
    assert resp.body == {"job_id": job_id, "status": "PENDING"}
    assert uuid.UUID(job_id).version == 7
    assert resp.headers["Location"] == f"/dev/job?job_id={job_id}"
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    [item] = [i for i in stack.items() if i["job_id"]["S"] == job_id]
    assert item["owner_id"]["S"] == "user-a"
    assert item["status"]["S"] == "PENDING"
    assert item["context1"]["S"] == "hello"
    assert int(item["expires_at"]["N"]) > 0
    [msg] = stack.messages()
    assert json.loads(msg["Body"]) == {"owner_id": "user-a", "job_id": job_id}


@pytest.mark.parametrize(
    ("drop", "location"),
    [
        (("path",), "/dev/job"),
        (("path", "stage"), "/job"),
        (("path", "stage", "domainName", "resourcePath", "identity", "requestId"), "/job"),
    ],
    ids=["no-path", "no-path-or-stage", "bare-context"],
)
def test_post_answers_202_when_the_event_lacks_request_fields(
    stack: Stack, drop: tuple[str, ...], location: str
) -> None:
    """The response is built from what was known before the write: a missing field never turns
    a recorded, queued job into a 500 (a client would retry and submit it twice)."""
    event = api_event("POST", "/job", body=VALID_JOB)
    for name in drop:
        event["requestContext"].pop(name, None)
    resp = call_api(event)
    assert resp.status == 202, resp.body
    job_id = resp.body["job_id"]
    assert resp.headers["Location"] == f"{location}?job_id={job_id}"
    assert [i["job_id"]["S"] for i in stack.items()] == [job_id]
    assert [json.loads(m["Body"])["job_id"] for m in stack.messages()] == [job_id]


@pytest.mark.parametrize("path", ["/dev/job\r\nSet-Cookie: x=1", "dev/job", "", None, 42])
def test_a_request_path_unfit_for_a_header_falls_back_to_the_stage(stack: Stack, path: object) -> None:
    event = api_event("POST", "/job", body=VALID_JOB)
    event["requestContext"]["path"] = path
    resp = call_api(event)
    assert resp.status == 202, resp.body
    assert resp.headers["Location"] == f"/dev/job?job_id={resp.body['job_id']}"
    assert len(stack.items()) == 1 and len(stack.messages()) == 1


def test_job_ids_sort_by_creation_time() -> None:
    ids = [submit().body["job_id"] for _ in range(5)]
    assert ids == sorted(ids)


def test_identity_comes_from_claims_not_body(stack: Stack) -> None:
    resp = call_api(api_event("POST", "/job", body={**VALID_JOB}, claims_=claims("real-user")))
    assert resp.status == 202
    [item] = stack.items()
    assert item["owner_id"]["S"] == "real-user"


def test_base64_body_is_decoded() -> None:
    resp = call_api(api_event("POST", "/job", body=VALID_JOB, base64_body=True))
    assert resp.status == 202


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_json"),
        ("", "invalid_body"),
        ("[1, 2]", "invalid_body"),
        ('"a string"', "invalid_body"),
        (json.dumps({k: v for k, v in VALID_JOB.items() if k != "action"}), "missing_field"),
        (json.dumps({**VALID_JOB, "owner_id": "someone-else"}), "unknown_field"),
        (json.dumps({**VALID_JOB, "context1": 5}), "invalid_field"),
        (json.dumps({**VALID_JOB, "name": None}), "invalid_field"),
        (json.dumps({**VALID_JOB, "name": "   "}), "empty_field"),
        (json.dumps({**VALID_JOB, "context2": ""}), "empty_field"),
        (json.dumps({**VALID_JOB, "name": "n" * 129}), "name_too_long"),
        (json.dumps({**VALID_JOB, "context1": "a" * 40000, "context2": "b" * 25537}), "context_too_large"),
        (json.dumps({**VALID_JOB, "action": "rm-rf"}), "unknown_action"),
    ],
)
def test_post_rejects_bad_input_and_writes_nothing(stack: Stack, body: str, code: str) -> None:
    resp = call_api(api_event("POST", "/job", body=body))
    assert_error(resp, 400, code)
    assert stack.items() == []
    assert stack.messages() == []


def test_limits_are_inclusive() -> None:
    assert submit({**VALID_JOB, "name": "n" * 128}).status == 202
    assert submit({**VALID_JOB, "context1": "a" * 40000, "context2": "b" * 25536}).status == 202


def test_unknown_action_lists_known_ones() -> None:
    resp = submit({**VALID_JOB, "action": "nope"})
    for known in ("demo", "process-data", "word-count", "checksum"):
        assert known in resp.body["message"]


def test_post_without_claims_is_401(stack: Stack) -> None:
    assert_error(call_api(api_event("POST", "/job", body=VALID_JOB, no_claims=True)), 401, "unauthorized")
    assert stack.items() == []


@pytest.mark.parametrize("token_use", ["id", "access"])
def test_token_for_another_app_client_is_403(stack: Stack, token_use: str) -> None:
    c = claims("user-a", client_id=OTHER_CLIENT_ID, token_use=token_use)
    assert_error(call_api(api_event("POST", "/job", body=VALID_JOB, claims_=c)), 403, "forbidden")
    assert stack.items() == []


def test_access_token_for_our_client_is_accepted() -> None:
    resp = call_api(api_event("POST", "/job", body=VALID_JOB, claims_=claims(token_use="access")))
    assert resp.status == 202


def test_token_without_token_use_is_403() -> None:
    c = {"sub": "user-a", "aud": "test-client-id"}
    assert_error(call_api(api_event("POST", "/job", body=VALID_JOB, claims_=c)), 403, "forbidden")


# ---- Idempotency-Key -----------------------------------------------------------------------


def test_idempotency_key_returns_the_original_job(stack: Stack) -> None:
    first = submit(headers={"Idempotency-Key": "abc-1"})
    again = submit(headers={"Idempotency-Key": "abc-1"})
    assert first.status == again.status == 202
    assert again.body["job_id"] == first.body["job_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    jobs = [i for i in stack.items() if not i["owner_id"]["S"].endswith("#idempotency")]
    assert len(jobs) == 1
    assert len(stack.messages()) == 1


def test_idempotency_key_is_per_user() -> None:
    a = submit(sub="user-a", headers={"Idempotency-Key": "shared"})
    b = submit(sub="user-b", headers={"Idempotency-Key": "shared"})
    assert a.body["job_id"] != b.body["job_id"]


def test_idempotency_key_with_a_different_body_is_rejected(stack: Stack) -> None:
    submit(headers={"Idempotency-Key": "k"})
    resp = submit({**VALID_JOB, "name": "other"}, headers={"Idempotency-Key": "k"})
    assert_error(resp, 422, "idempotency_key_reused")
    assert len([i for i in stack.items() if i["owner_id"]["S"] == "user-a"]) == 1


def test_idempotency_key_expires_after_24h(stack: Stack) -> None:
    first = submit(headers={"Idempotency-Key": "old"})
    [claim] = [i for i in stack.items() if i["owner_id"]["S"].endswith("#idempotency")]
    stack.ddb.update_item(
        TableName="jobs-test",
        Key={"owner_id": claim["owner_id"], "job_id": claim["job_id"]},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1000"}},
    )
    second = submit(headers={"Idempotency-Key": "old"})
    assert second.status == 202 and second.body["job_id"] != first.body["job_id"]


def test_idempotency_claims_never_show_in_listings() -> None:
    submit(headers={"Idempotency-Key": "x"})
    resp = call_api(api_event("GET", "/jobs"))
    assert len(resp.body) == 1


@pytest.mark.parametrize("key", ["", "x" * 129, "bad\nkey"])
def test_bad_idempotency_key_is_400(stack: Stack, key: str) -> None:
    assert_error(submit(headers={"Idempotency-Key": key}), 400, "invalid_idempotency_key")
    assert stack.items() == []


# ---- enqueue failure ----------------------------------------------------------------------


def test_enqueue_failure_is_503_and_leaves_no_pending_job(stack: Stack) -> None:
    from botocore.exceptions import ClientError

    from jobs.api import service

    err = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
    with mock.patch.object(service().queue, "send", side_effect=err):
        resp = submit(headers={"Idempotency-Key": "retry-me"})
    assert_error(resp, 503, "enqueue_failed")
    [item] = [i for i in stack.items() if i["owner_id"]["S"] == "user-a"]
    assert item["status"]["S"] == "FAILED"
    assert "queued" in item["error"]["S"]
    # The key was released: the client's retry creates (and enqueues) a job.
    retry = submit(headers={"Idempotency-Key": "retry-me"})
    assert retry.status == 202 and retry.body["job_id"] != item["job_id"]["S"]
    assert len(stack.messages()) == 1


# ---- GET /job ------------------------------------------------------------------------------


def test_get_job_returns_the_record(stack: Stack) -> None:
    job_id = submit().body["job_id"]
    resp = call_api(api_event("GET", "/job", query={"job_id": job_id}))
    assert resp.status == 200
    body = resp.body
    assert body["job_id"] == job_id and body["status"] == "PENDING"
    assert body["action"] == "demo" and body["name"] == "test"
    assert body["createdAt"].endswith("Z") and body["updatedAt"]
    assert "S3FileKey" not in body and "result_url" not in body and "error" not in body


def test_get_complete_job_has_result_key_and_working_url(stack: Stack) -> None:
    job_id = submit({**VALID_JOB, "action": "process-data"}).body["job_id"]
    [msg] = stack.messages()
    assert call_worker(sqs_record(msg["Body"])) == []
    body = call_api(api_event("GET", "/job", query={"job_id": job_id})).body
    assert body["status"] == "COMPLETE"
    day = body["createdAt"][:10]
    assert body["S3FileKey"] == f"user-a/{day}/{job_id}.txt"
    assert body["completedAt"] >= body["createdAt"]
    url = body["result_url"]
    assert "X-Amz-Expires=300" in url and "X-Amz-Signature" in url
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url  # SigV4, accepted by S3 in every region
    assert f"user-a/{day}/{job_id}.txt" in url


@pytest.mark.parametrize("raw", ["not-a-uuid", "1234", "' OR 1=1"])
def test_get_job_with_bad_id_is_400(raw: str) -> None:
    assert_error(call_api(api_event("GET", "/job", query={"job_id": raw})), 400, "invalid_job_id")


def test_get_job_without_id_is_400() -> None:
    assert_error(call_api(api_event("GET", "/job")), 400, "missing_job_id")


def test_missing_and_foreign_jobs_are_identical_404s() -> None:
    job_id = submit(sub="user-a").body["job_id"]
    missing = call_api(api_event("GET", "/job", query={"job_id": str(uuid.uuid4())}, claims_=claims("user-b")))
    foreign = call_api(api_event("GET", "/job", query={"job_id": job_id}, claims_=claims("user-b")))
    assert_error(missing, 404, "job_not_found")
    assert_error(foreign, 404, "job_not_found")
    assert missing.body["message"].replace(missing.body["message"].split()[-1], "") == foreign.body["message"].replace(
        foreign.body["message"].split()[-1], ""
    )


def test_get_job_without_claims_is_401() -> None:
    assert_error(
        call_api(api_event("GET", "/job", query={"job_id": str(uuid.uuid4())}, no_claims=True)), 401, "unauthorized"
    )


# ---- GET /jobs -----------------------------------------------------------------------------


def test_list_jobs_newest_first_seed_shape() -> None:
    ids = [submit().body["job_id"] for _ in range(3)]
    submit(sub="user-b")
    resp = call_api(api_event("GET", "/jobs"))
    assert resp.status == 200
    assert isinstance(resp.body, list)
    assert [j["job_id"] for j in resp.body] == list(reversed(ids))
    for job in resp.body:
        assert {"job_id", "status", "createdAt", "action"} <= set(job)
        assert "context1" not in job
    assert "X-Next-Token" not in resp.headers


def test_list_jobs_pages_with_next_token() -> None:
    ids = [submit().body["job_id"] for _ in range(7)]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        query = {"limit": "3", **({"next_token": token} if token else {})}
        resp = call_api(api_event("GET", "/jobs", query=query))
        assert resp.status == 200
        seen += [j["job_id"] for j in resp.body]
        pages += 1
        token = resp.headers.get("X-Next-Token")
        if not token:
            break
        assert len(resp.body) == 3
    assert pages == 3
    assert seen == list(reversed(ids))


def test_last_page_has_no_token_when_exactly_full() -> None:
    for _ in range(3):
        submit()
    resp = call_api(api_event("GET", "/jobs", query={"limit": "3"}))
    assert len(resp.body) == 3 and "X-Next-Token" not in resp.headers


def test_status_filter_returns_full_pages(stack: Stack) -> None:
    ids = [submit().body["job_id"] for _ in range(9)]
    msgs = {json.loads(m["Body"])["job_id"]: m for m in stack.messages()}
    done = ids[::3]  # 3 jobs COMPLETE, interleaved with 6 PENDING
    for job_id in done:
        assert call_worker(sqs_record(msgs[job_id]["Body"])) == []
    resp = call_api(api_event("GET", "/jobs", query={"status": "COMPLETE", "limit": "2"}))
    assert [j["job_id"] for j in resp.body] == [done[2], done[1]]
    token = resp.headers["X-Next-Token"]
    resp2 = call_api(api_event("GET", "/jobs", query={"status": "complete", "limit": "2", "next_token": token}))
    assert [j["job_id"] for j in resp2.body] == [done[0]]
    assert "X-Next-Token" not in resp2.headers
    pending = call_api(api_event("GET", "/jobs", query={"status": "PENDING", "limit": "4"}))
    assert len(pending.body) == 4 and all(j["status"] == "PENDING" for j in pending.body)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "101"}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_limit"),
        ({"status": "DONE"}, "invalid_status"),
        ({"next_token": "garbage!!"}, "invalid_next_token"),
        ({"next_token": "eyJ2IjoxfQ"}, "invalid_next_token"),
    ],
)
def test_list_jobs_bad_parameters_are_400(query: dict, code: str) -> None:
    assert_error(call_api(api_event("GET", "/jobs", query=query)), 400, code)


def test_another_users_token_is_rejected() -> None:
    for _ in range(3):
        submit(sub="user-a")
    token = call_api(api_event("GET", "/jobs", query={"limit": "1"}, claims_=claims("user-a"))).headers["X-Next-Token"]
    resp = call_api(api_event("GET", "/jobs", query={"limit": "1", "next_token": token}, claims_=claims("user-b")))
    assert_error(resp, 400, "invalid_next_token")


def test_token_is_bound_to_its_status_filter() -> None:
    for _ in range(3):
        submit()
    token = call_api(api_event("GET", "/jobs", query={"limit": "1"})).headers["X-Next-Token"]
    resp = call_api(api_event("GET", "/jobs", query={"limit": "1", "status": "PENDING", "next_token": token}))
    assert_error(resp, 400, "invalid_next_token")


# ---- DELETE /job ---------------------------------------------------------------------------


def test_cancel_pending_job_and_worker_skips_it(stack: Stack) -> None:
    job_id = submit().body["job_id"]
    resp = call_api(api_event("DELETE", "/job", query={"job_id": job_id}))
    assert resp.status == 200 and resp.body["status"] == "CANCELLED"
    [msg] = stack.messages()
    assert call_worker(sqs_record(msg["Body"])) == []  # acknowledged, not run
    assert call_api(api_event("GET", "/job", query={"job_id": job_id})).body["status"] == "CANCELLED"
    assert stack.objects() == []


def test_cancel_finished_job_is_409(stack: Stack) -> None:
    job_id = submit().body["job_id"]
    [msg] = stack.messages()
    call_worker(sqs_record(msg["Body"]))
    resp = call_api(api_event("DELETE", "/job", query={"job_id": job_id}))
    assert_error(resp, 409, "not_cancellable")
    assert "COMPLETE" in resp.body["message"]


def test_cancel_foreign_job_is_404_and_changes_nothing() -> None:
    job_id = submit(sub="user-a").body["job_id"]
    resp = call_api(api_event("DELETE", "/job", query={"job_id": job_id}, claims_=claims("user-b")))
    assert_error(resp, 404, "job_not_found")
    assert call_api(api_event("GET", "/job", query={"job_id": job_id})).body["status"] == "PENDING"


# ---- GET /actions ---------------------------------------------------------------------------


def test_actions_lists_every_registered_action_with_its_description_and_formats() -> None:
    resp = call_api(api_event("GET", "/actions"))
    assert resp.status == 200, resp.body
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    by_name = {a["name"]: a for a in resp.body}
    assert [a["name"] for a in resp.body] == sorted(by_name)  # by name, each once
    assert set(by_name) == {"process-data", "demo", "word-count", "checksum", "json-format", "hash-chain"}
    assert by_name["hash-chain"]["formats"] == ["text", "json", "csv"]
    assert by_name["word-count"]["formats"] == ["text", "json", "csv"]
    assert by_name["demo"]["formats"] == ["text", "json"]
    for entry in resp.body:
        assert set(entry) == {"name", "description", "formats"}
        assert isinstance(entry["description"], str) and entry["description"].strip(), entry


def test_actions_needs_a_token_of_this_app_client() -> None:
    assert_error(call_api(api_event("GET", "/actions", no_claims=True)), 401, "unauthorized")
    c = claims("user-a", client_id=OTHER_CLIENT_ID)
    assert_error(call_api(api_event("GET", "/actions", claims_=c)), 403, "forbidden")


# ---- the rest ------------------------------------------------------------------------------


def test_unknown_route_is_json_404() -> None:
    assert_error(call_api(api_event("GET", "/nope")), 404, "route_not_found")


def test_disallowed_origin_gets_no_cors_grant() -> None:
    resp = call_api(api_event("GET", "/jobs", headers={"Origin": "https://evil.example.net"}))
    assert resp.status == 200
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_second_allowed_origin_is_echoed() -> None:
    resp = call_api(api_event("GET", "/jobs", headers={"Origin": "https://admin.example.com"}))
    assert resp.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "X-Next-Token" in resp.headers.get("Access-Control-Expose-Headers", "")


def test_unexpected_error_is_json_500() -> None:
    from jobs.api import service

    with mock.patch.object(service().table, "get", side_effect=RuntimeError("boom")):
        resp = call_api(api_event("GET", "/job", query={"job_id": str(uuid.uuid4())}))
    assert_error(resp, 500, "internal_error")
    assert "boom" not in resp.body["message"]


def test_result_url_downloads_the_result_on_real_s3_semantics(stack: Stack) -> None:
    """The presigned URL is well formed; moto in-process cannot serve it, so fetch via the key."""
    job_id = submit({**VALID_JOB, "action": "demo"}).body["job_id"]
    [msg] = stack.messages()
    call_worker(sqs_record(msg["Body"]))
    body = call_api(api_event("GET", "/job", query={"job_id": job_id})).body
    obj = stack.s3.get_object(Bucket="jobs-test-results", Key=body["S3FileKey"])
    assert obj["Body"].read().decode() == "hello world\n"
    assert obj["ContentType"].startswith("text/plain")
    assert requests.utils.urlparse(body["result_url"]).scheme == "https"


def test_logs_carry_the_job_id_but_no_contents_or_tokens(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from jobs.telemetry import logger

    log_stream = io.StringIO()
    previous = logger.registered_handler.setStream(log_stream)
    secret = "s3cr3t-context-value"
    event = api_event(
        "POST",
        "/job",
        body={**VALID_JOB, "context1": secret, "context2": secret},
        headers={"Authorization": "eyJhbGciOiJSUzI1NiJ9.payload.signature"},
    )
    resp = call_api(event)
    [msg] = stack.messages()
    call_worker(sqs_record(msg["Body"]))
    logger.registered_handler.setStream(previous)
    out = log_stream.getvalue() + capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    logs = [entry for entry in lines if "level" in entry]
    assert logs and all(entry["level"] in ("INFO", "WARNING", "ERROR") for entry in logs)
    assert {entry.get("correlation_id") for entry in logs} == {resp.body["job_id"]}
    assert secret not in out and "eyJhbGciOiJSUzI1NiJ9" not in out
    metrics = [entry for entry in lines if "_aws" in entry]
    names = {m["Name"] for entry in metrics for d in entry["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"JobsSubmitted", "JobsCompleted", "JobDuration"} <= names
