"""Job items shaped exactly like the ones the stack writes (``jobs.store``); their messages'
body is ``tooling.redrive.job_message_body``.

The floor and the listing seed write these directly; the expressions are the data layer's
(``JobTable.create``/``claim``/``complete``) so the floor makes the same calls as the stack.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

RETENTION_DAYS = 7

CLAIM_UPDATE = (
    "SET #status = :processing, owner_status = :os, startedAt = :now, updatedAt = :now, "
    "attempts = if_not_exists(attempts, :zero) + :one, lease_owner = :lo, lease_until = :lu"
)
CLAIM_CONDITION = (
    "attribute_exists(job_id) AND (#status = :pending OR "
    "(#status = :processing AND (attribute_not_exists(lease_until) OR lease_until < :epoch)))"
)
COMPLETE_UPDATE = (
    "SET #status = :complete, owner_status = :os, S3FileKey = :key, completedAt = :now, updatedAt = :now "
    "REMOVE lease_owner, lease_until, #error"
)
COMPLETE_CONDITION = "#status = :processing AND lease_owner = :lo"
# The quota counter's parts of a create and of a finish (``JobTable._charge``/``_finish``), with
# limits no floor run reaches: the floor pays for the same writes, never for a refusal.
QUOTA_SLOT = "quota_slot"
FLOOR_INTERVAL_MS = 1
FLOOR_MAX_ACTIVE = 1_000_000


def charge_update(quota_table: str, owner_id: str, counter: dict[str, Any] | None, now_ms: int) -> dict[str, Any]:
    """The counter's Update in a create's transaction, in the form the last read calls for."""
    tat = int((counter or {}).get("tat_ms", {}).get("N", 0))
    values: dict[str, Any] = {":zero": _n(0), ":n": _n(1), ":most": _n(FLOOR_MAX_ACTIVE - 1), ":now": _n(now_ms)}
    room = "(attribute_not_exists(active_jobs) OR active_jobs <= :most)"
    if tat < now_ms:
        values[":next"] = _n(now_ms + FLOOR_INTERVAL_MS)
        update = "SET active_jobs = if_not_exists(active_jobs, :zero) + :n, tat_ms = :next"
        condition = f"(attribute_not_exists(tat_ms) OR tat_ms < :now) AND {room}"
    else:
        values.update({":t": _n(FLOOR_INTERVAL_MS), ":limit": _n(now_ms + FLOOR_MAX_ACTIVE)})
        update = "SET active_jobs = if_not_exists(active_jobs, :zero) + :n, tat_ms = tat_ms + :t"
        condition = f"tat_ms BETWEEN :now AND :limit AND {room}"
    return {
        "TableName": quota_table,
        "Key": {"owner_id": _s(owner_id)},
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def free_slot(quota_table: str, owner_id: str) -> dict[str, Any]:
    """The counter's Update in a finish's transaction."""
    return {
        "TableName": quota_table,
        "Key": {"owner_id": _s(owner_id)},
        "UpdateExpression": "ADD active_jobs :minus_one",
        "ExpressionAttributeValues": {":minus_one": _n(-1)},
    }


def uuid7(now_ms: int | None = None) -> str:
    """A UUIDv7: time-ordered, as the stack's job ids."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64 | 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def pending_item(owner_id: str, job_id: str, name: str, now: datetime) -> dict[str, Any]:
    """A new PENDING job record (what POST /job writes)."""
    return {
        "owner_id": _s(owner_id),
        "job_id": _s(job_id),
        "name": _s(name),
        "action": _s("demo"),
        "format": _s("text"),
        "context1": _s("hello"),
        "context2": _s("world"),
        "status": _s("PENDING"),
        "owner_status": _s(f"{owner_id}#PENDING"),
        "createdAt": _s(iso(now)),
        "updatedAt": _s(iso(now)),
        "attempts": _n(0),
        "expires_at": _n(int((now + timedelta(days=RETENTION_DAYS)).timestamp())),
    }


def complete_item(owner_id: str, job_id: str, name: str, now: datetime) -> dict[str, Any]:
    """A finished job record (what the listing seed writes for other users)."""
    item = pending_item(owner_id, job_id, name, now)
    stamp = _s(iso(now))
    item.update(
        {
            "status": _s("COMPLETE"),
            "owner_status": _s(f"{owner_id}#COMPLETE"),
            "startedAt": stamp,
            "completedAt": stamp,
            "updatedAt": stamp,
            "attempts": _n(1),
            "S3FileKey": _s(result_key(owner_id, job_id, now)),
        }
    )
    return item


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings by UTF-8 length, numbers ~ digits)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        for kind, raw in value.items():
            size += len(str(raw).encode()) if kind in ("S", "N") else len(json.dumps(raw))
    return size


def result_key(owner_id: str, job_id: str, created: datetime) -> str:
    return f"{owner_id}/{created.strftime('%Y-%m-%d')}/{job_id}.txt"


def utc_now() -> datetime:
    return datetime.now(UTC)
