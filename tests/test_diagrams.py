"""The Mermaid diagrams in README.md and docs/architecture.md stay true to what they draw.

Cheap and offline (nothing is rendered): the AWS architecture has one subgraph per Terraform
module, the state diagram has exactly the job statuses of ``jobs.model.Status`` and exactly
the transitions the conditional writes allow. The writes are not read from the source: each
one is called against a recording DynamoDB client, and its condition and update say which
status it moves from and to.

A diagram is the ```mermaid block right after a ``<!-- diagram: NAME -->`` marker.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from jobs.model import Priority, Status
from jobs.quotas import Limits, Usage
from jobs.service import JobService
from jobs.settings import Settings
from jobs.store import JobQueue, JobScheduler, JobTable, ResultBucket
from tooling.redrive import make_pending

ROOT = Path(__file__).resolve().parents[1]
MODULES = ROOT / "terraform" / "modules"

# Every diagram, and the page it lives on.
DIAGRAMS = {
    "architecture-aws": "README.md",
    "architecture-local": "README.md",
    "job-states": "README.md",
    "job-life-complete": "docs/architecture.md",
    "job-life-failed": "docs/architecture.md",
}
MARKER = re.compile(r"<!-- diagram: ([\w-]+) -->")
BLOCK = re.compile(r"<!-- diagram: ([\w-]+) -->\s*```mermaid\n(.*?)\n```", re.S)
KINDS = ("flowchart", "stateDiagram-v2", "sequenceDiagram")

START = "[*]"  # the start (or end) pseudo-state of a state diagram
NOW = "2025-07-14T12:00:00.000Z"
JOB_ID = "0190f3c2-5b1e-7c3a-9d2f-6a1b2c3d4e5f"


def diagrams_in(page: str) -> dict[str, str]:
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = BLOCK.findall(text)
    markers = MARKER.findall(text)
    assert len(blocks) == len(markers), f"{page}: a <!-- diagram: ... --> marker is not followed by a mermaid block"
    names = [name for name, _ in blocks]
    assert len(names) == len(set(names)), f"{page}: a diagram name is used twice: {names}"
    return dict(blocks)


def diagram(name: str) -> str:
    return diagrams_in(DIAGRAMS[name])[name]


def statements(source: str) -> list[str]:
    """The diagram's lines, without init directives, comments and multi-line notes."""
    lines: list[str] = []
    in_note = False
    for raw in source.splitlines():
        line = raw.strip()
        if in_note:
            in_note = line != "end note"
            continue
        if line.startswith("note ") and ":" not in line:
            in_note = True
            continue
        if line and not line.startswith("%%"):
            lines.append(line)
    return lines


# ----------------------------------------------------------------------------- every diagram


def test_every_diagram_is_where_the_docs_link_to() -> None:
    for page in sorted(set(DIAGRAMS.values())):
        found = diagrams_in(page)
        expected = {name for name, where in DIAGRAMS.items() if where == page}
        assert set(found) == expected, f"{page}: diagrams {sorted(found)}, expected {sorted(expected)}"


@pytest.mark.parametrize("name", sorted(DIAGRAMS))
def test_diagram_is_mermaid_github_can_draw(name: str) -> None:
    lines = statements(diagram(name))
    assert lines and lines[0].split()[0] in KINDS, f"{name}: starts with {lines[:1]}, not one of {KINDS}"
    for line in lines:
        # `;` ends a statement in Mermaid (a message or note is cut short, and fails to parse);
        # entity codes such as `#lt;` are fine.
        assert ";" not in re.sub(r"#\w+;", "", line), f"{name}: ';' in {line!r}"


# ----------------------------------------------------------------------------- architecture


def test_architecture_draws_every_terraform_module() -> None:
    modules = {p.parent.name for p in MODULES.glob("*/main.tf")}
    assert modules, f"no modules under {MODULES}"
    drawn = set(re.findall(r"^\s*subgraph module_(\w+)\b", diagram("architecture-aws"), re.M))
    assert drawn == modules, (
        f"modules drawn: {sorted(drawn)}; under terraform/modules: {sorted(modules)}. "
        "Each module is a `subgraph module_<name>` in the README's architecture diagram."
    )


# ----------------------------------------------------------------------------- job states

TRANSITION = re.compile(r"^(\[\*\]|\w+)\s*-->\s*(\[\*\]|\w+)\s*(?::.*)?$")


def drawn_transitions() -> set[tuple[str, str]]:
    edges: set[tuple[str, str]] = set()
    for line in statements(diagram("job-states"))[1:]:
        if line.startswith(("direction ", "note ")):
            continue
        match = TRANSITION.match(line)
        assert match, f"job-states: not a transition: {line!r}"
        edges.add((match.group(1), match.group(2)))
    return edges


