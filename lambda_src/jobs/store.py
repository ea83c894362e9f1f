"""Data access: the job table and the quota table (DynamoDB), the results bucket (S3), the
job queue (SQS) and the jobs' one-time schedules (EventBridge Scheduler).

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
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from jobs.formats import DEFAULT_FORMAT, ResultFormat
from jobs.model import DEFAULT_PRIORITY, Job, Priority, Status
from jobs.quotas import Charge, Usage
from jobs.scheduling import at_expression

STATUS_INDEX = "by_owner_status"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
QUOTA_SLOT = "quota_slot"  # on a job that holds one of its owner's active-job slots
BATCH_WRITE_MAX = 25  # items per BatchWriteItem (the DynamoDB limit)
BATCH_GET_MAX = 100  # keys per BatchGetItem (the DynamoDB limit)
BATCH_ATTEMPTS = 5  # calls per chunk while DynamoDB leaves items unprocessed
SEND_BATCH_MAX = 10  # entries per SendMessageBatch (the SQS limit)
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
    "#progress": "progress",
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
    "run_at": "run_at",  # a scheduled job's due time
    "schedule_name": "schedule_name",  # its EventBridge Scheduler schedule, if it has one
    "progress": "progress",  # written by the running job's worker (record_progress)
    "cancel_requested_at": "cancelRequestedAt",  # DELETE /job of a PROCESSING job (request_cancel)
    "callback_url": "callbackUrl",  # where the notifier POSTs the final status (README "Webhooks")
    "webhook": "webhook",  # the notifier's delivery state (jobs.webhook_store)
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
    if isinstance(kwargs.get("progress"), dict):
        kwargs["progress"] = {k: float(v) if isinstance(v, Decimal) else v for k, v in kwargs["progress"].items()}
    if isinstance(kwargs.get("webhook"), dict):
        kwargs["webhook"] = {k: int(v) if k == "attempts" else v for k, v in kwargs["webhook"].items()}
    kwargs.setdefault("context1", "")
    kwargs.setdefault("context2", "")
    return Job(**kwargs)


def _back_off(attempt: int, base: float = 0.05, cap: float = 1.0) -> None:
    """Sleep before retry ``attempt + 1``: full jitter over an exponential ceiling (seconds)."""
    time.sleep(random.uniform(0, min(cap, base * 2**attempt)))  # noqa: S311 (jitter, not crypto)


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
    job_id: str  # a batch's: its first job
    fingerprint: str
    expires_at: int = 0
    job_ids: tuple[str, ...] = ()  # a batch's jobs, in order (empty for a single job)


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
            _back_off(attempt, base=0.01, cap=0.25)

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
        values = {":zero": 0, ":n": charge.count, ":most": charge.most_active_before, ":now": charge.now_ms}
        room = "(attribute_not_exists(active_jobs) OR active_jobs <= :most)"
        if charge.idle:
            values[":next"] = charge.now_ms + charge.count * charge.interval_ms
            update = "SET active_jobs = if_not_exists(active_jobs, :zero) + :n, tat_ms = :next"
            condition = f"(attribute_not_exists(tat_ms) OR tat_ms < :now) AND {room}"
        else:
            values.update({":t": charge.count * charge.interval_ms, ":limit": charge.tat_limit_ms})
            update = "SET active_jobs = if_not_exists(active_jobs, :zero) + :n, tat_ms = tat_ms + :t"
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
        items.append({"Put": self._claim(idempotency, [job.job_id], now_epoch)})
        try:
            self._transact(items)
        except TransactionCancelled as cancelled:
            if cancelled.code(len(items) - 1) == "ConditionalCheckFailed":
                raise IdempotencyKeyTaken(self.get_idempotency(idempotency)) from None
            if charge is not None and cancelled.code(1) == "ConditionalCheckFailed":
                raise QuotaChanged(_usage(cancelled.items[1])) from None
            raise

    def _claim(self, idempotency: IdempotencyClaim, job_ids: list[str], now_epoch: int) -> dict[str, Any]:
        """The Put of an idempotency claim for ``job_ids`` (one job, or a batch's in order)."""
        values: dict[str, Any] = {
            "target_job_id": job_ids[0],
            "fingerprint": idempotency.fingerprint,
            "expires_at": now_epoch + IDEMPOTENCY_TTL_SECONDS,
        }
        if len(job_ids) > 1:
            values["target_job_ids"] = job_ids
        return {
            "TableName": self._table,
            "Item": {**idempotency.item_key, **_serialize(values)},
            # TTL deletion is lazy: an expired claim may still be there.
            "ConditionExpression": "attribute_not_exists(job_id) OR expires_at < :now",
            "ExpressionAttributeValues": {":now": {"N": str(now_epoch)}},
        }

    def create_batch(
        self, jobs: list[Job], idempotency: IdempotencyClaim | None, now_epoch: int, charge: Charge | None
    ) -> list[Job]:
        """Write a batch's records; the jobs whose records could not be written (their quota
        slots are already given back).

        First the owner's charge for all of them and the idempotency claim, in one transaction
        (both or neither: QuotaChanged / IdempotencyKeyTaken as for :meth:`create`); then the
        records, 25 per BatchWriteItem (a transaction could not hold a batch: 100 items and 4 MB
        at most), retrying what DynamoDB leaves unprocessed. Each record is new (a fresh
        UUIDv7), so the unconditional put cannot overwrite anything.
        """
        ahead: list[dict[str, Any]] = []
        if charge is not None:
            ahead.append({"Update": self._charge(charge)})
        if idempotency is not None:
            ahead.append({"Put": self._claim(idempotency, [j.job_id for j in jobs], now_epoch)})
        if ahead:
            try:
                self._transact(ahead)
            except TransactionCancelled as cancelled:
                if idempotency is not None and cancelled.code(len(ahead) - 1) == "ConditionalCheckFailed":
                    raise IdempotencyKeyTaken(self.get_idempotency(idempotency)) from None
                if charge is not None and cancelled.code(0) == "ConditionalCheckFailed":
                    raise QuotaChanged(_usage(cancelled.items[0])) from None
                raise
        records = [_to_item(job) for job in jobs]
        if charge is not None:
            for item in records:
                item[QUOTA_SLOT] = {"N": "1"}
        unwritten = self._put_all(records)
        lost = [job for job in jobs if job.job_id in unwritten]
        if lost and charge is not None:
            self.refund(jobs[0].owner_id, len(lost))
        return lost

    def _put_all(self, items: list[dict[str, Any]]) -> set[str]:
        """BatchWriteItem of ``items``, 25 at a time; the job ids of those still unwritten after
        retrying the unprocessed ones (throttling) with back-off."""
        unwritten: set[str] = set()
        for start in range(0, len(items), BATCH_WRITE_MAX):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE_MAX]]
            for attempt in range(BATCH_ATTEMPTS):
                try:
                    resp = self._db.batch_write_item(RequestItems={self._table: requests})
                except ClientError:
                    break  # not a partial failure (botocore already retried throttling): give up on these
                requests = resp.get("UnprocessedItems", {}).get(self._table, [])
                if not requests:
                    break
                if attempt < BATCH_ATTEMPTS - 1:
                    _back_off(attempt)
            unwritten.update(r["PutRequest"]["Item"]["job_id"]["S"] for r in requests)
        return unwritten

    def refund(self, owner_id: str, count: int) -> None:
        """Give back ``count`` slots charged for jobs that were never recorded."""
        if self._quotas is None:
            return
        self._db.update_item(
            TableName=self._quotas,
            Key={"owner_id": {"S": owner_id}},
            UpdateExpression="ADD active_jobs :minus",
            ExpressionAttributeValues={":minus": {"N": str(-count)}},
        )

    def get_many(self, owner_id: str, job_ids: list[str]) -> dict[str, Job]:
        """The owner's jobs among ``job_ids`` (BatchGetItem, strongly consistent), by id; no inputs."""
        found: dict[str, Job] = {}
        for start in range(0, len(job_ids), BATCH_GET_MAX):
            keys = [_serialize({"owner_id": owner_id, "job_id": j}) for j in job_ids[start : start + BATCH_GET_MAX]]
            request: dict[str, Any] = {
                self._table: {
                    "Keys": keys,
                    "ConsistentRead": True,
                    "ProjectionExpression": _LIST_PROJECTION,
                    "ExpressionAttributeNames": _NAMES,
                }
            }
            for attempt in range(BATCH_ATTEMPTS):
                resp = self._db.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self._table, []):
                    job = _from_item(item)
                    found[job.job_id] = job
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
                _back_off(attempt)
            else:
                raise RuntimeError(f"DynamoDB left {len(request[self._table]['Keys'])} keys unread after retries")
        return found

    def get_idempotency(self, claim: IdempotencyClaim) -> IdempotencyRecord | None:
        resp = self._db.get_item(TableName=self._table, Key=claim.item_key, ConsistentRead=True)
        item = resp.get("Item")
        if not item:
            return None
        return IdempotencyRecord(
            item["target_job_id"]["S"],
            item["fingerprint"]["S"],
            int(item.get("expires_at", {}).get("N", 0)),
            tuple(_de.deserialize(item["target_job_ids"])) if "target_job_ids" in item else (),
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
        """PENDING or SCHEDULED -> CANCELLED, freeing the job's quota slot."""
        return self._finish(
            owner_id,
            job_id,
            "#status = :cancelled, owner_status = :os, updatedAt = :now, completedAt = :now",
            (),
            "attribute_exists(job_id) AND (#status = :pending OR #status = :scheduled)",
            {
                ":cancelled": Status.CANCELLED.value,
                ":pending": Status.PENDING.value,
                ":scheduled": Status.SCHEDULED.value,
                ":os": _owner_status(owner_id, Status.CANCELLED),
                ":now": now,
            },
        )

    def claim(
        self, owner_id: str, job_id: str, lease_owner: str, lease_until: int, now: str, now_epoch: int
    ) -> Job | None:
        """PENDING (or SCHEDULED: its due message arrives) -> PROCESSING, or take over a
        PROCESSING job whose previous lease ran out."""
        return self._update(
            owner_id,
            job_id,
            "SET #status = :processing, owner_status = :os, startedAt = :now, updatedAt = :now, "
            "attempts = if_not_exists(attempts, :zero) + :one, lease_owner = :lo, lease_until = :lu "
            "REMOVE #progress",  # a new attempt starts from nothing
            "attribute_exists(job_id) AND (#status = :pending OR #status = :scheduled OR "
            "(#status = :processing AND (attribute_not_exists(lease_until) OR lease_until < :epoch)))",
            {
                ":processing": Status.PROCESSING.value,
                ":pending": Status.PENDING.value,
                ":scheduled": Status.SCHEDULED.value,
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
        and need not be read back (but for a cancel request that lost to this completion:
        ``cancel_requested_at`` is then on the stored record only).
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
                progress=None,
            )

        return self._finish(
            owner_id,
            job_id,
            "#status = :complete, owner_status = :os, S3FileKey = :key, completedAt = :now, updatedAt = :now",
            ("lease_owner", "lease_until", "#error", "#progress"),
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
        """PENDING/SCHEDULED/PROCESSING -> FAILED, unless another attempt holds a live lease;
        frees the job's quota slot."""
        return self._finish(
            owner_id,
            job_id,
            "#status = :failed, owner_status = :os, #error = :err, completedAt = :now, updatedAt = :now",
            ("lease_owner", "lease_until"),
            "(#status = :pending OR #status = :scheduled OR #status = :processing) AND "
            "(attribute_not_exists(lease_owner) OR lease_owner = :lo OR lease_until < :epoch)",
            {
                ":failed": Status.FAILED.value,
                ":pending": Status.PENDING.value,
                ":scheduled": Status.SCHEDULED.value,
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

    # ---- progress and cancelling running jobs (jobs.progress) -------------------------
    def record_progress(
        self, owner_id: str, job_id: str, lease_owner: str, fraction: float, message: str, now: str
    ) -> tuple[bool, Job | None]:
        """Write a running job's progress; (True, None) when written.

        Only while the job is PROCESSING under ``lease_owner`` with no cancel request: a late
        report never touches a finished or taken-over job. When refused, the same call returns
        the record as it stood (``ReturnValuesOnConditionCheckFailure``), so the caller learns of
        a cancel request without another read: (False, that record), or (False, None) if gone.
        """
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_serialize({"owner_id": owner_id, "job_id": job_id}),
                UpdateExpression="SET #progress = :progress",
                ConditionExpression="#status = :processing AND lease_owner = :lo "
                "AND attribute_not_exists(cancelRequestedAt)",
                ExpressionAttributeNames={"#progress": "progress", "#status": "status"},
                ExpressionAttributeValues=_serialize(
                    {
                        ":progress": {
                            "fraction": Decimal(str(round(fraction, 4))),
                            "message": message,
                            "updatedAt": now,
                        },
                        ":processing": Status.PROCESSING.value,
                        ":lo": lease_owner,
                    }
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            item: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            return False, _from_item(item) if item else None
        return True, None

    def request_cancel(self, owner_id: str, job_id: str, now: str) -> Job | None:
        """Record a cancel request on a PROCESSING job (the first request's time is kept); the
        record, or None when the job is not PROCESSING. Its worker stops at its next progress
        write (``cancel_running``)."""
        return self._update(
            owner_id,
            job_id,
            "SET cancelRequestedAt = if_not_exists(cancelRequestedAt, :now)",
            "#status = :processing",
            {":processing": Status.PROCESSING.value, ":now": now},
        )

    def cancel_running(self, owner_id: str, job_id: str, lease_owner: str, now: str) -> Job | None:
        """PROCESSING (held by ``lease_owner``, with a cancel request) -> CANCELLED, freeing the
        job's quota slot once, like every final transition; None if the lease is not ours."""
        return self._finish(
            owner_id,
            job_id,
            "#status = :cancelled, owner_status = :os, updatedAt = :now, completedAt = :now",
            ("lease_owner", "lease_until", "#error"),
            "#status = :processing AND lease_owner = :lo AND attribute_exists(cancelRequestedAt)",
            {
                ":cancelled": Status.CANCELLED.value,
                ":processing": Status.PROCESSING.value,
                ":os": _owner_status(owner_id, Status.CANCELLED),
                ":now": now,
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

    def __init__(self, client: Any, queue_urls: Mapping[Priority, str], dead_letter_url: str = "") -> None:
        missing = [p.value for p in Priority if p not in queue_urls]
        if missing:
            raise ValueError(f"no queue URL for priority {', '.join(missing)}")
        self._sqs = client
        self._urls = dict(queue_urls)
        self._dead_letter_url = dead_letter_url

    def send(self, job: Job, delay_seconds: int = 0) -> None:
        """Queue ``job`` for the worker, in its priority's queue; its message becomes visible
        after ``delay_seconds`` (0-900, SQS's DelaySeconds).

        ``MessageGroupId`` is the owner: on a standard queue it makes SQS serve the queue
        fairly between owners (a fair queue), so one user's backlog does not hold back the
        others' jobs. It orders nothing (that needs a FIFO queue).
        """
        self._sqs.send_message(
            QueueUrl=self._urls[job.priority],
            MessageBody=message_body(job),
            MessageGroupId=job.owner_id,
            **_delay(delay_seconds),
        )

    def send_all(self, jobs: list[Job], delays: Mapping[str, int] | None = None) -> dict[str, str]:
        """Queue ``jobs`` (each in its priority's queue, the owner as group, as :meth:`send`),
        10 per SendMessageBatch, retrying the entries SQS reports failed
        (unless the sender is at fault); job id -> why, for those still not queued.
        ``delays``: job id -> seconds its message stays invisible (SQS's DelaySeconds, 0-900)."""
        delays = delays or {}
        return self._send_batches(
            [
                (job.job_id, self._urls[job.priority], message_body(job), job.owner_id, delays.get(job.job_id, 0))
                for job in jobs
            ]
        )

    def requeue(self, messages: list[Requeued]) -> dict[str, str]:
        """Send each of ``messages`` again as a new message of its priority's queue, visible at
        once, carrying the receives its job's earlier messages used (so a message the worker
        sent back untouched costs the job none of its attempts); key -> why, for those not sent
        (their original message then comes back after its visibility timeout, as before)."""
        return self._send_batches(
            [
                (m.key, self._urls[m.priority], job_message_body(m.owner_id, m.job_id, m.receives), m.owner_id, 0)
                for m in messages
            ]
        )

    def dead_letter(self, body: str, owner_id: str) -> None:
        """Put a job message in the dead-letter queue (where ``invoke redrive`` finds it), the
        owner as its group, as SQS's redrive policy would have."""
        if not self._dead_letter_url:
            raise ValueError("no dead-letter queue URL")
        self._sqs.send_message(QueueUrl=self._dead_letter_url, MessageBody=body, MessageGroupId=owner_id)

    def _send_batches(self, entries: list[tuple[str, str, str, str, int]]) -> dict[str, str]:
        """(key, queue URL, body, group, delay) each; 10 per SendMessageBatch per queue, failed
        entries retried unless the sender is at fault; key -> why, for those not sent."""
        unsent: dict[str, str] = {}
        by_queue: dict[str, list[tuple[str, str, str, int]]] = {}
        for key, url, body, group, delay in entries:
            by_queue.setdefault(url, []).append((key, body, group, delay))
        chunks = [
            (url, queued[start : start + SEND_BATCH_MAX])
            for url, queued in by_queue.items()
            for start in range(0, len(queued), SEND_BATCH_MAX)
        ]
        for url, part in chunks:
            chunk = {str(i): entry for i, entry in enumerate(part)}
            for attempt in range(BATCH_ATTEMPTS):
                batch = [
                    {"Id": i, "MessageBody": body, "MessageGroupId": group, **_delay(delay)}
                    for i, (_, body, group, delay) in chunk.items()
                ]
                try:
                    resp = self._sqs.send_message_batch(QueueUrl=url, Entries=batch)
                except ClientError as exc:
                    error = exc.response.get("Error", {})
                    unsent.update({key: f"{error.get('Code')}: {error.get('Message')}" for key, *_ in chunk.values()})
                    break
                failed = {f["Id"]: f for f in resp.get("Failed", [])}
                for entry_id, failure in failed.items():
                    if failure.get("SenderFault") or attempt == BATCH_ATTEMPTS - 1:
                        unsent[chunk[entry_id][0]] = f"{failure.get('Code')}: {failure.get('Message')}"
                chunk = {i: entry for i, entry in chunk.items() if i in failed and entry[0] not in unsent}
                if not chunk:
                    break
                _back_off(attempt)
        return unsent


@dataclass(frozen=True)
class Requeued:
    """A job message to send again (JobQueue.requeue): ``key`` names it in the answer."""

    key: str
    priority: Priority
    owner_id: str
    job_id: str
    receives: int


# Deliveries of a due schedule that failed (throttling, a queue briefly unavailable): retried
# by EventBridge Scheduler for up to a day, then sent to the dead-letter queue.
SCHEDULE_RETRY_POLICY = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


class ScheduleNotFound(Exception):
    """The schedule is not there (it fired and deleted itself, or was deleted)."""


class JobScheduler:
    """The jobs' one-time EventBridge Scheduler schedules, in the stack's schedule group.

    Each sends a job's message (``message_body``) to the job queue at its due time, acting
    as the scheduler role (which may only send to the job queues), then deletes itself.
    """

    def __init__(self, client: Any, group_name: str, role_arn: str, dead_letter_arn: str) -> None:
        self._scheduler = client
        self._group = group_name
        self._role = role_arn
        self._dead_letter = dead_letter_arn

    def create(self, job: Job, name: str, due: datetime, queue_arn: str) -> None:
        """A schedule ``name`` that sends ``job``'s message to ``queue_arn`` at ``due`` (UTC)."""
        self._scheduler.create_schedule(
            Name=name,
            GroupName=self._group,
            ScheduleExpression=at_expression(due),
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            State="ENABLED",
            Description=f"job {job.job_id}",
            Target={
                "Arn": queue_arn,
                "RoleArn": self._role,
                "Input": message_body(job),
                "RetryPolicy": SCHEDULE_RETRY_POLICY,
                "DeadLetterConfig": {"Arn": self._dead_letter},
            },
        )

    def delete(self, name: str) -> None:
        """Delete schedule ``name``; ScheduleNotFound if it is not there."""
        try:
            self._scheduler.delete_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise ScheduleNotFound(name) from None
            raise


def _delay(seconds: int) -> dict[str, int]:
    return {"DelaySeconds": seconds} if seconds else {}


def message_body(job: Job) -> str:
    """What the worker receives: which job to run (its record holds the rest)."""
    return job_message_body(job.owner_id, job.job_id)


def job_message_body(owner_id: str, job_id: str, receives: int = 0) -> str:
    """A job message's body; ``receives`` (a message the worker sent back untouched): the
    receives its job's earlier messages used, which count toward the job's attempts."""
    body: dict[str, Any] = {"owner_id": owner_id, "job_id": job_id}
    if receives:
        body["receives"] = receives
    return json.dumps(body, separators=(",", ":"))
