"""The tasks with the real terraform on the embedded backend: deploy, unchanged redeploy, outputs,
events, status, destroy of a stack whose versioned bucket holds results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.terraform.contract import REQUIRED_OUTPUTS
from tooling.aws_access import for_endpoint
from tooling.embedded_backend import EmbeddedBackend

pytestmark = [pytest.mark.terraform, pytest.mark.slow, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack_env(tmp_path, clean_env):
    """A fresh embedded backend of its own, and a work root of its own (state, records)."""
    with EmbeddedBackend(log_path=str(tmp_path / "moto.log")) as backend:
        env = clean_env(JOBSTACK_ENDPOINT_URL=backend.endpoint, JOBSTACK_WORK_ROOT=str(tmp_path / "work"))
        yield backend, env


def invoke(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_deploy_redeploy_outputs_events_status_destroy(stack_env):
    backend, env = stack_env
    access = for_endpoint(backend.endpoint)

    first = invoke(env, "deploy", "--env", "local", "--yes")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    out = first.stdout.splitlines()
    assert out[0] == f"env local: embedded backend at {backend.endpoint}"
    summary = next(ln for ln in out if ln.startswith("Plan: "))
    added = int(summary.split()[1])
    assert added > 20 and summary.endswith("0 to change, 0 to destroy.")
    assert f"Apply complete: {added} added, 0 changed, 0 destroyed." in out
    outputs_start = out.index("") + 1
    assert out[outputs_start].startswith("api_url ")  # API URL first

    outputs = json.loads(invoke(env, "outputs", "--env", "local", "--json").stdout)
    assert set(outputs) >= REQUIRED_OUTPUTS
    assert next(iter(outputs)) == "api_url"
    lam = access.client("lambda")
    before = {
        fn: lam.get_function(FunctionName=outputs[fn])["Configuration"]
        for fn in ("api_function_name", "worker_function_name")
    }

    second = invoke(env, "deploy", "--env", "local", "--yes")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    assert "Plan: 0 to add, 0 to change, 0 to destroy." in second.stdout.splitlines()
    assert "env local is up to date: nothing to apply." in second.stdout
    for fn, config in before.items():  # no function code update
        after = lam.get_function(FunctionName=outputs[fn])["Configuration"]
        assert (after["CodeSha256"], after["LastModified"]) == (config["CodeSha256"], config["LastModified"])

    events = invoke(env, "events", "--env", "local", "--limit", "2")
    assert events.returncode == 0, events.stderr
    lines = events.stdout.splitlines()
    assert "deploy of env 'local' no-changes: 0 added, 0 changed, 0 destroyed" in lines[0]
    first_record = next(ln for ln in lines if "deploy of env 'local' applied" in ln)
    assert f"{added} added, 0 changed, 0 destroyed" in first_record
    assert any(ln.strip().startswith("+ module.compute.aws_lambda_function") for ln in lines)

    status = invoke(env, "status", "--env", "local")
    assert status.returncode == 0, status.stderr
    assert f"  api     {outputs['api_function_name']}  state=Active" in status.stdout
    assert "jobs created in the last 24h: 0" in status.stdout

    s3 = access.client("s3")
    bucket = outputs["bucket_name"]
    # moto evaluates the stack's TLS-only bucket policy against its plain-HTTP loopback endpoint
    # and so denies every object write and delete: lift the policy (it is not under test here).
    assert "aws:SecureTransport" in s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    for n in range(3):
        s3.put_object(Bucket=bucket, Key=f"owner/2025-07-14/job-{n}.txt", Body=b"v1")
        s3.put_object(Bucket=bucket, Key=f"owner/2025-07-14/job-{n}.txt", Body=b"v2")
    s3.delete_object(Bucket=bucket, Key="owner/2025-07-14/job-0.txt")

    gone = invoke(env, "destroy", "--env", "local", "--yes")
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr
    assert f"emptied s3://{bucket}: 7 object versions and delete markers deleted" in gone.stdout
    assert "Destroy complete:" in gone.stdout
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert lam.list_functions()["Functions"] == []
    nothing = invoke(env, "outputs", "--env", "local")
    assert nothing.returncode == 1
    assert nothing.stderr.strip() == (
        "error: env 'local' has no outputs: it is not deployed; run invoke deploy --env local"
    )
