"""When a batch stops starting records: an invocation must end in time with its work done.

A worker invocation that times out loses its whole batch: every record comes back, the ones
it finished included, and under a slow downstream the retries make the backlog grow. So the
worker starts a record only while the time left covers what a record needs here, learnt from
the records this execution environment ran last (the slowest of them, doubled, never less
than a floor); the records it does not start are re-queued untouched (jobs.worker) and come
back to this or another environment.
"""

from __future__ import annotations

from collections import deque

# Never assume a record needs less than this (seconds): cold clients, a first slow call.
FLOOR_SECONDS = 1.0
# Headroom over the slowest recent record: a downstream that slows between two records.
FACTOR = 2.0
# How many recent records the estimate remembers.
WINDOW = 20


class RecordTimer:
    """The time a record needs, and whether one may still start in this invocation."""

    def __init__(self, floor_seconds: float = FLOOR_SECONDS, factor: float = FACTOR, window: int = WINDOW) -> None:
        self.floor_seconds = floor_seconds
        self.factor = factor
        self._recent: deque[float] = deque(maxlen=window)
        self._started = 0

    def new_invocation(self) -> None:
        self._started = 0

    def needed_seconds(self) -> float:
        return max(self.floor_seconds, self.factor * max(self._recent, default=0.0))

    def may_start(self, remaining_seconds: float) -> bool:
        """The first record of an invocation always starts (nothing would ever run otherwise)."""
        return self._started == 0 or remaining_seconds >= self.needed_seconds()

    def started(self) -> None:
        self._started += 1

    def finished(self, seconds: float) -> None:
        self._recent.append(max(seconds, 0.0))
