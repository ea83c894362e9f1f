"""The notifier (README "Webhooks"): signing, back-off, and the handler against moto (table,
SSM secret, queue) with a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobs.settings import NotifierSettings, SettingsError
from jobs.webhooks import WebhookEvent, backoff_seconds, signed_headers
from tests.support import create_jobs_table
from tests.unit.conftest import REGION, TABLE, FakeContext, sqs_record
from tooling import loopback

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECRET = "s3cr3t-signing-key-for-tests"
PARAMETER = "/jobs-test/webhooks/signing-secret"
MAX_ATTEMPTS = 4
NOTIFIER_ENV = {
    "JOBS_TABLE_NAME": TABLE,
    "WEBHOOK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs-test-webhooks",
    "WEBHOOK_SECRET_PARAMETER": PARAMETER,
    "WEBHOOK_TIMEOUT_SECONDS": "1",
    "WEBHOOK_MAX_RECEIVE_COUNT": str(MAX_ATTEMPTS),
    "WEBHOOK_BACKOFF_BASE_SECONDS": "10",
    "WEBHOOK_BACKOFF_CAP_SECONDS": "60",
    "WEBHOOK_ALLOW_LOOPBACK": "true",  # the receiver below listens on 127.0.0.1
}


def readme_verifier() -> Any:
    """The README's verification snippet, run as a receiver would paste it."""
    block = README.split("<!-- snippet: verify-webhook -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, re.S)
    assert code, "README: no python block after the verify-webhook snippet marker"
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # noqa: S102 (the README's own snippet)
    return namespace["verify_webhook"]


def test_the_readme_snippet_verifies_what_the_notifier_signs_and_nothing_else():
    verify = readme_verifier()
    body = b'{"job_id":"j","status":"COMPLETE"}'
    now = int(time.time())
    headers = signed_headers("evt-1", now, body, SECRET)
    assert verify(SECRET, headers, body)
    assert not verify("another-secret", headers, body)
    assert not verify(SECRET, headers, body.replace(b"COMPLETE", b"FAILED"))
    assert not verify(SECRET, {**headers, "Webhook-Timestamp": str(now + 1)}, body)
    stale = signed_headers("evt-1", now - 301, body, SECRET)  # a replay after 5 minutes
    assert not verify(SECRET, stale, body)
    assert headers["Webhook-Signature"].startswith("v1=") and headers["Webhook-Id"] == "evt-1"


def test_backoff_doubles_per_attempt_with_jitter_and_stays_under_the_cap():
    assert [backoff_seconds(n, 30, 7200, lambda: 1.0) for n in (1, 2, 3, 4, 9, 12)] == [30, 60, 120, 240, 7200, 7200]
    assert [backoff_seconds(n, 30, 7200, lambda: 0.0) for n in (1, 2, 3)] == [15, 30, 60]  # at least half
    assert backoff_seconds(1, 0, 0) == 0


def test_notifier_settings_refuse_a_cap_below_the_base_and_name_missing_variables():
    with pytest.raises(SettingsError, match="WEBHOOK_BACKOFF_CAP_SECONDS"):
        NotifierSettings.from_env({**NOTIFIER_ENV, "WEBHOOK_BACKOFF_CAP_SECONDS": "5"})
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET_PARAMETER"):
        NotifierSettings.from_env({k: v for k, v in NOTIFIER_ENV.items() if k != "WEBHOOK_SECRET_PARAMETER"})
    with pytest.raises(SettingsError, match="WEBHOOK_ALLOW_LOOPBACK"):
        NotifierSettings.from_env({**NOTIFIER_ENV, "WEBHOOK_ALLOW_LOOPBACK": "yes"})


# ---------------------------------------------------------------------------- the handler


class Receiver:
    """Answers each POST with the next scripted (status, headers), recording what it got."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = script
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                state.requests.append((self.path, dict(self.headers.items()), body))
                status, headers = state.script[min(len(state.requests), len(state.script)) - 1]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"hello")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = loopback.serve(Handler)
        self.url = f"{loopback.base_url(self.server)}/hook?x=1"


@pytest.fixture
def notifier_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in NOTIFIER_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        create_jobs_table(ddb, TABLE)
        boto3.client("ssm", region_name=REGION).put_parameter(Name=PARAMETER, Value=SECRET, Type="SecureString")
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="jobs-test-webhooks")["QueueUrl"]
        monkeypatch.setenv("WEBHOOK_QUEUE_URL", queue)
        from aws_lambda_powertools.utilities import parameters

        from jobs import aws, notifier

        aws.reset()
        parameters.clear_caches()
        monkeypatch.setattr(notifier, "settings", NotifierSettings.from_env())
        notifier.notifier.cache_clear()
        notifier.retry_queue.cache_clear()
        servers: list[Receiver] = []

        def receiver(*script: tuple[int, dict[str, str]]) -> Receiver:
            servers.append(Receiver(list(script)))
            return servers[-1]

        yield {"ddb": ddb, "sqs": sqs, "queue": queue, "receiver": receiver, "module": notifier}
        for server in servers:
            loopback.stop(server.server)
        notifier.notifier.cache_clear()
        notifier.retry_queue.cache_clear()
        aws.reset()


def put_job(ddb: Any, url: str) -> tuple[str, str]:
    owner, job_id = "user-a", str(uuid.uuid4())
    ddb.put_item(
        TableName=TABLE,
        Item={
            "owner_id": {"S": owner},
            "job_id": {"S": job_id},
            "status": {"S": "COMPLETE"},
            "callbackUrl": {"S": url},
        },
    )
    return owner, job_id


def event_body(
    owner: str, job_id: str, url: str, event_id: str = "evt-1", changed_at: str = "2026-01-01T00:00:01.000Z"
) -> str:
    detail = {
        "event_id": event_id,
        "job_id": job_id,
        "owner_id": owner,
        "name": "n",
        "action": "demo",
        "priority": "normal",
        "previous_status": "PROCESSING",
        "status": "COMPLETE",
        "created_at": "2026-01-01T00:00:00.000Z",
        "changed_at": changed_at,
        "result_key": f"{owner}/2026-01-01/{job_id}.txt",
        "callback_url": url,
    }
    return json.dumps(
        {"version": "0", "id": "e", "detail-type": "Job Status Changed", "source": "jobs.jobs", "detail": detail}
    )


def deliver(env: dict[str, Any], body: str, receive_count: int = 1) -> tuple[dict[str, Any], list[int]]:
    """Run the handler on one record; (its response, the visibility timeouts it set)."""
    sqs, queue = env["sqs"], env["queue"]
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"]
    record = sqs_record(body, receive_count)
    record["receiptHandle"] = message["ReceiptHandle"]
    visibility: list[int] = []
    real = env["module"].retry_queue()
    original = real.retry_in

    def recording(handle: str, seconds: int) -> None:
        visibility.append(seconds)
        original(handle, seconds)

    real.retry_in = recording
    try:
        response = env["module"].lambda_handler({"Records": [record]}, FakeContext())
    finally:
        real.retry_in = original
    if not response["batchItemFailures"]:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])  # as the mapping does
    return response, visibility


def webhook(env: dict[str, Any], owner: str, job_id: str) -> dict[str, Any]:
    item = env["ddb"].get_item(TableName=TABLE, Key={"owner_id": {"S": owner}, "job_id": {"S": job_id}})["Item"]
    return {k: v.get("S", v.get("N")) for k, v in item.get("webhook", {}).get("M", {}).items()}


def test_a_delivered_webhook_is_signed_and_recorded_on_the_job(notifier_stack):
    hook = notifier_stack["receiver"]((204, {}))
    owner, job_id = put_job(notifier_stack["ddb"], hook.url)
    response, visibility = deliver(notifier_stack, event_body(owner, job_id, hook.url))
    assert response == {"batchItemFailures": []} and visibility == []
    [(path, headers, body)] = hook.requests
    assert path == "/hook?x=1"
    assert readme_verifier()(SECRET, headers, body)
    assert json.loads(body) == json.loads(event_body(owner, job_id, hook.url))["detail"]  # the detail, as is
    assert headers["Webhook-Id"] == "evt-1" and headers["Content-Type"] == "application/json"
    state = webhook(notifier_stack, owner, job_id)
    assert (state["state"], state["attempts"], state["eventId"]) == ("delivered", "1", "evt-1")
    assert state["deliveredAt"] >= state["lastAttemptAt"]


def test_a_500_fails_the_record_and_sets_its_backoff_then_the_next_attempt_delivers(notifier_stack):
    hook = notifier_stack["receiver"]((500, {}), (200, {}))
    owner, job_id = put_job(notifier_stack["ddb"], hook.url)
    body = event_body(owner, job_id, hook.url)
    response, visibility = deliver(notifier_stack, body, receive_count=2)
    assert len(response["batchItemFailures"]) == 1
    assert len(visibility) == 1 and 10 <= visibility[0] <= 20  # base 10 s x 2^(2-1), jittered down to half
    failed = webhook(notifier_stack, owner, job_id)
    assert (failed["state"], failed["attempts"], failed["lastError"]) == ("pending", "1", "HTTP 500: hello")
    response, _ = deliver(notifier_stack, body, receive_count=3)
    assert response == {"batchItemFailures": []}
    done = webhook(notifier_stack, owner, job_id)
    assert (done["state"], done["attempts"], done["lastError"]) == ("delivered", "2", "HTTP 500: hello")


def test_a_redirect_is_not_followed_and_fails_the_attempt(notifier_stack):
    target = notifier_stack["receiver"]((200, {}))
    hook = notifier_stack["receiver"]((302, {"Location": target.url}))
    owner, job_id = put_job(notifier_stack["ddb"], hook.url)
    response, _ = deliver(notifier_stack, event_body(owner, job_id, hook.url))
    assert len(response["batchItemFailures"]) == 1
    assert len(hook.requests) == 1 and target.requests == []
    assert "redirect" in webhook(notifier_stack, owner, job_id)["lastError"]


def test_the_last_attempt_marks_the_webhook_failed_and_releases_the_message_to_the_dlq(notifier_stack):
    hook = notifier_stack["receiver"]((503, {}))
    owner, job_id = put_job(notifier_stack["ddb"], hook.url)
    response, visibility = deliver(notifier_stack, event_body(owner, job_id, hook.url), receive_count=MAX_ATTEMPTS)
    assert len(response["batchItemFailures"]) == 1
    assert visibility == [0]  # visible at once: its next receive moves it to the DLQ
    state = webhook(notifier_stack, owner, job_id)
    assert (state["state"], state["lastError"]) == ("failed", "HTTP 503: hello")


def test_a_duplicate_of_a_delivered_event_is_acknowledged_without_a_second_post(notifier_stack):
    hook = notifier_stack["receiver"]((200, {}))
    owner, job_id = put_job(notifier_stack["ddb"], hook.url)
    body = event_body(owner, job_id, hook.url)
    deliver(notifier_stack, body)
    response, _ = deliver(notifier_stack, body)
    assert response == {"batchItemFailures": []}
    assert len(hook.requests) == 1
    assert webhook(notifier_stack, owner, job_id)["state"] == "delivered"
    # an older event of the same job (a late duplicate from before a redrive) is not sent either
    deliver(notifier_stack, event_body(owner, job_id, hook.url, "evt-0", "2025-12-31T00:00:00.000Z"))
    assert len(hook.requests) == 1


def test_a_newer_event_of_the_job_starts_a_fresh_delivery_state(notifier_stack):
    hook = notifier_stack["receiver"]((200, {}))
    owner, job_id = put_job(notifier_stack["ddb"], hook.url)
    deliver(notifier_stack, event_body(owner, job_id, hook.url))
    deliver(notifier_stack, event_body(owner, job_id, hook.url, "evt-2", "2026-01-02T00:00:00.000Z"))
    assert len(hook.requests) == 2
    state = webhook(notifier_stack, owner, job_id)
    assert (state["eventId"], state["attempts"], state["state"]) == ("evt-2", "1", "delivered")


def test_a_url_that_now_leads_to_an_internal_address_is_refused_at_delivery(notifier_stack):
    url = "http://10.20.30.40/hook"  # accepted earlier (say, its name resolved elsewhere then)
    owner, job_id = put_job(notifier_stack["ddb"], url)
    response, visibility = deliver(notifier_stack, event_body(owner, job_id, url))
    assert response == {"batchItemFailures": []} and visibility == []  # not retried
    state = webhook(notifier_stack, owner, job_id)
    assert state["state"] == "failed" and state["lastError"].startswith("refused: ")


def test_no_record_is_created_for_a_job_that_is_gone(notifier_stack):
    hook = notifier_stack["receiver"]((200, {}))
    response, _ = deliver(notifier_stack, event_body("user-a", str(uuid.uuid4()), hook.url))
    assert response == {"batchItemFailures": []} and hook.requests == []
    assert notifier_stack["ddb"].scan(TableName=TABLE)["Items"] == []


def test_a_message_that_is_not_a_job_event_fails_its_record():
    with pytest.raises(Exception, match="Job Status Changed"):
        WebhookEvent.parse(json.dumps({"detail-type": "Other", "detail": {}}))
