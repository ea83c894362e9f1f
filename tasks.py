"""The operator's menu: `invoke --list` shows every task, `invoke --help TASK` its flags.

Each task is a thin wrapper: the logic lives in the `tooling` package, where it is tested
without invoke.
"""

from __future__ import annotations

from invoke.context import Context
from invoke.tasks import task


@task(
    help={
        "fast": "skip tests marked slow",
        "pytest_args": "extra arguments passed to pytest (quoted)",
    }
)
def test(c: Context, fast: bool = False, pytest_args: str = "") -> None:
    """Lint (ruff), type-check (mypy), then run the whole pytest suite."""
    c.run("ruff check .", echo=True, pty=False)
    c.run("ruff format --check .", echo=True, pty=False)
    c.run("mypy", echo=True, pty=False)
    marker = "-m 'not slow'" if fast else ""
    c.run(f"python -m pytest {marker} {pytest_args}".strip(), echo=True, pty=False)
