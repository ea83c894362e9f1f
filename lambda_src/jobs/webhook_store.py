"""Data access of the notifier (README "Webhooks"): the job's ``webhook`` map (DynamoDB), the
signing secret (SSM Parameter Store, through Powertools' parameters utility, cached) and the
webhooks queue's visibility (SQS back-off).

The ``webhook`` map belongs to one event (``eventId``; ``changedAt`` orders events of a job
that was redriven and finished again). Every write is conditional:
- ``begin`` (before each POST) applies to the job's current event unless it was delivered, or
  starts the map for a newer event; it never creates a record (the job must exist);
- ``delivered`` applies to the same event; ``failed`` to the same event unless delivered:
  a late duplicate never turns ``delivered`` back.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError

from jobs.webhooks import WebhookEvent

log = logging.getLogger(__name__)


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoWebhookLog:
    """The job record's ``webhook`` map, through conditional UpdateItem only."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def _update(self, event: WebhookEvent, update: str, condition: str, values: dict[str, Any]) -> bool:
        names = {"#webhook": "webhook", "#state": "state"}
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"owner_id": {"S": event.owner_id}, "job_id": {"S": event.job_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={k: v for k, v in names.items() if k in update or k in condition},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def begin(self, event: WebhookEvent, now: str) -> bool:
        """Record an attempt about to be made; False: do not make it (delivered already, a newer
        event's, or the job is gone)."""
        eid = {"S": event.event_id}
        fresh = {
            "state": {"S": "pending"},
            "attempts": {"N": "1"},
            "lastAttemptAt": {"S": now},
            "eventId": eid,
            "changedAt": {"S": event.changed_at},
        }
        if self._update(  # the event's first attempt (or a newer event's, after a redrive)
            event,
            "SET #webhook = :fresh",
            "attribute_exists(job_id) AND (attribute_not_exists(#webhook) OR "
            "(#webhook.eventId <> :eid AND #webhook.changedAt < :changed))",
            {":fresh": {"M": fresh}, ":eid": eid, ":changed": {"S": event.changed_at}},
        ):
            return True
        return self._update(  # a later attempt at the same event, unless it was delivered
            event,
            "SET #webhook.#state = :pending, #webhook.attempts = #webhook.attempts + :one, "
            "#webhook.lastAttemptAt = :now",
            "#webhook.eventId = :eid AND #webhook.#state <> :delivered",
            {
                ":pending": {"S": "pending"},
                ":one": {"N": "1"},
                ":now": {"S": now},
                ":eid": eid,
                ":delivered": {"S": "delivered"},
            },
        )

    def delivered(self, event: WebhookEvent, now: str) -> None:
        if not self._update(
            event,
            "SET #webhook.#state = :delivered, #webhook.deliveredAt = :now",
            "#webhook.eventId = :eid",
            {":delivered": {"S": "delivered"}, ":now": {"S": now}, ":eid": {"S": event.event_id}},
        ):
            log.warning("job %s: its webhook map moved on to another event; delivery not recorded", event.job_id)

    def failed(self, event: WebhookEvent, error: str, now: str, final: bool) -> None:
        self._update(
            event,
            "SET #webhook.#state = :state, #webhook.lastError = :error, #webhook.lastAttemptAt = :now",
            "#webhook.eventId = :eid AND #webhook.#state <> :delivered",
            {
                ":state": {"S": "failed" if final else "pending"},
                ":error": {"S": error},
                ":now": {"S": now},
                ":eid": {"S": event.event_id},
                ":delivered": {"S": "delivered"},
            },
        )


class SigningSecret:
    """The signing secret from its SecureString parameter, decrypted, cached ``max_age`` seconds."""

    def __init__(self, name: str, max_age: int) -> None:
        self.name = name
        self.max_age = max_age

    def __call__(self) -> str:
        return str(parameters.get_parameter(self.name, decrypt=True, max_age=self.max_age))


class RetryQueue:
    """The webhooks queue: a failed attempt's message is made visible again after its back-off."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
        )
