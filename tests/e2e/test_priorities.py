"""Priorities on the deployed local stack: one queue and one event source mapping per
priority, each with its own maximum concurrency (local.tfvars: normal 4, high 2, low 2; the
local runtime's 8 environments of the unreserved worker hold all three).

A ``high`` job's submit-to-COMPLETE behind a backlog of ``normal`` jobs stays close to its
time on an idle stack, and a ``low`` job submitted with the backlog is not starved. Who may
submit ``high``: members of ``high_priority_group`` (local.tfvars), others get 403. The
issue's figure (a backlog of 500, goal <= 2x) is measured by ``invoke bench``; here a smaller
backlog and a generous bound keep the test short and steady on a busy machine.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.e2e.support import ROOT, User
from tooling.bench import flow
from tooling.local_stack import LocalStack

BACKLOG = 200
SAMPLES = 3
FACTOR, SLACK_S = 4.0, 5.0  # high under the backlog <= 4x idle + 5 s
HIGH_GROUP = re.search(
    r'^high_priority_group\s*=\s*"([^"]+)"', (ROOT / "environments" / "local.tfvars").read_text(), re.M
)[1]  # type: ignore[index]
JOB = {"name": "prio", "action": "demo", "context1": "hello", "context2": "world"}


def test_high_is_for_the_group_only(stack: LocalStack, make_user: Callable[[], User], make_member) -> None:
    outsider = make_user()
    refused = outsider.api.post_job({**JOB, "priority": "high"})
    assert refused.status_code == 403 and refused.json()["error"] == "priority_not_allowed", refused.text
    assert outsider.api.list_jobs().json() == []  # nothing was recorded
    member = make_member(HIGH_GROUP)
    accepted = member.api.post_job({**JOB, "priority": "high"})
    assert accepted.status_code == 202, accepted.text
    done = member.api.wait_terminal(accepted.json()["job_id"])
    assert (done["status"], done["priority"]) == ("COMPLETE", "high")
    low = outsider.api.post_job({**JOB, "priority": "low"})
    assert low.status_code == 202, low.text
    assert outsider.api.wait_terminal(low.json()["job_id"])["status"] == "COMPLETE"  # low has its own mapping


def test_high_overtakes_a_normal_backlog_and_low_is_not_starved(
    stack: LocalStack, make_user: Callable[[], User], make_member, queue_drained: None
) -> None:
    member, other = make_member(HIGH_GROUP), make_user()
    figures = flow.priorities(
        stack.api_url,
        stack.client("dynamodb"),
        stack.outputs["table_name"],
        flow.User(member.token, member.sub),
        flow.User(other.token, other.sub),
        BACKLOG,
        timeout=300,
        samples=SAMPLES,
    )
    print(figures)
    assert figures["high_backlog_median_s"] <= FACTOR * figures["high_idle_median_s"] + SLACK_S, figures
    # the high jobs ran (and finished) while the backlog was still there
    assert figures["high_done_before_backlog_drained"], figures
    assert figures["low_done_before_backlog_drained"], figures
