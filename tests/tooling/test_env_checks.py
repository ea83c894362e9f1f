"""Checks of an AWS env before terraform runs (tooling/env_checks.py): placeholders left in its
files, room in the account for its reserved Lambda concurrency, API Gateway's logging role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from tooling import deploy, env_checks
from tooling.aws_access import AwsAccess, for_endpoint
from tooling.env_checks import AccountConcurrency, concurrency_problem
from tooling.environments import Environment, resolve
from tooling.errors import OperatorError

ROOT = Path(__file__).resolve().parents[2]
PROD = {"api": 50, "worker": 20}  # reservations the checks are tested with
# environments/prod.tfvars' own: the worker's covers its three mappings (20 + 4 + 2)
PROD_TFVARS = {"api": 50, "worker": 26}
TODO = (
    'request a quota increase to at least {n} in Service Quotas (AWS Lambda, "Concurrent executions"), or lower '
    "api_reserved_concurrency/worker_reserved_concurrency in environments/prod.tfvars (-1 = unreserved)"
)


def filled_in_env(tmp_path: Path, tfvars: str, backend: str | None = None) -> Environment:
    (tmp_path / "environments").mkdir(exist_ok=True)
    (tmp_path / "environments" / "staging.tfvars").write_text(tfvars)
    if backend is not None:
        (tmp_path / "environments" / "staging.backend.hcl").write_text(backend)
    return resolve("staging", root=tmp_path)


# ----------------------------------------------------------------------------- placeholders


def test_the_shipped_dev_and_prod_files_are_refused_for_their_placeholders():
    for name in ("dev", "prod"):
        problem = env_checks.placeholder_problem(resolve(name))
        assert problem is not None
        assert problem.line() == (
            f'error: environments/{name}.backend.hcl still has the placeholder bucket "jobs-tfstate-CHANGE-ME", '
            f"and environments/{name}.tfvars still has placeholder values for cognito_user_pool_arn, "
            "cognito_issuer_url, cognito_app_client_id; fill in your state bucket and your Cognito user pool's "
            "ARN, issuer URL and app client id (README: Before the first deploy to AWS)"
        )


def test_the_local_env_and_filled_in_files_pass(tmp_path):
    env_checks.check_placeholders(resolve("local"))
    env = filled_in_env(
        tmp_path,
        'env = "staging"\ncognito_user_pool_arn = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/'
        'eu-west-1_Ab12Cd34"\ncognito_app_client_id = "4tq5c0ffee"\n',
        'bucket = "acme-tfstate"\nkey = "jobs/staging.tfstate"\n',
    )
    env_checks.check_placeholders(env)


def test_a_placeholder_bucket_alone_is_named(tmp_path):
    env = filled_in_env(tmp_path, 'env = "staging"\n', 'bucket = "jobs-tfstate-CHANGE-ME" # fill in\nkey = "k"\n')
    with pytest.raises(OperatorError) as caught:
        env_checks.check_placeholders(env)
    assert caught.value.line() == (
        'error: environments/staging.backend.hcl still has the placeholder bucket "jobs-tfstate-CHANGE-ME"; '
        "fill in your state bucket (README: Before the first deploy to AWS)"
    )


# ----------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize(
    ("account", "refused_with"),
    [
        (AccountConcurrency(limit=1000, unreserved=1000), None),
        (AccountConcurrency(limit=170, unreserved=170), None),  # exactly 100 stay unreserved
        (AccountConcurrency(limit=170, unreserved=100, held=70), None),  # a redeploy: its own 70 come back
        (
            AccountConcurrency(limit=169, unreserved=169),
            "at most 69 in us-east-1 (concurrency limit 169, 169 unreserved now, and AWS keeps 100 unreserved)",
        ),
        (
            AccountConcurrency(limit=10, unreserved=10),  # a new account's quota
            "at most 0 in us-east-1 (concurrency limit 10, 10 unreserved now, and AWS keeps 100 unreserved)",
        ),
        (
            AccountConcurrency(limit=1000, unreserved=140, held=20),  # other functions hold 840
            "at most 60 in us-east-1 (concurrency limit 1000, 140 unreserved now plus 20 held by this env's "
            "functions, and AWS keeps 100 unreserved)",
        ),
    ],
)
def test_reservations_must_leave_100_unreserved(account, refused_with):
    problem = concurrency_problem("prod", PROD, account, "us-east-1")
    if refused_with is None:
        assert problem is None
        return
    assert problem is not None
    needed = account.limit - account.unreserved - account.held + 170
    assert problem.line() == (
        "error: env prod reserves 70 concurrent Lambda executions (api_reserved_concurrency 50 + "
        f"worker_reserved_concurrency 20), but the account can reserve {refused_with}; " + TODO.format(n=needed)
    )
    if account.held == 0:
        assert needed == account.limit - account.unreserved + 170


def test_reservations_come_from_the_tfvars_and_unreserved_envs_are_skipped():
    assert env_checks.reservations(resolve("prod")) == PROD_TFVARS
    assert env_checks.function_names(resolve("prod")) == {"api": "jobs-prod-api", "worker": "jobs-prod-worker"}
    dev = resolve("dev")
    assert env_checks.reservations(dev) == {}
    assert concurrency_problem("dev", {}, AccountConcurrency(limit=10, unreserved=10), "us-east-1") is None

    class NoCalls:
        def client(self, service: str) -> Any:
            raise AssertionError(f"an env that reserves nothing must not call {service}")

    assert env_checks.check_lambda_concurrency(dev, NoCalls()) is None


def _account_settings(limit: int, unreserved: int):
    """A botocore handler answering GetAccountSettings, which moto does not implement."""

    def answer(**_kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("", 200, {}, None), {
            "AccountLimit": {"ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved},
            "AccountUsage": {"FunctionCount": 2},
        }

    return answer


def test_held_reservations_are_read_from_the_embedded_backend(access, unique):
    lam, iam = access.client("lambda"), access.client("iam")
    role = iam.create_role(
        RoleName=f"t{unique}-role",
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
    )["Role"]["Arn"]
    env = Environment(
        "prod",
        ROOT / "environments" / "prod.tfvars",
        None,
        {"project": f"t{unique}", "env": "prod", "api_reserved_concurrency": 50, "worker_reserved_concurrency": 20},
    )
    # deployed before: the api function holds 50; the worker does not exist yet
    lam.create_function(
        FunctionName=f"t{unique}-prod-api",
        Runtime="python3.12",
        Role=role,
        Handler="jobs.api.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    lam.put_function_concurrency(FunctionName=f"t{unique}-prod-api", ReservedConcurrentExecutions=50)

    # others hold nothing: limit 170 = 120 unreserved + this env's 50
    access.session.events.register("before-call.lambda.GetAccountSettings", _account_settings(170, 120))
    account = env_checks.check_lambda_concurrency(env, access)
    assert account == AccountConcurrency(limit=170, unreserved=120, held=50)

    low = for_endpoint(access.endpoint_url or "", access.region)
    low.session.events.register("before-call.lambda.GetAccountSettings", _account_settings(169, 119))
    with pytest.raises(OperatorError) as caught:
        env_checks.check_lambda_concurrency(env, low)
    assert "can reserve at most 69 in us-east-1" in caught.value.line()
    assert "119 unreserved now plus 50 held by this env's functions" in caught.value.line()
    assert "to at least 170 in Service Quotas" in caught.value.line()


def test_a_caller_not_allowed_to_read_the_settings_is_warned_and_goes_on():
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    access = AwsAccess(boto3.Session(region_name="us-east-1"))
    access.client = lambda _service: client  # type: ignore[method-assign]
    env = resolve("prod")
    said: list[str] = []
    with Stubber(client) as stub:
        stub.add_client_error("get_account_settings", service_error_code="AccessDeniedException", http_status_code=403)
        assert env_checks.check_lambda_concurrency(env, access, out=said.append) is None
    assert said == [
        "warning: could not check the account's Lambda concurrency (AccessDeniedException): env prod reserves 76, "
        "and AWS keeps 100 unreserved"
    ]


def test_plan_and_deploy_refuse_before_terraform_runs(monkeypatch, tmp_path):
    env = Environment("prod", tmp_path / "prod.tfvars", None, {"api_reserved_concurrency": 50}, root=tmp_path)
    access = AwsAccess(boto3.Session(region_name="us-east-1"))
    monkeypatch.setattr(deploy, "preflight", lambda _env, _out=None: access)
    monkeypatch.setattr(
        env_checks, "read_account_concurrency", lambda _client, _names: AccountConcurrency(limit=100, unreserved=100)
    )

    class NoTerraform:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"terraform {name} ran")

    for run in (
        lambda: deploy.plan(env, out=lambda _l: None, tf=NoTerraform()),  # type: ignore[arg-type]
        lambda: deploy.deploy(env, yes=True, out=lambda _l: None, tf=NoTerraform(), build=False),  # type: ignore[arg-type]
    ):
        with pytest.raises(OperatorError, match="env prod reserves 50 concurrent Lambda executions"):
            run()


# ----------------------------------------------------------------------------- API Gateway logging role


def test_the_stage_logs_need_the_account_role_unless_the_env_manages_it():
    def env(**variables: Any) -> Environment:
        return Environment("dev", ROOT / "environments" / "dev.tfvars", None, variables)

    assert env_checks.logging_role_problem(env(manage_api_gateway_cloudwatch_role=True), None) is None
    assert env_checks.logging_role_problem(env(), "arn:aws:iam::123456789012:role/apigw") is None
    # access logs are always on: execution logging OFF does not make the role optional
    problem = env_checks.logging_role_problem(env(api_execution_logging_level="OFF"), None)
    assert problem is not None
    assert problem.line() == (
        "error: env dev does not manage API Gateway's CloudWatch Logs role (manage_api_gateway_cloudwatch_role = "
        "false) and this account and region have none, but the API stage's access and execution logs need it; set "
        "manage_api_gateway_cloudwatch_role = true in exactly one env of this account and region "
        "(environments/dev.tfvars or another), or create the role once by hand (docs/infrastructure.md)"
    )


def test_the_account_role_is_read_from_the_embedded_backend(backend):
    # a region of its own: the API Gateway account setting is per account and region
    access = for_endpoint(backend.endpoint, "eu-west-3")
    env = Environment("dev", ROOT / "environments" / "dev.tfvars", None, {"manage_api_gateway_cloudwatch_role": False})
    said: list[str] = []
    env_checks.check_api_gateway_logging_role(env, access, out=said.append, strict=False)  # a plan warns
    assert len(said) == 1
    assert said[0].startswith("warning: env dev does not manage API Gateway's CloudWatch Logs role")
    assert "the apply will fail until it exists; set manage_api_gateway_cloudwatch_role = true" in said[0]
    with pytest.raises(OperatorError, match="this account and region have none"):
        env_checks.check_api_gateway_logging_role(env, access)  # a deploy refuses
    role = "arn:aws:iam::123456789012:role/jobs-shared-apigw-logs-eu-west-3-role"
    access.client("apigateway").update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}]
    )
    env_checks.check_api_gateway_logging_role(env, access, out=said.append)
    assert len(said) == 1
