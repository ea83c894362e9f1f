"""Helpers of the end-to-end tests: an HTTP client of the API, forged tokens, reads of the
deployed resources (DynamoDB records, S3 object versions, CloudWatch log events, queues)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jwt
import moto.cognitoidp
import requests

from tooling.local_stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
HTTP_TIMEOUT = 60.0
TERMINAL = {"COMPLETE", "FAILED", "CANCELLED"}
T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``predicate`` until it returns something truthy (bounded); TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() + interval > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


# ----------------------------------------------------------------------------- HTTP


class Api:
    """The REST API through the local front, as one user (``token``); one HTTP session per thread."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self._local = threading.local()

    @property
    def http(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def request(self, method: str, path: str, *, token: str | object | None = ..., **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        chosen = self.token if token is ... else token
        if chosen is not None:
            headers.setdefault("Authorization", chosen)
        return self.http.request(method, f"{self.base}{path}", headers=headers, timeout=HTTP_TIMEOUT, **kwargs)

    def post_job(self, body: dict[str, Any], **kwargs: Any) -> requests.Response:
        return self.request("POST", "/job", json=body, **kwargs)

    def submit(self, action: str = "demo", context1: str = "hello", context2: str = "world", name: str = "e2e") -> str:
        resp = self.post_job({"name": name, "action": action, "context1": context1, "context2": context2})
        assert resp.status_code == 202, (resp.status_code, resp.text)
        body = resp.json()
        assert body["status"] == "PENDING"
        return str(body["job_id"])

    def post_batch(self, jobs: list[dict[str, Any]], **kwargs: Any) -> requests.Response:
        return self.request("POST", "/jobs/batch", json={"jobs": jobs}, **kwargs)

    def get_job(self, job_id: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", "/job", params={"job_id": job_id}, **kwargs)

    def job(self, job_id: str) -> dict[str, Any]:
        resp = self.get_job(job_id)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        data: dict[str, Any] = resp.json()
        return data

    def list_jobs(self, **params: Any) -> requests.Response:
        token = params.pop("token", ...)
        return self.request("GET", "/jobs", params=params, token=token)

    def delete_job(self, job_id: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", "/job", params={"job_id": job_id}, **kwargs)

    def wait_terminal(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        def terminal() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] in TERMINAL else None

        return wait_for(terminal, timeout, f"job {job_id} to finish", interval=0.5)


@dataclass
class User:
    username: str
    password: str
    token: str
    api: Api

    @property
    def sub(self) -> str:
        return str(unverified_claims(self.token)["sub"])


# ----------------------------------------------------------------------------- tokens


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _moto_resource(name: str) -> dict[str, Any]:
    path = Path(moto.cognitoidp.__file__).parent / "resources" / name
    with gzip.open(path, "rt") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def moto_private_jwk() -> dict[str, Any]:
    """The key moto's Cognito signs every token with: it ships inside the moto package."""
    return _moto_resource("jwks-private.json.gz")


def moto_public_pem() -> bytes:
    key = jwt.PyJWK(_moto_resource("jwks-public.json.gz")["keys"][0], algorithm="RS256").key
    from cryptography.hazmat.primitives import serialization

    pem: bytes = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem


def forge(claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    """A token with ``claims``, validly signed with the pool's (moto's) private key."""
    key = jwt.PyJWK(moto_private_jwk(), algorithm="RS256").key
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "dummy", **(headers or {})})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    """``alg: none``: a header and a payload, no signature."""
    header = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": "dummy"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def hs256_with_public_key(claims: dict[str, Any]) -> str:
    """The algorithm-confusion attack: HS256 with the RSA public key (PEM) as the HMAC secret."""
    import hashlib
    import hmac

    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "dummy"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(moto_public_pem(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def with_payload(token: str, changes: dict[str, Any]) -> str:
    """The same header and signature around a changed payload."""
    header, _, signature = token.split(".")
    claims = {**unverified_claims(token), **changes}
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def with_flipped_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


# ----------------------------------------------------------------------------- resources


def records_of(dynamodb: Any, table: str, owner_id: str) -> list[dict[str, Any]]:
    """Every job record of ``owner_id`` (one Query, paginated), as plain values."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "owner_id = :o",
        "ExpressionAttributeValues": {":o": {"S": owner_id}},
        "ConsistentRead": True,
    }
    for _ in range(10_000):
        resp = dynamodb.query(**kwargs)
        for item in resp.get("Items", []):
            items.append({k: next(iter(v.values())) for k, v in item.items()})
        if "LastEvaluatedKey" not in resp:
            break
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return items


def finished_count(dynamodb: Any, table: str, owner_id: str) -> int:
    """How many of ``owner_id``'s jobs are in a terminal state: a counting Query, so polling it
    does not make the backend serialise every record (which would slow the stack under test)."""
    total = 0
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "owner_id = :o",
        "FilterExpression": "#s IN (" + ", ".join(f":t{i}" for i in range(len(TERMINAL))) + ")",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {
            ":o": {"S": owner_id},
            **{f":t{i}": {"S": status} for i, status in enumerate(sorted(TERMINAL))},
        },
        "Select": "COUNT",
        "ConsistentRead": True,
    }
    for _ in range(10_000):
        resp = dynamodb.query(**kwargs)
        total += int(resp["Count"])
        if "LastEvaluatedKey" not in resp:
            break
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return total


def object_versions(s3: Any, bucket: str, prefix: str) -> tuple[dict[str, int], int]:
    """Per key, how many versions exist under ``prefix``; and how many delete markers."""
    versions: dict[str, int] = {}
    markers = 0
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    for _ in range(10_000):
        resp = s3.list_object_versions(**kwargs)
        for version in resp.get("Versions", []):
            versions[version["Key"]] = versions.get(version["Key"], 0) + 1
        markers += len(resp.get("DeleteMarkers", []))
        if not resp.get("IsTruncated"):
            break
        kwargs["KeyMarker"] = resp.get("NextKeyMarker")
        kwargs["VersionIdMarker"] = resp.get("NextVersionIdMarker")
    return versions, markers


def log_messages(logs: Any, group: str, phrase: str, start_ms: int) -> list[dict[str, Any]]:
    """The JSON (Powertools) log events of ``group`` since ``start_ms`` that contain ``phrase``."""
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "filterPattern": f'"{phrase}"', "startTime": start_ms}
    for _ in range(100_000):
        resp = logs.filter_log_events(**kwargs)
        for event in resp.get("events", []):
            try:
                data = json.loads(event["message"])
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("message") == phrase:
                found.append(data)
        token = resp.get("nextToken")
        if not token:
            break
        kwargs["nextToken"] = token
    return found


def queue_depth(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def dlq_bodies(sqs: Any, url: str, rounds: int = 20) -> list[dict[str, Any]]:
    """The DLQ's messages (received and left there: they come back after the visibility timeout)."""
    bodies: dict[str, dict[str, Any]] = {}
    for _ in range(rounds):
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=1
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            bodies[message["MessageId"]] = json.loads(message["Body"])
    return list(bodies.values())


# ----------------------------------------------------------------------------- the runtime


def _busy_worker_pids(stack: LocalStack) -> list[int]:
    """The worker's execution environments that are running an invocation right now."""
    pool = stack.runtime.pool(stack.outputs["worker_function_name"])  # type: ignore[union-attr]
    with pool._lock:
        busy = [env for env in pool._all if env not in pool._idle]
    return [env.process.pid for env in busy if env.process is not None and env.process.poll() is None]


def kill_a_busy_worker(stack: LocalStack, timeout: float = 60.0) -> int:
    """kill -9 one worker execution environment while it processes a batch; its pid."""
    pids = wait_for(lambda: _busy_worker_pids(stack), timeout, "a worker environment busy with a batch", 0.005)
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def assert_completed_once(
    stack: LocalStack, job_ids: list[str], records: list[dict[str, Any]], start_ms: int, killed_batch: int = 0
) -> None:
    """Each job's action ran to completion once: never two "job complete" lines in the worker's log group.

    A worker killed between marking a job COMPLETE and logging it leaves no line (the redelivery
    then finds the job COMPLETE and only acknowledges it): up to ``killed_batch`` jobs may have
    none, and those must have been claimed once.
    """
    assert stack.runtime is not None
    stack.runtime.logs.flush(30)
    events = log_messages(stack.client("logs"), stack.outputs["worker_log_group"], "job complete", start_ms)
    wanted = set(job_ids)
    seen: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event.get("correlation_id") in wanted:
            seen.setdefault(event["correlation_id"], []).append(event)
    missing = wanted - set(seen)
    twice = {job_id: found for job_id, found in seen.items() if len(found) > 1}
    by_id = {r["job_id"]: r for r in records}
    detail = {
        job_id: {
            "record": {k: by_id.get(job_id, {}).get(k) for k in ("status", "attempts", "startedAt", "completedAt")},
            "completions": [
                {k: e.get(k) for k in ("timestamp", "function_request_id", "attempt", "cold_start")} for e in found
            ],
        }
        for job_id, found in list(twice.items())[:5]
    }
    by_id_attempts = {r["job_id"]: int(r.get("attempts", 0)) for r in records}
    unlogged_ok = len(missing) <= killed_batch and all(by_id_attempts.get(j) == 1 for j in missing)
    assert unlogged_ok and not twice, (
        f"{len(missing)} job(s) without and {len(twice)} with several completions: {detail}"
    )
