"""Progress of a running job, and how a running job is stopped (README "Progress and cancelling
running jobs").

An action reports progress through ``ActionInput.report(fraction, message)``. The worker gives it
a :class:`ProgressReporter`, which:

- cleans the report: ``fraction`` a finite number, clamped to 0..1 and never below the last one
  of this attempt (progress does not go backwards); ``message`` text, cut to
  ``MESSAGE_MAX_CHARS``;
- writes it to the job at most once per ``interval`` seconds (the first report at once; the
  reports between two writes only move the figure that the next write carries);
- learns from each write whether the job must stop: the write is conditional on the job being
  PROCESSING under this attempt's lease with no cancel request, and when it is refused the
  record it saw comes back in the same call. The reporter then raises :class:`CancelRequested`
  (a cancel request is pending) or :class:`LeaseLost` (another attempt holds the job, or it is
  finished) from ``report``, which ends the action;
- stops the action with :class:`OutOfTime` when the invocation is nearly over, so the worker
  ends in time (a timed-out invocation loses its whole batch) and the job is retried or fails
  with a reason, like any failed attempt.

These exceptions derive from ``BaseException``, not ``Exception``: an action's own
``except Exception`` does not swallow them by accident. An action that never reports cannot be
stopped: it runs to its end, and a cancel request is then ignored (the job completes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from jobs.model import iso, utc_now

# At most one progress write per job per this many seconds (a DynamoDB write each).
INTERVAL_SECONDS = 1.0
MESSAGE_MAX_CHARS = 200
# A report with less than this left of the invocation stops the action (OutOfTime): enough for
# the worker to give the job back (one conditional write) before the function's timeout.
TIME_LEFT_MARGIN_SECONDS = 1.5


@dataclass(frozen=True)
class Progress:
    """One written progress figure: ``{"fraction", "message", "updatedAt"}`` on the record."""

    fraction: float
    message: str
    updated_at: str


class StopJob(BaseException):
    """Raised from ``report`` to end the running action (not an ``Exception``: see the module)."""


class CancelRequested(StopJob):
    """``DELETE /job`` asked to cancel this running job: it ends CANCELLED, without a result."""


class LeaseLost(StopJob):
    """The job is no longer this attempt's (finished, or taken over): stop, write nothing."""


class OutOfTime(StopJob):
    """Too little of the invocation is left to go on: this attempt fails (and is retried)."""


def clean(fraction: object, message: object) -> tuple[float, str]:
    """The report as it is written: a fraction in 0..1 (clamped), a message of at most
    ``MESSAGE_MAX_CHARS`` printable characters. A fraction that is not a finite number is the
    action's mistake: ValueError."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise ValueError(f"progress fraction must be a number from 0 to 1, got {type(fraction).__name__}")
    value = float(fraction)
    if not math.isfinite(value):
        raise ValueError(f"progress fraction must be a finite number, got {value}")
    text = "".join(ch if ch.isprintable() else " " for ch in str(message))
    if len(text) > MESSAGE_MAX_CHARS:
        text = text[: MESSAGE_MAX_CHARS - 1] + "…"
    return min(max(value, 0.0), 1.0), text


class ProgressReporter:
    """The ``report(fraction, message)`` an action gets: cleans, throttles and writes (see the
    module). ``write`` stores one figure and raises :class:`StopJob` when the job must stop;
    ``time_left``: seconds left of the invocation (None: no limit)."""

    def __init__(
        self,
        write: Callable[[Progress], None],
        *,
        interval: float | None = None,
        time_left: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        margin: float | None = None,
    ) -> None:
        self._write = write
        self._interval = INTERVAL_SECONDS if interval is None else interval
        self._time_left = time_left
        self._clock = clock
        self._margin = TIME_LEFT_MARGIN_SECONDS if margin is None else margin
        self._last_write: float | None = None
        self.fraction = 0.0  # the highest fraction reported in this attempt
        self.writes = 0

    def __call__(self, fraction: float, message: str = "") -> None:
        value, text = clean(fraction, message)
        self.fraction = max(self.fraction, value)
        if self._time_left is not None:
            left = self._time_left()
            if left < self._margin:
                raise OutOfTime(f"stopped at {self.fraction:.0%}: {left:.1f}s of the invocation left")
        now = self._clock()
        if self._last_write is not None and now - self._last_write < self._interval:
            return
        self._last_write = now
        self._write(Progress(self.fraction, text, iso(utc_now())))
        self.writes += 1


def ignore_progress(fraction: float, message: str = "") -> None:
    """The ``report`` of an action run outside the worker (tests, tools): checks, writes nothing."""
    clean(fraction, message)
