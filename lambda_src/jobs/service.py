"""Domain logic: the rules of submitting, reading, listing, cancelling and processing jobs.

Called by the thin handlers; talks to AWS only through ``jobs.store``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from jobs.actions import ActionInput, action_formats, check_inputs, run_action
from jobs.callbacks import Resolver, check_callback_url, system_resolver
from jobs.errors import (
    Busy,
    Conflict,
    EnqueueFailed,
    Forbidden,
    IdempotencyKeyReused,
    InvalidBatch,
    JobNotFound,
    PoisonMessage,
    TooManyRequests,
    ValidationError,
)
from jobs.model import (
    Job,
    NewJob,
    PageToken,
    Priority,
    Status,
    batch_fingerprint,
    iso,
    new_job_id,
    parse_batch,
    parse_iso,
    utc_now,
)
from jobs.progress import CancelRequested, LeaseLost, OutOfTime, Progress, ProgressReporter
from jobs.quotas import Charge, Limits, Usage, admit, largest_batch
from jobs.scheduling import delay_seconds, needs_schedule, schedule_name
from jobs.settings import Settings
from jobs.store import (
    IdempotencyClaim,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    JobQueue,
    JobScheduler,
    JobTable,
    QuotaChanged,
    ResultBucket,
    ScheduleNotFound,
    TransactionCancelled,
)

log = logging.getLogger(__name__)

ERROR_MAX_CHARS = 1000
# Charges written against a counter that changed since it was read, before giving up (each
# retry follows another request's write to the same counter).
QUOTA_ATTEMPTS = 5

T = TypeVar("T")


class NoScheduler(Exception):
    """A job needs a schedule and the service was built without a scheduler."""


@dataclass(frozen=True)
class Submitted:
    job: Job
    replayed: bool  # True when an Idempotency-Key returned an earlier job
    usage: Usage  # the caller's quota counter after this request (as far as this request knows)


@dataclass(frozen=True)
class BatchItem:
    """One job of a batch, in the answer: its id and status (FAILED with why, if it could not be
    recorded or queued)."""

    job_id: str
    status: Status
    error: str | None = None

    def view(self) -> dict[str, str]:
        view = {"job_id": self.job_id, "status": self.status.value}
        if self.status is Status.FAILED and self.error:
            view["error"] = self.error
        return view


@dataclass(frozen=True)
class SubmittedBatch:
    items: list[BatchItem]  # in the order of the request's jobs
    replayed: bool
    usage: Usage


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_token: str | None


class JobService:
    """What the API may do with a caller's jobs."""

    def __init__(
        self,
        settings: Settings,
        table: JobTable,
        results: ResultBucket,
        queue: JobQueue,
        scheduler: JobScheduler | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.settings = settings
        self.table = table
        self.results = results
        self.queue = queue
        self.scheduler = scheduler  # None: a job that needs a schedule cannot be submitted (503)
        self.resolver = resolver  # where callback URLs' hosts lead (jobs.callbacks)

    def check_callback(self, request: NewJob) -> None:
        """A job's callback URL must lead to an address a webhook may reach (400 otherwise)."""
        if request.callback_url is not None:
            check_callback_url(request.callback_url, self.settings.webhook_allow_loopback, self.resolver)

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
        now = utc_now()
        request = NewJob.from_body(body, action_formats(), now, self.settings.max_schedule_days, check_inputs)
        self.check_callback(request)
        self.check_priority(request.priority, groups)
        limits = limits or self.settings.quota_defaults
        job = self._new_job(owner_id, request, now)
        claim = IdempotencyClaim(owner_id, idempotency_key, request.fingerprint()) if idempotency_key else None
        written, usage = self._admit(
            owner_id, claim, limits, 1, lambda charge: self.table.create(job, claim, int(now.timestamp()), charge)
        )
        if isinstance(written, IdempotencyKeyTaken):
            return self._replay(owner_id, claim, written, usage)
        try:
            self._dispatch(job)
        except (ClientError, BotoCoreError, NoScheduler) as exc:
            self._abandon(job, claim, exc)
            raise EnqueueFailed(f"{_undispatched(job)}; nothing was submitted, please retry") from exc
        return Submitted(job, replayed=False, usage=usage)

    def _dispatch(self, job: Job) -> None:
        """Get the recorded job's message to the queue: now, after a delay, or by a schedule."""
        if job.run_at is None:
            self.queue.send(job)
            return
        due = parse_iso(job.run_at)
        if job.schedule_name is None:
            self.queue.send(job, delay_seconds=delay_seconds(due, utc_now()))
            return
        if self.scheduler is None:
            raise NoScheduler("this service has no scheduler")
        self.scheduler.create(job, job.schedule_name, due, self.settings.target_queue_arn(job.priority))

    def _new_job(self, owner_id: str, request: NewJob, now: datetime) -> Job:
        """The record of a validated request, as it is first written.

        A scheduled job is kept ``job_retention_days`` after its due time, not its creation.
        """
        job_id = new_job_id(int(now.timestamp() * 1000))
        status, run_at, schedule, kept_from = Status.PENDING, None, None, now
        if request.schedule is not None:
            due = request.schedule.due
            status, run_at, kept_from = Status.SCHEDULED, iso(due), due
            if needs_schedule(due, now, self.settings.schedule_delay_threshold_seconds):
                schedule = schedule_name(job_id)
        return Job(
            owner_id=owner_id,
            job_id=job_id,
            name=request.name,
            action=request.action,
            context1=request.context1,
            context2=request.context2,
            format=request.format,
            priority=request.priority,
            status=status,
            created_at=iso(now),
            updated_at=iso(now),
            expires_at=int((kept_from + timedelta(days=self.settings.retention_days)).timestamp()),
            run_at=run_at,
            schedule_name=schedule,
            callback_url=request.callback_url,
        )

    def _admit(
        self,
        owner_id: str,
        claim: IdempotencyClaim | None,
        limits: Limits,
        count: int,
        write: Callable[[Charge], T],
    ) -> tuple[T | IdempotencyKeyTaken, Usage]:
        """Charge ``count`` jobs to the caller's quota with ``write`` (which writes the charge
        with the records or ahead of them): what it returned and the counter after it; or the
        earlier request an Idempotency-Key names (a replay: limits do not apply to it) and the
        counter as last read.

        The counter is read, the charge decided on that read, and written on condition that the
        counter is still as read; when another request wrote it in between, decided again.
        """
        usage = self.table.usage(owner_id)
        for _ in range(QUOTA_ATTEMPTS):
            now_ms = int(utc_now().timestamp() * 1000)
            try:
                charge = admit(owner_id, usage, limits, now_ms, count)
            except TooManyRequests:
                # A retry of a request that was accepted is answered as such, limits or not.
                record = self.table.get_idempotency(claim) if claim is not None else None
                if record is not None and record.expires_at >= now_ms // 1000:
                    return IdempotencyKeyTaken(record), usage
                raise
            try:
                written = write(charge)
            except IdempotencyKeyTaken as taken:
                return taken, usage
            except QuotaChanged as changed:
                usage = changed.usage  # another request wrote the counter since it was read
                continue
            except TransactionCancelled as cancelled:
                if not cancelled.contended:
                    raise
                raise Busy("your concurrent requests conflicted too often; retry shortly") from cancelled
            return written, usage.after_charge(limits, now_ms, count)
        raise Busy("your concurrent requests conflicted too often; retry shortly")

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

    def submit_batch(
        self,
        owner_id: str,
        body: str | None,
        idempotency_key: str | None,
        limits: Limits | None = None,
        groups: Collection[str] = (),
    ) -> SubmittedBatch:
        """Validate every item (one 400 lists all invalid ones), charge the caller's quota for
        all of them, record them, then queue them. An item that cannot be recorded or queued
        ends FAILED in its slot of the answer (its quota slot given back); if none could be
        queued, it is an EnqueueFailed like a single job's."""
        now = utc_now()
        requests = parse_batch(body, action_formats(), now, self.settings.max_schedule_days, check_inputs)
        bad_callbacks: list[dict[str, object]] = []
        for index, request in enumerate(requests):
            try:
                self.check_callback(request)
            except ValidationError as exc:
                bad_callbacks.append({"index": index, "error": exc.code, "message": exc.message})
        if bad_callbacks:
            raise InvalidBatch(
                f"{len(bad_callbacks)} of {len(requests)} jobs are invalid (see items); nothing was submitted",
                bad_callbacks,
            )
        for index, request in enumerate(requests):
            try:
                self.check_priority(request.priority, groups)
            except Forbidden as refused:
                raise Forbidden(f"job {index} of the batch: {refused.message}", refused.code) from None
        limits = limits or self.settings.quota_defaults
        if len(requests) > largest_batch(limits):
            raise ValidationError(
                f"this batch holds {len(requests)} jobs; your limits (at most {limits.max_active_jobs} unfinished "
                f"jobs, {limits.submit_burst} submissions at once) admit at most {largest_batch(limits)} in one "
                "request: split it",
                "batch_too_large",
            )
        jobs = [self._new_job(owner_id, request, now) for request in requests]
        claim = IdempotencyClaim(owner_id, idempotency_key, batch_fingerprint(requests)) if idempotency_key else None
        unrecorded, usage = self._admit(
            owner_id,
            claim,
            limits,
            len(jobs),
            lambda charge: self.table.create_batch(jobs, claim, int(now.timestamp()), charge),
        )
        if isinstance(unrecorded, IdempotencyKeyTaken):
            return self._replay_batch(owner_id, claim, unrecorded, usage)
        failed = {job.job_id: "the job could not be recorded" for job in unrecorded}
        if unrecorded:
            log.error("%d of %d batch jobs could not be recorded", len(unrecorded), len(jobs))
        recorded = [job for job in jobs if job.job_id not in failed]
        unsent = self._dispatch_all(recorded)
        for job in recorded:
            if job.job_id in unsent:
                log.error("batch job %s: %s: %s", job.job_id, _undispatched(job), unsent[job.job_id])
                self._abandon(job, None, RuntimeError(unsent[job.job_id]))
                failed[job.job_id] = _undispatched(job)
        if len(failed) == len(jobs):
            if claim is not None:
                self._release_claim(claim, jobs[0].job_id)
            raise EnqueueFailed("no job of the batch could be queued; nothing was submitted, please retry")
        items = [
            BatchItem(job.job_id, Status.FAILED if job.job_id in failed else job.status, failed.get(job.job_id))
            for job in jobs
        ]
        return SubmittedBatch(items, replayed=False, usage=usage)

    def _dispatch_all(self, jobs: list[Job]) -> dict[str, str]:
        """:meth:`_dispatch` for a batch's recorded jobs: the queued ones (now or after a delay)
        by SendMessageBatch, the ones that need a schedule one CreateSchedule each; job id ->
        why, for those that could not be dispatched."""
        now = utc_now()
        queued = [job for job in jobs if job.schedule_name is None]
        delays = {job.job_id: delay_seconds(parse_iso(job.run_at), now) for job in queued if job.run_at}
        unsent = self.queue.send_all(queued, delays) if queued else {}
        for job in jobs:
            if job.schedule_name is not None:
                try:
                    self._dispatch(job)
                except (ClientError, BotoCoreError, NoScheduler) as exc:
                    unsent[job.job_id] = _describe(exc)
        return unsent

    def _replay_batch(
        self, owner_id: str, claim: IdempotencyClaim | None, taken: IdempotencyKeyTaken, usage: Usage
    ) -> SubmittedBatch:
        """The answer to a batch that an Idempotency-Key already submitted: its jobs as they are now."""
        record = _replayed_record(claim, taken)
        job_ids = list(record.job_ids or (record.job_id,))
        current = self.table.get_many(owner_id, job_ids)
        items = [
            BatchItem(job_id, current[job_id].status, current[job_id].error)
            if job_id in current
            else BatchItem(job_id, Status.FAILED, "the job could not be recorded")
            for job_id in job_ids
        ]
        return SubmittedBatch(items, replayed=True, usage=usage)

    def _release_claim(self, claim: IdempotencyClaim, job_id: str) -> None:
        try:
            self.table.release_idempotency(claim, job_id)
        except (ClientError, BotoCoreError):
            log.exception("could not release the Idempotency-Key of a batch that was not queued")

    def quota(self, owner_id: str) -> Usage:
        """The caller's quota counter: unfinished jobs, and the submission bucket."""
        return self.table.usage(owner_id)

    def _replay(
        self, owner_id: str, claim: IdempotencyClaim | None, taken: IdempotencyKeyTaken, usage: Usage
    ) -> Submitted:
        record = _replayed_record(claim, taken)
        original = self.table.get(owner_id, record.job_id)
        if original is None:
            raise Conflict("a request with this Idempotency-Key is in flight; retry shortly", "idempotency_in_flight")
        return Submitted(original, replayed=True, usage=usage)

    def _abandon(self, job: Job, claim: IdempotencyClaim | None, cause: Exception) -> None:
        """The record exists but nothing will process it: mark it FAILED and free the key."""
        now = utc_now()
        try:
            self.table.fail(job.owner_id, job.job_id, None, _undispatched(job), iso(now), int(now.timestamp()))
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
        """PENDING or SCHEDULED: CANCELLED at once (the record returned is CANCELLED).
        PROCESSING: a cancel request is recorded, and the worker stops the job at its next
        progress write (the record returned is still PROCESSING, with ``cancel_requested_at``).
        A final job: 409 ``not_cancellable``."""
        try:
            cancelled = self.table.cancel(owner_id, job_id, iso(utc_now()))
        except TransactionCancelled as cancelled:
            if not cancelled.contended:
                raise
            raise Busy("the job changed concurrently too often; retry shortly") from cancelled
        if cancelled is not None:
            if cancelled.schedule_name:
                self._unschedule(cancelled)
            return cancelled
        requested = self.table.request_cancel(owner_id, job_id, iso(utc_now()))
        if requested is not None:
            return requested
        current = self.table.get(owner_id, job_id)
        if current is None:
            raise JobNotFound(f"no job {job_id}")
        raise Conflict(
            f"job {job_id} is {current.status.value}, which is final; only a PENDING or SCHEDULED job can be "
            "cancelled (a PROCESSING one is asked to stop)",
            "not_cancellable",
        )

    def _unschedule(self, job: Job) -> None:
        """Delete a cancelled job's schedule. Not surfaced when it fails: a message it still
        sends is acknowledged without running the job (it is CANCELLED)."""
        assert job.schedule_name is not None
        if self.scheduler is None:
            log.warning("no scheduler configured: schedule %s of cancelled job %s stays", job.schedule_name, job.job_id)
            return
        try:
            self.scheduler.delete(job.schedule_name)
        except ScheduleNotFound:
            pass  # it fired already (its message is acknowledged unrun), or was deleted
        except (ClientError, BotoCoreError):
            log.exception("could not delete schedule %s of cancelled job %s", job.schedule_name, job.job_id)


def _undispatched(job: Job) -> str:
    """Why a recorded job will not run: its message could not be queued, or its schedule made."""
    return f"the job could not be {'scheduled' if job.schedule_name else 'queued'}"


def _replayed_record(claim: IdempotencyClaim | None, taken: IdempotencyKeyTaken) -> IdempotencyRecord:
    """The earlier request an Idempotency-Key names, if this request is a replay of it: 409
    while its claim is gone (released after a failed enqueue, between our write and our read),
    422 when the key came with another body."""
    assert claim is not None
    record = taken.record
    if record is None:
        raise Conflict("a request with this Idempotency-Key is in flight; retry shortly", "idempotency_in_flight")
    if record.fingerprint != claim.fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body in the last 24 hours"
        )
    return record


