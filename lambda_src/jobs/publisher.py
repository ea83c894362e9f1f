"""Job status event publisher Lambda: the jobs table's DynamoDB stream -> the stack's event bus.

A DynamoDB stream event source mapping invokes it with batches of stream records (oldest
first). Each record whose write changed a job's status becomes one ``Job Status Changed``
event (``jobs.events``); the events are put ten per PutEvents call, entries PutEvents
reports failed are retried, and a record whose event still could not be put is reported in
``batchItemFailures`` (its sequence number): the mapping retries the batch from there, and
after its retries sends the batch's description to the on-failure queue.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs import aws
from jobs.bus import EventBus
from jobs.events import StreamChange, publish
from jobs.settings import get_event_settings
from jobs.telemetry import logger, metrics, tracer

settings = get_event_settings()  # fails at start-up, naming the missing variable


@cache
def event_bus() -> EventBus:
    return aws.event_bus(settings)


def stream_changes(event: dict[str, Any]) -> list[StreamChange]:
    """The batch's records, in stream order, with their images deserialized."""
    changes = []
    for record in DynamoDBStreamEvent(event).records:
        stream = record.dynamodb
        changes.append(
            StreamChange(
                event_id=record.event_id or "",
                event_name=record.event_name.name if record.event_name else "",
                sequence_number=(stream.sequence_number if stream else None) or "",
                old_image=stream.old_image if stream else None,
                new_image=stream.new_image if stream else None,
            )
        )
    return changes


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    changes = stream_changes(event)
    report = publish(changes, event_bus(), settings.bus_name, settings.source)
    metrics.add_metric(name="JobEventsPublished", unit=MetricUnit.Count, value=report.published)
    if report.failed_sequence_numbers:
        metrics.add_metric(name="JobEventsNotPut", unit=MetricUnit.Count, value=len(report.failed_sequence_numbers))
        logger.error(
            "events could not be put; the batch is retried from the first of them",
            extra={"records": len(changes), "failed": len(report.failed_sequence_numbers)},
        )
    else:
        logger.info(
            "stream batch published",
            extra={"records": len(changes), "events": report.published, "skipped": report.skipped},
        )
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in report.failed_sequence_numbers]}
