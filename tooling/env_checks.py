"""Checks of an AWS environment before terraform plans or applies it, each failing with one
line that says what to do (an :class:`OperatorError`) instead of an AWS error halfway through.

* **Placeholders** (:func:`check_placeholders`): ``environments/<env>.backend.hcl`` and
  ``<env>.tfvars`` ship placeholder values (the state bucket ``jobs-tfstate-CHANGE-ME``, Cognito
  inputs containing ``CHANGEME``). Refused from the files alone, before any terraform or AWS
  call. An env without them (``local``, the embedded default) passes.
* **Lambda concurrency** (:func:`check_lambda_concurrency`): reserved concurrency
  (``api_reserved_concurrency``, ``worker_reserved_concurrency``) fails at apply when the account
  would keep fewer than 100 unreserved executions. Checked against ``GetAccountSettings``,
  counting the reservations the env's own functions already hold (``GetFunctionConcurrency``).
* **API Gateway logging role** (:func:`check_api_gateway_logging_role`): the stage's access and
  execution logs need the account's API Gateway CloudWatch role (one per account and region);
  an env that does not manage it (``manage_api_gateway_cloudwatch_role = false``) relies on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooling.environments import Environment, parse_tfvars_scalars
from tooling.errors import OperatorError

Out = Callable[[str], None]

# A placeholder value: "CHANGE-ME", "CHANGEME", "change_me", ... in any case.
PLACEHOLDER = re.compile(r"change[-_]?me", re.I)
COGNITO_INPUTS = ("cognito_user_pool_arn", "cognito_issuer_url", "cognito_app_client_id")

# AWS keeps this many concurrent executions of an account (and region) unreserved.
MIN_UNRESERVED = 100
RESERVATIONS = {"api": "api_reserved_concurrency", "worker": "worker_reserved_concurrency"}
# terraform/variables.tf's default project, and the compute module's function names.
DEFAULT_PROJECT = "jobs"
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


def _shown(env: Environment, path: Path) -> str:
    try:
        return str(path.relative_to(env.root))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- placeholders


def placeholder_problem(env: Environment) -> OperatorError | None:
    """The placeholders left in the env's backend file and tfvars, as one error (or None)."""
    found: list[str] = []
    fill: list[str] = []
    if env.backend_config is not None and env.backend_config.is_file():
        backend = parse_tfvars_scalars(env.backend_config.read_text())
        left = {k: v for k, v in backend.items() if isinstance(v, str) and PLACEHOLDER.search(v)}
        for key, value in left.items():
            found.append(f'{_shown(env, env.backend_config)} still has the placeholder {key} "{value}"')
        if "bucket" in left:
            fill.append("your state bucket")
        if set(left) - {"bucket"}:
            fill.append(f"the backend's {', '.join(k for k in left if k != 'bucket')}")
    names = [k for k, v in env.variables.items() if isinstance(v, str) and PLACEHOLDER.search(v)]
    if names:
        found.append(f"{_shown(env, env.tfvars)} still has placeholder values for {', '.join(names)}")
        if set(names) & set(COGNITO_INPUTS):
            fill.append("your Cognito user pool's ARN, issuer URL and app client id")
        if set(names) - set(COGNITO_INPUTS):
            fill.append(", ".join(n for n in names if n not in COGNITO_INPUTS))
    if not found:
        return None
    return OperatorError(", and ".join(found), f"fill in {' and '.join(fill)} (README: Before the first deploy to AWS)")


def check_placeholders(env: Environment) -> None:
    """Refuse an env whose files still hold placeholders; reads files only (no terraform, no AWS)."""
    problem = placeholder_problem(env)
    if problem is not None:
        raise problem


# ----------------------------------------------------------------------------- concurrency


def reservations(env: Environment) -> dict[str, int]:
    """The env's reserved concurrency per function label (api, worker); -1 (unreserved) is left out."""
    wanted: dict[str, int] = {}
    for label, variable in RESERVATIONS.items():
        value = env.variables.get(variable, -1)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            wanted[label] = int(value)
    return wanted


def function_names(env: Environment) -> dict[str, str]:
    """The env's Lambda function names: <project>-<env>-<label>, as the compute module names them."""
    project = env.variables.get("project") or DEFAULT_PROJECT
    name = env.variables.get("env") or env.name
    return {label: f"{project}-{name}-{label}" for label in RESERVATIONS}


@dataclass(frozen=True)
class AccountConcurrency:
    """An account's Lambda concurrency in one region, and what the env's functions hold of it."""

    limit: int  # AccountLimit.ConcurrentExecutions
    unreserved: int  # AccountLimit.UnreservedConcurrentExecutions
    held: int = 0  # reserved today by the env's own functions (replaced by the new values)


