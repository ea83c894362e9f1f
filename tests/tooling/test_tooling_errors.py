"""Known failures print one clear line and exit non-zero, without a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from tests.support import run_invoke
from tooling import aws_access
from tooling.errors import OperatorError, classify_terraform_output, friendly_errors, translate

ROOT = Path(__file__).resolve().parents[2]


def assert_one_error_line(proc: subprocess.CompletedProcess[str], starts_with: str) -> str:
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(starts_with), lines[0]
    return lines[0]


def test_unknown_env_lists_the_known_ones(clean_env):
    proc = run_invoke(["plan", "--env", "nosuch"], clean_env())
    line = assert_one_error_line(proc, "error: unknown environment 'nosuch': environments/nosuch.tfvars not found")
    known = ", ".join(sorted(p.stem for p in (ROOT / "environments").glob("*.tfvars")))
    assert f"(known environments: {known})" in line
    assert proc.returncode == 1


def test_env_defaults_from_jobstack_env(clean_env):
    proc = run_invoke(["outputs"], clean_env(JOBSTACK_ENV="staging"))
    assert_one_error_line(proc, "error: unknown environment 'staging'")


def test_missing_credentials(clean_env):
    proc = run_invoke(["status", "--env", "dev"], clean_env())
    line = assert_one_error_line(proc, "error: no AWS credentials found; ")
    assert "aws sso login" in line and "--env local" in line
    assert proc.returncode == 1


def test_missing_terraform(clean_env, backend):
    assert shutil.which("terraform", path="/usr/bin:/bin") is None
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    proc = run_invoke(["plan", "--env", "local"], clean_env(PATH=path, JOBSTACK_ENDPOINT_URL=backend.endpoint))
    line = assert_one_error_line(proc, "error: terraform not found on PATH")
    assert "install Terraform" in line


def test_local_env_without_a_running_backend(clean_env, tmp_path):
    proc = run_invoke(["status", "--env", "local"], clean_env(JOBSTACK_WORK_ROOT=str(tmp_path)))
    assert_one_error_line(proc, "error: env 'local' runs on the embedded backend, but none is running; start it")


@pytest.mark.parametrize(("task", "env"), [(["plan"], "dev"), (["deploy", "--yes"], "prod")])
def test_placeholders_are_refused_before_any_terraform_or_aws_call(clean_env, task, env):
    # no credentials and no terraform on PATH: the placeholders are named all the same
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    proc = run_invoke([*task, "--env", env], clean_env(PATH=path))
    line = assert_one_error_line(
        proc,
        f'error: environments/{env}.backend.hcl still has the placeholder bucket "jobs-tfstate-CHANGE-ME", and '
        f"environments/{env}.tfvars still has placeholder values for cognito_user_pool_arn, cognito_issuer_url, "
        "cognito_app_client_id; fill in your state bucket and your Cognito user pool's ARN, issuer URL and app "
        "client id",
    )
    assert proc.returncode == 1 and "packaging" not in proc.stdout, line


def test_expired_credentials_are_named():
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    access = aws_access.AwsAccess(boto3.Session(region_name="us-east-1"))
    access.client = lambda _service: sts  # type: ignore[method-assign]
    with Stubber(sts) as stub:
        stub.add_client_error(
            "get_caller_identity",
            service_error_code="ExpiredToken",
            service_message="The security token included in the request is expired",
            http_status_code=403,
        )
        with pytest.raises(OperatorError) as caught:
            aws_access.check_credentials(access)
    assert caught.value.line() == (
        "error: your AWS credentials have expired; "
        "refresh them (for example aws sso login, or new session credentials) and retry"
    )


class TerraformError(RuntimeError):  # the shape of tooling.terraform.TerraformError
    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def test_missing_state_bucket_in_terraform_output():
    terraform_says = 'Error: Failed to get existing workspaces: S3 bucket "jobs-tfstate" does not exist.'
    exc = TerraformError(
        f"terraform init (dev) failed: {terraform_says}",
        f"{terraform_says}\n\nThe referenced S3 bucket must have been previously created.",
    )
    error = translate(exc)
    assert error is not None
    assert error.line().startswith("error: the Terraform state bucket of this environment does not exist; create it")


def test_provider_unavailable_offline():
    text = (
        "Error: Failed to query available provider packages\n\nCould not retrieve the list of available "
        "versions for provider hashicorp/aws: could not connect to registry.terraform.io"
    )
    error = classify_terraform_output(text)
    assert error is not None
    assert error.line().startswith("error: the hashicorp/aws provider is not available (offline")
    assert "TF_PROVIDER_MIRROR" in error.line()
    # the wrapper's own one-line message is kept when terraform's output says nothing more specific
    plain = translate(
        TerraformError("terraform plan (dev) failed: Error: Unsupported argument", "Error: Unsupported argument")
    )
    assert plain is not None and plain.line() == "error: terraform plan (dev) failed: Error: Unsupported argument"


def test_friendly_errors_exits_with_one_line_and_reraises_bugs(capsys):
    @friendly_errors
    def fails() -> None:
        raise OperatorError("smoke FAILED: job x ended FAILED: boom", "see the logs")

    with pytest.raises(SystemExit) as caught:
        fails()
    assert caught.value.code == 1
    assert capsys.readouterr().err == "error: smoke FAILED: job x ended FAILED: boom; see the logs\n"

    @friendly_errors
    def bug() -> None:
        raise ZeroDivisionError("a real bug keeps its traceback")

    with pytest.raises(ZeroDivisionError):
        bug()


def test_interrupt_is_quiet(capsys):
    @friendly_errors
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as caught:
        interrupted()
    assert caught.value.code == 130
    assert capsys.readouterr().err == "error: interrupted\n"
