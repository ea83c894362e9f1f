"""The event bus, behind a small interface: EventBridge PutEvents with its failed entries retried.

PutEvents answers 200 even when some entries were not put: each failed entry carries an
``ErrorCode`` (``ThrottlingException``, ``InternalFailure``...) and the call's
``FailedEntryCount`` says how many. Only those entries are sent again, with jittered
back-off; an error of the whole call (after botocore's own retries) counts as every entry of
that attempt failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from jobs.store import _back_off
from jobs.telemetry import logger

DEFAULT_PUT_ATTEMPTS = 4


class EventBus:
    """Puts entries on one EventBridge bus."""

    def __init__(self, client: Any, attempts: int = DEFAULT_PUT_ATTEMPTS) -> None:
        self._client = client
        self._attempts = max(1, attempts)

    def put(self, entries: Sequence[Mapping[str, Any]]) -> list[int]:
        """Put ``entries`` (at most 10); the indexes of those still not put after every attempt."""
        remaining = list(range(len(entries)))
        for attempt in range(self._attempts):
            if not remaining:
                break
            if attempt:
                _back_off(attempt - 1)
            try:
                answer = self._client.put_events(Entries=[dict(entries[i]) for i in remaining])
            except (ClientError, BotoCoreError) as exc:
                logger.warning(
                    "PutEvents failed", extra={"attempt": attempt + 1, "entries": len(remaining), "error": str(exc)}
                )
                continue
            results = answer.get("Entries") or []
            if not answer.get("FailedEntryCount") and len(results) == len(remaining):
                return []
            still = [
                index
                for index, result in zip(remaining, results, strict=False)
                if not result.get("EventId") or result.get("ErrorCode")
            ]
            still += remaining[len(results) :]  # an answer shorter than the request: the rest were not put
            codes = sorted({str(r.get("ErrorCode")) for r in results if r.get("ErrorCode")})
            logger.warning(
                "PutEvents did not put every entry; retrying those",
                extra={"attempt": attempt + 1, "failed": len(still), "of": len(remaining), "codes": codes},
            )
            remaining = still
        return remaining
