"""The smoke client against a small job API double (the contract), and Cognito tokens on moto."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import jwt
import pytest

from tooling import loopback
from tooling.errors import OperatorError
from tooling.smoke import SIGN_IN_SCOPE, ProgressLine, api_token_for, id_token_for, run_smoke, throwaway_user

TOKEN = "header.payload.signature"


class FakeJobApi:
    """The seed's contract: POST /job, GET /job?job_id=, GET /jobs, and a result URL; POST /jobs/batch.

    ``mode`` changes one behaviour: ok | failed | stuck | unlisted | wrong-result | unauthorized |
    no-batch (POST /jobs/batch is not there) | early-start (a scheduled job starts before its
    run_at) | no-cancel (DELETE /job answers 409) | no-running-cancel (DELETE of a PROCESSING job answers 409).
    A job moves PENDING -> PROCESSING -> terminal over successive GETs; a hash-chain job stays
    PROCESSING with a growing ``progress`` until DELETE asks it to stop (202), then CANCELLED.
    """

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.accepts = lambda token: token == TOKEN  # what the authorizer lets through
        self.jobs: dict[str, dict] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body, content_type="application/json"):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                api.requests.append((self.command, self.path, self.headers.get("Authorization")))
                if api.mode == "unauthorized" or not api.accepts(self.headers.get("Authorization")):
                    self._send(401, {"message": "Unauthorized"})
                    return False
                return True

            def _create(self, body: dict) -> dict:
                job_id = f"job-{len(api.jobs) + 1}"
                status = "PENDING"
                if "delay_seconds" in body or "run_at" in body:
                    status = "SCHEDULED"
                    body = {**body, "run_at": body.get("run_at") or f"2025-07-14T12:00:0{body['delay_seconds']}.000Z"}
                api.jobs[job_id] = {**body, "job_id": job_id, "status": status, "polls": 0}
                return {"job_id": job_id, "status": status}

            def do_DELETE(self):
                if not self._authorized():
                    return
                job = api.jobs[parse_qs(urlparse(self.path).query)["job_id"][0]]
                if job["status"] in ("PENDING", "SCHEDULED") and api.mode != "no-cancel":
                    job["status"] = "CANCELLED"
                    self._send(200, {k: v for k, v in job.items() if k != "polls"})
                elif job["status"] == "PROCESSING" and api.mode != "no-running-cancel":
                    job["cancel_requested_at"] = "2025-07-14T12:00:09.000Z"
                    self._send(202, {k: v for k, v in job.items() if k != "polls"})
                else:
                    self._send(409, {"error": "not_cancellable", "message": "no"})

            def do_POST(self):
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if urlparse(self.path).path == "/dev/jobs/batch":
                    if api.mode == "no-batch":
                        self._send(404, {"error": "route_not_found", "message": "no route"})
                        return
                    self._send(202, {"jobs": [self._create(job) for job in body["jobs"]]})
                    return
                self._send(202, self._create(body))

            def do_GET(self):
                url = urlparse(self.path)
                if url.path.startswith("/results/"):
                    api.requests.append((self.command, self.path, self.headers.get("Authorization")))
                    job = api.jobs[url.path.rsplit("/", 1)[-1]]
                    text = (
                        "something else"
                        if api.mode == "wrong-result"
                        else f"processed: {job['context1']} + {job['context2']}"
                    )
                    self._send(200, text, "text/plain")
                    return
                if not self._authorized():
                    return
                if url.path == "/dev/jobs":
                    listed = [] if api.mode == "unlisted" else list(reversed(api.jobs.values()))
                    self._send(200, [{k: v for k, v in j.items() if k != "polls"} for j in listed])
                    return
                job_id = parse_qs(url.query)["job_id"][0]
                job = api.jobs.get(job_id)
                if job is None:
                    self._send(404, {"message": "job not found"})
                    return
                job["polls"] += 1
                if job["action"] == "hash-chain" and job["polls"] >= 2:
                    job["status"] = "CANCELLED" if "cancel_requested_at" in job else "PROCESSING"
                    job["progress"] = {"fraction": min(0.1 * job["polls"], 0.9), "message": "rounds"}
                elif api.mode != "stuck":
                    if job["polls"] == 2:
                        job["status"] = "PROCESSING"
                    elif job["polls"] >= 3:
                        job["status"] = "FAILED" if api.mode == "failed" else "COMPLETE"
                        if job["status"] == "FAILED":
                            job["error"] = "unknown action"
                        else:
                            job["result_url"] = f"{api.url_root}/results/{job_id}"
                            job["S3FileKey"] = f"owner/2025-07-14/{job_id}.txt"
                            job["startedAt"] = "2025-07-14T12:00:04.000Z"
                            if "run_at" in job and api.mode == "early-start":
                                job["startedAt"] = "2025-07-14T12:00:01.000Z"
                self._send(200, {k: v for k, v in job.items() if k != "polls"})

        self.server = loopback.serve(Handler)
        self.url_root = loopback.base_url(self.server)
        self.api_url = f"{self.url_root}/dev"

    def close(self) -> None:
        loopback.stop(self.server)


@pytest.fixture
def fake_api(request) -> Iterator[FakeJobApi]:
    api = FakeJobApi(getattr(request, "param", "ok"))
    try:
        yield api
    finally:
        api.close()


def test_smoke_passes_through_the_whole_flow(fake_api):
    seen: list[str] = []
    result = run_smoke(fake_api.api_url, TOKEN, timeout=10, poll_interval=0.01, progress=lambda s, _t: seen.append(s))
    assert result.ok, result.verdict
    assert result.verdict.startswith(f"SMOKE PASSED: job {result.job_id} COMPLETE, listed by GET /jobs")
    assert "a batch of 2 COMPLETE" in result.verdict
    assert "a scheduled job ran on time, another was cancelled" in result.verdict
    assert "a long job showed progress and was cancelled while running" in result.verdict
    long = fake_api.jobs["job-6"]
    assert long["action"] == "hash-chain" and long["context2"] == "10000000"
    assert long["status"] == "CANCELLED" and long["progress"]["fraction"] > 0
    delayed, later = fake_api.jobs["job-4"], fake_api.jobs["job-5"]
    assert delayed["delay_seconds"] == 3 and delayed["status"] == "COMPLETE"
    assert later["status"] == "CANCELLED" and later["run_at"].endswith("Z") and "delay_seconds" not in later
    batch_posts = [r for r in fake_api.requests if r[:2] == ("POST", "/dev/jobs/batch")]
    assert len(batch_posts) == 1
    assert {fake_api.jobs[j]["status"] for j in ("job-2", "job-3")} == {"COMPLETE"}
    assert result.status == "COMPLETE"
    assert seen == ["PENDING", "PENDING", "PROCESSING", "COMPLETE"]
    job = fake_api.jobs[result.job_id]
    assert job["action"] == "process-data"
    assert job["context1"] in result.result_text and job["context2"] in result.result_text
    # the raw ID token on every API call; none on the presigned result URL
    api_calls = [r for r in fake_api.requests if not r[1].startswith("/results/")]
    assert {auth for _m, _p, auth in api_calls} == {TOKEN}
    assert [auth for _m, p, auth in fake_api.requests if p.startswith("/results/")] == [None]
    assert ("GET", "/dev/jobs", TOKEN) in fake_api.requests


@pytest.mark.parametrize(
    ("fake_api", "expected"),
    [
        ("failed", "SMOKE FAILED: job job-1 ended FAILED: unknown action"),
        ("unlisted", "SMOKE FAILED: GET /jobs does not list job job-1"),
        ("wrong-result", "SMOKE FAILED: the result of job job-1 lacks smoke-left-"),
        ("unauthorized", "SMOKE FAILED: POST /job answered 401"),
        ("no-batch", "SMOKE FAILED: POST /jobs/batch answered 404"),
        ("early-start", "SMOKE FAILED: scheduled job job-4 started at 2025-07-14T12:00:01.000Z, due"),
        ("no-cancel", "SMOKE FAILED: DELETE /job of a scheduled job answered 409"),
        ("no-running-cancel", "SMOKE FAILED: DELETE /job of a running job answered 409"),
    ],
    indirect=["fake_api"],
)
def test_smoke_names_what_failed(fake_api, expected):
    result = run_smoke(fake_api.api_url, TOKEN, timeout=10, poll_interval=0.01)
    assert not result.ok
    assert result.verdict.startswith(expected)
    assert "\n" not in result.verdict


@pytest.mark.parametrize("fake_api", ["stuck"], indirect=True)
def test_smoke_gives_up_at_the_timeout(fake_api):
    result = run_smoke(fake_api.api_url, TOKEN, timeout=0.5, poll_interval=0.05)
    assert not result.ok
    assert result.verdict == "SMOKE FAILED: job job-1 still PENDING after 0.5s"
    assert result.elapsed_seconds < 3


def test_smoke_reports_an_unreachable_api():
    result = run_smoke("http://127.0.0.1:9/dev", TOKEN, timeout=2)
    assert not result.ok
    assert result.verdict.startswith("SMOKE FAILED: cannot reach the API at http://127.0.0.1:9/dev")


def test_progress_line_prints_changes_when_not_a_terminal():
    out = io.StringIO()
    show = ProgressLine(out)
    for status, t in [("PENDING", 0.0), ("PENDING", 1.0), ("PROCESSING", 2.0), ("COMPLETE", 3.5)]:
        show(status, t)
    assert out.getvalue() == "  job PENDING at 0.0s\n  job PROCESSING at 2.0s\n  job COMPLETE at 3.5s\n"


def test_throwaway_user_gets_an_id_token_and_is_deleted(access, unique):
    cognito = access.client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"smoke-{unique}")["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]

    with throwaway_user(cognito, pool_id) as (username, password):
        token = id_token_for(cognito, client_id, username, password)
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["token_use"] == "id"
        assert claims["aud"] == client_id
        assert claims["cognito:username"] == username
        with pytest.raises(OperatorError, match=f"Cognito refused the smoke user '{username}'"):
            id_token_for(cognito, client_id, username, password + "x")
    with pytest.raises(cognito.exceptions.UserNotFoundException):
        cognito.admin_get_user(UserPoolId=pool_id, Username=username)


def test_the_smoke_token_is_the_one_api_gateway_takes_for_the_scopes(pool):
    """No scopes: an ID token. The sign-in scope required: the access token. Others: a clear refusal."""
    cognito, pool_id, client_id = pool
    with throwaway_user(cognito, pool_id) as (username, password):
        plain = jwt.decode(
            api_token_for(cognito, client_id, username, password, []), options={"verify_signature": False}
        )
        assert plain["token_use"] == "id"
        scoped = api_token_for(
            cognito, client_id, username, password, ["https://jobs.example.com/submit", SIGN_IN_SCOPE]
        )
        claims = jwt.decode(scoped, options={"verify_signature": False})
        assert claims["token_use"] == "access"
        with pytest.raises(
            OperatorError,
            match=re.escape("requires an access token with one of the scopes https://jobs.example.com/submit"),
        ):
            api_token_for(cognito, client_id, username, password, ["https://jobs.example.com/submit"])


def test_throwaway_user_is_deleted_when_the_smoke_fails(access, unique):
    cognito = access.client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"smoke-fail-{unique}")["UserPool"]["Id"]
    with pytest.raises(RuntimeError, match="boom"), throwaway_user(cognito, pool_id) as (username, _password):
        raise RuntimeError("boom")
    with pytest.raises(cognito.exceptions.UserNotFoundException):
        cognito.admin_get_user(UserPoolId=pool_id, Username=username)


@pytest.fixture
def pool(access, unique):
    cognito = access.client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"task-{unique}")["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    return cognito, pool_id, client_id


@pytest.fixture
def smoke_env(tmp_path, monkeypatch, backend):
    from tooling.environments import Environment

    monkeypatch.setenv("JOBSTACK_WORK_ROOT", str(tmp_path / "work"))
    monkeypatch.setenv("JOBSTACK_ENDPOINT_URL", backend.endpoint)
    return Environment("local", tmp_path / "local.tfvars", None, {}, root=tmp_path)


def _serve_tokens_of(fake_api, cognito, pool_id):
    """Let the double accept the ID tokens of this pool (as the Cognito authorizer would)."""

    def accepts(token):
        if not token:
            return False
        claims = jwt.decode(token, options={"verify_signature": False})
        return claims.get("token_use") == "id" and claims.get("iss", "").endswith(pool_id)

    fake_api.accepts = accepts


def test_smoke_task_with_a_throwaway_user(fake_api, pool, smoke_env, monkeypatch, capsys):
    from tooling import deploy

    cognito, pool_id, client_id = pool
    _serve_tokens_of(fake_api, cognito, pool_id)
    outputs = {"api_url": fake_api.api_url, "user_pool_id": pool_id, "user_pool_client_id": client_id}
    monkeypatch.setattr(deploy, "stack_outputs", lambda env: outputs)
    lines: list[str] = []
    result = deploy.smoke(smoke_env, timeout=10, create_user=True, out=lines.append)
    assert result.ok
    assert lines[-1] == result.verdict and lines[-1].startswith("SMOKE PASSED: job job-1 COMPLETE")
    assert lines[0].startswith(f"smoke: {fake_api.api_url} as smoke-")
    username = lines[0].split(" as ")[1].split(",")[0]
    with pytest.raises(cognito.exceptions.UserNotFoundException):  # the throwaway user is gone
        cognito.admin_get_user(UserPoolId=pool_id, Username=username)
    assert "job COMPLETE" in capsys.readouterr().err  # the progress display


@pytest.mark.parametrize("fake_api", ["failed"], indirect=True)
def test_smoke_task_exits_non_zero_with_one_line_when_the_job_failed(fake_api, pool, smoke_env, monkeypatch, capsys):
    from tooling import deploy
    from tooling.errors import friendly_errors

    cognito, pool_id, client_id = pool
    _serve_tokens_of(fake_api, cognito, pool_id)
    cognito.admin_create_user(UserPoolId=pool_id, Username="ops", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="ops", Password="Sm0ke!pass", Permanent=True)
    monkeypatch.setenv("SMOKE_USERNAME", "ops")
    monkeypatch.setenv("SMOKE_PASSWORD", "Sm0ke!pass")
    outputs = {"api_url": fake_api.api_url, "user_pool_id": pool_id, "user_pool_client_id": client_id}
    monkeypatch.setattr(deploy, "stack_outputs", lambda env: outputs)
    with pytest.raises(SystemExit) as caught:
        friendly_errors(deploy.smoke)(smoke_env, timeout=10, out=lambda _line: None)
    assert caught.value.code == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert err == [
        "error: SMOKE FAILED: job job-1 ended FAILED: unknown action; "
        "see invoke logs --env local --function worker (and api)"
    ]


def test_smoke_task_without_credentials_says_what_to_set(pool, smoke_env, monkeypatch):
    from tooling import deploy

    _cognito, pool_id, client_id = pool
    monkeypatch.delenv("SMOKE_USERNAME", raising=False)
    monkeypatch.delenv("SMOKE_PASSWORD", raising=False)
    outputs = {"api_url": "http://127.0.0.1:9/dev", "user_pool_id": pool_id, "user_pool_client_id": client_id}
    monkeypatch.setattr(deploy, "stack_outputs", lambda env: outputs)
    with pytest.raises(OperatorError) as caught:
        deploy.smoke(smoke_env, timeout=1, out=lambda _line: None)
    assert caught.value.line() == (
        "error: no smoke user: SMOKE_USERNAME/SMOKE_PASSWORD are not set; "
        "set them to a user of the env's pool, or pass --create-user"
    )
