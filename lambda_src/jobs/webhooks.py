"""Webhooks (README "Webhooks"): the rules of delivering a job's final status to its callback URL.

One delivery attempt per received message: check the URL again (DNS may have changed), sign
the body, POST it, record the outcome on the job (jobs.webhook_store). Delivery is
at-least-once: a failed attempt comes back after an exponential, jittered back-off; a message
whose event was already delivered is acknowledged without a second POST.

The body is the event's ``detail`` (the contract of ``Job Status Changed``), as compact JSON;
the envelope (account, region, rule) stays inside AWS. Signature, Stripe-style:
``Webhook-Signature: v1=<hex HMAC-SHA256 of "<Webhook-Timestamp>.<body>" under the secret>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from jobs.callbacks import CallbackTarget, Resolver, check_callback_url, system_resolver
from jobs.errors import PoisonMessage, ValidationError
from jobs.model import iso, utc_now
from jobs.settings import NotifierSettings

DETAIL_TYPE = "Job Status Changed"
FINAL_STATUSES = ("COMPLETE", "FAILED", "CANCELLED")
SIGNATURE_VERSION = "v1"
ERROR_MAX_CHARS = 500
USER_AGENT = "jobs-webhooks/1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``: what ``Webhook-Signature`` carries."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={mac}"


def signed_headers(event_id: str, timestamp: int, body: bytes, secret: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Webhook-Id": event_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signature(secret, timestamp, body),
    }


def backoff_seconds(receive_count: int, base: int, cap: int, rand: Callable[[], float] = random.random) -> int:
    """How long a failed attempt's message stays invisible: "equal jitter" over an exponential
    ceiling, ``base * 2^(attempt-1)`` capped at ``cap`` (half fixed, half random), so retries
    spread out and never bunch up after an outage."""
    ceiling = min(cap, base * 2 ** max(receive_count - 1, 0))
    return min(cap, math.ceil(ceiling / 2 + rand() * ceiling / 2))


@dataclass(frozen=True)
class WebhookEvent:
    """One ``Job Status Changed`` event with a callback URL, as the rule put it on the queue."""

    event_id: str
    owner_id: str
    job_id: str
    status: str
    changed_at: str
    callback_url: str
    detail: dict[str, Any]

    @classmethod
    def parse(cls, body: str) -> WebhookEvent:
        try:
            event = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise PoisonMessage(f"message body is not JSON: {exc}") from None
        detail = event.get("detail") if isinstance(event, dict) else None
        if not isinstance(detail, dict) or event.get("detail-type") != DETAIL_TYPE:
            raise PoisonMessage(f"message is not a {DETAIL_TYPE!r} event")
        fields = {}
        for name in ("event_id", "owner_id", "job_id", "status", "changed_at", "callback_url"):
            value = detail.get(name)
            if not isinstance(value, str) or not value:
                raise PoisonMessage(f"event detail lacks {name}")
            fields[name] = value
        return cls(detail=detail, **fields)

    def body(self) -> bytes:
        """What is POSTed (and signed): the event's detail, compact JSON, UTF-8."""
        return json.dumps(self.detail, separators=(",", ":"), ensure_ascii=False).encode()


class DeliveryFailed(Exception):
    """The receiver did not take the event (connection, timeout, non-2xx, redirect)."""


class Sender(Protocol):
    def __call__(self, target: CallbackTarget, body: bytes, headers: dict[str, str], timeout: float) -> int: ...


class WebhookLog(Protocol):
    """Where each attempt is recorded: the job's ``webhook`` map (jobs.webhook_store)."""

    def begin(self, event: WebhookEvent, now: str) -> bool: ...
    def delivered(self, event: WebhookEvent, now: str) -> None: ...
    def failed(self, event: WebhookEvent, error: str, now: str, final: bool) -> None: ...


class Outcome(StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"  # delivered already (or superseded, or the job is gone): acknowledged
    REFUSED = "refused"  # the URL leads where webhooks may not go now: failed, acknowledged
    RETRY = "retry"  # failed; comes back after ``retry_in`` seconds
    FAILED = "failed"  # failed on the last attempt: the message goes to the webhooks DLQ


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    error: str | None = None
    retry_in: int | None = None


class Notifier:
    """Delivers one received event, once per attempt, and records how it went."""

    def __init__(
        self,
        settings: NotifierSettings,
        log: WebhookLog,
        secret: Callable[[], str],
        sender: Sender,
        resolver: Resolver = system_resolver,
        clock: Callable[[], datetime] = utc_now,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.log = log
        self.secret = secret
        self.sender = sender
        self.resolver = resolver
        self.clock = clock
        self.rand = rand

    def deliver(self, event: WebhookEvent, receive_count: int) -> Attempt:
        secret = self.secret()  # first: if it cannot be read, nothing is recorded or sent
        now = self.clock()
        if not self.log.begin(event, iso(now)):
            return Attempt(Outcome.DUPLICATE)
        try:
            target = check_callback_url(event.callback_url, self.settings.allow_loopback, self.resolver)
        except ValidationError as refused:
            self.log.failed(event, f"refused: {refused.message}", iso(self.clock()), final=True)
            return Attempt(Outcome.REFUSED, refused.message)
        body = event.body()
        headers = signed_headers(event.event_id, int(now.timestamp()), body, secret)
        try:
            self.sender(target, body, headers, self.settings.timeout_seconds)
        except DeliveryFailed as exc:
            error = str(exc)[:ERROR_MAX_CHARS]
            final = receive_count >= self.settings.max_receive_count
            self.log.failed(event, error, iso(self.clock()), final)
            if final:
                return Attempt(Outcome.FAILED, error)
            wait = backoff_seconds(
                receive_count, self.settings.backoff_base_seconds, self.settings.backoff_cap_seconds, self.rand
            )
            return Attempt(Outcome.RETRY, error, wait)
        self.log.delivered(event, iso(self.clock()))
        return Attempt(Outcome.DELIVERED)
