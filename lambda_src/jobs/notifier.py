"""Notifier Lambda: delivers signed webhooks from the webhooks queue (README "Webhooks").

Each record is a ``Job Status Changed`` event the webhooks rule routed here. A failed attempt
is reported in ``batchItemFailures`` after its message's visibility was set to its back-off, so
it comes back later; the last attempt's message goes on to the webhooks DLQ.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs import aws, webhook_http
from jobs.settings import get_notifier_settings
from jobs.telemetry import logger, metrics, tracer
from jobs.webhook_store import DynamoWebhookLog, RetryQueue, SigningSecret
from jobs.webhooks import Notifier, Outcome, WebhookEvent

settings = get_notifier_settings()  # fails at start-up, naming the missing variable

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class DeliveryNotDone(Exception):
    """The attempt failed: the message comes back after its back-off (or goes to the DLQ)."""


@cache
def notifier() -> Notifier:
    return Notifier(
        settings,
        DynamoWebhookLog(aws.client("dynamodb"), settings.table_name),
        SigningSecret(settings.secret_parameter, settings.secret_max_age_seconds),
        webhook_http.post,
    )


@cache
def retry_queue() -> RetryQueue:
    return RetryQueue(aws.client("sqs"), settings.queue_url)


@tracer.capture_method
def record_handler(record: SQSRecord) -> str:
    event = WebhookEvent.parse(record.body)
    logger.set_correlation_id(event.job_id)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    attempt = notifier().deliver(event, receive_count)
    context = {"attempt": receive_count, "event_id": event.event_id, "status": event.status}
    if attempt.outcome is Outcome.DELIVERED:
        metrics.add_metric(name="WebhooksDelivered", unit=MetricUnit.Count, value=1)
        logger.info("webhook delivered", extra=context)
    elif attempt.outcome is Outcome.DUPLICATE:
        logger.info("webhook delivered already (or superseded); acknowledged without a POST", extra=context)
    elif attempt.outcome is Outcome.REFUSED:
        metrics.add_metric(name="WebhooksRefused", unit=MetricUnit.Count, value=1)
        logger.warning(
            "webhook refused: the callback URL leads where webhooks may not go",
            extra={**context, "reason": attempt.error},
        )
    else:
        metrics.add_metric(name="WebhookAttemptsFailed", unit=MetricUnit.Count, value=1)
        final = attempt.outcome is Outcome.FAILED
        # The last attempt's message is made visible at once: its next receive moves it to the DLQ.
        retry_queue().retry_in(record.receipt_handle, 0 if final else attempt.retry_in or 0)
        logger.warning(
            "webhook attempt failed; " + ("its message goes to the webhooks DLQ" if final else "retried later"),
            extra={**context, "reason": attempt.error, "retry_in_s": attempt.retry_in},
        )
        raise DeliveryNotDone(f"job {event.job_id}: webhook attempt {receive_count} failed: {attempt.error}")
    return attempt.outcome.value


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
