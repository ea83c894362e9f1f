"""The operator's menu: `invoke --list` shows every task, `invoke --help TASK` its flags.

Each task is a thin wrapper: the logic lives in the `tooling` package, where it is tested
without invoke. `--env` defaults to $JOBSTACK_ENV, else `dev`; the environments are the
files environments/<env>.tfvars. Known failures (no credentials, terraform missing, an
unknown env...) print one `error: ...` line and exit non-zero.
"""

from __future__ import annotations

import shlex
import sys

from invoke.context import Context
from invoke.tasks import task

from tooling.errors import friendly_errors

ENV_HELP = "environment: environments/<env>.tfvars (default: $JOBSTACK_ENV, else dev)"


@task(
    help={
        "fast": "skip tests marked slow",
        "pytest_args": "extra arguments passed to pytest (quoted)",
    }
)
def test(c: Context, fast: bool = False, pytest_args: str = "") -> None:
    """Lint (ruff), type-check (mypy), then run the whole pytest suite."""
    python = shlex.quote(sys.executable)  # the project's environment, activated or not
    c.run(f"{python} -m ruff check .", echo=True, pty=False)
    c.run(f"{python} -m ruff format --check .", echo=True, pty=False)
    c.run(f"{python} -m mypy", echo=True, pty=False)
    marker = "-m 'not slow'" if fast else ""
    c.run(f"{python} -m pytest {marker} {pytest_args}".strip(), echo=True, pty=False)


@task(help={"env": ENV_HELP + "; picks the Lambda architecture and Python version to build for"})
@friendly_errors
def package(c: Context, env: str = "") -> None:
    """Build build/api.zip, build/worker.zip and build/publisher.zip (deterministic); print each zip's size and hash."""
    from tooling import deploy

    deploy.package(deploy.resolve(env))


@task(help={"env": ENV_HELP})
@friendly_errors
def plan(c: Context, env: str = "") -> None:
    """Init with the env's backend, plan with its tfvars, print the adds/changes/destroys."""
    from tooling import deploy

    deploy.plan(deploy.resolve(env))


@task(
    aliases=("update",),
    help={"env": ENV_HELP, "yes": "apply without asking for confirmation"},
)
@friendly_errors
def deploy(c: Context, env: str = "", yes: bool = False) -> None:
    """Package, init, plan, confirm, apply; then print the outputs (API URL first)."""
    from tooling import deploy as ops

    ops.deploy(ops.resolve(env), yes=yes)


@task(
    aliases=("delete",),
    help={"env": ENV_HELP, "yes": "destroy without asking for confirmation"},
)
@friendly_errors
def destroy(c: Context, env: str = "", yes: bool = False) -> None:
    """Empty the results bucket (all versions) when the env allows it, then destroy the stack."""
    from tooling import deploy

    deploy.destroy(deploy.resolve(env), yes=yes)


@task(help={"env": ENV_HELP, "json": "print the outputs as one JSON object"})
@friendly_errors
def outputs(c: Context, env: str = "", json: bool = False) -> None:
    """Print the stack's outputs (API URL first)."""
    from tooling import deploy

    deploy.print_outputs(deploy.resolve(env), as_json=json)


@task(
    help={
        "env": ENV_HELP,
        "window": "count jobs created within this window (e.g. 1h, 24h, 7d; default 24h)",
        "scan_cap": "read at most this many table items for the job counts (default 10000)",
    }
)
@friendly_errors
def status(c: Context, env: str = "", window: str = "24h", scan_cap: int = 10_000) -> None:
    """Queue depth and oldest age (jobs, DLQ, publisher failures, webhooks DLQ), functions, job counts, alarms."""
    from tooling import deploy

    deploy.print_status(deploy.resolve(env), window=window, scan_cap=scan_cap)


@task(
    help={
        "env": ENV_HELP,
        "function": "api, worker, publisher (the events) or notifier (the webhooks; default api)",
        "follow": "keep printing new events until Ctrl-C",
        "since": "start this long ago (30s, 10m, 2h, 1d) or at an ISO time (default 10m)",
        "filter": "only events containing this text",
    }
)
@friendly_errors
def logs(
    c: Context, env: str = "", function: str = "api", follow: bool = False, since: str = "10m", filter: str = ""
) -> None:
    """Print a function's CloudWatch log events (optionally following them)."""
    from tooling import deploy

    deploy.print_logs(deploy.resolve(env), function=function, follow=follow, since=since, filter_text=filter)


@task(help={"env": ENV_HELP, "limit": "how many recent applies to show (default 1: the last)"})
@friendly_errors
def events(c: Context, env: str = "", limit: int = 1) -> None:
    """What the last apply changed (from the record each deploy/destroy keeps under .local/)."""
    from tooling import deploy

    deploy.print_events(deploy.resolve(env), limit=limit)


