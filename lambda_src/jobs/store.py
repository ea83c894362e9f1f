"""Data access: the job table and the quota table (DynamoDB), the results bucket (S3) and
the job queue (SQS).

Only GetItem, Query and conditional writes: no Scan anywhere. The domain layer above
decides what a failed condition means; this layer never knows about HTTP.

Quotas: a job created with a :class:`~jobs.quotas.Charge` carries ``quota_slot`` and adds 1
to its owner's ``active_jobs`` in the quota table, in the transaction that creates it; the
transition that finishes it (complete, fail, cancel) removes ``quota_slot`` and subtracts 1,
in one transaction conditional on the slot being there. So the counter moves iff the job's
status does, once: a duplicate or late transition fails its condition and frees nothing.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from jobs.formats import DEFAULT_FORMAT, ResultFormat
from jobs.model import DEFAULT_PRIORITY, Job, Priority, Status
from jobs.quotas import Charge, Usage

STATUS_INDEX = "by_owner_status"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
QUOTA_SLOT = "quota_slot"  # on a job that holds one of its owner's active-job slots
# Concurrent transactions on one item (a user's counter) cancel each other with
# TransactionConflict on AWS: retried with jittered back-off, this many attempts in all.
TRANSACTION_ATTEMPTS = 8

_ser = TypeSerializer()
_de = TypeDeserializer()

# Attribute names that are DynamoDB reserved words (or just better quoted).
_NAMES = {
    "#status": "status",
    "#name": "name",
    "#action": "action",
    "#error": "error",
    "#format": "format",
    "#priority": "priority",
}

_FIELDS = {
    # Job attribute -> item attribute
    "owner_id": "owner_id",
    "job_id": "job_id",
    "name": "name",
    "action": "action",
    "format": "format",  # absent on records written before formats existed: text
    "priority": "priority",  # absent on records written before priorities existed: normal
    "context1": "context1",
    "context2": "context2",
    "status": "status",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "started_at": "startedAt",
    "completed_at": "completedAt",
    "s3_key": "S3FileKey",
    "error": "error",
    "attempts": "attempts",
    "lease_owner": "lease_owner",
    "lease_until": "lease_until",
    "expires_at": "expires_at",
    "redrives": "redrives",  # written by `invoke redrive` (tooling/redrive.py)
}
# What a listing reads: everything but the job's inputs (placeholders for reserved words).
_PLACEHOLDERS = {attr: placeholder for placeholder, attr in _NAMES.items()}
_LIST_PROJECTION = ", ".join(_PLACEHOLDERS.get(a, a) for f, a in _FIELDS.items() if f not in ("context1", "context2"))


def _owner_status(owner_id: str, status: Status) -> str:
    return f"{owner_id}#{status.value}"


def _serialize(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def _to_item(job: Job) -> dict[str, Any]:
    values = {attr: getattr(job, f) for f, attr in _FIELDS.items()}
    values["status"] = job.status.value
    values["format"] = job.format.value
    values["priority"] = job.priority.value
    values["owner_status"] = _owner_status(job.owner_id, job.status)
    if not job.lease_owner:
        values.pop("lease_owner")
        values.pop("lease_until")
    if not job.redrives:
        values.pop("redrives")
    return _serialize(values)


def _from_item(item: dict[str, Any]) -> Job:
    values = {k: _de.deserialize(v) for k, v in item.items()}
    kwargs: dict[str, Any] = {}
    for f, attr in _FIELDS.items():
        if attr in values:
            kwargs[f] = values[attr]
    kwargs["status"] = Status(kwargs["status"])
    kwargs["format"] = ResultFormat(kwargs.get("format", DEFAULT_FORMAT))
    kwargs["priority"] = Priority(kwargs.get("priority", DEFAULT_PRIORITY))
    for number in ("attempts", "lease_until", "expires_at"):
        kwargs[number] = int(kwargs.get(number, 0))
    kwargs["redrives"] = [
        {k: int(v) if k == "attempts" else v for k, v in entry.items()}
        for entry in kwargs.get("redrives") or []
        if isinstance(entry, dict)
    ]
    kwargs.setdefault("context1", "")
    kwargs.setdefault("context2", "")
    return Job(**kwargs)


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _names_in(*expressions: str) -> dict[str, str]:
    text = " ".join(expressions)
    return {k: v for k, v in _NAMES.items() if k in text}


def _usage(item: dict[str, Any] | None) -> Usage:
    if not item:
        return Usage()
    return Usage(int(item.get("active_jobs", {}).get("N", 0)), int(item.get("tat_ms", {}).get("N", 0)))


class TransactionCancelled(ClientError):
    """A TransactWriteItems was cancelled; ``codes[i]``/``items[i]`` per transaction item."""

    def __init__(self, error: ClientError) -> None:
        super().__init__(error.response, error.operation_name)
        reasons: list[dict[str, Any]] = list(error.response.get("CancellationReasons") or [])  # type: ignore[arg-type]
        self.codes = [r.get("Code") for r in reasons]
        self.items: list[dict[str, Any] | None] = [r.get("Item") for r in reasons]

    def code(self, index: int) -> str | None:
        return self.codes[index] if index < len(self.codes) else None

    @property
    def contended(self) -> bool:
        return "TransactionConflict" in self.codes and "ConditionalCheckFailed" not in self.codes


class QuotaChanged(Exception):
    """The counter item was not as read when the charge was written. ``usage``: as it is now."""

    def __init__(self, usage: Usage) -> None:
        super().__init__("the quota counter changed")
        self.usage = usage


@dataclass(frozen=True)
class IdempotencyClaim:
    owner_id: str
    key: str
    fingerprint: str

    @property
    def item_key(self) -> dict[str, Any]:
        digest = hashlib.sha256(self.key.encode()).hexdigest()
        return _serialize({"owner_id": f"{self.owner_id}#idempotency", "job_id": digest})


@dataclass(frozen=True)
class IdempotencyRecord:
    job_id: str
    fingerprint: str
    expires_at: int = 0


class IdempotencyKeyTaken(Exception):
    """The key was already used by this owner within its lifetime."""

    def __init__(self, record: IdempotencyRecord | None) -> None:
        super().__init__("idempotency key already used")
        self.record = record


class JobTable:
    """The jobs table: owner_id (partition) + job_id (sort, UUIDv7); GSI by_owner_status."""

    def __init__(self, client: Any, table_name: str, quota_table_name: str | None = None) -> None:
        self._db = client
        self._table = table_name
        self._quotas = quota_table_name  # None: nothing is counted (tooling that only moves jobs)

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """TransactWriteItems, retried while it only lost a race with another transaction.

        botocore gives each call a ClientRequestToken and keeps it across its own retries, so a
        retried call whose first attempt was applied is not applied twice.
        """
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self._db.transact_write_items(TransactItems=items)
                return
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                cancelled = TransactionCancelled(exc)
                if not cancelled.contended or attempt == TRANSACTION_ATTEMPTS - 1:
                    raise cancelled from exc
            time.sleep(random.uniform(0, min(0.25, 0.01 * 2**attempt)))  # noqa: S311 (jitter, not crypto)

    # ---- quotas ---------------------------------------------------------------------
    def usage(self, owner_id: str) -> Usage:
        """The owner's counter item (zero if none yet)."""
        if self._quotas is None:
            return Usage()
        resp = self._db.get_item(TableName=self._quotas, Key={"owner_id": {"S": owner_id}}, ConsistentRead=True)
        return _usage(resp.get("Item"))

    def _charge(self, charge: Charge) -> dict[str, Any]:
        """The counter item's part of a job's creation (see jobs.quotas.Charge)."""
        assert self._quotas is not None
        values = {":zero": 0, ":one": 1, ":cap": charge.max_active_jobs, ":now": charge.now_ms}
        room = "(attribute_not_exists(active_jobs) OR active_jobs < :cap)"
        if charge.idle:
            values[":next"] = charge.now_ms + charge.interval_ms
            update = "SET active_jobs = if_not_exists(active_jobs, :zero) + :one, tat_ms = :next"
            condition = f"(attribute_not_exists(tat_ms) OR tat_ms < :now) AND {room}"
        else:
            values.update({":t": charge.interval_ms, ":limit": charge.tat_limit_ms})
            update = "SET active_jobs = if_not_exists(active_jobs, :zero) + :one, tat_ms = tat_ms + :t"
            condition = f"tat_ms BETWEEN :now AND :limit AND {room}"
        return {
            "TableName": self._quotas,
            "Key": {"owner_id": {"S": charge.owner_id}},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": _serialize(values),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    # ---- creating -------------------------------------------------------------------
    def create(
        self, job: Job, idempotency: IdempotencyClaim | None, now_epoch: int, charge: Charge | None = None
    ) -> None:
        """Write a new job; atomically with its charge to the owner's quota and/or an
        idempotency claim. QuotaChanged when the counter was not as the charge expected,
        IdempotencyKeyTaken when the key is taken (that wins: the request is a replay)."""
        item = _to_item(job)
        if charge is not None:
            item[QUOTA_SLOT] = {"N": "1"}
        put_job = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(job_id)",
        }
        if idempotency is None and charge is None:
            self._db.put_item(**put_job)
            return
        items: list[dict[str, Any]] = [{"Put": put_job}]
        if charge is not None:
            items.append({"Update": self._charge(charge)})
        if idempotency is None:
            try:
                self._transact(items)
            except TransactionCancelled as cancelled:
                if cancelled.code(1) == "ConditionalCheckFailed":
                    raise QuotaChanged(_usage(cancelled.items[1])) from None
                raise
            return
        claim_item = {
            **idempotency.item_key,
            **_serialize(
                {
                    "target_job_id": job.job_id,
                    "fingerprint": idempotency.fingerprint,
                    "expires_at": now_epoch + IDEMPOTENCY_TTL_SECONDS,
                }
            ),
        }
        items.append(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": claim_item,
                    # TTL deletion is lazy: an expired claim may still be there.
                    "ConditionExpression": "attribute_not_exists(job_id) OR expires_at < :now",
                    "ExpressionAttributeValues": {":now": {"N": str(now_epoch)}},
                }
            }
        )
        try:
            self._transact(items)
        except TransactionCancelled as cancelled:
            if cancelled.code(len(items) - 1) == "ConditionalCheckFailed":
                raise IdempotencyKeyTaken(self.get_idempotency(idempotency)) from None
            if charge is not None and cancelled.code(1) == "ConditionalCheckFailed":
                raise QuotaChanged(_usage(cancelled.items[1])) from None
            raise

    def get_idempotency(self, claim: IdempotencyClaim) -> IdempotencyRecord | None:
        resp = self._db.get_item(TableName=self._table, Key=claim.item_key, ConsistentRead=True)
        item = resp.get("Item")
        if not item:
            return None
        return IdempotencyRecord(
            item["target_job_id"]["S"], item["fingerprint"]["S"], int(item.get("expires_at", {}).get("N", 0))
        )

    def release_idempotency(self, claim: IdempotencyClaim, job_id: str) -> None:
        """Forget a claim that points at ``job_id`` (so the client can retry with the same key)."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=claim.item_key,
                ConditionExpression="target_job_id = :j",
                ExpressionAttributeValues={":j": {"S": job_id}},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise

    # ---- reading --------------------------------------------------------------------
    def get(self, owner_id: str, job_id: str) -> Job | None:
        resp = self._db.get_item(
            TableName=self._table,
            Key=_serialize({"owner_id": owner_id, "job_id": job_id}),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return _from_item(item) if item else None

    def list(self, owner_id: str, status: Status | None, limit: int, before: str | None) -> tuple[list[Job], bool]:
        """Up to ``limit`` jobs, newest first, strictly older than ``before``; and whether more exist."""
        if status is None:
            key_attr, key_value = "owner_id", owner_id
            extra: dict[str, Any] = {"ConsistentRead": True}
        else:
            key_attr, key_value = "owner_status", _owner_status(owner_id, status)
            extra = {"IndexName": STATUS_INDEX}
        condition = f"{key_attr} = :pk"
        values: dict[str, Any] = {":pk": {"S": key_value}}
        if before is not None:
            condition += " AND job_id < :before"
            values[":before"] = {"S": before}
        jobs: list[Job] = []
        start_key: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ExpressionAttributeNames": _NAMES,
                "ProjectionExpression": _LIST_PROJECTION,
                "ScanIndexForward": False,
                "Limit": limit + 1 - len(jobs),
                **extra,
            }
            if start_key:
                kwargs["ExclusiveStartKey"] = start_key
            resp = self._db.query(**kwargs)
            jobs.extend(_from_item(i) for i in resp.get("Items", []))
            start_key = resp.get("LastEvaluatedKey")
            if len(jobs) > limit or not start_key:
                break
        return jobs[:limit], len(jobs) > limit

    # ---- state transitions ----------------------------------------------------------
    def _update(
        self,
        owner_id: str,
        job_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
    ) -> Job | None:
        """A conditional update; the new record, or None when the condition failed."""
        try:
            resp = self._db.update_item(
                TableName=self._table,
                Key=_serialize({"owner_id": owner_id, "job_id": job_id}),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=_names_in(update, condition),
                ExpressionAttributeValues=_serialize(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return _from_item(resp["Attributes"])

    def _finish(
        self,
        owner_id: str,
        job_id: str,
        sets: str,
        removes: tuple[str, ...],
        condition: str,
        values: dict[str, Any],
        applied: Callable[[], Job] | None = None,
    ) -> Job | None:
        """A transition to a final status that frees the job's quota slot in the same
        transaction; the new record, or None when the transition's condition failed.

        A transaction returns no attributes: the new record is read back (GetItem), unless
        ``applied`` can tell it from what the caller holds.

        A job without a slot (created before quotas existed, or made PENDING again by
        ``invoke redrive``) moves alone, on condition that it still holds none.
        """
        plain_update = f"SET {sets}" + (f" REMOVE {', '.join(removes)}" if removes else "")
        if self._quotas is None:
            return self._update(owner_id, job_id, plain_update, condition, values)
        update = f"SET {sets} REMOVE {', '.join((*removes, QUOTA_SLOT))}"
        guarded = f"({condition}) AND attribute_exists({QUOTA_SLOT})"
        transition: dict[str, Any] = {
            "TableName": self._table,
            "Key": _serialize({"owner_id": owner_id, "job_id": job_id}),
            "UpdateExpression": update,
            "ConditionExpression": guarded,
            "ExpressionAttributeValues": _serialize(values),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        names = _names_in(update, guarded)
        if names:
            transition["ExpressionAttributeNames"] = names
        free_slot = {
            "TableName": self._quotas,
            "Key": {"owner_id": {"S": owner_id}},
            "UpdateExpression": "ADD active_jobs :minus_one",
            "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
        }
        try:
            self._transact([{"Update": transition}, {"Update": free_slot}])
        except TransactionCancelled as cancelled:
            if cancelled.code(0) != "ConditionalCheckFailed":
                raise
            current = cancelled.items[0]
            if current is None or QUOTA_SLOT in current:
                return None  # gone, or not in a state this transition applies to
            return self._update(
                owner_id, job_id, plain_update, f"({condition}) AND attribute_not_exists({QUOTA_SLOT})", values
            )
        return applied() if applied is not None else self.get(owner_id, job_id)

    def cancel(self, owner_id: str, job_id: str, now: str) -> Job | None:
        """PENDING -> CANCELLED, freeing the job's quota slot."""
        return self._finish(
            owner_id,
            job_id,
            "#status = :cancelled, owner_status = :os, updatedAt = :now, completedAt = :now",
            (),
            "attribute_exists(job_id) AND #status = :pending",
            {
                ":cancelled": Status.CANCELLED.value,
                ":pending": Status.PENDING.value,
                ":os": _owner_status(owner_id, Status.CANCELLED),
                ":now": now,
            },
        )

    def claim(
        self, owner_id: str, job_id: str, lease_owner: str, lease_until: int, now: str, now_epoch: int
    ) -> Job | None:
        """PENDING -> PROCESSING, or take over a PROCESSING job whose previous lease ran out."""
        return self._update(
            owner_id,
            job_id,
            "SET #status = :processing, owner_status = :os, startedAt = :now, updatedAt = :now, "
            "attempts = if_not_exists(attempts, :zero) + :one, lease_owner = :lo, lease_until = :lu",
            "attribute_exists(job_id) AND (#status = :pending OR "
            "(#status = :processing AND (attribute_not_exists(lease_until) OR lease_until < :epoch)))",
            {
                ":processing": Status.PROCESSING.value,
                ":pending": Status.PENDING.value,
                ":os": _owner_status(owner_id, Status.PROCESSING),
                ":now": now,
                ":zero": 0,
                ":one": 1,
                ":lo": lease_owner,
                ":lu": lease_until,
                ":epoch": now_epoch,
            },
        )

    def complete(
        self, owner_id: str, job_id: str, lease_owner: str, s3_key: str, now: str, claimed: Job | None = None
    ) -> Job | None:
        """PROCESSING (held by ``lease_owner``) -> COMPLETE, freeing the job's quota slot.

        ``claimed``: the record as the lease holder's claim returned it. Nothing else writes a
        job while its lease is held, so the new record is that one with this update applied,
        and need not be read back.
        """

        def applied() -> Job:
            assert claimed is not None
            return replace(
                claimed,
                status=Status.COMPLETE,
                s3_key=s3_key,
                completed_at=now,
                updated_at=now,
                lease_owner=None,
                lease_until=0,
                error=None,
            )

        return self._finish(
            owner_id,
            job_id,
            "#status = :complete, owner_status = :os, S3FileKey = :key, completedAt = :now, updatedAt = :now",
            ("lease_owner", "lease_until", "#error"),
            "#status = :processing AND lease_owner = :lo",
            {
                ":complete": Status.COMPLETE.value,
                ":processing": Status.PROCESSING.value,
                ":os": _owner_status(owner_id, Status.COMPLETE),
                ":key": s3_key,
                ":now": now,
                ":lo": lease_owner,
            },
            applied if claimed is not None else None,
        )

    def fail(
        self, owner_id: str, job_id: str, lease_owner: str | None, error: str, now: str, now_epoch: int
    ) -> Job | None:
        """PENDING/PROCESSING -> FAILED, unless another attempt holds a live lease; frees the
        job's quota slot."""
        return self._finish(
            owner_id,
            job_id,
            "#status = :failed, owner_status = :os, #error = :err, completedAt = :now, updatedAt = :now",
            ("lease_owner", "lease_until"),
            "(#status = :pending OR #status = :processing) AND "
            "(attribute_not_exists(lease_owner) OR lease_owner = :lo OR lease_until < :epoch)",
            {
                ":failed": Status.FAILED.value,
                ":pending": Status.PENDING.value,
                ":processing": Status.PROCESSING.value,
                ":os": _owner_status(owner_id, Status.FAILED),
                ":err": error,
                ":now": now,
                ":lo": lease_owner or "-",
                ":epoch": now_epoch,
            },
        )

    def release(self, owner_id: str, job_id: str, lease_owner: str, error: str, now: str) -> Job | None:
        """Give up the lease after a failed attempt so the next delivery can claim at once."""
        return self._update(
            owner_id,
            job_id,
            "SET #error = :err, updatedAt = :now, lease_until = :zero",
            "#status = :processing AND lease_owner = :lo",
            {
                ":processing": Status.PROCESSING.value,
                ":err": error,
                ":now": now,
                ":zero": 0,
                ":lo": lease_owner,
            },
        )


