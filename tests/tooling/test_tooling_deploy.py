"""deploy/destroy/outputs/events flows with a stand-in terraform (the real one: tests/terraform/test_apply_local.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tooling import deploy, events
from tooling.deploy import PlanSummary
from tooling.environments import Environment
from tooling.errors import OperatorError

CHANGES = (
    events.ResourceChange("module.compute.aws_lambda_function.api", ("update",)),
    events.ResourceChange("module.storage.aws_s3_bucket.results", ("create",)),
    events.ResourceChange("module.api.aws_api_gateway_deployment.this", ("delete", "create")),
)


class FakeTerraform:
    def __init__(self, summary: PlanSummary, outputs: dict | None = None) -> None:
        self.summary = summary
        self.values = outputs if outputs is not None else {"table_name": "t", "api_url": "https://x/dev"}
        self.calls: list[str] = []

    def init(self) -> None:
        self.calls.append("init")

    def plan(self, plan_file: Path, destroy: bool = False) -> PlanSummary:
        self.calls.append("plan-destroy" if destroy else "plan")
        return self.summary

    def apply(self, plan_file: Path) -> None:
        self.calls.append("apply")

    def destroy(self) -> None:
        self.calls.append("destroy")

    def outputs(self) -> dict:
        self.calls.append("outputs")
        return self.values


@pytest.fixture
def local_env(tmp_path, monkeypatch, backend) -> Environment:
    monkeypatch.setenv("JOBSTACK_WORK_ROOT", str(tmp_path / "work"))
    monkeypatch.setenv("JOBSTACK_ENDPOINT_URL", backend.endpoint)
    return Environment("local", tmp_path / "local.tfvars", None, {"force_destroy_bucket": True}, root=tmp_path)


def test_deploy_applies_after_confirmation_and_records_the_changes(local_env):
    tf = FakeTerraform(PlanSummary(1, 1, 1, CHANGES))
    lines: list[str] = []
    asked: list[str] = []
    summary = deploy.deploy(local_env, out=lines.append, confirm=lambda q: asked.append(q) or True, tf=tf, build=False)
    assert summary.add == 1
    assert tf.calls == ["init", "plan", "apply", "outputs"]
    assert asked == ["Apply these changes to env 'local'?"]
    assert "Plan: 1 to add, 1 to change, 1 to destroy." in lines
    assert "    ~ module.compute.aws_lambda_function.api  (update)" in lines
    assert "  -/+ module.api.aws_api_gateway_deployment.this  (replace)" in lines
    # outputs: API URL first
    first_output = lines.index("") + 1
    assert lines[first_output].startswith("api_url     https://x/dev")
    assert lines[first_output + 1].startswith("table_name  t")

    (record,) = events.read(local_env.events_file)
    assert (record.operation, record.outcome, record.add, record.change, record.destroy) == (
        "deploy",
        "applied",
        1,
        1,
        1,
    )
    assert [c["address"] for c in record.changes] == [c.address for c in CHANGES]
    shown: list[str] = []
    deploy.print_events(local_env, out=shown.append)
    assert "deploy of env 'local' applied: 1 added, 1 changed, 1 destroyed" in shown[0]
    assert "    + module.storage.aws_s3_bucket.results  (create)" in shown[0].splitlines()


def test_deploy_with_nothing_to_change_applies_nothing(local_env):
    tf = FakeTerraform(PlanSummary(0, 0, 0))
    lines: list[str] = []
    deploy.deploy(local_env, out=lines.append, confirm=lambda q: pytest.fail("asked"), tf=tf, build=False)
    assert "apply" not in tf.calls
    assert "Plan: 0 to add, 0 to change, 0 to destroy." in lines
    assert "env local is up to date: nothing to apply." in lines
    (record,) = events.read(local_env.events_file)
    assert (record.outcome, record.add, record.change, record.destroy, record.changes) == ("no-changes", 0, 0, 0, [])


def test_deploy_uploads_the_console_and_its_config_when_the_stack_has_one(local_env, access, unique):
    bucket = f"console-{unique}"
    access.client("s3").create_bucket(Bucket=bucket)
    outputs = {
        "api_url": "https://x/dev",
        "region": "us-east-1",
        "user_pool_id": "us-east-1_P",
        "user_pool_client_id": "c1",
        "console_url": "https://d1.cloudfront.net/",
        "console_bucket_name": bucket,
        "console_distribution_id": None,
    }
    lines: list[str] = []
    deploy.deploy(
        local_env,
        out=lines.append,
        confirm=lambda q: True,
        tf=FakeTerraform(PlanSummary(0, 0, 0), outputs),
        build=False,
    )
    keys = {o["Key"] for o in access.client("s3").list_objects_v2(Bucket=bucket)["Contents"]}
    assert {"index.html", "config.json", "js/main.js", "css/console.css"} <= keys
    config = json.loads(access.client("s3").get_object(Bucket=bucket, Key="config.json")["Body"].read())
    assert (config["api_url"], config["client_id"]) == ("https://x/dev", "c1")
    assert any(line.startswith("console: ") and "uploaded" in line for line in lines)
    first_output = lines.index("") + 1  # outputs: the API URL, then the console's
    assert lines[first_output].startswith("api_url ") and lines[first_output + 1].startswith("console_url ")


def test_deploy_refused_changes_nothing(local_env):
    tf = FakeTerraform(PlanSummary(2, 0, 0, CHANGES[:1]))
    with pytest.raises(OperatorError, match="deploy cancelled: nothing was changed"):
        deploy.deploy(local_env, out=lambda _l: None, confirm=lambda _q: False, tf=tf, build=False)
    assert "apply" not in tf.calls


def test_confirmation_without_a_terminal_asks_for_yes(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(OperatorError) as caught:
        deploy.confirm_on_terminal("Destroy env 'dev' and all its data (40 resources)?")
    assert caught.value.line() == (
        "error: Destroy env 'dev' and all its data (40 resources): needs a confirmation; run it again with --yes"
    )


def _versioned_bucket_with_data(access, name: str) -> None:
    s3 = access.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=name, Key="o/2025-07-14/a.txt", Body=b"1")
    s3.put_object(Bucket=name, Key="o/2025-07-14/a.txt", Body=b"2")
    s3.delete_object(Bucket=name, Key="o/2025-07-14/a.txt")


def test_destroy_empties_the_versioned_bucket_when_the_env_allows_it(local_env, access, unique):
    bucket = f"results-{unique}"
    _versioned_bucket_with_data(access, bucket)
    tf = FakeTerraform(PlanSummary(0, 0, 12), {"bucket_name": bucket})
    lines: list[str] = []
    deploy.destroy(local_env, yes=True, out=lines.append, tf=tf)
    assert tf.calls == ["init", "outputs", "plan-destroy", "destroy"]
    assert f"emptied s3://{bucket}: 3 object versions and delete markers deleted" in lines
    assert "Destroy complete: 12 destroyed." in lines
    listing = access.client("s3").list_object_versions(Bucket=bucket)
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")
    (record,) = events.read(local_env.events_file)
    assert (record.operation, record.outcome, record.destroy) == ("destroy", "applied", 12)


def test_destroy_keeps_results_when_the_env_does_not_allow_it(local_env, access, unique):
    keep = Environment("local", local_env.tfvars, None, {"force_destroy_bucket": False}, root=local_env.root)
    bucket = f"results-keep-{unique}"
    _versioned_bucket_with_data(access, bucket)
    tf = FakeTerraform(PlanSummary(0, 0, 12), {"bucket_name": bucket})
    with pytest.raises(OperatorError) as caught:
        deploy.destroy(keep, yes=True, out=lambda _l: None, tf=tf)
    assert "destroy" not in tf.calls
    assert caught.value.line().startswith(
        f"error: the results bucket s3://{bucket} is not empty and env 'local' keeps its results "
        "(force_destroy_bucket = false)"
    )
    assert len(access.client("s3").list_object_versions(Bucket=bucket)["Versions"]) == 2


def test_destroy_asks_first(local_env, access, unique):
    bucket = f"results-ask-{unique}"
    _versioned_bucket_with_data(access, bucket)
    tf = FakeTerraform(PlanSummary(0, 0, 12), {"bucket_name": bucket})
    with pytest.raises(OperatorError, match="destroy cancelled"):
        deploy.destroy(local_env, out=lambda _l: None, confirm=lambda _q: False, tf=tf)
    assert "destroy" not in tf.calls
    assert len(access.client("s3").list_object_versions(Bucket=bucket)["Versions"]) == 2  # untouched


def test_outputs_json_and_not_deployed(local_env):
    lines: list[str] = []
    deploy.print_outputs(local_env, as_json=True, out=lines.append, tf=FakeTerraform(PlanSummary(0, 0, 0)))
    assert list(json.loads(lines[0])) == ["api_url", "table_name"]
    with pytest.raises(OperatorError, match="env 'local' has no outputs: it is not deployed"):
        deploy.print_outputs(local_env, out=lines.append, tf=FakeTerraform(PlanSummary(0, 0, 0), {}))


def test_events_when_nothing_was_recorded(local_env):
    lines: list[str] = []
    deploy.print_events(local_env, out=lines.append)
    assert lines == ["no applies recorded for env 'local' on this machine (invoke deploy records them)"]


def test_changes_from_plan_json_skips_no_ops_and_reads():
    plan = {
        "resource_changes": [
            {"address": "b.x", "change": {"actions": ["no-op"]}},
            {"address": "data.aws_region.current", "change": {"actions": ["read"]}},
            {"address": "a.y", "change": {"actions": ["create", "delete"]}},
            {"address": "a.x", "change": {"actions": ["update"]}},
        ]
    }
    assert [c.render() for c in events.changes_from_plan_json(plan)] == [
        "  ~ a.x  (update)",
        "+/- a.y  (replace)",
    ]