@task(
    help={
        "env": ENV_HELP,
        "dry_run": "list the dead letters (job, owner, status, error) and what would happen; change nothing",
        "yes": "move without listing first and asking for confirmation",
    }
)
@friendly_errors
def redrive(c: Context, env: str = "", dry_run: bool = False, yes: bool = False) -> None:
    """Move the DLQ's dead letters of FAILED jobs back to the job queue; their jobs become PENDING.

    Dead letters whose job is gone or not FAILED, and messages that are not job messages,
    are reported and stay in the DLQ.
    """
    from tooling import deploy
    from tooling import redrive as redrive_mod

    redrive_mod.run(deploy.resolve(env), dry_run=dry_run, yes=yes)


@task(
    help={
        "env": ENV_HELP,
        "timeout": "seconds to wait for the job to finish (default 120)",
        "create_user": "make a throwaway Cognito user (admin API) and delete it afterwards",
        "api_url": "API stage URL to test instead of the stack's api_url output",
    }
)
@friendly_errors
def smoke(c: Context, env: str = "", timeout: int = 120, create_user: bool = False, api_url: str = "") -> None:
    """Run one real job through the API and check it end to end; one-line verdict, exit 0 on success.

    Credentials: SMOKE_USERNAME/SMOKE_PASSWORD, or --create-user.
    """
    from tooling import deploy

    deploy.smoke(deploy.resolve(env), timeout=timeout, create_user=create_user, api_url=api_url or None)


@task(help={"port": "loopback port for the embedded AWS backend (default: a free one)"})
@friendly_errors
def local(c: Context, port: int = 0) -> None:
    """Run the whole stack on this machine (no AWS account) until Ctrl-C.

    Starts the embedded AWS backend (moto, loopback only), deploys environments/local.tfvars
    to it, creates a demo user and runs the local Lambda runtime; prints the API URL, the
    user's credentials, an ID token and a ready curl line.
    """
    from tooling import local_stack

    local_stack.run_local(port=port)


@task(help={"timeout": "seconds to wait for the smoke job to finish (default 120)"})
@friendly_errors
def demo(c: Context, timeout: int = 120) -> None:
    """The one-command tour: start everything locally, run the smoke test, show the job, stop.

    Exit code: the smoke test's (0 only when a real job went through end to end).
    """
    from tooling import local_stack

    local_stack.run_demo(timeout=timeout)


@task(
    help={
        "jobs": "jobs to run through the floor and through the stack (default 500)",
        "clients": "concurrent clients, each a Cognito user with a real ID token (default 8)",
        "out": "directory for results.json, results.md and latency.png (default build/bench/)",
        "listing_items": "other users' jobs to seed before the second GET /jobs measurement (default 100000)",
        "skip_listing": "skip the GET /jobs measurement (and its seeding)",
        "skip_flow": "skip the flow-control measurements (fairness: 1,000 + 10 jobs; priorities: a backlog of 500)",
        "cold_runs": "fresh-process imports per cold start variant; the median is reported (default 7)",
        "quick": "a short run: 100 jobs, 10,000 listing items, 3 cold start runs, 10 scheduled jobs, fairness "
        "300 + 10 jobs, a priority backlog of 200 (explicit flags still win)",
        "schedule_jobs": "scheduled jobs whose start is measured against their run_at (default 20; 0 skips); "
        "with --var schedule_delay_threshold_seconds=2 they go through EventBridge Scheduler schedules",
        "var": "NAME=VALUE: a Terraform variable of the bench's stack over environments/local.tfvars "
        "(repeatable, e.g. --var worker_batch_size=1); docs/tuning.md",
    },
    iterable=["var"],
)
@friendly_errors
def bench(
    c: Context,
    jobs: int = 0,
    clients: int = 8,
    out: str = "",
    listing_items: int = 0,
    skip_listing: bool = False,
    cold_runs: int = 0,
    quick: bool = False,
    var: list[str] | None = None,
    schedule_jobs: int = -1,
    skip_flow: bool = False,
) -> None:
    """Benchmark the local stack against a raw-boto3 floor: throughput, latency, listing, cold start, cost.

    Starts its own embedded backend and local stack, prints every figure with its target,
    writes results.json/results.md/latency.png, and stops everything.
    """
    from tooling import bench as bench_mod

    config = bench_mod.config_from_flags(
        jobs=jobs,
        clients=clients,
        out=out,
        listing_items=listing_items,
        skip_listing=skip_listing,
        cold_runs=cold_runs,
        quick=quick,
        var=var,
        schedule_jobs=schedule_jobs,
        skip_flow=skip_flow,
    )
    bench_mod.run(config)
