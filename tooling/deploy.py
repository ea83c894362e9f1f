"""The operator's tasks behind `tasks.py`: package, plan, deploy, destroy, outputs, status, logs,
events and smoke for one environment.

Terraform runs through ``tooling.terraform`` (the project's python-terraform wrapper: backend
config per env, provider mirror discovery, local state for the embedded backend); this
module adds what an operator needs around it: the env's files and AWS account checked before
terraform runs (``tooling.env_checks``: placeholders, Lambda concurrency, API Gateway's logging
role), packaging first, a confirmation before anything changes, the outputs printed API URL
first, the results bucket emptied before a destroy when the env allows it, and a record of
each apply for ``invoke events``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tooling import aws_access, buckets, env_checks, events, logs, status
from tooling import environments as environments_mod
from tooling import smoke as smoke_mod
from tooling.environments import Environment
from tooling.errors import OperatorError

Out = Callable[[str], None]
Confirm = Callable[[str], bool]
OUTPUT_ORDER = ("api_url", "console_url")


def _print(line: str) -> None:
    print(line, flush=True)


def resolve(name: str | None = None) -> Environment:
    """The environment for ``--env`` (empty -> $JOBSTACK_ENV, else dev)."""
    return environments_mod.resolve(name or None)


# ----------------------------------------------------------------------------- terraform


@dataclass(frozen=True)
class PlanSummary:
    add: int
    change: int
    destroy: int
    changes: tuple[events.ResourceChange, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy)

    def line(self) -> str:
        return f"Plan: {self.add} to add, {self.change} to change, {self.destroy} to destroy."


class Terraform(Protocol):
    """What this module needs from the terraform wrapper for one environment."""

    def init(self) -> None: ...

    def plan(self, plan_file: Path, destroy: bool = False) -> PlanSummary: ...

    def apply(self, plan_file: Path) -> None: ...

    def destroy(self) -> None: ...

    def outputs(self) -> dict[str, Any]: ...


_PROGRESS = re.compile(
    r": (Creating|Creation complete|Modifying|Modifications complete|Destroying|Destruction complete|"
    r"Still (creating|modifying|destroying))|^(Apply|Destroy) complete"
)


def terraform_progress(out: Out) -> Callable[[str], None]:
    """An echo for terraform's output that keeps the per-resource progress lines only."""

    def echo(line: str) -> None:
        if _PROGRESS.search(line):
            out("  " + line.strip())

    return echo


class RunnerAdapter:
    """``tooling.terraform.TerraformRunner`` seen as :class:`Terraform`."""

    def __init__(self, runner: Any, out: Out = _print) -> None:
        self.runner = runner
        self.out = out

    def init(self) -> None:
        self.runner.init()

    def plan(self, plan_file: Path, destroy: bool = False) -> PlanSummary:
        summary = self.runner.plan(out=plan_file, destroy=destroy)
        changes: list[events.ResourceChange] = []
        if summary.has_changes:
            changes = events.changes_from_plan_json(self.runner.show_plan(plan_file))
        return PlanSummary(summary.add, summary.change, summary.destroy, tuple(changes))

    def _echoing(self, call: Callable[[], Any]) -> None:
        previous = self.runner.echo
        self.runner.echo = terraform_progress(self.out)
        try:
            call()
        finally:
            self.runner.echo = previous

    def apply(self, plan_file: Path) -> None:
        self._echoing(lambda: self.runner.apply(plan_file))

    def destroy(self) -> None:
        self._echoing(self.runner.destroy)

    def outputs(self) -> dict[str, Any]:
        values: dict[str, Any] = self.runner.output()
        return values


def terraform_for(env: Environment, out: Out = _print, variables: dict[str, Any] | None = None) -> Terraform:
    """The terraform runner of ``env`` (``tooling.terraform``): AWS, or the embedded backend.

    ``variables`` override the env's tfvars (e.g. a short worker timeout for the e2e tests).
    """
    from tooling.terraform import TerraformRunner

    if env.is_local:
        endpoint = env.endpoint_url()
        extra = {
            "AWS_ACCESS_KEY_ID": aws_access.LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": aws_access.LOCAL_CREDENTIALS["aws_secret_access_key"],
            "AWS_REGION": env.region,
            "AWS_DEFAULT_REGION": env.region,
        }
        runner = TerraformRunner(
            env.name, endpoint_url=endpoint, variables=variables, extra_env=extra, work_root=env.work_root
        )
        return RunnerAdapter(runner, out)
    return RunnerAdapter(TerraformRunner(env.name, variables=variables, work_root=env.work_root), out)


