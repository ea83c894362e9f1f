"""Issue 6, the reliability suite, on the deployed local stack: load with duplicate deliveries
and a killed worker, an SQS failure during POST, token attacks, cross-tenant access, and a
small property-based run through the front.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.support import (
    TERMINAL,
    User,
    assert_completed_once,
    dlq_bodies,
    finished_count,
    forge,
    hs256_with_public_key,
    kill_a_busy_worker,
    log_messages,
    object_versions,
    queue_depth,
    records_of,
    unsigned,
    unverified_claims,
    wait_for,
    with_flipped_signature,
    with_payload,
)
from tooling.local_stack import LocalStack

# ----------------------------------------------------------------------------- load

LOAD_JOBS = 2_000
LOAD_USERS = 4
LOAD_CLIENTS = 8
WAVE = 200  # jobs submitted before waiting for the queue to come down again
MAX_VISIBLE = 150  # moto's SQS slows down with depth: keep the queue shallow
ACTIONS = ("process-data", "demo", "word-count", "checksum")


@pytest.mark.slow
def test_2000_jobs_delivered_twice_with_a_worker_killed(stack: LocalStack, make_user: Any, console: Any) -> None:
    """Every message delivered twice, one worker process killed mid-batch: each job COMPLETE
    once, its action run once, its result object written once, nothing lost."""
    started = time.monotonic()
    start_ms = int(time.time() * 1000) - 1000
    users: list[User] = [make_user() for _ in range(LOAD_USERS)]
    sqs = stack.client("sqs")
    queue_url = stack.outputs["queue_url"]
    table = stack.outputs["table_name"]
    ddb = stack.client("dynamodb")
    submitted: list[tuple[str, str]] = []  # (owner, job id)

    def submit(i: int) -> tuple[str, str]:
        user = users[i % LOAD_USERS]
        job_id = user.api.submit(ACTIONS[i % len(ACTIONS)], f"left {i}", f"right {i}", name=f"load-{i}")
        # The duplicate delivery: the same message body as the api's, sent again.
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps({"owner_id": user.sub, "job_id": job_id}, separators=(",", ":")),
        )
        return user.sub, job_id

    killed = None
    with concurrent.futures.ThreadPoolExecutor(LOAD_CLIENTS) as pool:
        for wave_start in range(0, LOAD_JOBS, WAVE):
            wait_for(
                lambda: queue_depth(sqs, queue_url)[0] <= MAX_VISIBLE,
                300,
                "the job queue to come down between waves",
                interval=0.5,
            )
            wave = [pool.submit(submit, i) for i in range(wave_start, min(wave_start + WAVE, LOAD_JOBS))]
            if killed is None and wave_start >= WAVE:
                killed = kill_a_busy_worker(stack)
            submitted.extend(f.result() for f in wave)
    submit_seconds = time.monotonic() - started
    assert len({job_id for _, job_id in submitted}) == LOAD_JOBS
    assert console.matching("Runtime exited with error: signal: 9"), "the killed worker was not mid-invocation"

    owners = {u.sub for u in users}

    def all_records() -> list[dict[str, Any]]:
        return [r for owner in owners for r in records_of(ddb, table, owner)]

    def finished() -> bool:
        return sum(finished_count(ddb, table, owner) for owner in owners) >= LOAD_JOBS

    visibility = int(stack.outputs["visibility_timeout_seconds"])
    wait_for(finished, 300 + 3 * visibility, "all 2,000 jobs to finish", interval=3.0)
    records = all_records()
    assert len(records) == LOAD_JOBS and all(r["status"] in TERMINAL for r in records)
    complete_seconds = time.monotonic() - started
    # Duplicates that met their job PROCESSING were sent back; they come back and are acknowledged.
    wait_for(lambda: queue_depth(sqs, queue_url) == (0, 0), 3 * visibility + 60, "the queue to drain", 2.0)
    drained_seconds = time.monotonic() - started

    # exactly 2,000 COMPLETE, nothing lost, nothing else
    assert sorted(r["job_id"] for r in records) == sorted(job_id for _, job_id in submitted)
    assert {r["status"] for r in records} == {"COMPLETE"}
    # claims: one per job, except the jobs of the killed batch (taken over after its lease ran out)
    retaken = {r["job_id"]: int(r["attempts"]) for r in records if int(r["attempts"]) != 1}
    # each result object written once
    s3 = stack.client("s3")
    versions: dict[str, int] = {}
    markers = 0
    for owner in owners:
        found, deleted = object_versions(s3, stack.outputs["bucket_name"], f"{owner}/")
        versions.update(found)
        markers += deleted
    print(
        f"\nload: {len(retaken)} job(s) claimed twice {sorted(retaken)[:10]}, "
        f"{sum(1 for n in versions.values() if n != 1)} result object(s) with several versions"
    )
    # each action run to completion once: one "job complete" log line per job
    wanted = {job_id for _, job_id in submitted}
    assert_completed_once(stack, sorted(wanted), records, start_ms, killed_batch=10)
    group = stack.outputs["worker_log_group"]
    logs = stack.client("logs")
    # every job's second delivery was acknowledged without running it
    acknowledged = {
        e["correlation_id"] for e in log_messages(logs, group, "duplicate or late delivery acknowledged", start_ms)
    }
    assert wanted <= acknowledged
    assert len(retaken) <= 10 and all(a == 2 for a in retaken.values()), retaken
    assert markers == 0
    assert set(versions) == {r["S3FileKey"] for r in records}
    assert {k: n for k, n in versions.items() if n != 1} == {}, "result objects written more than once"
    # nothing went to the DLQ
    assert not wanted & {b.get("job_id") for b in dlq_bodies(sqs, stack.outputs["dlq_url"])}
    print(
        f"\n2,000 jobs x2 deliveries, 1 worker killed: submitted in {submit_seconds:.0f}s, "
        f"all COMPLETE at {complete_seconds:.0f}s, queue drained at {drained_seconds:.0f}s; "
        f"{len(retaken)} job(s) taken over after the kill; worker invocations timed out: "
        f"{len(console.matching('jobs-local-worker', 'Task timed out'))}, records sent back for lack of time: "
        f"{len(console.matching('too little time left to start the job'))}"
    )


# ----------------------------------------------------------------------------- SQS failure


def test_sqs_send_failing_during_post_is_a_503_and_the_record_fails(stack: LocalStack, make_user: Any) -> None:
    user: User = make_user()
    lam = stack.client("lambda")
    name = stack.outputs["api_function_name"]
    runtime = stack.runtime
    assert runtime is not None
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    good = variables["JOBS_QUEUE_URL"]
    bad = good.rsplit("/", 1)[0] + "/no-such-queue-e2e"

    def use(url: str) -> None:
        lam.update_function_configuration(
            FunctionName=name, Environment={"Variables": {**variables, "JOBS_QUEUE_URL": url}}
        )
        wait_for(lambda: runtime.pool(name).function.env.get("JOBS_QUEUE_URL") == url, 30, f"the runtime to use {url}")

    use(bad)
    try:
        body = {"name": "unqueued", "action": "demo", "context1": "a", "context2": "b"}
        resp = user.api.post_job(body, headers={"Idempotency-Key": "e2e-sqs-down"})
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"] == "enqueue_failed"
    finally:
        use(good)
    records = records_of(stack.client("dynamodb"), stack.outputs["table_name"], user.sub)
    assert [(r["name"], r["status"], r["error"]) for r in records] == [
        ("unqueued", "FAILED", "the job could not be queued")
    ]
    listed = user.api.list_jobs().json()
    assert [(j["status"], j["error"]) for j in listed] == [("FAILED", "the job could not be queued")]
    # The key was released: the retry with it creates a new job, which now goes through.
    retry = user.api.post_job(body, headers={"Idempotency-Key": "e2e-sqs-down"})
    assert retry.status_code == 202, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    assert user.api.wait_terminal(retry.json()["job_id"])["status"] == "COMPLETE"


# ----------------------------------------------------------------------------- token attacks


def _attack_tokens(stack: LocalStack, victim: User) -> dict[str, str | None]:
    claims = unverified_claims(victim.token)
    now = int(time.time())
    other_pool = "us-east-1_" + "Z" * 9
    return {
        "missing header": None,
        "empty header": "",
        "garbage header": "garbage",
        "bearer only": "Bearer",
        "three garbage parts": "a.b.c",
        "expired": forge({**claims, "iat": now - 7200, "auth_time": now - 7200, "exp": now - 60}),
        "not yet valid (nbf)": forge({**claims, "nbf": now + 3600, "exp": now + 7200}),
        "not yet valid (iat)": forge({**claims, "iat": now + 3600, "auth_time": now + 3600, "exp": now + 7200}),
        "wrong issuer": forge({**claims, "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{other_pool}"}),
        "no exp": forge({k: v for k, v in claims.items() if k != "exp"}),
        "access token on an id-token method": forge(
            {**{k: v for k, v in claims.items() if k != "aud"}, "token_use": "access", "client_id": claims["aud"]}
        ),
        "alg none": unsigned(claims),
        "alg None (case)": unsigned(claims, alg="None"),
        "HS256 with the public key": hs256_with_public_key(claims),
        "tampered payload (sub)": with_payload(victim.token, {"sub": "00000000-0000-0000-0000-000000000000"}),
        "tampered payload (exp)": with_payload(victim.token, {"exp": now + 10 * 365 * 86400}),
        "tampered signature": with_flipped_signature(victim.token),
        "signature stripped": victim.token.rsplit(".", 1)[0] + ".",
        "unknown kid": forge(claims, headers={"kid": "not-a-key"}),
    }


def test_token_attacks_are_refused_every_time_and_write_nothing(
    stack: LocalStack, make_user: Any, console: Any
) -> None:
    victim: User = make_user()
    job_id = victim.api.submit(name="victim")
    attacks = _attack_tokens(stack, victim)
    wrong_client = forge({**unverified_claims(victim.token), "aud": "some-other-client"})
    body = {"name": "attack", "action": "demo", "context1": "a", "context2": "b"}
    routes = [
        ("POST", "/job", {"json": body}),
        ("GET", "/jobs", {}),
        ("GET", "/job", {"params": {"job_id": job_id}}),
        ("DELETE", "/job", {"params": {"job_id": job_id}}),
    ]
    for _round in range(2):
        for what, token in attacks.items():
            for method, path, kwargs in routes:
                resp = victim.api.request(method, path, token=token, **kwargs)
                assert resp.status_code == 401, (what, method, path, resp.status_code, resp.text)
                assert resp.json()["message"] == "Unauthorized", what
                assert "victim" not in resp.text
        for method, path, kwargs in routes:  # valid signature, another app client: the handler says no
            resp = victim.api.request(method, path, token=wrong_client, **kwargs)
            assert resp.status_code == 403, (method, path, resp.text)
            assert resp.json()["error"] == "forbidden"
    records = records_of(stack.client("dynamodb"), stack.outputs["table_name"], victim.sub)
    assert [r["name"] for r in records] == ["victim"]
    assert victim.api.wait_terminal(job_id)["status"] == "COMPLETE"  # no DELETE got through
    scan = stack.client("dynamodb").scan(
        TableName=stack.outputs["table_name"],
        FilterExpression="#n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": "attack"}},
    )
    assert scan["Count"] == 0


def _proxy_event(method: str, path: str, claims: dict[str, str] | None, body: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"resourcePath": path, "httpMethod": method, "stage": "local", "requestId": "e2e"}
    if claims is not None:
        context["authorizer"] = {"claims": claims}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": False,
    }


def test_the_handler_itself_refuses_events_without_the_right_identity(stack: LocalStack, make_user: Any) -> None:
    """Invoked directly (as if the authorizer were missing or misconfigured): 401/403, nothing written."""
    user: User = make_user()
    runtime = stack.runtime
    assert runtime is not None
    claims = {k: str(v) for k, v in unverified_claims(user.token).items()}
    body = json.dumps({"name": "direct", "action": "demo", "context1": "a", "context2": "b"})
    cases = {
        "no authorizer": (None, 401),
        "no sub": ({k: v for k, v in claims.items() if k != "sub"}, 401),
        "empty sub": ({**claims, "sub": ""}, 401),
        "other client (aud)": ({**claims, "aud": "other"}, 403),
        "no token_use": ({k: v for k, v in claims.items() if k != "token_use"}, 403),
        "access token of another client": ({**claims, "token_use": "access", "client_id": "other"}, 403),
    }
    for what, (event_claims, status) in cases.items():
        for method, path in (("POST", "/job"), ("GET", "/jobs")):
            result = runtime.invoke(
                stack.outputs["api_function_name"],
                _proxy_event(method, path, event_claims, body if method == "POST" else None),
            )
            assert result.ok, result.error
            assert result.payload["statusCode"] == status, (what, method, result.payload)
    assert records_of(stack.client("dynamodb"), stack.outputs["table_name"], user.sub) == []


# ----------------------------------------------------------------------------- cross-tenant


def test_cross_tenant_reads_lists_and_deletes_get_nothing(stack: LocalStack, make_user: Any) -> None:
    owner: User = make_user()
    intruder: User = make_user()
    ids = [owner.api.submit(context1=f"secret-{i}", name=f"own-{i}") for i in range(3)]
    pending = owner.api.submit("json-format", "{}", "x", name="to-cancel")  # may still be PENDING
    first = owner.api.list_jobs(limit=1)
    token = first.headers["X-Next-Token"]

    for job_id in [*ids, pending]:
        for resp in (intruder.api.get_job(job_id), intruder.api.delete_job(job_id)):
            assert resp.status_code == 404, resp.text
            assert resp.json()["error"] == "job_not_found"
            assert "secret" not in resp.text and "own-" not in resp.text
    stolen = intruder.api.list_jobs(limit=1, next_token=token)
    assert stolen.status_code == 400, stolen.text
    assert stolen.json()["error"] == "invalid_next_token"
    filtered = owner.api.list_jobs(limit=1, status="PENDING", next_token=token)  # bound to its filter too
    assert filtered.status_code == 400
    assert intruder.api.list_jobs().json() == []
    # the owner still has everything, untouched by the intruder's DELETEs
    for job_id in [*ids, pending]:
        assert owner.api.wait_terminal(job_id)["status"] == "COMPLETE"
    assert records_of(stack.client("dynamodb"), stack.outputs["table_name"], intruder.sub) == []


# ----------------------------------------------------------------------------- fuzzing


_text = st.text(min_size=0, max_size=40)
_value = st.one_of(st.none(), st.booleans(), st.integers(), _text, st.lists(_text, max_size=2))


@pytest.fixture(scope="module")
def fuzz_user(make_user: Any) -> User:
    return make_user()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.dictionaries(st.sampled_from(["name", "action", "context1", "context2", "extra"]), _value, max_size=5).map(
            json.dumps
        ),
        st.fixed_dictionaries(
            {
                "name": _text,
                "action": st.sampled_from(["demo", "checksum", "nope", ""]),
                "context1": _text,
                "context2": _text,
            }
        ).map(json.dumps),
        st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
    ),
    params=st.dictionaries(st.sampled_from(["job_id", "limit", "status", "next_token"]), _text, max_size=3),
)
def test_fuzzed_requests_through_the_front_never_get_a_5xx(fuzz_user: User, body: str, params: dict[str, str]) -> None:
    api = fuzz_user.api
    created = api.request("POST", "/job", data=body.encode("utf-8"), headers={"Content-Type": "application/json"})
    assert created.status_code in (202, 400), (body, created.text)
    if created.status_code == 202:
        assert api.job(created.json()["job_id"])["status"] in ("PENDING", "PROCESSING", "COMPLETE")
    else:
        assert created.json()["error"]
    for method, path in (("GET", "/job"), ("GET", "/jobs"), ("DELETE", "/job")):
        resp = api.request(method, path, params=params)
        assert resp.status_code < 500, (method, path, params, resp.text)


def test_fuzzed_jobs_all_finish(stack: LocalStack, fuzz_user: User) -> None:
    """What the fuzzing run created is processed like any job (runs after it, same user)."""

    def done() -> bool:
        records = records_of(stack.client("dynamodb"), stack.outputs["table_name"], fuzz_user.sub)
        return all(r["status"] in TERMINAL for r in records)

    wait_for(done, 120, "the fuzzed jobs to finish", interval=1.0)
    records = records_of(stack.client("dynamodb"), stack.outputs["table_name"], fuzz_user.sub)
    assert {r["status"] for r in records} <= {"COMPLETE"}
