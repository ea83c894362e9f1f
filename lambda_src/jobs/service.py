"""Domain logic: the rules of submitting, reading, listing, cancelling and processing jobs.

Called by the thin handlers; talks to AWS only through ``jobs.store``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from jobs.actions import ActionInput, action_formats, run_action
from jobs.errors import (
    Busy,
    Conflict,
    EnqueueFailed,
    Forbidden,
    IdempotencyKeyReused,
    JobNotFound,
    PoisonMessage,
    TooManyRequests,
)
from jobs.model import Job, NewJob, PageToken, Priority, Status, iso, new_job_id, utc_now
from jobs.quotas import Limits, Usage, admit
from jobs.settings import Settings
from jobs.store import (
    IdempotencyClaim,
    IdempotencyKeyTaken,
    JobQueue,
    JobTable,
    QuotaChanged,
    ResultBucket,
    TransactionCancelled,
)

log = logging.getLogger(__name__)

ERROR_MAX_CHARS = 1000
# Charges written against a counter that changed since it was read, before giving up (each
# retry follows another request's write to the same counter).
QUOTA_ATTEMPTS = 5


@dataclass(frozen=True)
class Submitted:
    job: Job
    replayed: bool  # True when an Idempotency-Key returned an earlier job
    usage: Usage  # the caller's quota counter after this request (as far as this request knows)


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_token: str | None


class JobService:
    """What the API may do with a caller's jobs."""

    def __init__(self, settings: Settings, table: JobTable, results: ResultBucket, queue: JobQueue) -> None:
        self.settings = settings
        self.table = table
        self.results = results
        self.queue = queue

    def submit(
        self,
        owner_id: str,
        body: str | None,
        idempotency_key: str | None,
        limits: Limits | None = None,
        groups: Collection[str] = (),
    ) -> Submitted:
        """Validate, charge the caller's quota and record the job (one transaction), then queue it.

        ``limits``: the caller's (their tier's); the environment's defaults if not given.
        ``groups``: the caller's Cognito groups (who may ask for ``high`` priority).
        """
        request = NewJob.from_body(body, action_formats())
        self.check_priority(request.priority, groups)
        limits = limits or self.settings.quota_defaults
        now = utc_now()
        job = self._new_job(owner_id, request, now)
        claim = IdempotencyClaim(owner_id, idempotency_key, request.fingerprint()) if idempotency_key else None
        usage = self.table.usage(owner_id)
        for _ in range(QUOTA_ATTEMPTS):
            now_ms = int(utc_now().timestamp() * 1000)
            try:
                charge = admit(owner_id, usage, limits, now_ms)
            except TooManyRequests:
                # A retry of a request that was accepted is answered as such, limits or not.
                record = self.table.get_idempotency(claim) if claim is not None else None
                if record is not None and record.expires_at >= int(now.timestamp()):
                    return self._replay(owner_id, claim, IdempotencyKeyTaken(record), usage)
                raise
            try:
                self.table.create(job, claim, int(now.timestamp()), charge)
            except IdempotencyKeyTaken as taken:
                return self._replay(owner_id, claim, taken, usage)
            except QuotaChanged as changed:
                usage = changed.usage  # another request wrote the counter since it was read
                continue
            except TransactionCancelled as cancelled:
                if not cancelled.contended:
                    raise
                raise Busy("your concurrent requests conflicted too often; retry shortly") from cancelled
            break
        else:
            raise Busy("your concurrent requests conflicted too often; retry shortly")
        usage = usage.after_charge(limits, now_ms)
        try:
            self.queue.send(job)
        except (ClientError, BotoCoreError) as exc:
            self._abandon(job, claim, exc)
            raise EnqueueFailed("the job could not be queued; nothing was submitted, please retry") from exc
        return Submitted(job, replayed=False, usage=usage)

    def check_priority(self, priority: Priority, groups: Collection[str]) -> None:
        """``high`` is for members of the configured group only (403 ``priority_not_allowed``)."""
        if priority is not Priority.HIGH:
            return
        group = self.settings.high_priority_group
        if group is None:
            raise Forbidden("priority high is not available on this deployment", "priority_not_allowed")
        if group not in groups:
            raise Forbidden(
                f"priority high is for members of the group {group!r}; submit with normal or low",
                "priority_not_allowed",
            )

    def _new_job(self, owner_id: str, request: NewJob, now: datetime) -> Job:
        """The record of a validated request, as it is first written."""
        return Job(
            owner_id=owner_id,
            job_id=new_job_id(int(now.timestamp() * 1000)),
            name=request.name,
            action=request.action,
            context1=request.context1,
            context2=request.context2,
            format=request.format,
            priority=request.priority,
            status=Status.PENDING,
            created_at=iso(now),
            updated_at=iso(now),
            expires_at=int((now + timedelta(days=self.settings.retention_days)).timestamp()),
        )

    def quota(self, owner_id: str) -> Usage:
        """The caller's quota counter: unfinished jobs, and the submission bucket."""
        return self.table.usage(owner_id)

    def _replay(
        self, owner_id: str, claim: IdempotencyClaim | None, taken: IdempotencyKeyTaken, usage: Usage
    ) -> Submitted:
        assert claim is not None
        record = taken.record
        if record is None:
            # The claim vanished between our write and our read (released after a failed enqueue).
            raise Conflict("a request with this Idempotency-Key is in flight; retry shortly", "idempotency_in_flight")
        if record.fingerprint != claim.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request body in the last 24 hours"
            )
        original = self.table.get(owner_id, record.job_id)
        if original is None:
            raise Conflict("a request with this Idempotency-Key is in flight; retry shortly", "idempotency_in_flight")
        return Submitted(original, replayed=True, usage=usage)

    def _abandon(self, job: Job, claim: IdempotencyClaim | None, cause: Exception) -> None:
        """The record exists but nothing will process it: mark it FAILED and free the key."""
        now = utc_now()
        try:
            self.table.fail(
                job.owner_id, job.job_id, None, "the job could not be queued", iso(now), int(now.timestamp())
            )
            if claim is not None:
                self.table.release_idempotency(claim, job.job_id)
        except (ClientError, BotoCoreError):
            log.exception("could not mark unqueued job %s FAILED after: %s", job.job_id, cause)

    def get(self, owner_id: str, job_id: str) -> tuple[Job, str | None]:
        job = self.table.get(owner_id, job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        url = None
        if job.status is Status.COMPLETE and job.s3_key:
            url = self.results.presign(
                job.s3_key, self.settings.result_url_ttl_seconds, job.result_file_name(), job.format.content_type
            )
        return job, url

    def list(self, owner_id: str, status: Status | None, limit: int, token: str | None) -> Page:
        start = PageToken.decode(token, owner_id, status)
        jobs, more = self.table.list(owner_id, status, limit, start.last_job_id if start else None)
        next_token = PageToken(jobs[-1].job_id, status).encode(owner_id) if more and jobs else None
        return Page(jobs, next_token)

    def cancel(self, owner_id: str, job_id: str) -> Job:
        try:
            cancelled = self.table.cancel(owner_id, job_id, iso(utc_now()))
        except TransactionCancelled as cancelled:
            if not cancelled.contended:
                raise
            raise Busy("the job changed concurrently too often; retry shortly") from cancelled
        if cancelled is not None:
            return cancelled
        current = self.table.get(owner_id, job_id)
        if current is None:
            raise JobNotFound(f"no job {job_id}")
        raise Conflict(
            f"job {job_id} is {current.status.value}; only a PENDING job can be cancelled", "not_cancellable"
        )


# ------------------------------------------------------------------------------------------
# Worker side
# ------------------------------------------------------------------------------------------


class Outcome:
    COMPLETED = "completed"
    SKIPPED = "skipped"  # finished already, cancelled, or gone: acknowledged, nothing run
    FAILED = "failed"  # final attempt: the job is FAILED, the message goes to the DLQ


class AlreadyHandled(Exception):
    """The job is finished, cancelled or gone: nothing to run."""

    def __init__(self, job: Job | None) -> None:
        super().__init__("already handled")
        self.job = job


class RetryLater(Exception):
    """The message must come back later (another attempt holds the job, or the attempt failed)."""


@dataclass(frozen=True)
class JobMessage:
    owner_id: str
    job_id: str

    @classmethod
    def parse(cls, body: str) -> JobMessage:
        try:
            data = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise PoisonMessage(f"message body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PoisonMessage("message body is not a JSON object")
        owner, job_id = data.get("owner_id"), data.get("job_id")
        if not isinstance(owner, str) or not owner or not isinstance(job_id, str):
            raise PoisonMessage("message lacks owner_id/job_id")
        try:
            job_id = str(uuid.UUID(job_id))
        except ValueError:
            raise PoisonMessage(f"message job_id is not a UUID: {job_id[:64]!r}") from None
        return cls(owner, job_id)


@dataclass(frozen=True)
class ProcessResult:
    outcome: str
    job: Job | None = None
    duration_ms: float = 0.0


class JobProcessor:
    """Runs one delivered job at most once to completion, whatever the delivery pattern."""

    def __init__(self, settings: Settings, table: JobTable, results: ResultBucket) -> None:
        self.settings = settings
        self.table = table
        self.results = results

    def process(self, message: JobMessage, receive_count: int, lease_seconds: float) -> ProcessResult:
        final_attempt = receive_count >= self.settings.max_receive_count
        lease_owner = uuid.uuid4().hex
        now = utc_now()
        try:
            job = self.table.claim(
                message.owner_id,
                message.job_id,
                lease_owner,
                int(now.timestamp() + max(lease_seconds, 1.0)) + 1,
                iso(now),
                int(now.timestamp()),
            )
        except (ClientError, BotoCoreError) as exc:
            if final_attempt:
                self._fail(message, None, f"could not start the job: {exc}")
                return ProcessResult(Outcome.FAILED)
            raise
        if job is None:
            try:
                job = self._not_claimed(message, lease_owner)
            except AlreadyHandled as handled:
                return ProcessResult(Outcome.SKIPPED, handled.job)
        started = time.monotonic()
        key = job.result_key()
        try:
            # A taken-over job (attempt > 1) may have died after writing its result and before
            # marking COMPLETE: a complete result is then already there (S3 PUTs are atomic),
            # so it is not computed and written again.
            if job.attempts <= 1 or not self.results.exists(key):
                self.results.put(key, run_action(_action_input(job)), job.format.content_type)
            done = self.table.complete(job.owner_id, job.job_id, lease_owner, key, iso(utc_now()), claimed=job)
        except Exception as exc:
            error = _describe(exc)
            if final_attempt:
                self._fail(message, lease_owner, error)
                return ProcessResult(Outcome.FAILED, job)
            self._release(job, lease_owner, error)
            raise RetryLater(f"job {job.job_id} attempt {receive_count} failed: {error}") from exc
        if done is None:
            done = self.table.get(job.owner_id, job.job_id)
            if done is None or done.status is not Status.COMPLETE or done.s3_key != key:
                # Our lease ran out and another attempt took the job over: it will finish it.
                raise RetryLater(f"job {job.job_id}: lease lost before completion")
            # else: our completion was applied but its answer was lost (the client retried).
        return ProcessResult(Outcome.COMPLETED, done, (time.monotonic() - started) * 1000)

    def _not_claimed(self, message: JobMessage, lease_owner: str) -> Job:
        """Why the claim did not apply; the job if it is ours after all."""
        current = self.table.get(message.owner_id, message.job_id)
        if current is not None and current.status is Status.PROCESSING and current.lease_owner == lease_owner:
            return current  # our claim was applied but its answer was lost (the client retried)
        if current is None or current.status.terminal:
            raise AlreadyHandled(current)
        # PROCESSING with a live lease: a concurrent duplicate delivery. Come back later;
        # by then it is finished (acknowledged then) or its lease ran out (taken over then).
        raise RetryLater(f"job {message.job_id} is being processed by another attempt")

    def _fail(self, message: JobMessage, lease_owner: str | None, error: str) -> None:
        now = utc_now()
        self.table.fail(message.owner_id, message.job_id, lease_owner, error, iso(now), int(now.timestamp()))

    def _release(self, job: Job, lease_owner: str, error: str) -> None:
        try:
            self.table.release(job.owner_id, job.job_id, lease_owner, error, iso(utc_now()))
        except (ClientError, BotoCoreError):
            log.warning("could not release the lease of job %s; it is retried once the lease expires", job.job_id)


def _action_input(job: Job) -> ActionInput:
    return ActionInput(job.job_id, job.name, job.action, job.context1, job.context2, job.created_at, job.format)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if not str(exc).startswith(type(exc).__name__) else str(exc)
    return text[:ERROR_MAX_CHARS]
