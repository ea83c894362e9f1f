"""Function logs: to the console (prefixed with the function's name) and to CloudWatch Logs.

Each execution environment writes to its own log stream in the function's log group
(``/aws/lambda/<name>`` unless the function's LoggingConfig says otherwise), named like
Lambda's (``YYYY/MM/DD/[$LATEST]<id>``), so ``aws logs tail`` / ``invoke logs`` read them as
on AWS. Shipping is batched by a background thread with a bounded buffer.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tooling.local_runtime.discovery import Backend
from tooling.local_runtime.errors import LocalRuntimeError

Console = Callable[[str], None]
RUNTIME_PREFIX = "local-runtime"
_MAX_BUFFERED = 20_000
_MAX_BATCH_EVENTS = 5_000
_MAX_BATCH_BYTES = 900_000
_FLUSH_SECONDS = 0.5


def print_console(line: str) -> None:
    """The default console: one line to stdout, flushed."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class _Event:
    function: str
    group: str
    stream: str
    timestamp_ms: int
    message: str


class LogRouter:
    """Sends log lines to the console and (batched) to CloudWatch Logs on the backend."""

    def __init__(
        self,
        backend: Backend | None,
        console: Console | None = print_console,
        writer: Callable[[str], Any] | None = None,
    ) -> None:
        self._backend = backend
        # function name -> the logs client its lines are written with (on AWS Lambda writes
        # them with the function's execution role); default: the backend's own client.
        self._writer = writer
        self._console = console
        self._console_lock = threading.Lock()
        self._queue: queue.Queue[_Event | None] = queue.Queue(maxsize=_MAX_BUFFERED)
        self._known_streams: set[tuple[str, str]] = set()
        self._dropped = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._last_error = ""

    # -- console --------------------------------------------------------------------

    def say(self, message: str, source: str = RUNTIME_PREFIX) -> None:
        """A line from the runtime itself (console only)."""
        self._print(source, message)

    def _print(self, source: str, message: str) -> None:
        if self._console is None:
            return
        with self._console_lock:
            for part in message.replace("\r", "\n").split("\n"):
                self._console(f"[{source}] {part}")

    # -- function logs --------------------------------------------------------------

    def emit(self, function: str, group: str, stream: str, message: str) -> None:
        """One log event of ``function`` (to the console and to CloudWatch Logs)."""
        self._print(function, message)
        if self._backend is None:
            return
        try:
            self._queue.put_nowait(
                _Event(function, group, stream, int(time.time() * 1000), message.replace("\r", "\n"))
            )
            self._idle.clear()
        except queue.Full:
            self._dropped += 1

    def start(self) -> None:
        if self._backend is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="local-runtime-logs", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything emitted so far is in CloudWatch Logs."""
        return self._idle.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            batch: list[_Event] = []
            try:
                first = self._queue.get(timeout=_FLUSH_SECONDS)
            except queue.Empty:
                self._idle.set()
                if self._stop.is_set():
                    return
                continue
            if first is not None:
                batch.append(first)
            deadline = time.monotonic() + 0.1
            while len(batch) < _MAX_BATCH_EVENTS and time.monotonic() < deadline:
                try:
                    item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if item is not None:
                    batch.append(item)
            self._ship(batch)
            if self._queue.empty():
                self._idle.set()
            if self._stop.is_set() and self._queue.empty():
                return

    def _ship(self, events: list[_Event]) -> None:
        assert self._backend is not None
        by_stream: dict[tuple[str, str, str], list[_Event]] = {}
        for event in events:
            by_stream.setdefault((event.function, event.group, event.stream), []).append(event)
        for (function, group, stream), items in by_stream.items():
            try:
                logs = self._writer(function) if self._writer else self._backend.client("logs")
                self._ensure_stream(logs, group, stream)
                items.sort(key=lambda e: e.timestamp_ms)
                chunk: list[dict[str, object]] = []
                size = 0
                for item in items:
                    message = item.message or " "
                    if chunk and (size + len(message) + 26 > _MAX_BATCH_BYTES):
                        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=chunk)
                        chunk, size = [], 0
                    chunk.append({"timestamp": item.timestamp_ms, "message": message})
                    size += len(message) + 26
                if chunk:
                    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=chunk)
            except (ClientError, BotoCoreError, LocalRuntimeError) as exc:
                text = f"could not write logs to CloudWatch Logs group {group}: {exc}"
                if text != self._last_error:
                    self._last_error = text
                    self.say(text)
        if self._dropped:
            self.say(f"dropped {self._dropped} log lines (CloudWatch Logs shipping fell behind)")
            self._dropped = 0

    def _ensure_stream(self, logs: Any, group: str, stream: str) -> None:
        """Create the group (as Lambda does when Terraform did not) and the stream, once."""
        if (group, stream) in self._known_streams:
            return
        # Lambda creates a missing group only if the role may (logs:CreateLogGroup); the
        # stack's roles may not, as Terraform creates the groups: a denial is no error here.
        with contextlib.suppress(ClientError):
            logs.create_log_group(logGroupName=group)
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        self._known_streams.add((group, stream))
