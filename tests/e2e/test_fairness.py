"""Fairness between users on the deployed local stack: one user's backlog does not starve
another's jobs (SQS fair queues: MessageGroupId = the owner; the embedded backend emulates
the fair dequeue, tooling/embedded_backend.py ``fair_order``).

User A queues a backlog at once (the worker's mapping paused while A posts), then user B
submits a few jobs once the backlog is being served. Without fairness B's jobs wait behind
the whole backlog (B's median ~ A's drain time); with it they are served at the next
receive. The issue's figure (1,000 then 10, goal <= 10 %) is measured by ``invoke bench``;
here a smaller backlog and a generous bound (35 %) keep the test short and steady on a busy
machine.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e.conftest import Console
from tests.e2e.support import User
from tooling.bench import flow
from tooling.local_stack import LocalStack

A_JOBS = 400
B_JOBS = 10
BOUND = 0.35  # B's median submit-to-COMPLETE / A's drain time


def test_a_backlog_of_one_user_does_not_starve_another(
    stack: LocalStack, make_user: Callable[[], User], console: Console, queue_drained: None
) -> None:
    a, b, warm = make_user(), make_user(), make_user()
    # Warm the worker's environments first: a cold start on a busy machine can outlast the e2e
    # worker's 5 s timeout, and a timed-out batch comes back only after the 31 s visibility
    # timeout, which would measure redelivery, not fairness.
    for job_id in [warm.api.submit(name=f"warm-{n}") for n in range(8)]:
        assert warm.api.wait_terminal(job_id)["status"] == "COMPLETE"
    figures = flow.fairness(
        stack.api_url,
        stack.client("dynamodb"),
        stack.client("lambda"),
        stack.outputs["table_name"],
        stack.outputs["event_source_mapping_uuid"],
        stack.outputs["queue_url"],
        console,
        flow.User(a.token, a.sub),
        flow.User(b.token, b.sub),
        A_JOBS,
        B_JOBS,
        timeout=300,
    )
    print(figures)
    assert figures["b_median_vs_a_drain"] <= BOUND, figures
