"""`invoke events`: the record of what each apply changed, kept by deploy and destroy.

Terraform keeps no history of applies (CloudFormation's stack events have no equivalent),
so ``invoke deploy`` and ``invoke destroy`` append one JSON object a line to
``.local/events/<env>.jsonl``: when, who, from which commit, the plan's counts and every
resource change (address and actions). The file is local to the machine that deployed;
on a shared environment the S3 state's object versions and CloudTrail are the full history.
"""

from __future__ import annotations

import getpass
import json
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_SYMBOLS = {
    ("create",): "+",
    ("delete",): "-",
    ("update",): "~",
    ("delete", "create"): "-/+",
    ("create", "delete"): "+/-",
}


@dataclass(frozen=True)
class ResourceChange:
    address: str
    actions: tuple[str, ...]

    @property
    def symbol(self) -> str:
        return _SYMBOLS.get(self.actions, "?")

    def render(self) -> str:
        verb = "replace" if len(self.actions) == 2 else self.actions[0]
        return f"{self.symbol:>3} {self.address}  ({verb})"


def changes_from_plan_json(plan: dict[str, Any]) -> list[ResourceChange]:
    """The resource changes of ``terraform show -json <plan>`` (no-ops and reads left out)."""
    found = []
    for rc in plan.get("resource_changes", []) or []:
        actions = tuple(rc.get("change", {}).get("actions", []))
        if actions in {("no-op",), ("read",), ()}:
            continue
        found.append(ResourceChange(rc.get("address", "?"), actions))
    return sorted(found, key=lambda c: c.address)


@dataclass
class ApplyRecord:
    env: str
    operation: str  # deploy | destroy
    started_at: str
    finished_at: str
    outcome: str  # applied | no-changes | failed
    add: int
    change: int
    destroy: int
    changes: list[dict[str, Any]] = field(default_factory=list)
    user: str = ""
    commit: str = ""
    detail: str = ""

    def render(self) -> str:
        head = (
            f"{self.finished_at}  {self.operation} of env {self.env!r} {self.outcome}: "
            f"{self.add} added, {self.change} changed, {self.destroy} destroyed"
        )
        who = ", ".join(part for part in (f"by {self.user}" if self.user else "", self.commit) if part)
        lines = [head + (f"  ({who})" if who else "")]
        if self.detail:
            lines.append(f"    {self.detail}")
        for c in self.changes:
            lines.append("  " + ResourceChange(c["address"], tuple(c["actions"])).render())
        return "\n".join(lines)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def current_commit(root: Path = ROOT) -> str:
    try:
        proc = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=10"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def append(path: Path, record: ApplyRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(record), sort_keys=True) + "\n")


def read(path: Path, limit: int = 1) -> list[ApplyRecord]:
    """The last ``limit`` records, newest first (unreadable lines are skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
            records.append(ApplyRecord(**data))
        except (ValueError, TypeError):
            continue
    return list(reversed(records))[: max(limit, 0)]
