"""RecordTimer: a batch starts a record only while the time left covers what one needs."""

from __future__ import annotations

from jobs.deadline import RecordTimer


def test_the_first_record_of_an_invocation_always_starts() -> None:
    timer = RecordTimer(floor_seconds=1.0)
    timer.new_invocation()
    assert timer.may_start(0.2)
    timer.started()
    assert not timer.may_start(0.9)
    assert timer.may_start(1.0)
    timer.new_invocation()
    assert timer.may_start(0.1)


def test_what_a_record_needs_follows_the_slowest_recent_one() -> None:
    timer = RecordTimer(floor_seconds=1.0, factor=2.0, window=3)
    assert timer.needed_seconds() == 1.0
    timer.finished(0.2)
    assert timer.needed_seconds() == 1.0  # never below the floor
    timer.finished(3.0)
    assert timer.needed_seconds() == 6.0
    timer.new_invocation()
    timer.started()
    assert not timer.may_start(5.9) and timer.may_start(6.0)
    for _ in range(3):  # the slow one leaves the window
        timer.finished(0.6)
    assert timer.needed_seconds() == 1.2