class ResultBucket:
    def __init__(self, client: Any, bucket_name: str) -> None:
        self._s3 = client
        self._bucket = bucket_name

    def put(self, key: str, text: str, content_type: str) -> None:
        """Store ``text`` UTF-8 encoded, with ``content_type`` (which names the charset)."""
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type)

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def presign(self, key: str, ttl_seconds: int, file_name: str, content_type: str) -> str:
        """A GET URL of ``key`` whose response says: save me as ``file_name``, of ``content_type``."""
        params = {
            "Bucket": self._bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{file_name}"',
            "ResponseContentType": content_type,
        }
        url: str = self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_seconds)
        return url


class JobQueue:
    """The job queues, one per priority (standard queues used as SQS fair queues)."""

    def __init__(self, client: Any, queue_urls: Mapping[Priority, str]) -> None:
        missing = [p.value for p in Priority if p not in queue_urls]
        if missing:
            raise ValueError(f"no queue URL for priority {', '.join(missing)}")
        self._sqs = client
        self._urls = dict(queue_urls)

    def send(self, job: Job) -> None:
        """Queue ``job`` for the worker, in its priority's queue.

        ``MessageGroupId`` is the owner: on a standard queue it makes SQS serve the queue
        fairly between owners (a fair queue), so one user's backlog does not hold back the
        others' jobs. It orders nothing (that needs a FIFO queue).
        """
        self._sqs.send_message(
            QueueUrl=self._urls[job.priority], MessageBody=message_body(job), MessageGroupId=job.owner_id
        )


def message_body(job: Job) -> str:
    """What the worker receives: which job to run (its record holds the rest)."""
    return json.dumps({"owner_id": job.owner_id, "job_id": job.job_id}, separators=(",", ":"))