# ----------------------------------------------------------------------------- helpers


def preflight(env: Environment, out: Out = _print) -> aws_access.AwsAccess:
    """Credentials (AWS) or the embedded endpoint (local) before anything else."""
    access = aws_access.for_environment(env)
    if env.is_local:
        out(f"env {env.name}: embedded backend at {access.endpoint_url}")
    else:
        out(f"env {env.name}: AWS region {env.region} as {aws_access.check_credentials(access)}")
    return access


def check_account(env: Environment, access: aws_access.AwsAccess, out: Out = _print, applying: bool = True) -> None:
    """What the AWS account must give the env before terraform runs (nothing to check locally):
    room for its reserved Lambda concurrency, and API Gateway's logging role when it logs
    executions without managing that role (a warning for a plan, an error before an apply)."""
    if env.is_local:
        return
    env_checks.check_lambda_concurrency(env, access, out)
    env_checks.check_api_gateway_logging_role(env, access, out, strict=applying)


def confirm_on_terminal(question: str) -> bool:
    if not sys.stdin.isatty():
        raise OperatorError(f"{question.rstrip('?')}: needs a confirmation", "run it again with --yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in {"y", "yes"}


def ordered_outputs(values: dict[str, Any]) -> list[tuple[str, Any]]:
    first = [(k, values[k]) for k in OUTPUT_ORDER if k in values]
    return first + sorted((k, v) for k, v in values.items() if k not in OUTPUT_ORDER)


def render_outputs(values: dict[str, Any]) -> list[str]:
    if not values:
        return ["(no outputs: the stack is not deployed)"]
    width = max(len(k) for k in values)
    rendered = []
    for key, value in ordered_outputs(values):
        text = value if isinstance(value, str) else json.dumps(value)
        rendered.append(f"{key:<{width}}  {text}")
    return rendered


def _record(
    env: Environment, operation: str, started: str, outcome: str, summary: PlanSummary | None, detail: str = ""
) -> None:
    events.append(
        env.events_file,
        events.ApplyRecord(
            env=env.name,
            operation=operation,
            started_at=started,
            finished_at=events.now_iso(),
            outcome=outcome,
            add=summary.add if summary else 0,
            change=summary.change if summary else 0,
            destroy=summary.destroy if summary else 0,
            changes=[{"address": c.address, "actions": list(c.actions)} for c in (summary.changes if summary else ())],
            user=events.current_user(),
            commit=events.current_commit(env.root),
            detail=detail,
        ),
    )


# ----------------------------------------------------------------------------- tasks


def package(env: Environment, out: Out = _print) -> list[Any]:
    """Build the zips for the env's lambda_runtime and lambda_architecture (tooling.packaging)."""
    from tooling.packaging import package_env

    return package_env(env, out)


def _show_plan(summary: PlanSummary, out: Out) -> None:
    for change in summary.changes:
        out("  " + change.render())
    out(summary.line())


def plan(env: Environment, out: Out = _print, tf: Terraform | None = None) -> PlanSummary:
    env_checks.check_placeholders(env)  # from the files alone: before any terraform or AWS call
    access = preflight(env, out)
    check_account(env, access, out, applying=False)
    tf = tf or terraform_for(env)
    out(f"terraform init and plan for env {env.name}...")
    tf.init()
    with tempfile.TemporaryDirectory(prefix="jobstack-plan-") as tmp:
        summary = tf.plan(Path(tmp) / "plan.tfplan")
    _show_plan(summary, out)
    return summary


def deploy(
    env: Environment,
    yes: bool = False,
    out: Out = _print,
    confirm: Confirm = confirm_on_terminal,
    tf: Terraform | None = None,
    build: bool = True,
) -> PlanSummary:
    """Package, init, plan, confirm, apply, print the outputs. Returns the applied plan's counts."""
    env_checks.check_placeholders(env)  # from the files alone: before any terraform or AWS call
    started = events.now_iso()
    access = preflight(env, out)
    check_account(env, access, out, applying=True)
    if build:
        package(env, out)
    tf = tf or terraform_for(env)
    out(f"terraform init and plan for env {env.name}...")
    tf.init()
    with tempfile.TemporaryDirectory(prefix="jobstack-deploy-") as tmp:
        plan_file = Path(tmp) / "deploy.tfplan"
        summary = tf.plan(plan_file)
        _show_plan(summary, out)
        if not summary.has_changes:
            out(f"env {env.name} is up to date: nothing to apply.")
            _record(env, "deploy", started, "no-changes", summary)
        else:
            if not yes and not confirm(f"Apply these changes to env {env.name!r}?"):
                raise OperatorError("deploy cancelled: nothing was changed", None, exit_code=1)
            try:
                tf.apply(plan_file)
            except Exception as exc:
                _record(env, "deploy", started, "failed", summary, detail=str(exc).splitlines()[0][:300])
                raise
            _record(env, "deploy", started, "applied", summary)
            out(f"Apply complete: {summary.add} added, {summary.change} changed, {summary.destroy} destroyed.")
    values = tf.outputs()
    if values.get("console_bucket_name"):
        from tooling import console

        console.upload(access.client("s3"), access.client("cloudfront"), values, out)
    out("")
    for line in render_outputs(values):
        out(line)
    return summary


def destroy(
    env: Environment,
    yes: bool = False,
    out: Out = _print,
    confirm: Confirm = confirm_on_terminal,
    tf: Terraform | None = None,
) -> PlanSummary:
    """Confirm, empty the results bucket when the env allows it, destroy everything."""
    env_checks.check_placeholders(env)  # a placeholder state bucket holds no state to destroy
    started = events.now_iso()
    access = preflight(env, out)
    tf = tf or terraform_for(env)
    out(f"terraform init and plan (destroy) for env {env.name}...")
    tf.init()
    current = tf.outputs()
    with tempfile.TemporaryDirectory(prefix="jobstack-destroy-") as tmp:
        summary = tf.plan(Path(tmp) / "destroy.tfplan", destroy=True)
    if not summary.has_changes:
        out(f"env {env.name} has nothing to destroy.")
        return summary
    out(f"destroying env {env.name!r}: {summary.destroy} resources")
    bucket = current.get("bucket_name")
    if not yes and not confirm(f"Destroy env {env.name!r} and all its data ({summary.destroy} resources)?"):
        raise OperatorError("destroy cancelled: nothing was changed", None, exit_code=1)
    if isinstance(bucket, str) and bucket:
        s3 = access.client("s3")
        if buckets.bucket_exists(s3, bucket):
            if env.allows_bucket_emptying:
                removed = buckets.empty_bucket(s3, bucket)
                out(f"emptied s3://{bucket}: {removed} object versions and delete markers deleted")
            elif not buckets.is_empty(s3, bucket):
                raise OperatorError(
                    f"the results bucket s3://{bucket} is not empty and env {env.name!r} keeps its results "
                    "(force_destroy_bucket = false)",
                    "back up and empty the bucket yourself, or set force_destroy_bucket = true in "
                    f"environments/{env.name}.tfvars and deploy first",
                )
    try:
        tf.destroy()
    except Exception as exc:
        _record(env, "destroy", started, "failed", summary, detail=str(exc).splitlines()[0][:300])
        raise
    _record(env, "destroy", started, "applied", summary)
    out(f"Destroy complete: {summary.destroy} destroyed.")
    return summary


def stack_outputs(env: Environment, tf: Terraform | None = None) -> dict[str, Any]:
    tf = tf or terraform_for(env)
    tf.init()
    values = tf.outputs()
    if not values:
        raise OperatorError(
            f"env {env.name!r} has no outputs: it is not deployed", f"run invoke deploy --env {env.name}"
        )
    return values


def print_outputs(env: Environment, as_json: bool = False, out: Out = _print, tf: Terraform | None = None) -> None:
    if not env.is_local:
        aws_access.check_credentials(aws_access.for_environment(env))
    values = stack_outputs(env, tf)
    served = environments_mod.read_runtime_info(env).get("console_url") if env.is_local else None
    if served and not values.get("console_url"):
        values["console_url"] = served  # the embedded default serves the console itself, while `invoke local` runs
    if as_json:
        out(json.dumps(dict(ordered_outputs(values)), indent=2))
        return
    for line in render_outputs(values):
        out(line)


def print_status(
    env: Environment, window: str = "24h", scan_cap: int = status.DEFAULT_SCAN_CAP, out: Out = _print
) -> status.StatusReport:
    from datetime import UTC, datetime

    access = preflight(env, out=lambda _line: None)
    values = stack_outputs(env)
    now = datetime.now(UTC)
    delta = now - logs.parse_since(window, now)
    report = status.collect(access, values, env.name, window=delta, scan_cap=scan_cap)
    out(status.render(report))
    return report


def print_logs(
    env: Environment,
    function: str = "api",
    follow: bool = False,
    since: str = "10m",
    filter_text: str = "",
    out: Out = _print,
) -> None:
    start = logs.parse_since(since)
    access = preflight(env, out=lambda _line: None)
    group = logs.log_group_for(stack_outputs(env), function)
    client = access.client("logs")
    out(f"{group} since {start.strftime('%Y-%m-%d %H:%M:%S')}Z" + (" (following; Ctrl-C stops)" if follow else ""))
    if follow:
        try:
            logs.follow(client, group, start, lambda e: out(e.render()), filter_text=filter_text or None)
        except KeyboardInterrupt:  # Ctrl-C is how following ends: not an error
            out("(stopped)")
        return
    count = 0
    for event in logs.fetch(client, group, start, filter_text=filter_text or None):
        out(event.render())
        count += 1
    if not count:
        out("(no log events in that window)")


def print_events(env: Environment, limit: int = 1, out: Out = _print) -> None:
    records = events.read(env.events_file, limit)
    if not records:
        out(f"no applies recorded for env {env.name!r} on this machine (invoke deploy records them)")
        return
    for record in records:
        out(record.render())


def smoke(
    env: Environment,
    timeout: float = 120.0,
    create_user: bool = False,
    api_url: str | None = None,
    out: Out = _print,
) -> smoke_mod.SmokeResult:
    """Token, one job end to end, one-line verdict; raises OperatorError (exit 1) unless it passed."""
    access = preflight(env, out=lambda _line: None)
    values = stack_outputs(env)
    url = api_url or environments_mod.read_runtime_info(env).get("api_url") or values.get("api_url")
    pool_id, client_id = values.get("user_pool_id"), values.get("user_pool_client_id")
    if not isinstance(url, str) or not url:
        raise OperatorError(f"env {env.name!r} has no api_url", "deploy it, or pass --api-url")
    if not isinstance(client_id, str) or not client_id:
        raise OperatorError(f"env {env.name!r} has no user_pool_client_id output", "deploy it first")
    scopes = values.get("api_authorization_scopes") or []
    cognito = access.client("cognito-idp")
    progress = smoke_mod.ProgressLine()

    def attempt(username: str, password: str) -> smoke_mod.SmokeResult:
        token = smoke_mod.api_token_for(cognito, client_id, username, password, scopes)
        out(f"smoke: {url} as {username}, timeout {timeout:g}s")
        return smoke_mod.run_smoke(url, token, timeout=timeout, progress=progress)

    if create_user:
        if not isinstance(pool_id, str) or not pool_id:
            raise OperatorError(f"env {env.name!r} has no user_pool_id output", "deploy it first")
        with smoke_mod.throwaway_user(cognito, pool_id) as (username, password):
            result = attempt(username, password)
    else:
        username = os.environ.get(smoke_mod.USERNAME_ENV_VAR, "")
        password = os.environ.get(smoke_mod.PASSWORD_ENV_VAR, "")
        if not username or not password:
            raise OperatorError(
                f"no smoke user: {smoke_mod.USERNAME_ENV_VAR}/{smoke_mod.PASSWORD_ENV_VAR} are not set",
                "set them to a user of the env's pool, or pass --create-user",
            )
        result = attempt(username, password)
    if not result.ok:
        raise OperatorError(result.verdict, _smoke_hint(env), exit_code=1)
    out(result.verdict)
    return result


def _smoke_hint(env: Environment) -> str:
    return f"see invoke logs --env {env.name} --function worker (and api)"
