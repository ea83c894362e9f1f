"""The smoke test: one real job through the deployed API, checked end to end.

Reusable without invoke::

    from tooling.smoke import run_smoke
    result = run_smoke(api_url, id_token, timeout=120)
    print(result.verdict); assert result.ok

``run_smoke`` POSTs a ``process-data`` job, polls ``GET /job`` until the job is terminal or
the timeout passes (reporting progress through a callback), checks that ``GET /jobs`` lists
it, downloads the result through its ``result_url`` and checks that it contains both
contexts; then submits a batch of two (``POST /jobs/batch``) and waits for both to COMPLETE,
submits a job due in a few seconds (an SQS delay) and checks that it ran not before its
``run_at``, and submits one due tomorrow (a schedule, on AWS EventBridge Scheduler) and
cancels it; last, submits a long ``hash-chain`` job, waits until ``GET /job`` shows its
``progress`` while it runs, cancels it (``202``) and waits for it to end CANCELLED.
It never raises for a failed check: the :class:`SmokeResult` says what failed.

Tokens come from the env's Cognito app client with ``USER_PASSWORD_AUTH``
(:func:`api_token_for`: an ID token, or the access token when the API requires
``aws.cognito.signin.user.admin``), for ``SMOKE_USERNAME``/``SMOKE_PASSWORD`` or for a throwaway user
made with the admin API and deleted afterwards (:func:`throwaway_user`).
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import requests

from tooling.errors import OperatorError

TERMINAL = ("COMPLETE", "FAILED", "CANCELLED")
ACTION = "process-data"
USERNAME_ENV_VAR = "SMOKE_USERNAME"
PASSWORD_ENV_VAR = "SMOKE_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
HTTP_TIMEOUT = 15.0
SCHEDULE_DELAY_SECONDS = 3  # the scheduled job's delay: short, still an SQS-delayed message
LONG_ACTION = "hash-chain"  # the action that reports progress
LONG_ROUNDS = 10_000_000  # its most: seconds of work, cancelled after its first progress

Progress = Callable[[str, float], None]


@dataclass
class SmokeResult:
    """The outcome of one smoke run; ``verdict`` is the one line to print."""

    ok: bool
    verdict: str
    job_id: str | None = None
    status: str | None = None
    elapsed_seconds: float = 0.0
    job: dict[str, Any] | None = None
    result_text: str | None = None
    steps: list[str] = field(default_factory=list)


class _Failed(Exception):
    def __init__(self, reason: str, status: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _json(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise _Failed(f"{what} answered {response.status_code} with non-JSON: {response.text[:120]!r}") from None


def _listed(body: Any) -> list[dict[str, Any]]:
    """GET /jobs: a JSON array (the seed's contract), or an object with a ``jobs``/``items`` list."""
    if isinstance(body, list):
        return [j for j in body if isinstance(j, dict)]
    if isinstance(body, dict):
        for key in ("jobs", "items"):
            if isinstance(body.get(key), list):
                return [j for j in body[key] if isinstance(j, dict)]
    raise _Failed(f"GET /jobs did not return a list of jobs: {str(body)[:120]}")


def run_smoke(
    api_url: str,
    id_token: str,
    timeout: float = 120.0,
    poll_interval: float = 1.0,
    progress: Progress | None = None,
    http: requests.Session | None = None,
    name: str | None = None,
) -> SmokeResult:
    """Run one job through the API at ``api_url`` (the stage URL, e.g. ``.../dev``)."""
    base = api_url.rstrip("/")
    session = http or requests.Session()
    headers = {"Authorization": id_token, "Content-Type": "application/json"}
    marker = uuid.uuid4().hex[:10]
    context1, context2 = f"smoke-left-{marker}", f"smoke-right-{marker}"
    body = {"name": name or f"smoke-{marker}", "action": ACTION, "context1": context1, "context2": context2}
    started = time.monotonic()
    result = SmokeResult(ok=False, verdict="")
    notify = progress or (lambda _status, _elapsed: None)

    def step(text: str) -> None:
        result.steps.append(text)

    def elapsed() -> float:
        return time.monotonic() - started

    try:
        # 1. submit
        resp = session.post(f"{base}/job", json=body, headers=headers, timeout=HTTP_TIMEOUT)
        if resp.status_code != 202:
            raise _Failed(f"POST /job answered {resp.status_code}: {resp.text[:200]}")
        created = _json(resp, "POST /job")
        job_id = created.get("job_id") if isinstance(created, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise _Failed(f"POST /job returned no job_id: {str(created)[:200]}")
        result.job_id = job_id
        result.status = str(created.get("status"))
        if result.status != "PENDING":
            raise _Failed(f"POST /job returned status {result.status!r}, expected PENDING", result.status)
        step(f"POST /job -> 202 job {job_id} PENDING")
        notify("PENDING", elapsed())

        # 2. poll until terminal
        deadline = started + timeout

        def finished(job_id: str, main: bool = False) -> dict[str, Any]:
            """GET /job until ``job_id`` is terminal (5xx retried) or the deadline passes."""
            status = None
            while True:
                resp = session.get(f"{base}/job", params={"job_id": job_id}, headers=headers, timeout=HTTP_TIMEOUT)
                if resp.status_code >= 500:
                    step(f"GET /job -> {resp.status_code} (retrying)")
                elif resp.status_code != 200:
                    raise _Failed(f"GET /job answered {resp.status_code}: {resp.text[:200]}", result.status)
                else:
                    job: dict[str, Any] = _json(resp, "GET /job")
                    status = str(job.get("status"))
                    if main:
                        result.job, result.status = job, status
                        notify(status, elapsed())
                    if status in TERMINAL:
                        return job
                if time.monotonic() + poll_interval > deadline:
                    raise _Failed(f"job {job_id} still {status} after {timeout:g}s", result.status)
                time.sleep(poll_interval)

        job = finished(job_id, main=True)
        step(f"GET /job -> {result.status} after {elapsed():.1f}s")
        if result.status != "COMPLETE":
            reason = job.get("error") or job.get("reason") or job.get("message") or "no reason given"
            raise _Failed(f"job {job_id} ended {result.status}: {reason}", result.status)

        # 3. listed
        resp = session.get(f"{base}/jobs", headers=headers, timeout=HTTP_TIMEOUT)
        if resp.status_code != 200:
            raise _Failed(f"GET /jobs answered {resp.status_code}: {resp.text[:200]}", result.status)
        if job_id not in {j.get("job_id") for j in _listed(_json(resp, "GET /jobs"))}:
            raise _Failed(f"GET /jobs does not list job {job_id}", result.status)
        step("GET /jobs lists the job")

        # 4. the result itself (a presigned URL: no Authorization header)
        result_url = job.get("result_url")
        if not isinstance(result_url, str) or not result_url:
            raise _Failed(f"job {job_id} is COMPLETE but has no result_url", result.status)
        resp = session.get(result_url, timeout=HTTP_TIMEOUT)
        if resp.status_code != 200:
            raise _Failed(f"downloading result_url answered {resp.status_code}: {resp.text[:200]}", result.status)
        result.result_text = resp.text
        missing = [c for c in (context1, context2) if c not in resp.text]
        if missing:
            raise _Failed(f"the result of job {job_id} lacks {', '.join(missing)}: {resp.text[:120]!r}", result.status)
        step(f"result downloaded ({len(resp.content)} bytes) and holds both contexts")

        # 5. a batch of two jobs: recorded, queued and run
        batch = [{**body, "name": f"{body['name']}-batch-{n}"} for n in range(2)]
        resp = session.post(f"{base}/jobs/batch", json={"jobs": batch}, headers=headers, timeout=HTTP_TIMEOUT)
        if resp.status_code != 202:
            raise _Failed(f"POST /jobs/batch answered {resp.status_code}: {resp.text[:200]}", result.status)
        items = _json(resp, "POST /jobs/batch")
        items = items.get("jobs") if isinstance(items, dict) else None
        if not isinstance(items, list) or len(items) != len(batch) or not all(isinstance(i, dict) for i in items):
            raise _Failed(f"POST /jobs/batch did not answer one item per job: {resp.text[:200]}", result.status)
        for item in items:
            if item.get("status") != "PENDING":
                raise _Failed(f"POST /jobs/batch item {item} is not PENDING", result.status)
            ended = finished(str(item.get("job_id")))
            if ended.get("status") != "COMPLETE":
                raise _Failed(f"batch job {item.get('job_id')} ended {ended.get('status')}", result.status)
        step(f"POST /jobs/batch -> 202, its {len(items)} jobs COMPLETE after {elapsed():.1f}s")

        # 6. scheduled: one due in a few seconds (an SQS delay) runs, not before its time; one
        #    due tomorrow (an EventBridge Scheduler schedule) is cancelled, which deletes it
        soon = {**body, "name": f"{body['name']}-delayed", "delay_seconds": SCHEDULE_DELAY_SECONDS}
        delayed = _scheduled(session, base, headers, soon, result.status)
        ended = finished(delayed["job_id"])
        if ended.get("status") != "COMPLETE":
            raise _Failed(f"scheduled job {delayed['job_id']} ended {ended.get('status')}", result.status)
        run_at, started_at = ended.get("run_at"), ended.get("startedAt")
        if not isinstance(run_at, str) or not isinstance(started_at, str) or started_at < run_at:
            raise _Failed(f"scheduled job {delayed['job_id']} started at {started_at}, due {run_at}", result.status)
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        later = _scheduled(session, base, headers, {**body, "name": f"{body['name']}-later", "run_at": tomorrow}, None)
        resp = session.delete(f"{base}/job", params={"job_id": later["job_id"]}, headers=headers, timeout=HTTP_TIMEOUT)
        cancelled = _json(resp, "DELETE /job") if resp.status_code == 200 else {}
        if cancelled.get("status") != "CANCELLED":
            raise _Failed(
                f"DELETE /job of a scheduled job answered {resp.status_code}: {resp.text[:200]}", result.status
            )
        step(f"a job due in {SCHEDULE_DELAY_SECONDS}s ran after its time; one due tomorrow was cancelled")

        # 7. a long job shows its progress while it runs, and a cancel request stops it
        long_body = {**body, "name": f"{body['name']}-long", "action": LONG_ACTION, "context2": str(LONG_ROUNDS)}
        resp = session.post(f"{base}/job", json=long_body, headers=headers, timeout=HTTP_TIMEOUT)
        if resp.status_code != 202:
            raise _Failed(f"POST /job of a {LONG_ACTION} job answered {resp.status_code}: {resp.text[:200]}")
        created = _json(resp, "POST /job")
        long_id = str(created.get("job_id")) if isinstance(created, dict) else ""
        while True:
            resp = session.get(f"{base}/job", params={"job_id": long_id}, headers=headers, timeout=HTTP_TIMEOUT)
            running = _json(resp, "GET /job") if resp.status_code == 200 else {}
            running = running if isinstance(running, dict) else {}
            shown = running.get("progress")
            fraction = shown.get("fraction") if isinstance(shown, dict) else None
            if running.get("status") == "PROCESSING" and isinstance(fraction, (int, float)):
                break
            if running.get("status") in TERMINAL:
                raise _Failed(f"{LONG_ACTION} job {long_id} ended {running.get('status')} before showing progress")
            if time.monotonic() + poll_interval > deadline:
                raise _Failed(f"{LONG_ACTION} job {long_id} showed no progress after {timeout:g}s", result.status)
            time.sleep(poll_interval)
        resp = session.delete(f"{base}/job", params={"job_id": long_id}, headers=headers, timeout=HTTP_TIMEOUT)
        if resp.status_code != 202:
            raise _Failed(f"DELETE /job of a running job answered {resp.status_code}: {resp.text[:200]}")
        ended = finished(long_id)
        if ended.get("status") != "CANCELLED":
            raise _Failed(f"running job {long_id} ended {ended.get('status')} after a cancel request", result.status)
        step(f"a {LONG_ACTION} job showed progress ({fraction:.0%}) and ended CANCELLED on DELETE")
    except _Failed as failed:
        result.elapsed_seconds = elapsed()
        result.verdict = f"SMOKE FAILED: {failed.reason}"
        return result
    except requests.RequestException as exc:
        result.elapsed_seconds = elapsed()
        result.verdict = f"SMOKE FAILED: cannot reach the API at {base}: {type(exc).__name__}: {exc}"
        return result
    result.ok = True
    result.elapsed_seconds = elapsed()
    result.verdict = (
        f"SMOKE PASSED: job {result.job_id} COMPLETE, listed by GET /jobs, result content checked; "
        "a batch of 2 COMPLETE; a scheduled job ran on time, another was cancelled; "
        "a long job showed progress and was cancelled while running; "
        f"{result.elapsed_seconds:.1f}s in all"
    )
    return result


def _scheduled(
    session: requests.Session, base: str, headers: dict[str, str], body: dict[str, Any], status: str | None
) -> dict[str, Any]:
    """POST /job of a job due later: its 202 answer, which must say SCHEDULED."""
    resp = session.post(f"{base}/job", json=body, headers=headers, timeout=HTTP_TIMEOUT)
    created = _json(resp, "POST /job") if resp.status_code == 202 else None
    if not isinstance(created, dict) or created.get("status") != "SCHEDULED" or not created.get("job_id"):
        raise _Failed(f"POST /job of a scheduled job answered {resp.status_code}: {resp.text[:200]}", status)
    return created


class ProgressLine:
    """A progress display for ``run_smoke``: a rewritten line on a terminal, changes otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last: str | None = None

    def __call__(self, status: str, elapsed: float) -> None:
        if self.tty:
            self.stream.write(f"\r  job {status:<11} {elapsed:5.1f}s")
            if status in TERMINAL:
                self.stream.write("\n")
        elif status != self.last:
            self.stream.write(f"  job {status} at {elapsed:.1f}s\n")
        self.stream.flush()
        self.last = status


# ----------------------------------------------------------------------------- tokens


# The one scope Cognito puts in the access token of a USER_PASSWORD_AUTH sign-in.
SIGN_IN_SCOPE = "aws.cognito.signin.user.admin"


def api_token_for(cognito: Any, client_id: str, username: str, password: str, scopes: list[str]) -> str:
    """The token the API takes, signing in with USER_PASSWORD_AUTH (as API Gateway decides it).

    Without authorization scopes on the methods API Gateway's Cognito authorizer takes ID
    tokens only; with scopes, only an access token holding one of them. The access token of
    this sign-in holds just ``aws.cognito.signin.user.admin``; other (custom) scopes come
    from the hosted sign-in, which a command-line smoke test cannot do.
    """
    if not scopes:
        return id_token_for(cognito, client_id, username, password)
    if SIGN_IN_SCOPE not in scopes:
        raise OperatorError(
            f"the API requires an access token with one of the scopes {', '.join(scopes)}; a password "
            f"sign-in's access token carries only {SIGN_IN_SCOPE}",
            f"add {SIGN_IN_SCOPE} to api_authorization_scopes to smoke-test this env from the command line",
        )
    return _sign_in(cognito, client_id, username, password)["AccessToken"]


def id_token_for(cognito: Any, client_id: str, username: str, password: str) -> str:
    """An ID token from the app client's USER_PASSWORD_AUTH flow."""
    return _sign_in(cognito, client_id, username, password)["IdToken"]


def _sign_in(cognito: Any, client_id: str, username: str, password: str) -> dict[str, str]:
    """The tokens of the app client's USER_PASSWORD_AUTH flow."""
    try:
        answer = cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    except cognito.exceptions.NotAuthorizedException as exc:
        raise OperatorError(
            f"Cognito refused the smoke user {username!r}: {exc.response['Error'].get('Message', '')}",
            f"check {USERNAME_ENV_VAR}/{PASSWORD_ENV_VAR}, or use --create-user",
        ) from None
    except cognito.exceptions.UserNotFoundException:
        raise OperatorError(
            f"the smoke user {username!r} does not exist in the pool", "create it, or use --create-user"
        ) from None
    if "AuthenticationResult" not in answer:
        raise OperatorError(
            f"Cognito asked the smoke user for {answer.get('ChallengeName', 'a challenge')}",
            "give the user a permanent password (admin-set-user-password --permanent), or use --create-user",
        )
    result = answer["AuthenticationResult"]
    return {"IdToken": str(result["IdToken"]), "AccessToken": str(result["AccessToken"])}


def throwaway_password() -> str:
    """A password that meets Cognito's default policy (upper, lower, digit, symbol)."""
    body = secrets.token_urlsafe(18)
    return f"Sm{body}9!a"


@contextlib.contextmanager
def throwaway_user(cognito: Any, user_pool_id: str) -> Iterator[tuple[str, str]]:
    """A confirmed user with a permanent password, deleted on exit (also on failure)."""
    # An e-mail address is a valid username both in pools that sign in by e-mail
    # (username_attributes = ["email"], as the stack's own pool) and in plain-username pools.
    username = f"smoke-{uuid.uuid4().hex[:12]}@example.com"
    password = throwaway_password()
    cognito.admin_create_user(
        UserPoolId=user_pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        TemporaryPassword=throwaway_password(),
        UserAttributes=[{"Name": "email", "Value": username}],
    )
    try:
        cognito.admin_set_user_password(UserPoolId=user_pool_id, Username=username, Password=password, Permanent=True)
        yield username, password
    finally:
        with contextlib.suppress(cognito.exceptions.UserNotFoundException):
            cognito.admin_delete_user(UserPoolId=user_pool_id, Username=username)
