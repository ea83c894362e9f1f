"""JobWorker Lambda: processes SQS batches, reporting failures per record.

Each record is ``{"owner_id", "job_id"}``. A record that fails is reported in
``batchItemFailures`` and comes back; the others in the batch are unaffected.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs import aws
from jobs.deadline import RecordTimer
from jobs.service import JobMessage, JobProcessor, Outcome, RetryLater
from jobs.settings import get_settings
from jobs.telemetry import logger, metrics, tracer

settings = get_settings()  # fails at start-up, naming the missing variable

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Margin kept between the end of a lease and the end of the invocation.
LEASE_MARGIN_SECONDS = 5.0

# What a record needs here, so a batch starts only the records it can finish in time.
timer = RecordTimer()


class JobFailedFinally(Exception):
    """The job was marked FAILED on its last attempt; the message goes on to the DLQ."""


class NoTimeLeft(Exception):
    """Too little of the invocation is left to run this record: it comes back untouched."""


@cache
def job_processor() -> JobProcessor:
    return JobProcessor(settings, aws.job_table(settings), aws.result_bucket(settings))


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> str:
    message = JobMessage.parse(record.body)
    logger.set_correlation_id(message.job_id)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    remaining = lambda_context.get_remaining_time_in_millis() / 1000.0
    # A record on its last attempt always runs: sent back, it would reach the DLQ unrun.
    if receive_count < settings.max_receive_count and not timer.may_start(remaining):
        logger.info(
            "too little time left to start the job; sent back untouched",
            extra={"attempt": receive_count, "remaining_s": round(remaining, 3), "needed_s": timer.needed_seconds()},
        )
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
        logger.warning("attempt failed; the message comes back", extra={"attempt": receive_count, "reason": str(retry)})
        raise
    finally:
        timer.finished(time.monotonic() - began)
    if result.outcome == Outcome.COMPLETED:
        metrics.add_metric(name="JobsCompleted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="JobDuration", unit=MetricUnit.Milliseconds, value=result.duration_ms)
        logger.info("job complete", extra={"attempt": receive_count})
    elif result.outcome == Outcome.FAILED:
        metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
        logger.error("job failed on its last attempt", extra={"attempt": receive_count})
        raise JobFailedFinally(f"job {message.job_id} failed; its message goes to the dead-letter queue")
    elif result.outcome == Outcome.CANCELLED:
        metrics.add_metric(name="JobsCancelledRunning", unit=MetricUnit.Count, value=1)
        logger.info("running job cancelled on request", extra={"attempt": receive_count})
    else:
        logger.info("duplicate or late delivery acknowledged", extra={"attempt": receive_count})
    return result.outcome


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    timer.new_invocation()
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
