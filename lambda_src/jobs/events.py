"""Job status events: which writes of the jobs table publish an event, and what it says.

The events are derived from the table's DynamoDB stream (NEW_AND_OLD_IMAGES), never sent by
the function that wrote: a function that dies between its write and a publish would lose the
event, the stream does not. The publisher (``jobs.publisher``) reads the stream and calls
:func:`publish`; the rule here is pure and needs no AWS.

- An INSERT (a new job) publishes, with ``previous_status`` null.
- A MODIFY publishes only when ``status`` differs between the old and the new image: a
  progress, webhook-state or cancel-request write changes no status and publishes nothing.
- A REMOVE (TTL expiry) publishes nothing.

``event_id`` is the stream record's ``eventID``: a record delivered again (a retried batch,
a killed publisher) gives an event with the same id, so consumers dedupe by it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

DETAIL_TYPE = "Job Status Changed"
MAX_ENTRIES_PER_PUT = 10  # EventBridge PutEvents takes at most 10 entries per call


@dataclass(frozen=True)
class StreamChange:
    """One DynamoDB stream record of the jobs table, its images already deserialized."""

    event_id: str
    event_name: str  # INSERT | MODIFY | REMOVE
    sequence_number: str
    old_image: Mapping[str, Any] | None
    new_image: Mapping[str, Any] | None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def status_detail(change: StreamChange) -> dict[str, Any] | None:
    """The ``detail`` of the change's ``Job Status Changed`` event, or None if it publishes none."""
    new = change.new_image
    if change.event_name not in ("INSERT", "MODIFY") or not new or not new.get("status"):
        return None
    old = change.old_image or {}
    previous = _text(old.get("status")) if change.event_name == "MODIFY" else None
    status = str(new["status"])
    if change.event_name == "MODIFY" and previous == status:
        return None  # progress, webhook state, cancel request, lease: no status change
    detail: dict[str, Any] = {
        "event_id": change.event_id,
        "job_id": _text(new.get("job_id")),
        "owner_id": _text(new.get("owner_id")),
        "name": _text(new.get("name")),
        "action": _text(new.get("action")),
        "priority": _text(new.get("priority")) or "normal",  # records from before priorities
        "previous_status": previous,
        "status": status,
        "created_at": _text(new.get("createdAt")),
        "changed_at": _text(new.get("updatedAt")),
    }
    if status == "COMPLETE" and new.get("S3FileKey"):
        detail["result_key"] = str(new["S3FileKey"])
    if status == "FAILED" and new.get("error") is not None:
        detail["error"] = str(new["error"])
    if new.get("callbackUrl"):
        detail["callback_url"] = str(new["callbackUrl"])
    return detail


def event_entry(detail: Mapping[str, Any], bus_name: str, source: str) -> dict[str, Any]:
    """The PutEvents entry of one event detail."""
    return {
        "EventBusName": bus_name,
        "Source": source,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail, separators=(",", ":"), sort_keys=True),
        "Resources": [],
    }


class EventSink(Protocol):
    """Where entries go: ``put`` returns the indexes of the entries that could not be put."""

    def put(self, entries: Sequence[Mapping[str, Any]]) -> list[int]: ...


@dataclass(frozen=True)
class PublishReport:
    published: int  # entries put (a redelivered record counts again)
    skipped: int  # records that publish nothing (no status change, REMOVE)
    failed_sequence_numbers: list[str]  # the first record whose event could not be put, and every later one


def publish(changes: Iterable[StreamChange], sink: EventSink, bus_name: str, source: str) -> PublishReport:
    """Put the events of ``changes`` (in stream order), ``MAX_ENTRIES_PER_PUT`` per call.

    At the first chunk with an entry that could not be put (after the sink's own retries), the
    record of that entry and every later record of the batch are reported failed; later chunks
    are not sent. Lambda then retries the batch from the first failed sequence number, so a
    job's events keep their stream order on the first attempt and nothing after a failure is
    skipped.
    """
    ordered = list(changes)
    pending: list[tuple[int, dict[str, Any]]] = []  # (index of the record, its entry)
    skipped = 0
    for index, change in enumerate(ordered):
        detail = status_detail(change)
        if detail is None:
            skipped += 1
        else:
            pending.append((index, event_entry(detail, bus_name, source)))
    published = 0
    for start in range(0, len(pending), MAX_ENTRIES_PER_PUT):
        chunk = pending[start : start + MAX_ENTRIES_PER_PUT]
        failed = sorted(set(sink.put([entry for _, entry in chunk])))
        published += len(chunk) - len(failed)
        if failed:
            first = chunk[failed[0]][0]
            return PublishReport(published, skipped, [c.sequence_number for c in ordered[first:]])
    return PublishReport(published, skipped, [])
