"""EventBridge Scheduler's one-time schedules, fired at their time (moto stores them, never fires them).

The firer re-lists the backend's schedules every ``interval`` seconds (ListScheduleGroups,
ListSchedules per group, GetSchedule for each new one) and keeps the enabled one-time ones
(``at(yyyy-mm-ddThh:mm:ss)`` in their ``ScheduleExpressionTimezone``) in a timer heap. At a
schedule's time it reads the schedule again (a schedule deleted meanwhile, e.g. by a job's
cancel, does not fire), then does what Scheduler does with an SQS target: assume the
schedule's role as the ``scheduler.amazonaws.com`` service (``SCHEDULER_SERVICE_CREDENTIALS``:
the role's trust policy must name Scheduler) and send the target's ``Input`` to the queue with
the role's credentials, so IAM checks the role's policy. A failed send is retried every
``retry_seconds`` until the target's ``RetryPolicy`` gives up (attempts or event age), then
the input goes to the target's ``DeadLetterConfig`` queue, as the role too. After the attempt,
a schedule with ``ActionAfterCompletion`` DELETE is deleted; any other is not fired again.

Precision: a schedule fires within ``interval`` of being created if it is already due, else at
its time (the heap wakes the thread then; no busy loop). AWS's own precision for a one-time
schedule with ``FlexibleTimeWindow`` OFF is about a minute. Rate and cron schedules and
targets other than SQS queues are not fired (a console line says so, once per schedule).
"""

from __future__ import annotations

import datetime
import heapq
import re
import threading
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tooling.local_runtime.credentials import ExecutionRoles
from tooling.local_runtime.discovery import Backend
from tooling.local_runtime.errors import LocalRuntimeError
from tooling.local_runtime.logs import LogRouter

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_SQS_ARN = re.compile(r"^arn:[^:]+:sqs:(?P<region>[^:]+):(?P<account>\d+):(?P<name>.+)$")
DEFAULT_RETRY = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


def due_epoch(expression: str, timezone: str | None) -> float | None:
    """Epoch seconds of a one-time ``at(...)`` expression in ``timezone``; None for rate/cron."""
    match = _AT.match(expression.strip())
    if match is None:
        return None
    local = datetime.datetime.fromisoformat(match[1])
    return local.replace(tzinfo=zoneinfo.ZoneInfo(timezone or "UTC")).timestamp()


@dataclass(order=True)
class _Due:
    at: float
    key: tuple[str, str] = field(compare=False)  # (group, name)
    attempt: int = field(default=0, compare=False)
    first_due: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class Firing:
    """One schedule fired (for tests, `invoke bench` and diagnostics)."""

    group: str
    name: str
    due: float  # epoch seconds of its at(...)
    fired: float  # epoch seconds when its message was sent
    delivered: bool  # False: it went to the dead-letter queue (or nowhere)


