"""tooling.terraform without AWS: the provider-mirror setting and its discovery, the CLI
configuration, per-environment locations, the environment terraform gets, and errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tooling import terraform as tfmod
from tooling.terraform import (
    PlanSummary,
    TerraformError,
    TerraformRunner,
    discover_provider_mirror,
    find_provider_mirror,
    parse_plan_summary,
    write_cli_config,
)

pytestmark = pytest.mark.terraform


def fake_mirror(base: Path) -> Path:
    (base / "registry.terraform.io" / "hashicorp" / "aws" / "5.100.0" / "linux_amd64").mkdir(parents=True)
    return base


def test_mirror_setting_wins_and_must_hold_the_aws_provider(tmp_path):
    mirror = fake_mirror(tmp_path / "m")
    assert find_provider_mirror({"TF_PROVIDER_MIRROR": str(mirror)}, roots=()) == mirror.resolve()
    with pytest.raises(TerraformError, match=r"TF_PROVIDER_MIRROR=.* holds no registry\.terraform\.io/hashicorp/aws"):
        find_provider_mirror({"TF_PROVIDER_MIRROR": str(tmp_path)}, roots=())


def test_mirror_can_be_switched_off(tmp_path):
    fake_mirror(tmp_path / "opt" / "plugins")
    assert find_provider_mirror({"TF_PROVIDER_MIRROR": "off"}, roots=[str(tmp_path / "opt")]) is None


def test_discovery_searches_a_few_levels_and_caches(tmp_path):
    mirror = fake_mirror(tmp_path / "opt" / "tools" / "tf-plugins")
    (tmp_path / "opt" / "node_modules" / "x").mkdir(parents=True)
    cache = tmp_path / "cache" / "provider-mirror"
    found = find_provider_mirror({}, cache_file=cache, roots=[str(tmp_path / "nowhere"), str(tmp_path / "opt")])
    assert found == mirror.resolve()
    assert cache.read_text().strip() == str(mirror.resolve())
    # the cache answers next time, without searching
    assert find_provider_mirror({}, cache_file=cache, roots=()) == mirror.resolve()
    # a stale cache is ignored
    cache.write_text(str(tmp_path / "gone") + "\n")
    assert find_provider_mirror({}, cache_file=cache, roots=()) is None


def test_discovery_depth_is_bounded(tmp_path):
    fake_mirror(tmp_path / "a" / "b" / "c" / "d" / "e" / "f")
    assert discover_provider_mirror([str(tmp_path)], depth=3) is None


def test_cli_config_installs_aws_from_the_mirror_only(tmp_path):
    config = write_cli_config(tmp_path / "mirror", tmp_path / "rc").read_text()
    assert f'path    = "{tmp_path / "mirror"}"' in config
    assert 'include = ["registry.terraform.io/hashicorp/aws"]' in config
    assert 'exclude = ["registry.terraform.io/hashicorp/aws"]' in config


def test_environments_get_their_own_data_dir_and_state(tmp_path):
    local = TerraformRunner("local", work_root=tmp_path)
    dev = TerraformRunner("dev", work_root=tmp_path)
    dev_planned = TerraformRunner("dev", backend=False, work_root=tmp_path)
    dirs = {local.data_dir, dev.data_dir, dev_planned.data_dir}
    assert len(dirs) == 3
    assert local.state_file == tmp_path.resolve() / "state" / "local" / "terraform.tfstate"
    assert local.working_dir != tfmod.TERRAFORM_DIR and dev.working_dir == tfmod.TERRAFORM_DIR
    assert dev.backend_file is not None and dev.backend_file.name == "dev.backend.hcl"


def test_local_working_dir_links_the_module_and_selects_the_local_backend(tmp_path):
    runner = TerraformRunner("local", work_root=tmp_path)
    runner._prepare_overlay()
    root = runner.working_dir
    assert (root / "main.tf").resolve() == tfmod.TERRAFORM_DIR / "main.tf"
    assert (root / "modules").resolve() == tfmod.TERRAFORM_DIR / "modules"
    override = (root / "backend_override.tf").read_text()
    assert 'backend "local"' in override and str(runner.state_file) in override


def test_terraform_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
    monkeypatch.setenv("TF_VAR_aws_endpoint_url", "http://127.0.0.1:1")
    monkeypatch.setenv("TF_VAR_extra_tags", '{"team" = "x"}')
    mirror = fake_mirror(tmp_path / "mirror")
    aws = TerraformRunner("dev", work_root=tmp_path, extra_env={"TF_PROVIDER_MIRROR": str(mirror)})
    env = aws.environment()
    # the AWS path: no endpoint of any kind reaches terraform
    assert not [k for k in env if k.startswith("AWS_ENDPOINT_URL")]
    assert "TF_VAR_aws_endpoint_url" not in env
    assert env["TF_VAR_extra_tags"] == '{"team" = "x"}'
    assert env["TF_DATA_DIR"] == str(aws.data_dir)
    assert str(mirror.resolve()) in Path(env["TF_CLI_CONFIG_FILE"]).read_text()
    local = TerraformRunner("local", work_root=tmp_path, endpoint_url="http://127.0.0.1:5000")
    assert local.environment()["TF_VAR_aws_endpoint_url"] == "http://127.0.0.1:5000"


def test_no_mirror_means_plain_registry_installs(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "missing.rc"))
    env = TerraformRunner("dev", work_root=tmp_path, extra_env={"TF_PROVIDER_MIRROR": "off"}).environment()
    assert "TF_CLI_CONFIG_FILE" not in env  # a dangling setting is dropped, nothing replaces it


def test_errors_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(TerraformError, match=r"environments/qa\.tfvars \(copy dev\.tfvars.*one of: dev, local, prod"):
        TerraformRunner("qa", work_root=tmp_path)
    with pytest.raises(TerraformError, match=r"local\.backend\.hcl not found"):
        TerraformRunner("local", backend=True, work_root=tmp_path)
    with pytest.raises(TerraformError, match="invalid environment name"):
        TerraformRunner("../etc", work_root=tmp_path)
    monkeypatch.setenv("TERRAFORM_BIN", str(tmp_path / "no-terraform"))
    with pytest.raises(TerraformError, match="terraform not found on PATH: install Terraform"):
        TerraformRunner("dev", work_root=tmp_path)
    for exc_message in (str(TerraformError("x")),):
        assert "\n" not in exc_message


def test_plan_summary_parsing():
    assert parse_plan_summary("...\nPlan: 3 to add, 1 to change, 2 to destroy.\n") == (3, 1, 2)
    assert parse_plan_summary("Plan: 1 to import, 4 to add, 0 to change, 0 to destroy.") == (4, 0, 0)
    assert parse_plan_summary("No changes. Your infrastructure matches the configuration.") == (0, 0, 0)
    with pytest.raises(TerraformError):
        parse_plan_summary("garbage")
    assert str(PlanSummary(0, 0, 0, "")) == "no changes"
    assert PlanSummary(0, 1, 0, "").has_changes


def test_missing_provider_offline_is_a_clear_error(tmp_path, make_runner):
    """A mirror without the required provider version: init fails with what to do."""
    empty = tmp_path / "empty-mirror"
    (empty / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    runner = make_runner(
        "local", work_root=tmp_path / "work", extra_env={**os.environ, "TF_PROVIDER_MIRROR": str(empty)}
    )
    with pytest.raises(
        TerraformError, match="provider could not be installed; offline\\? set TF_PROVIDER_MIRROR"
    ) as err:
        runner.init()
    assert "\n" not in str(err.value)
