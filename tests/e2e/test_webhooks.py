"""Signed webhooks per job (README "Webhooks"), end to end: a receiver on loopback started by
the test, jobs submitted through the API with a ``callback_url``, the notifier run by the local
runtime from the webhooks queue that the EventBridge rule fills.

The job's ``Job Status Changed`` events come from the table's stream through the publisher,
as on AWS: nothing here puts them on the bus.

The e2e overrides (tests/e2e/conftest.py E2E_VARIABLES) keep this short: 1 s per socket
operation, back-off 1 s then 2 s, 4 attempts before the webhooks DLQ.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import E2E_VARIABLES
from tests.e2e.support import User, queue_depth, wait_for
from tooling import loopback
from tooling.local_stack import LocalStack

ATTEMPTS = int(E2E_VARIABLES["webhook_max_receive_count"])
REPLAY_WINDOW_SECONDS = 300


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int  # the status the receiver answered (0: it never answered)


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1: answers the scripted statuses in turn, then ``then``
    (None: never answers, holding the connection until the test ends)."""

    script: list[int] = field(default_factory=list)
    then: int | None = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def next_status(self) -> int | None:
        with self.lock:
            answered = len(self.received)
            return self.script[answered] if answered < len(self.script) else self.then


@pytest.fixture
def receiver() -> Iterator[Any]:
    made: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def make(script: list[int] | None = None, then: int | None = 200) -> Receiver:
        state = Receiver(list(script or []), then)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = state.next_status()
                with state.lock:
                    state.received.append(Received(dict(self.headers.items()), body, status or 0))
                if status is None:
                    state.stop.wait(30)  # never answers (the notifier times out first)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        server = loopback.serve(Handler)
        state.url = f"{loopback.base_url(server)}/hooks/jobs?source=e2e"
        made.append((server, state))
        return state

    yield make
    for server, state in made:
        state.stop.set()
        loopback.stop(server)


def signing_secret(stack: LocalStack) -> str:
    parameter = stack.client("ssm").get_parameter(Name=stack.outputs["webhook_secret_parameter"], WithDecryption=True)
    return str(parameter["Parameter"]["Value"])


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (README "Webhooks"), written independently of the notifier's code."""
    timestamp = headers["Webhook-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    scheme, _, given = headers["Webhook-Signature"].partition("=")
    return scheme == "v1" and hmac.compare_digest(expected, given) and abs(time.time() - int(timestamp)) < 300


def put_event(stack: LocalStack, detail: dict[str, Any]) -> None:
    answer = stack.client("events").put_events(
        Entries=[
            {
                "Source": "jobs.jobs",
                "DetailType": "Job Status Changed",
                "Detail": json.dumps(detail),
                "EventBusName": stack.outputs["event_bus_name"],
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0, answer


def submit(user: User, callback_url: str) -> str:
    resp = user.api.post_job(
        {"name": "hook", "action": "demo", "context1": "a", "context2": "b", "callback_url": callback_url}
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["job_id"])


def webhook_state(user: User, job_id: str, state: str) -> dict[str, Any] | None:
    webhook = user.api.job(job_id).get("webhook") or {}
    return webhook if webhook.get("state") == state else None


def test_a_signed_webhook_reaches_the_receiver_and_the_job_shows_delivered(stack, make_user, receiver):
    user, hook = make_user(), receiver()
    job_id = submit(user, hook.url)
    assert user.api.job(job_id)["callback_url"] == hook.url
    user.api.wait_terminal(job_id)

    webhook = wait_for(lambda: webhook_state(user, job_id, "delivered"), 60, "the webhook to be delivered")
    [delivery] = hook.received
    assert verify(signing_secret(stack), delivery.headers, delivery.body)
    assert not verify("another-secret", delivery.headers, delivery.body)
    assert delivery.headers["Content-Type"] == "application/json"
    event = json.loads(delivery.body)
    assert (event["job_id"], event["status"], event["callback_url"]) == (job_id, "COMPLETE", hook.url)
    assert event["result_key"].endswith(f"{job_id}.txt")
    assert delivery.headers["Webhook-Id"] == event["event_id"]
    assert webhook["attempts"] == 1 and webhook["deliveredAt"] >= webhook["lastAttemptAt"]


def test_a_receiver_failing_three_times_gets_exactly_one_successful_delivery(stack, make_user, receiver):
    user, hook = make_user(), receiver(script=[500, 500, 500], then=200)
    job_id = submit(user, hook.url)
    user.api.wait_terminal(job_id)

    webhook = wait_for(lambda: webhook_state(user, job_id, "delivered"), 90, "the 4th attempt to succeed")
    assert webhook["attempts"] == 4
    assert webhook["lastError"].startswith("HTTP 500")
    sqs = stack.client("sqs")
    wait_for(lambda: queue_depth(sqs, stack.outputs["webhook_queue_url"]) == (0, 0), 30, "the webhooks queue to drain")
    assert [r.answered for r in hook.received] == [500, 500, 500, 200]
    assert len({r.headers["Webhook-Id"] for r in hook.received}) == 1  # one event, retried

    # A duplicate of the delivered event (EventBridge and the stream are at-least-once) is
    # acknowledged without a second POST.
    event = json.loads(hook.received[-1].body)
    put_event(stack, event)
    wait_for(lambda: queue_depth(sqs, stack.outputs["webhook_queue_url"]) == (0, 0), 30, "the duplicate's message")
    assert len(hook.received) == 4
    assert webhook_state(user, job_id, "delivered")["attempts"] == 4  # type: ignore[index]


def test_a_receiver_that_never_answers_ends_in_the_webhooks_dlq(stack, make_user, receiver):
    user, hook = make_user(), receiver(then=None)
    job_id = submit(user, hook.url)
    user.api.wait_terminal(job_id)

    webhook = wait_for(lambda: webhook_state(user, job_id, "failed"), 90, "the last attempt to fail")
    assert webhook["attempts"] == ATTEMPTS
    assert "timed out" in webhook["lastError"].lower()
    assert len(hook.received) == ATTEMPTS
    sqs, dlq = stack.client("sqs"), stack.outputs["webhook_dlq_url"]

    def dead_letter() -> dict[str, Any] | None:
        for message in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            event = json.loads(message["Body"])
            if event["detail"]["job_id"] == job_id:
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                return dict(event)
            sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        return None

    event = wait_for(dead_letter, 30, "the event in the webhooks DLQ")
    assert event["detail-type"] == "Job Status Changed" and event["detail"]["status"] == "COMPLETE"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://[::ffff:169.254.169.254]/latest/meta-data/",
        "https://10.0.0.7/hook",
        "https://user:secret@example.com/hook",
    ],
)
def test_a_callback_url_to_an_internal_address_is_refused_at_submit(stack, make_user, url):
    user = make_user()
    resp = user.api.post_job({"name": "ssrf", "action": "demo", "context1": "a", "context2": "b", "callback_url": url})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_callback_url"
    batch = user.api.post_batch(
        [
            {"name": "fine", "action": "demo", "context1": "a", "context2": "b"},
            {"name": "ssrf", "action": "demo", "context1": "a", "context2": "b", "callback_url": url},
        ]
    )
    assert batch.status_code == 400, batch.text
    assert [(i["index"], i["error"]) for i in batch.json()["items"]] == [(1, "invalid_callback_url")]
    listing = user.api.list_jobs()
    assert listing.status_code == 200 and listing.json() == []  # nothing was written