class ScheduleFirer:
    """Fires the backend's due one-time schedules. See the module docstring."""

    def __init__(
        self,
        backend: Backend,
        roles: ExecutionRoles,
        logs: LogRouter,
        *,
        interval: float = 1.0,
        retry_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._backend = backend  # lists, reads and deletes schedules (the service's own doing)
        self._roles = roles  # acting as scheduler.amazonaws.com: assumes each schedule's role
        self._logs = logs
        self.interval = interval
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._heap: list[_Due] = []
        self._known: set[tuple[str, str]] = set()  # in the heap, or fired and kept (not DELETE)
        self._noted: set[tuple[str, str]] = set()
        self._clients: dict[str, Any] = {}  # role ARN -> an SQS client acting as it
        self._urls: dict[str, str] = {}  # queue ARN -> URL
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""
        self.firings: list[Firing] = []

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="schedule-firer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def poll(self) -> None:
        """Re-list now (the thread does it every ``interval``)."""
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        next_list = 0.0
        while not self._stop.is_set():
            now = self._clock()
            if now >= next_list:
                try:
                    self._discover()
                    self._last_error = ""
                except (ClientError, BotoCoreError) as exc:
                    self._problem(f"could not list schedules ({exc}); retrying")
                next_list = self._clock() + self.interval
            while self._heap and self._heap[0].at <= self._clock() and not self._stop.is_set():
                self._fire(heapq.heappop(self._heap))
            wait = next_list - self._clock()
            if self._heap:
                wait = min(wait, self._heap[0].at - self._clock())
            if self._wake.wait(max(wait, 0.0)):
                self._wake.clear()
                next_list = 0.0 if not self._stop.is_set() else next_list

    def _discover(self) -> None:
        scheduler = self._backend.client("scheduler")
        listed: set[tuple[str, str]] = set()
        for group in _pages(scheduler.list_schedule_groups, "ScheduleGroups"):
            for summary in _pages(scheduler.list_schedules, "Schedules", GroupName=group["Name"]):
                key = (summary.get("GroupName") or group["Name"], summary["Name"])
                listed.add(key)
                if key in self._known or summary.get("State", "ENABLED") != "ENABLED":
                    continue
                schedule = self._get(key)
                if schedule is None:
                    continue
                due = due_epoch(schedule.get("ScheduleExpression", ""), schedule.get("ScheduleExpressionTimezone"))
                if due is None:
                    self._note(key, f"schedule {key[1]}: {schedule.get('ScheduleExpression')} is not fired here")
                    continue
                self._known.add(key)
                heapq.heappush(self._heap, _Due(due, key, 0, due))
        # Forget what is gone (deleted: its heap entry finds it missing and does nothing).
        self._known &= listed | {d.key for d in self._heap}

    def _get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        try:
            schedule: dict[str, Any] = self._backend.client("scheduler").get_schedule(Name=key[1], GroupName=key[0])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return schedule

    def _fire(self, due: _Due) -> None:
        try:
            schedule = self._get(due.key)
        except (ClientError, BotoCoreError) as exc:
            self._problem(f"could not read schedule {due.key[1]} ({exc}); retrying")
            heapq.heappush(self._heap, _Due(self._clock() + self.retry_seconds, due.key, due.attempt, due.first_due))
            return
        if schedule is None or schedule.get("State", "ENABLED") != "ENABLED":
            self._known.discard(due.key)  # deleted (e.g. its job was cancelled) or disabled
            return
        target = schedule.get("Target") or {}
        queue = _SQS_ARN.match(str(target.get("Arn", "")))
        if queue is None:
            self._note(due.key, f"schedule {due.key[1]}: target {target.get('Arn')} is not an SQS queue; not fired")
            return
        body = target.get("Input") or "{}"
        try:
            self._send(target["RoleArn"], due.key[1], target["Arn"], body)
            delivered = True
        except (ClientError, BotoCoreError, LocalRuntimeError, KeyError) as exc:
            retry = {**DEFAULT_RETRY, **(target.get("RetryPolicy") or {})}
            age = self._clock() - due.first_due
            if due.attempt < int(retry["MaximumRetryAttempts"]) and age < float(retry["MaximumEventAgeInSeconds"]):
                self._problem(f"schedule {due.key[1]}: sending to {target.get('Arn')} failed ({exc}); retrying")
                later = _Due(self._clock() + self.retry_seconds, due.key, due.attempt + 1, due.first_due)
                heapq.heappush(self._heap, later)
                return
            delivered = False
            self._dead_letter(target, due.key[1], body, exc)
        self.firings.append(Firing(due.key[0], due.key[1], due.first_due, self._clock(), delivered))
        if schedule.get("ActionAfterCompletion") == "DELETE":
            try:
                self._backend.client("scheduler").delete_schedule(Name=due.key[1], GroupName=due.key[0])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    self._problem(f"could not delete fired schedule {due.key[1]}: {exc}")
            except BotoCoreError as exc:
                self._problem(f"could not delete fired schedule {due.key[1]}: {exc}")
        # Kept in _known until a listing no longer shows it: a one-time schedule fires once, even
        # when deleting it failed or it is kept (ActionAfterCompletion NONE).

    def _send(self, role_arn: str, session: str, queue_arn: str, body: str) -> None:
        match = _SQS_ARN.match(queue_arn)
        assert match is not None
        url = self._urls.get(queue_arn)
        if url is None:  # Scheduler addresses the queue by ARN: the lookup is the service's, not the role's
            owner = self._backend.client("sqs")
            url = owner.get_queue_url(QueueName=match["name"], QueueOwnerAWSAccountId=match["account"])["QueueUrl"]
            self._urls[queue_arn] = url
        sqs = self._clients.get(role_arn)
        if sqs is None:
            sqs = self._clients[role_arn] = self._roles.client(role_arn, "scheduler", "sqs")
        sqs.send_message(QueueUrl=url, MessageBody=body)

    def _dead_letter(self, target: dict[str, Any], name: str, body: str, cause: Exception) -> None:
        dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not dlq:
            self._logs.say(f"schedule {name}: not delivered ({cause}); no dead-letter queue, the event is dropped")
            return
        try:
            self._send(target["RoleArn"], name, dlq, body)
            self._logs.say(f"schedule {name}: not delivered ({cause}); sent to the dead-letter queue {dlq}")
        except (ClientError, BotoCoreError, LocalRuntimeError, KeyError) as exc:
            self._logs.say(f"schedule {name}: not delivered ({cause}), nor to the dead-letter queue ({exc})")

    def _note(self, key: tuple[str, str], text: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self._logs.say(text)

    def _problem(self, text: str) -> None:
        if text != self._last_error:
            self._last_error = text
            self._logs.say(f"schedule firer: {text}")


def _pages(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    for _ in range(1000):
        resp = call(**kwargs, **({"NextToken": token} if token else {}))
        items.extend(resp.get(key) or [])
        token = resp.get("NextToken")
        if not token:
            break
    return items
