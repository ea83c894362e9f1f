"""Issue 11, progress and cancelling a running job, end to end on the deployed stack.

The long action is ``hash-chain`` (iterated SHA-256, rounds in ``context2``); its worker writes
progress at most once a second (``jobs.progress.INTERVAL_SECONDS``). The stack's worker timeout
is short here (``E2E_WORKER_TIMEOUT``, 5 s), so the observed job is asked for the most rounds
the action takes (about 10 s of work): it is cancelled long before it could finish, and were the
cancel not seen, the worker would stop it at its timeout (``OutOfTime``) rather than complete it.
"""

from __future__ import annotations

import hashlib

import pytest
import requests

from jobs import actions, progress
from jobs.model import parse_iso
from tests.e2e.support import User, wait_for
from tooling.local_stack import LocalStack

# Slack for a loaded machine on top of the two progress intervals the cancel may take.
MARGIN_SECONDS = 3.0


def test_hash_chain_completes_with_the_chain_it_computed(alice: User) -> None:
    job_id = alice.api.submit("hash-chain", "seed", "200000")
    job = alice.api.wait_terminal(job_id, timeout=60)
    assert job["status"] == "COMPLETE", job
    assert "progress" not in job  # done: the status says it
    digest = hashlib.sha256(b"seed").digest()
    for _ in range(200_000 - 1):
        digest = hashlib.sha256(digest).digest()
    text = requests.get(job["result_url"], timeout=30).text
    assert text.startswith(f"sha256^200000(context1) = {digest.hex()}\n")


def test_bad_rounds_are_refused_at_submit(alice: User) -> None:
    resp = alice.api.post_job({"name": "n", "action": "hash-chain", "context1": "seed", "context2": "many"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_context", resp.text


@pytest.mark.usefixtures("queue_drained")
def test_progress_shows_while_running_and_a_cancel_stops_the_job(stack: LocalStack, alice: User) -> None:
    job_id = alice.api.submit("hash-chain", "cancel me", str(actions.HASH_CHAIN_MAX_ROUNDS))

    def running_with_progress(above: float) -> dict | None:
        job = alice.api.job(job_id)
        assert job["status"] in ("PENDING", "PROCESSING"), job
        fraction = job.get("progress", {}).get("fraction")
        return job if fraction is not None and fraction > above else None

    first = wait_for(lambda: running_with_progress(-1.0), 30, "the first progress of the job", interval=0.2)
    second = wait_for(
        lambda: running_with_progress(first["progress"]["fraction"]), 10, "the progress to grow", interval=0.2
    )
    assert first["status"] == second["status"] == "PROCESSING"
    assert second["progress"]["updatedAt"] > first["progress"]["updatedAt"]
    assert "rounds" in second["progress"]["message"]

    resp = alice.api.delete_job(job_id)
    assert resp.status_code == 202, resp.text
    requested = resp.json()
    assert requested["status"] == "PROCESSING" and requested["cancel_requested_at"]

    job = alice.api.wait_terminal(job_id, timeout=60)
    assert job["status"] == "CANCELLED", job
    assert job["cancel_requested_at"] == requested["cancel_requested_at"]
    # Stopped at the first progress write after the request: within two intervals of it.
    took = (parse_iso(job["completedAt"]) - parse_iso(job["cancel_requested_at"])).total_seconds()
    assert 0 <= took <= 2 * progress.INTERVAL_SECONDS + MARGIN_SECONDS, took
    assert 0 < job["progress"]["fraction"] < 1  # how far it got
    assert "S3FileKey" not in job and "result_url" not in job
    day = job["createdAt"][:10]
    prefix = f"{alice.sub}/{day}/{job_id}"
    listed = stack.client("s3").list_objects_v2(Bucket=stack.outputs["bucket_name"], Prefix=prefix)
    assert listed.get("KeyCount", 0) == 0  # no result written
