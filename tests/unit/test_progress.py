"""Progress of a running job and cancelling it (README "Progress and cancelling running jobs"):
the reporter's rules (clamping, throttle, time left), the conditional writes, DELETE of a
PROCESSING job, and the worker stopping on a cancel request."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest

from jobs import actions, progress
from jobs.model import iso, utc_now
from jobs.progress import CancelRequested, Progress, ProgressReporter, clean
from jobs.service import JobMessage, RetryLater
from jobs.worker import job_processor
from tests.unit.conftest import TABLE, VALID_JOB, Stack, api_event, call_api, call_worker, sqs_record

CREATED = "2025-01-01T00:00:00.000Z"


# ---- the reporter (pure) ---------------------------------------------------------------------


def test_fraction_is_clamped_and_message_bounded() -> None:
    assert clean(-0.5, "x") == (0.0, "x")
    assert clean(7, "x") == (1.0, "x")
    assert clean(0.25, "a\nb\tc") == (0.25, "a b c")
    fraction, message = clean(0.5, "m" * 1000)
    assert fraction == 0.5 and len(message) == progress.MESSAGE_MAX_CHARS and message.endswith("…")
    for bad in (math.nan, math.inf, "0.5", None, True):
        with pytest.raises(ValueError, match="progress fraction"):
            clean(bad, "x")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reporter_writes_at_most_once_per_interval_and_never_goes_backwards() -> None:
    written: list[Progress] = []
    clock = Clock()
    report = ProgressReporter(written.append, interval=1.0, clock=clock)
    for at, fraction in ((0.0, 0.1), (0.3, 0.2), (0.6, 0.15), (1.0, 0.1), (1.5, 0.6), (2.2, 0.7)):
        clock.now = at
        report(fraction, f"at {at}")
    # the first report at once, then the first one at least a second after the last write
    assert [(p.fraction, p.message) for p in written] == [(0.1, "at 0.0"), (0.2, "at 1.0"), (0.7, "at 2.2")]
    assert report.writes == 3


def test_reporter_stops_the_action_when_the_invocation_is_nearly_over() -> None:
    written: list[Progress] = []
    left = [10.0]
    report = ProgressReporter(written.append, time_left=lambda: left[0], margin=1.5)
    report(0.1, "early")
    left[0] = 1.0
    with pytest.raises(progress.OutOfTime, match="stopped at 20%"):
        report(0.2, "late")
    assert len(written) == 1


def test_a_stop_is_not_swallowed_by_an_actions_except_exception() -> None:
    def write(_: Progress) -> None:
        raise CancelRequested("cancel requested")

    def careless_action(report: Callable[[float, str], None]) -> str:
        try:
            report(0.5, "half")
        except Exception:  # an action that hides its own errors
            return "finished anyway"
        return "finished"

    with pytest.raises(CancelRequested):
        careless_action(ProgressReporter(write))


# ---- the long action --------------------------------------------------------------------------


def chain(seed: str, rounds: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    for _ in range(rounds - 1):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def test_hash_chain_computes_the_chain_and_reports_honestly() -> None:
    reports: list[float] = []
    job = actions.ActionInput("id", "n", "hash-chain", "seed", "50_000", CREATED, report=lambda f, m: reports.append(f))
    result = actions.hash_chain(job)
    assert result["digest"] == chain("seed", 50_000)
    assert [c["round"] for c in result["checkpoints"]] == [5_000 * i for i in range(1, 11)]
    assert result["checkpoints"][3]["digest"] == chain("seed", 20_000)
    assert reports == sorted(reports) and reports[0] < 0.01 and reports[-1] == 1.0
    assert len(reports) == 1 + 50_000 // actions.HASH_CHAIN_STEP + 1  # first round, each step, the end
    text = actions.run_action(actions.ActionInput("id", "n", "hash-chain", "seed", "3", CREATED))
    assert text.startswith(f"sha256^3(context1) = {chain('seed', 3)}\n")


@pytest.mark.parametrize("rounds", ["", "abc", "0", "-5", "1.5", "10_000_001", "²", "9" * 5000])
def test_hash_chain_refuses_bad_rounds_at_submit(rounds: str) -> None:
    body = {**VALID_JOB, "action": "hash-chain", "context2": rounds or " "}
    resp = call_api(api_event("POST", "/job", body=body))
    assert resp.status == 400
    assert resp.body["error"] in ("invalid_context", "empty_field"), resp.body
    if rounds:
        assert resp.body["error"] == "invalid_context" and "rounds" in resp.body["message"]


def test_hash_chain_refuses_bad_rounds_in_a_batch(stack: Stack) -> None:
    good = {**VALID_JOB, "action": "hash-chain", "context2": "1000"}
    resp = call_api(api_event("POST", "/jobs/batch", body={"jobs": [good, {**good, "context2": "lots"}]}))
    assert resp.status == 400 and resp.body["error"] == "invalid_batch"
    assert [(i["index"], i["error"]) for i in resp.body["items"]] == [(1, "invalid_context")]
    assert stack.items() == []


# ---- the worker ---------------------------------------------------------------------------------


def new_job(stack: Stack, **fields: str) -> tuple[str, str]:
    resp = call_api(api_event("POST", "/job", body={**VALID_JOB, **fields}))
    assert resp.status == 202, resp.body
    job_id = resp.body["job_id"]
    [body] = [m["Body"] for m in stack.messages() if json.loads(m["Body"])["job_id"] == job_id]
    return job_id, body


def get(job_id: str) -> dict[str, Any]:
    return call_api(api_event("GET", "/job", query={"job_id": job_id})).body


def delete(job_id: str) -> Any:
    return call_api(api_event("DELETE", "/job", query={"job_id": job_id}))


def raw_item(stack: Stack, job_id: str) -> dict[str, Any]:
    return stack.ddb.get_item(TableName=TABLE, Key={"owner_id": {"S": "user-a"}, "job_id": {"S": job_id}})["Item"]


class SteppedAction:
    """A stand-in for a long action: reports ``fractions`` one at a time, each after ``go`` is
    set (and cleared), signalling ``reported`` after each; catches Exception like a careless action."""

    def __init__(self, fractions: list[float]) -> None:
        self.fractions = fractions
        self.go = threading.Event()
        self.reported = threading.Event()
        self.swallowed: list[BaseException] = []
        self.finished = False

    def __call__(self, job: actions.ActionInput) -> str:
        for fraction in self.fractions:
            assert self.go.wait(10)
            self.go.clear()
            try:
                job.report(fraction, f"{fraction:.0%} done")
            except Exception as exc:
                self.swallowed.append(exc)
            self.reported.set()
        assert self.go.wait(10)
        self.finished = True
        return "done\n"

    def step(self) -> None:
        self.reported.clear()
        self.go.set()
        assert self.reported.wait(10)


def run_in_worker(body: str, receive_count: int = 1) -> tuple[threading.Thread, list[list[str]]]:
    """The worker handler on ``body`` in another thread; its batch item failures land in the list."""
    failures: list[list[str]] = []
    thread = threading.Thread(target=lambda: failures.append(call_worker(sqs_record(body, receive_count))))
    thread.start()
    return thread, failures


@pytest.fixture
def every_report_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """No throttle (each report is a write), so a test need not wait a second between reports."""
    monkeypatch.setattr(progress, "INTERVAL_SECONDS", 0.0)


@pytest.mark.usefixtures("every_report_written")
def test_progress_shows_while_running_and_goes_when_complete(stack: Stack) -> None:
    job_id, body = new_job(stack)
    action = SteppedAction([0.25, 0.6])
    with mock.patch("jobs.service.run_action", action):
        thread, failures = run_in_worker(body)
        action.step()
        first = get(job_id)
        action.step()
        second = get(job_id)
        listed = call_api(api_event("GET", "/jobs")).body
        action.go.set()
        thread.join(10)
    assert failures == [[]]
    assert first["status"] == second["status"] == "PROCESSING"
    assert first["progress"]["fraction"] == 0.25 and first["progress"]["message"] == "25% done"
    assert second["progress"]["fraction"] == 0.6 and second["progress"]["updatedAt"] >= first["progress"]["updatedAt"]
    assert [j["progress"]["fraction"] for j in listed if j["job_id"] == job_id] == [0.6]
    done = get(job_id)
    assert done["status"] == "COMPLETE" and "progress" not in done and "cancel_requested_at" not in done


@pytest.mark.usefixtures("every_report_written")
def test_cancel_of_a_running_job_stops_it_at_its_next_report(stack: Stack) -> None:
    job_id, body = new_job(stack)
    assert stack.counters()["user-a"]["active_jobs"] == 1
    action = SteppedAction([0.1, 0.2, 0.3])
    with mock.patch("jobs.service.run_action", action):
        thread, failures = run_in_worker(body)
        action.step()
        resp = delete(job_id)
        assert resp.status == 202
        assert resp.body["status"] == "PROCESSING" and resp.body["cancel_requested_at"]
        again = delete(job_id)  # a repeated request keeps the first one's time
        assert again.status == 202 and again.body["cancel_requested_at"] == resp.body["cancel_requested_at"]
        action.go.set()  # the next report learns of the request and stops the action
        thread.join(10)
    assert failures == [[]]  # acknowledged
    assert action.swallowed == [] and not action.finished  # its `except Exception` did not catch it
    record = get(job_id)
    assert record["status"] == "CANCELLED" and record["cancel_requested_at"] == resp.body["cancel_requested_at"]
    assert record["progress"]["fraction"] == 0.1  # how far it got
    assert record["completedAt"] >= record["cancel_requested_at"]
    assert stack.objects() == []  # no result
    assert stack.counters()["user-a"]["active_jobs"] == 0
    item = raw_item(stack, job_id)
    assert "lease_owner" not in item and "quota_slot" not in item
    final = delete(job_id)
    assert final.status == 409 and final.body["error"] == "not_cancellable"


def test_the_cancel_transition_frees_the_slot_once_and_late_writes_change_nothing(stack: Stack) -> None:
    from jobs.api import service

    job_id, _ = new_job(stack)
    table = service().table
    now = utc_now()
    epoch = int(now.timestamp())
    assert table.claim("user-a", job_id, "lease", epoch + 60, iso(now), epoch)
    assert table.record_progress("user-a", job_id, "lease", 0.4, "running", iso(now)) == (True, None)
    assert table.cancel_running("user-a", job_id, "lease", iso(now)) is None  # no request yet
    assert table.request_cancel("user-a", job_id, iso(now)) is not None
    written, current = table.record_progress("user-a", job_id, "lease", 0.5, "still", iso(now))
    assert not written and current is not None and current.cancel_requested_at == iso(now)
    assert table.cancel_running("user-a", job_id, "other-lease", iso(now)) is None
    cancelled = table.cancel_running("user-a", job_id, "lease", iso(now))
    assert cancelled is not None and cancelled.status.value == "CANCELLED"
    assert stack.counters()["user-a"]["active_jobs"] == 0
    before = raw_item(stack, job_id)
    assert table.cancel_running("user-a", job_id, "lease", iso(now)) is None
    assert table.complete("user-a", job_id, "lease", "user-a/x.txt", iso(now)) is None
    assert table.request_cancel("user-a", job_id, iso(now)) is None
    written, current = table.record_progress("user-a", job_id, "lease", 0.9, "late", iso(now))
    assert not written and current is not None and current.status.value == "CANCELLED"
    assert raw_item(stack, job_id) == before
    assert stack.counters()["user-a"]["active_jobs"] == 0


def test_a_late_progress_write_after_completion_changes_nothing(stack: Stack) -> None:
    job_id, body = new_job(stack)
    assert call_worker(sqs_record(body)) == []
    before = raw_item(stack, job_id)
    from jobs.api import service

    written, current = service().table.record_progress("user-a", job_id, "any-lease", 0.5, "late", iso(utc_now()))
    assert not written and current is not None and current.status.value == "COMPLETE"
    assert raw_item(stack, job_id) == before


def test_a_job_released_with_a_cancel_request_is_cancelled_when_next_claimed_not_run(stack: Stack) -> None:
    job_id, body = new_job(stack)
    runs: list[str] = []
    with mock.patch("jobs.service.run_action", side_effect=lambda job: runs.append(job.job_id) or "x"):
        # An attempt claimed the job, then died; a cancel request arrived meanwhile.
        from jobs.api import service

        table = service().table
        now = utc_now()
        assert table.claim("user-a", job_id, "dead", int(now.timestamp()) - 1, iso(now), int(now.timestamp()))
        assert delete(job_id).status == 202
        assert call_worker(sqs_record(body, receive_count=2)) == []
    assert runs == []
    assert get(job_id)["status"] == "CANCELLED" and stack.objects() == []
    assert stack.counters()["user-a"]["active_jobs"] == 0


@pytest.mark.usefixtures("every_report_written")
def test_a_cancel_request_after_the_last_report_loses_to_the_completion(stack: Stack) -> None:
    job_id, body = new_job(stack)
    action = SteppedAction([0.9])
    with mock.patch("jobs.service.run_action", action):
        thread, failures = run_in_worker(body)
        action.step()
        assert delete(job_id).status == 202
        action.go.set()  # it returns without another report
        thread.join(10)
    assert failures == [[]]
    record = get(job_id)
    assert record["status"] == "COMPLETE" and record["cancel_requested_at"]
    assert len(stack.objects()) == 1


def test_the_real_long_action_is_cancelled_through_the_worker(stack: Stack) -> None:
    """hash-chain end to end in-process: throttled writes (about one a second), a cancel request,
    and the job CANCELLED at the next write."""
    job_id, body = new_job(stack, action="hash-chain", context2=str(actions.HASH_CHAIN_MAX_ROUNDS))
    from jobs.store import JobTable

    writes: list[float] = []
    real = JobTable.record_progress

    def counting(self: JobTable, *args: Any) -> tuple[bool, Any]:
        writes.append(time.monotonic())
        return real(self, *args)

    with mock.patch.object(JobTable, "record_progress", counting):
        thread, failures = run_in_worker(body)
        deadline = time.monotonic() + 20
        while len(writes) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        running = get(job_id)
        assert delete(job_id).status == 202
        thread.join(30)
    assert failures == [[]]
    assert running["status"] == "PROCESSING" and 0 < running["progress"]["fraction"] < 1
    assert get(job_id)["status"] == "CANCELLED" and stack.objects() == []
    gaps = [b - a for a, b in itertools.pairwise(writes)]
    assert all(gap >= progress.INTERVAL_SECONDS for gap in gaps), gaps  # the throttle


@pytest.mark.usefixtures("every_report_written")
def test_a_report_with_the_invocation_nearly_over_fails_the_attempt(stack: Stack) -> None:
    job_id, body = new_job(stack, action="hash-chain", context2="100000")
    with pytest.raises(RetryLater, match="OutOfTime"):
        job_processor().process(JobMessage.parse(body), 1, 30.0, time_left=lambda: 0.5)
    item = raw_item(stack, job_id)
    assert item["status"]["S"] == "PROCESSING" and "OutOfTime" in item["error"]["S"]
    assert item["lease_until"]["N"] == "0"  # given back: the next delivery claims it at once
    assert stack.objects() == []


def test_a_redriven_job_with_a_cancel_request_is_cancelled_not_run(stack: Stack) -> None:
    """The user asked a running job to stop, it then FAILED; `invoke redrive` sends it back: the
    claim finds the request and the job ends CANCELLED without running."""
    from jobs.api import service
    from tooling.redrive import make_pending

    job_id, body = new_job(stack)
    table = service().table
    now = utc_now()
    epoch = int(now.timestamp())
    assert table.claim("user-a", job_id, "lease", epoch + 60, iso(now), epoch)
    assert delete(job_id).status == 202
    assert table.fail("user-a", job_id, "lease", "broken", iso(now), epoch) is not None
    failed = table.get("user-a", job_id)
    assert failed is not None and failed.status.value == "FAILED"
    assert make_pending(stack.ddb, TABLE, {**failed.public_view(), "owner_id": "user-a"}, "dead-letter", iso(now))
    runs: list[str] = []
    with mock.patch("jobs.service.run_action", side_effect=lambda job: runs.append(job.job_id) or "x"):
        assert call_worker(sqs_record(body, receive_count=1)) == []
    assert runs == [] and get(job_id)["status"] == "CANCELLED" and stack.objects() == []
