"""JobWorker Lambda: processes SQS batches, reporting failures per record.

Each record is ``{"owner_id", "job_id"}`` (plus ``receives`` once re-queued). A record that
fails is reported in ``batchItemFailures`` and comes back; the others in the batch are
unaffected. A record the invocation has no time left to start is sent again as a new message
carrying the receives its job used so far (one SendMessageBatch at the end of the invocation),
so waiting for time never uses up a job's attempts (maxReceiveCount) nor sends it to the DLQ
unrun; only if that send fails is it reported as a failure and comes back as before. A job
that fails its last attempt on such a message, which SQS would still hand out again, has the
message put in the DLQ by the worker, as SQS's redrive policy does for the others.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from jobs import aws
from jobs.deadline import RecordTimer
from jobs.model import Priority
from jobs.service import JobMessage, JobProcessor, Outcome, RetryLater
from jobs.settings import get_settings
from jobs.store import JobQueue, Requeued
from jobs.telemetry import logger, metrics, tracer

settings = get_settings()  # fails at start-up, naming the missing variable

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Margin kept between the end of a lease and the end of the invocation.
LEASE_MARGIN_SECONDS = 5.0

# Time kept at the end of an invocation to re-queue the records it did not start.
REQUEUE_RESERVE_SECONDS = 1.0

# What a record needs here, so a batch starts only the records it can finish in time.
timer = RecordTimer()

# The records of this invocation left unstarted for lack of time, re-queued at its end.
deferred: list[Requeued] = []


class JobFailedFinally(Exception):
    """The job was marked FAILED on its last attempt; the message goes on to the DLQ."""


class NoTimeLeft(Exception):
    """Too little of the invocation is left to run this record: it comes back untouched."""


@cache
def job_processor() -> JobProcessor:
    return JobProcessor(settings, aws.job_table(settings), aws.result_bucket(settings))


@cache
def job_queue() -> JobQueue:
    return aws.job_queue(settings)


def queue_priority(queue_arn: str) -> Priority | None:
    """The priority of the job queue ``queue_arn``; None for any other source."""
    return next((p for p, arn in settings.queue_arns.items() if arn == queue_arn), None)


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> str:
    message = JobMessage.parse(record.body)
    logger.set_correlation_id(message.job_id)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    attempt = message.attempt(receive_count)
    remaining = lambda_context.get_remaining_time_in_millis() / 1000.0
    if not timer.may_start(remaining - REQUEUE_RESERVE_SECONDS):
        waiting = {"attempt": attempt, "remaining_s": round(remaining, 3), "needed_s": timer.needed_seconds()}
        priority = queue_priority(record.event_source_arn)
        if priority is not None:
            # this receive does not count: the new message carries the receives before it
            deferred.append(Requeued(record.message_id, priority, message.owner_id, message.job_id, attempt - 1))
            logger.info("too little time left to start the job; re-queued untouched", extra=waiting)
            return "requeued"
        # Not from a job queue (invoked directly): sent back, except on its last attempt, which
        # would reach the DLQ unrun; that one runs, whatever is left.
        if attempt < settings.max_receive_count:
            logger.info("too little time left to start the job; sent back untouched", extra=waiting)
            raise NoTimeLeft(f"{remaining:.2f}s left, a job needs {timer.needed_seconds():.2f}s here")
    timer.started()
    began = time.monotonic()
    try:
        result = job_processor().process(
            message,
            receive_count,
            remaining + LEASE_MARGIN_SECONDS,
            time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000.0,
        )
    except RetryLater as retry:
        # The message comes back after its visibility timeout; say why (e.g. AccessDenied).
        logger.warning("attempt failed; the message comes back", extra={"attempt": attempt, "reason": str(retry)})
        raise
    finally:
        timer.finished(time.monotonic() - began)
    if result.outcome == Outcome.COMPLETED:
        metrics.add_metric(name="JobsCompleted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="JobDuration", unit=MetricUnit.Milliseconds, value=result.duration_ms)
        logger.info("job complete", extra={"attempt": attempt})
    elif result.outcome == Outcome.FAILED:
        metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
        logger.error("job failed on its last attempt", extra={"attempt": attempt})
        # Attempts carried over from a re-queued message: SQS would hand this message out again
        # (acknowledged then, the job being FAILED), never to the DLQ; so the worker puts it there.
        if receive_count < settings.max_receive_count and dead_letter(record.body, message.owner_id):
            return result.outcome
        raise JobFailedFinally(f"job {message.job_id} failed; its message goes to the dead-letter queue")
    elif result.outcome == Outcome.CANCELLED:
        metrics.add_metric(name="JobsCancelledRunning", unit=MetricUnit.Count, value=1)
        logger.info("running job cancelled on request", extra={"attempt": attempt})
    else:
        logger.info("duplicate or late delivery acknowledged", extra={"attempt": attempt})
    return result.outcome


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    timer.new_invocation()
    deferred.clear()
    response: dict[str, Any] = dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
    if deferred:
        unsent = requeue(deferred)
        if unsent:  # their original messages come back after the visibility timeout instead
            failures: list[dict[str, str]] = list(response.get("batchItemFailures") or [])
            response["batchItemFailures"] = failures + [{"itemIdentifier": key} for key in unsent]
    return response


def dead_letter(body: str, owner_id: str) -> bool:
    """Put a job message in the DLQ; False (logged) if SQS would not take it."""
    try:
        job_queue().dead_letter(body, owner_id)
    except (BotoCoreError, ClientError) as exc:
        logger.warning("could not put the message in the dead-letter queue", extra={"reason": str(exc)})
        return False
    return True


def requeue(records: list[Requeued]) -> dict[str, str]:
    """Send ``records`` again as new messages; message id -> why, for those not sent."""
    try:
        unsent = job_queue().requeue(records)
    except (BotoCoreError, ClientError) as exc:
        unsent = {r.key: str(exc) for r in records}
    if unsent:
        logger.warning(
            "could not re-queue records; they come back after their visibility timeout",
            extra={"records": len(unsent), "reason": next(iter(unsent.values()))},
        )
    metrics.add_metric(name="JobsRequeued", unit=MetricUnit.Count, value=len(records) - len(unsent))
    return unsent