class RecordingDynamoDB:
    """Records each UpdateItem and answers that its condition failed (nothing is written)."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.updates.append(request)
        raise ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "-"}}, "UpdateItem")


def moves(request: dict[str, Any]) -> set[tuple[str, str]]:
    """(from, to) of a conditional update: the statuses its condition accepts, the one it sets."""
    assert request["ExpressionAttributeNames"].get("#status") == "status"
    values = request["ExpressionAttributeValues"]
    sources = [values[p]["S"] for p in re.findall(r"#status = (:\w+)", request["ConditionExpression"])]
    assert sources, f"an update of a job that is not conditional on its status: {request['ConditionExpression']}"
    sets = re.search(r"#status = (:\w+)", request["UpdateExpression"].split(" REMOVE ")[0])
    return {(source, values[sets.group(1)]["S"] if sets else source) for source in sources}


# JobTable's transitions, each called once. A new one fails the next test until it is added
# here and drawn.
STORE_WRITES: dict[str, Callable[[JobTable], object]] = {
    "cancel": lambda t: t.cancel("owner", JOB_ID, NOW),
    "claim": lambda t: t.claim("owner", JOB_ID, "lease", 0, NOW, 0),
    "complete": lambda t: t.complete("owner", JOB_ID, "lease", "key", NOW),
    "fail": lambda t: t.fail("owner", JOB_ID, "lease", "error", NOW, 0),
    "release": lambda t: t.release("owner", JOB_ID, "lease", "error", NOW),
    "request_cancel": lambda t: t.request_cancel("owner", JOB_ID, NOW),
    "cancel_running": lambda t: t.cancel_running("owner", JOB_ID, "lease", NOW),
    "record_progress": lambda t: t.record_progress("owner", JOB_ID, "lease", 0.5, "half", NOW),
}


def test_every_status_write_of_the_table_is_known_here() -> None:
    writers = {
        name
        for name, member in vars(JobTable).items()
        if inspect.isfunction(member)
        and name not in ("_update", "_finish")  # the helpers every transition goes through
        and any(call in inspect.getsource(member) for call in ("self._update(", "self._finish("))
    }
    # record_progress writes through update_item itself (it reads the refused record back from
    # the same call), so it is listed by hand
    assert writers | {"record_progress"} == set(STORE_WRITES), (
        f"JobTable's status writes: {sorted(writers)}; add the new ones here"
    )


def code_transitions() -> set[tuple[str, str]]:
    ddb = RecordingDynamoDB()
    for write in STORE_WRITES.values():
        write(JobTable(ddb, "jobs"))
    job = {"owner_id": "owner", "job_id": JOB_ID, "updatedAt": NOW, "attempts": 3, "error": "e", "completedAt": NOW}
    assert make_pending(ddb, "jobs", job, "dead-letter", NOW) is False  # `invoke redrive`
    assert len(ddb.updates) == len(STORE_WRITES) + 1
    return {edge for request in ddb.updates for edge in moves(request)}


class _Table:
    def usage(self, owner_id: str) -> Usage:
        return Usage()

    def create(self, job: Any, claim: Any, now_epoch: int, charge: Any) -> None:
        self.created = job


class _Queue:
    def send(self, job: Any, delay_seconds: int = 0) -> None:
        pass


class _Scheduler:
    def create(self, job: Any, name: str, due: Any, queue_arn: str) -> None:
        pass


# A plain POST, and POSTs due later: by an SQS delay, and beyond it (a schedule).
FIRST_BODIES = ({}, {"delay_seconds": 60}, {"delay_seconds": 3600})


def first_statuses() -> set[str]:
    """The statuses POST /job writes (through the service, with a fake table, queue and scheduler)."""
    queues = {priority: f"https://queue-{priority.value}" for priority in Priority}
    settings = Settings("jobs", "results", queues, "client", ("*",), 3, 1, 60, "quotas", Limits(10, 1, 5), {})
    settings = replace(settings, queue_arns={priority: f"arn:queue-{priority.value}" for priority in Priority})
    found = set()
    for extra in FIRST_BODIES:
        table = _Table()
        body = json.dumps({"name": "n", "action": "demo", "context1": "a", "context2": "b", **extra})
        service = JobService(
            settings,
            cast(JobTable, table),
            cast(ResultBucket, None),
            cast(JobQueue, _Queue()),
            cast(JobScheduler, _Scheduler()),
        )
        service.submit("owner", body, None)
        found.add(str(table.created.status.value))
    return found


def test_state_diagram_has_exactly_the_statuses_of_the_code() -> None:
    drawn = {state for edge in drawn_transitions() for state in edge} - {START}
    known = {status.value for status in Status}
    assert drawn == known, f"missing from the diagram: {sorted(known - drawn)}; not in Status: {sorted(drawn - known)}"


def test_state_diagram_has_exactly_the_transitions_of_the_code() -> None:
    drawn = drawn_transitions()
    assert {edge for edge in drawn if edge[0] == START} == {(START, status) for status in first_statuses()}
    between = {edge for edge in drawn if START not in edge}
    allowed = code_transitions()
    assert between == allowed, (
        f"drawn but not written by the code: {sorted(between - allowed)}; "
        f"written by the code but not drawn: {sorted(allowed - between)}"
    )


def test_only_final_states_end_the_state_diagram() -> None:
    ends = {source for source, target in drawn_transitions() if target == START}
    leave = {source for source, target in code_transitions() if target != source}
    final = {s.value for s in Status if s.terminal and s.value not in leave}
    assert ends == final, f"states drawn as final: {sorted(ends)}; final in the code: {sorted(final)}"