def concurrency_problem(
    env_name: str, wanted: dict[str, int], account: AccountConcurrency, region: str
) -> OperatorError | None:
    """An error when ``wanted`` reservations would leave fewer than 100 executions unreserved."""
    total = sum(wanted.values())
    if not wanted:
        return None
    available = account.unreserved + account.held - MIN_UNRESERVED
    if total <= available:
        return None
    others = account.limit - account.unreserved - account.held
    needed_limit = others + total + MIN_UNRESERVED
    parts = " + ".join(f"{RESERVATIONS[label]} {n}" for label, n in wanted.items())
    held = f" plus {account.held} held by this env's functions" if account.held else ""
    return OperatorError(
        f"env {env_name} reserves {total} concurrent Lambda executions ({parts}), but the account can reserve "
        f"at most {max(available, 0)} in {region} (concurrency limit {account.limit}, {account.unreserved} "
        f"unreserved now{held}, and AWS keeps {MIN_UNRESERVED} unreserved)",
        f'request a quota increase to at least {needed_limit} in Service Quotas (AWS Lambda, "Concurrent '
        f'executions"), or lower api_reserved_concurrency/worker_reserved_concurrency in '
        f"environments/{env_name}.tfvars (-1 = unreserved)",
    )


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def read_account_concurrency(lambda_client: Any, names: list[str]) -> AccountConcurrency:
    """GetAccountSettings, plus the reservations ``names`` hold (a missing function holds none)."""
    limits = lambda_client.get_account_settings()["AccountLimit"]
    held = 0
    for name in names:
        try:
            reserved = lambda_client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
        except Exception as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                continue
            raise
        held += int(reserved or 0)
    return AccountConcurrency(int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"]), held)


def check_lambda_concurrency(env: Environment, access: Any, out: Out = print) -> AccountConcurrency | None:
    """Refuse reservations the account cannot give; skipped when the env reserves nothing.

    A caller not allowed to read the settings gets a warning, and the plan goes on.
    """
    wanted = reservations(env)
    if not wanted:
        return None
    names = function_names(env)
    try:
        account = read_account_concurrency(access.client("lambda"), [names[label] for label in wanted])
    except Exception as exc:
        if _error_code(exc) not in _DENIED:
            raise
        out(
            f"warning: could not check the account's Lambda concurrency ({_error_code(exc)}): env {env.name} "
            f"reserves {sum(wanted.values())}, and AWS keeps {MIN_UNRESERVED} unreserved"
        )
        return None
    problem = concurrency_problem(env.name, wanted, account, access.region)
    if problem is not None:
        raise problem
    return account


# ----------------------------------------------------------------------------- API Gateway logging role


def logging_role_problem(env: Environment, cloudwatch_role_arn: str | None) -> OperatorError | None:
    """An error when the env does not manage API Gateway's logging role and the account has none.

    The stage always writes access logs (and execution logs unless their level is OFF): AWS
    refuses its logging settings until the account and region have the role.
    """
    if env.variables.get("manage_api_gateway_cloudwatch_role") is True or cloudwatch_role_arn:
        return None
    return OperatorError(
        f"env {env.name} does not manage API Gateway's CloudWatch Logs role (manage_api_gateway_cloudwatch_role "
        "= false) and this account and region have none, but the API stage's access and execution logs need it",
        "set manage_api_gateway_cloudwatch_role = true in exactly one env of this account and region "
        f"(environments/{env.name}.tfvars or another), or create the role once by hand (docs/infrastructure.md)",
    )


def check_api_gateway_logging_role(env: Environment, access: Any, out: Out = print, strict: bool = True) -> None:
    """The stage's logs need the account's API Gateway CloudWatch role: refuse (``strict``) or warn without it."""
    probe = logging_role_problem(env, None)
    if probe is None:
        return
    try:
        arn = access.client("apigateway").get_account().get("cloudwatchRoleArn")
    except Exception as exc:
        if _error_code(exc) not in _DENIED:
            raise
        out(
            f"warning: could not read the API Gateway account settings ({_error_code(exc)}): env {env.name} relies "
            "on the account's API Gateway CloudWatch Logs role (manage_api_gateway_cloudwatch_role = false), "
            "which its stage's logs need"
        )
        return
    problem = logging_role_problem(env, arn)
    if problem is None:
        return
    if strict:
        raise problem
    out(f"warning: {problem.what}: the apply will fail until it exists; {problem.todo}")