# ------------------------------------------------------------------------------------------
# Worker side
# ------------------------------------------------------------------------------------------


class Outcome:
    COMPLETED = "completed"
    SKIPPED = "skipped"  # finished already, cancelled, or gone: acknowledged, nothing run
    CANCELLED = "cancelled"  # a cancel request stopped it (or it was claimed with one): CANCELLED, acknowledged
    FAILED = "failed"  # final attempt: the job is FAILED, the message goes to the DLQ


class AlreadyHandled(Exception):
    """The job is finished, cancelled or gone: nothing to run."""

    def __init__(self, job: Job | None) -> None:
        super().__init__("already handled")
        self.job = job


class RetryLater(Exception):
    """The message must come back later (another attempt holds the job, or the attempt failed)."""


# A re-queued message carries the receives its job's earlier messages used (jobs.store.
# JobQueue.requeue); more than this is not a count the worker ever writes.
MAX_CARRIED_RECEIVES = 1000


@dataclass(frozen=True)
class JobMessage:
    owner_id: str
    job_id: str
    # Receives used by this job's earlier messages (0 unless the worker sent one back untouched
    # as a new message): the job's attempt = these + this message's ApproximateReceiveCount.
    receives: int = 0

    def attempt(self, receive_count: int) -> int:
        """Which attempt of the job this delivery is."""
        return self.receives + receive_count

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
        receives = data.get("receives", 0)
        if type(receives) is not int or not 0 <= receives <= MAX_CARRIED_RECEIVES:
            raise PoisonMessage(f"message receives is not an integer 0-{MAX_CARRIED_RECEIVES}: {str(receives)[:32]!r}")
        return cls(owner, job_id, receives)


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

    def process(
        self,
        message: JobMessage,
        receive_count: int,
        lease_seconds: float,
        time_left: Callable[[], float] | None = None,
    ) -> ProcessResult:
        """Claim, run and complete the job of ``message``, delivered for the ``receive_count``-th
        time (its job's attempt adds the receives the message carries). ``time_left``: seconds
        left of the invocation, which a progress report checks (jobs.progress.OutOfTime)."""
        attempt = message.attempt(receive_count)
        final_attempt = attempt >= self.settings.max_receive_count
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
        claimed = job
        try:
            try:
                # A taken-over job (attempt > 1) may have died after writing its result and before
                # marking COMPLETE: a complete result is then already there (S3 PUTs are atomic),
                # so it is not computed and written again (and completes, cancel request or not).
                if job.attempts <= 1 or not self.results.exists(key):
                    if job.cancel_requested_at:
                        raise CancelRequested("claimed with a cancel request pending")  # not run
                    reporter = ProgressReporter(
                        lambda progress: self._write_progress(claimed, lease_owner, progress), time_left=time_left
                    )
                    self.results.put(key, run_action(_action_input(job, reporter)), job.format.content_type)
            except CancelRequested:
                cancelled = self.table.cancel_running(job.owner_id, job.job_id, lease_owner, iso(utc_now()))
                if cancelled is None:
                    raise LeaseLost("the lease was lost before the job could be cancelled") from None
                return ProcessResult(Outcome.CANCELLED, cancelled, (time.monotonic() - started) * 1000)
            done = self.table.complete(job.owner_id, job.job_id, lease_owner, key, iso(utc_now()), claimed=job)
        except LeaseLost:
            # Another attempt took the job over (our lease ran out), or it is finished: that
            # attempt (or the record) decides; this delivery comes back and finds out.
            raise RetryLater(f"job {job.job_id}: lease lost while running") from None
        except (Exception, OutOfTime) as exc:
            error = _describe(exc)
            if final_attempt:
                self._fail(message, lease_owner, error)
                return ProcessResult(Outcome.FAILED, job)
            self._release(job, lease_owner, error)
            raise RetryLater(f"job {job.job_id} attempt {attempt} failed: {error}") from exc
        if done is None:
            done = self.table.get(job.owner_id, job.job_id)
            if done is None or done.status is not Status.COMPLETE or done.s3_key != key:
                # Our lease ran out and another attempt took the job over: it will finish it.
                raise RetryLater(f"job {job.job_id}: lease lost before completion")
            # else: our completion was applied but its answer was lost (the client retried).
        return ProcessResult(Outcome.COMPLETED, done, (time.monotonic() - started) * 1000)

    def _write_progress(self, job: Job, lease_owner: str, progress: Progress) -> None:
        """Write one progress figure; stop the action (raise) if the job must stop. A write that
        fails (DynamoDB unavailable after retries) is logged and skipped: progress is advisory."""
        try:
            written, current = self.table.record_progress(
                job.owner_id, job.job_id, lease_owner, progress.fraction, progress.message, progress.updated_at
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not write the progress of job %s: %s", job.job_id, _describe(exc))
            return
        if written:
            return
        if (
            current is not None
            and current.status is Status.PROCESSING
            and current.lease_owner == lease_owner
            and current.cancel_requested_at
        ):
            raise CancelRequested(f"cancel requested at {current.cancel_requested_at}")
        raise LeaseLost(f"job {job.job_id} is {current.status.value if current else 'gone'}, not ours to run")

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


def _action_input(job: Job, report: ProgressReporter) -> ActionInput:
    return ActionInput(job.job_id, job.name, job.action, job.context1, job.context2, job.created_at, job.format, report)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if not str(exc).startswith(type(exc).__name__) else str(exc)
    return text[:ERROR_MAX_CHARS]
