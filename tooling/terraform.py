"""The terraform runner: one small wrapper around python-terraform for every environment.

``TerraformRunner(env)`` runs ``terraform`` on ``terraform/`` with ``environments/<env>.tfvars``:

* **state**: an environment with ``environments/<env>.backend.hcl`` (dev, prod) keeps its state
  in that S3 backend and runs in ``terraform/`` itself. One without (local), or any runner made
  with ``backend=False``, keeps local state in ``<work_root>/state/<env>/terraform.tfstate``:
  it runs in ``<work_root>/terraform/<env>/root/``, a folder of symlinks to ``terraform/`` plus
  a ``backend_override.tf`` that selects the local backend (Terraform's override files).
* **per-environment data**: ``TF_DATA_DIR`` is ``<work_root>/terraform/<env>/data``, so the
  environments never share a ``.terraform`` folder or backend configuration.
* **provider mirror**: ``TF_PROVIDER_MIRROR`` names the folder holding
  ``registry.terraform.io/hashicorp/aws/...`` (``off`` disables the mirror). Unset, the
  runner looks for one in the usual places and caches the answer in
  ``<work_root>/provider-mirror``. With a mirror it writes a CLI configuration with a
  ``filesystem_mirror`` and points ``TF_CLI_CONFIG_FILE`` at it; without, terraform
  installs from the registry as usual.
* **embedded backend**: ``endpoint_url`` is passed as ``TF_VAR_aws_endpoint_url``; only then
  does the root module point the provider at it. Without it the runner removes any
  ``AWS_ENDPOINT_URL*`` (and an inherited ``TF_VAR_aws_endpoint_url``) from terraform's
  environment, so a stray setting can never send a real environment's deploy elsewhere.
  ``extra_env`` (e.g. credentials, ``TF_PROVIDER_MIRROR``) is applied before the mirror lookup.

python-terraform 0.10.1 predates Terraform 1.x; this module works around it: ``destroy``
uses ``-auto-approve`` (not the removed ``-force``), ``apply`` never passes a directory
argument, no empty ``-var-file`` is generated, and commands run with this runner's
environment rather than the process's.

``work_root`` defaults to ``<repo>/.local``. Every failure raises ``TerraformError`` with a
one-line message that says what to do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, IsNotFlagged, Terraform

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = ROOT / "terraform"
ENVIRONMENTS_DIR = ROOT / "environments"
BUILD_DIR = ROOT / "build"
EMBEDDED_PARALLELISM = 30
DEFAULT_WORK_ROOT = ROOT / ".local"

MIRROR_ENV = "TF_PROVIDER_MIRROR"
MIRROR_OFF = {"off", "none", "no", "false", "0"}
PROVIDER_PATH = Path("registry.terraform.io") / "hashicorp" / "aws"
# Where a mirror is looked for when TF_PROVIDER_MIRROR is unset: Terraform's implied local
# mirror folders first, then common install roots (searched a few levels deep).
MIRROR_SEARCH_ROOTS = (
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
    "/opt",
    "/usr/local",
    "/usr/share",
    "/srv",
    "~",
)
MIRROR_SEARCH_DEPTH = 4
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", "proc", "sys", "site-packages"}

DEFAULT_TIMEOUT = 1800.0
PLAN_SUMMARY = re.compile(r"Plan: (?:\d+ to import, )?(\d+) to add, (\d+) to change, (\d+) to destroy")


class TerraformError(RuntimeError):
    """A terraform step failed; ``str()`` is one line saying what to do, ``details`` the output."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


# --------------------------------------------------------------------------------------
# Provider mirror
# --------------------------------------------------------------------------------------


def is_mirror(path: Path) -> bool:
    """Whether ``path`` is a provider mirror root holding the hashicorp/aws provider."""
    return (path / PROVIDER_PATH).is_dir()


def _search(root: Path, depth: int) -> Path | None:
    if depth < 0 or not root.is_dir():
        return None
    if is_mirror(root):
        return root
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return None
    for child in children:
        if child.name in SKIP_DIRS or (child.name.startswith(".") and child.name != ".terraform.d"):
            continue
        found = _search(child, depth - 1)
        if found is not None:
            return found
    return None


def discover_provider_mirror(
    roots: Iterable[str] = MIRROR_SEARCH_ROOTS, depth: int = MIRROR_SEARCH_DEPTH
) -> Path | None:
    """Search ``roots`` (a few levels deep) for a folder holding registry.terraform.io/hashicorp/aws."""
    for root in roots:
        found = _search(Path(root).expanduser(), depth)
        if found is not None:
            return found.resolve()
    return None


def find_provider_mirror(
    environ: Mapping[str, str] | None = None,
    cache_file: Path | None = None,
    roots: Iterable[str] = MIRROR_SEARCH_ROOTS,
) -> Path | None:
    """The provider mirror to use, or None to install from the registry.

    ``TF_PROVIDER_MIRROR`` decides when set (``off`` means no mirror); otherwise the cached
    discovery result, otherwise a fresh discovery (cached when something is found).
    """
    environ = os.environ if environ is None else environ
    setting = environ.get(MIRROR_ENV)
    if setting is not None and setting.strip():
        if setting.strip().lower() in MIRROR_OFF:
            return None
        path = Path(setting).expanduser()
        if not is_mirror(path):
            raise TerraformError(
                f"{MIRROR_ENV}={setting} holds no {PROVIDER_PATH.as_posix()}: point it at the folder that "
                f"contains registry.terraform.io, or set {MIRROR_ENV}=off to install from the registry"
            )
        return path.resolve()
    if cache_file is not None and cache_file.is_file():
        cached = Path(cache_file.read_text().strip())
        if cached.as_posix() and is_mirror(cached):
            return cached
    found = discover_provider_mirror(roots)
    if found is not None and cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(f"{found}\n")
    return found


def write_cli_config(mirror: Path, destination: Path) -> Path:
    """A terraform CLI configuration that installs hashicorp/aws from ``mirror`` only."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(
        "# Written by tooling/terraform.py: providers come from the local mirror.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror))}\n"
        '    include = ["registry.terraform.io/hashicorp/aws"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/aws"]\n'
        "  }\n"
        "}\n"
    )
    return destination


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSummary:
    """What a plan would do: counts as terraform prints them (a replacement is 1 add + 1 destroy)."""

    add: int
    change: int
    destroy: int
    output: str
    plan_file: Path | None = None

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy)

    def __str__(self) -> str:
        if not self.has_changes:
            return "no changes"
        return f"{self.add} to add, {self.change} to change, {self.destroy} to destroy"


def parse_plan_summary(text: str) -> tuple[int, int, int]:
    """(add, change, destroy) from terraform plan's human output."""
    match = PLAN_SUMMARY.search(text)
    if match:
        add, change, destroy = (int(g) for g in match.groups())
        return add, change, destroy
    if "No changes." in text:
        return 0, 0, 0
    raise TerraformError("could not read the plan summary from terraform's output", text)


def _last_error(text: str) -> str:
    """The first 'Error:' line of terraform's output (or its last non-empty line)."""
    lines = [ln.strip(" │╷╵").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    for ln in lines:
        if ln.startswith("Error:"):
            return ln
    return lines[-1] if lines else "no output"


# --------------------------------------------------------------------------------------
# python-terraform with this runner's environment, streaming and timeout
# --------------------------------------------------------------------------------------


class _Terraform(Terraform):
    """python-terraform's command builder with an explicit environment and a timeout."""

    def __init__(self, working_dir: Path, env: dict[str, str], terraform_bin: str, timeout: float) -> None:
        super().__init__(working_dir=str(working_dir), terraform_bin_path=terraform_bin)
        self.run_env = env
        self.timeout = timeout
        self.echo: Callable[[str], None] | None = None

    def read_state_file(self, file_path: str | None = None) -> None:
        """State lives in the backend; python-terraform's tfstate reader is not used."""

    def cmd(self, cmd: str, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
        kwargs.pop("capture_output", None)
        kwargs.pop("raise_on_error", None)
        kwargs.pop("synchronous", None)
        cmds = self.generate_cmd_string(cmd, *args, **kwargs)
        try:
            if self.echo is None:
                proc = subprocess.run(
                    cmds,
                    cwd=self.working_dir,
                    env=self.run_env,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout,
                    check=False,
                )
                return proc.returncode, proc.stdout, proc.stderr
            return self._streamed(cmds)
        finally:
            self.temp_var_files.clean_up()

    def _streamed(self, cmds: list[str]) -> tuple[int, str, str]:
        echo = self.echo
        assert echo is not None
        with subprocess.Popen(
            cmds,
            cwd=self.working_dir,
            env=self.run_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as proc:
            out: list[str] = []
            assert proc.stdout is not None
            for line in proc.stdout:
                out.append(line)
                echo(line.rstrip("\n"))
            code = proc.wait(timeout=self.timeout)
        text = "".join(out)
        return code, text, text if code else ""


# --------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------


def available_environments(environments_dir: Path = ENVIRONMENTS_DIR) -> list[str]:
    return sorted(p.stem for p in environments_dir.glob("*.tfvars"))


class TerraformRunner:
    """Run terraform for one environment. See the module docstring for where things live.

    Args:
        env: environment name: ``environments/<env>.tfvars`` must exist.
        backend: use the env's S3 backend (``environments/<env>.backend.hcl``); default: when
            that file exists. ``False`` keeps local state under ``work_root``.
        endpoint_url: the embedded backend's endpoint (sets ``TF_VAR_aws_endpoint_url``).
        variables: extra ``-var`` values (e.g. ``{"api_zip_path": ...}``).
        extra_env: extra environment for terraform (e.g. test credentials).
        work_root: where data dirs, local state and the CLI config live (default ``.local``).
        echo: called with each output line while a command runs (progress); None = quiet.
    """

    def __init__(
        self,
        env: str,
        *,
        backend: bool | None = None,
        endpoint_url: str | None = None,
        variables: Mapping[str, Any] | None = None,
        extra_env: Mapping[str, str] | None = None,
        work_root: Path | None = None,
        terraform_dir: Path = TERRAFORM_DIR,
        environments_dir: Path = ENVIRONMENTS_DIR,
        build_dir: Path = BUILD_DIR,
        timeout: float = DEFAULT_TIMEOUT,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9]{1,11}", env):
            raise TerraformError(f"invalid environment name {env!r}: use 2-12 lowercase letters and digits")
        self.env = env
        self.terraform_dir = terraform_dir.resolve()
        self.var_file = (environments_dir / f"{env}.tfvars").resolve()
        if not self.var_file.is_file():
            known = ", ".join(available_environments(environments_dir)) or "none"
            raise TerraformError(
                f"{self.var_file} not found: create environments/{env}.tfvars "
                f"(copy dev.tfvars and edit it) or use one of: {known}"
            )
        backend_file = (environments_dir / f"{env}.backend.hcl").resolve()
        self.backend_file: Path | None = backend_file if backend_file.is_file() else None
        self.remote_state = self.backend_file is not None if backend is None else backend
        if self.remote_state and self.backend_file is None:
            raise TerraformError(
                f"environments/{env}.backend.hcl not found: write a partial S3 backend config "
                "for this environment, or run it with local state (backend=False)"
            )
        self.endpoint_url = endpoint_url
        # How many resources terraform creates at once. On the embedded backend (no API rate
        # limits) more than the default 10: the provider's fixed waits (~25 s per SQS queue,
        # ~55 s for the bucket's lifecycle rules) otherwise hold slots the quick resources need.
        self.parallelism: int | None = EMBEDDED_PARALLELISM if endpoint_url else None
        self.timeout = timeout
        self.echo = echo
        self.work_root = (work_root or DEFAULT_WORK_ROOT).resolve()
        flavour = env if self.remote_state or self.backend_file is None else f"{env}-nobackend"
        self.env_dir = self.work_root / "terraform" / flavour
        self.data_dir = self.env_dir / "data"
        self.state_file = self.work_root / "state" / flavour / "terraform.tfstate"
        self.working_dir = self.terraform_dir if self.remote_state else self.env_dir / "root"
        self.variables: dict[str, Any] = {
            "api_zip_path": str((build_dir / "api.zip").resolve()),
            "worker_zip_path": str((build_dir / "worker.zip").resolve()),
            "publisher_zip_path": str((build_dir / "publisher.zip").resolve()),
            "notifier_zip_path": str((build_dir / "notifier.zip").resolve()),
            **(variables or {}),
        }
        self.extra_env = dict(extra_env or {})
        self._last_code = 0
        self.terraform_bin = self._terraform_bin()

    # ---------------------------------------------------------------- environment

    @staticmethod
    def _terraform_bin() -> str:
        configured = os.environ.get("TERRAFORM_BIN")
        found = shutil.which(configured or "terraform")
        if not found:
            raise TerraformError(
                "terraform not found on PATH: install Terraform >= 1.10 "
                "(https://developer.hashicorp.com/terraform/install) or set TERRAFORM_BIN to its path"
            )
        return found

    def environment(self) -> dict[str, str]:
        """The environment terraform runs with."""
        # The endpoint is this runner's decision alone: never inherited from the caller.
        env = {k: v for k, v in os.environ.items() if k != "TF_VAR_aws_endpoint_url"}
        if self.endpoint_url is None:
            env = {k: v for k, v in env.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env.update(self.extra_env)
        env.update(
            {
                "TF_DATA_DIR": str(self.data_dir),
                "TF_IN_AUTOMATION": "1",
                "TF_INPUT": "0",
                "CHECKPOINT_DISABLE": "1",
            }
        )
        mirror = find_provider_mirror(env, cache_file=self.work_root / "provider-mirror")
        if mirror is not None:
            env["TF_CLI_CONFIG_FILE"] = str(write_cli_config(mirror, self.work_root / "terraformrc"))
        elif env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).is_file():
            env.pop("TF_CLI_CONFIG_FILE")  # a dangling setting only produces warnings
        if self.endpoint_url is not None:
            env["TF_VAR_aws_endpoint_url"] = self.endpoint_url
        return env

    def _prepare_overlay(self) -> None:
        """The local-state working folder: symlinks to terraform/ plus a local backend override."""
        root = self.working_dir
        root.mkdir(parents=True, exist_ok=True)
        wanted = {p.name: p for p in self.terraform_dir.iterdir() if not p.name.startswith(".")}
        for entry in root.iterdir():
            if entry.is_symlink() and (entry.name not in wanted or entry.resolve() != wanted[entry.name]):
                entry.unlink()
        for name, target in wanted.items():
            link = root / name
            if not link.is_symlink():
                link.symlink_to(target, target_is_directory=target.is_dir())
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        (root / "backend_override.tf").write_text(
            "# Written by tooling/terraform.py: this environment keeps local state.\n"
            "terraform {\n"
            '  backend "local" {\n'
            f"    path = {json.dumps(str(self.state_file))}\n"
            "  }\n"
            "}\n"
        )

    def _tf(self) -> _Terraform:
        tf = _Terraform(self.working_dir, self.environment(), self.terraform_bin, self.timeout)
        tf.echo = self.echo
        return tf

    def _run(self, what: str, tf: _Terraform, cmd: str, *args: Any, ok: Iterable[int] = (0,), **options: Any) -> str:
        options.setdefault("no_color", IsFlagged)
        try:
            code, out, err = tf.cmd(cmd, *args, **options)
        except subprocess.TimeoutExpired as exc:
            raise TerraformError(
                f"terraform {cmd} for {self.env} timed out after {self.timeout:.0f}s: check the backend "
                "and the network, then retry"
            ) from exc
        text = f"{out}\n{err}" if err and err not in out else out
        if code not in ok:
            raise TerraformError(self._explain(what, text), text)
        self._last_code = code
        return text

    def _explain(self, what: str, text: str) -> str:
        if "Failed to query available provider packages" in text or "Failed to install provider" in text:
            return (
                f"{what} failed: the hashicorp/aws provider could not be installed; offline? set "
                f"{MIRROR_ENV} to a folder holding registry.terraform.io/hashicorp/aws,"
                " or connect to the internet"
            )
        if "Backend initialization required" in text or "Required plugins are not installed" in text:
            return f"{what} failed: this environment is not initialised; run init first"
        if "Error acquiring the state lock" in text:
            return f"{what} failed: the state of {self.env} is locked by another run; wait for it, then retry"
        return f"{what} failed: {_last_error(text)} (run with echo to see terraform's output)"

    # ---------------------------------------------------------------- commands

    def fmt_check(self) -> list[str]:
        """Files under terraform/ that `terraform fmt` would change (empty: formatted)."""
        tf = _Terraform(self.terraform_dir, self.environment(), self.terraform_bin, self.timeout)
        text = self._run("terraform fmt -check", tf, "fmt", ok=(0, 3), check=IsFlagged, recursive=IsFlagged, list=True)
        return (
            [ln.strip() for ln in text.splitlines() if ln.strip().endswith((".tf", ".tfvars"))]
            if self._last_code
            else []
        )

    def init(self, upgrade: bool = False) -> str:
        """terraform init: the env's S3 backend, or local state in the overlay folder."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.remote_state:
            self._prepare_overlay()
        return self._run(
            f"terraform init ({self.env})",
            self._tf(),
            "init",
            backend_config=str(self.backend_file) if self.remote_state else None,
            reconfigure=IsFlagged,
            backend=True,
            input=False,
            upgrade=IsFlagged if upgrade else IsNotFlagged,
            var=None,
        )

    def validate(self) -> dict[str, Any]:
        """terraform validate -json; raises with the first error when the configuration is invalid."""
        text = self._run(f"terraform validate ({self.env})", self._tf(), "validate", ok=(0, 1), json=IsFlagged)
        result: dict[str, Any] = json.loads(text[text.index("{") :])
        if not result.get("valid"):
            first: dict[str, Any] = next(iter(result.get("diagnostics", [])), {})
            raise TerraformError(
                f"terraform validate failed: {first.get('summary', 'invalid configuration')}: "
                f"{first.get('detail', '')}".strip(),
                text,
            )
        return result

    def _var_options(self) -> dict[str, Any]:
        """The env's tfvars, then this runner's variables (later files win)."""
        files = [str(self.var_file)]
        if self.variables:
            extra = self.env_dir / "runner.tfvars.json"
            extra.parent.mkdir(parents=True, exist_ok=True)
            extra.write_text(json.dumps(self.variables, indent=2, sort_keys=True))
            files.append(str(extra))
        return {"var_file": files, "var": None, "input": False}

    def plan(self, out: Path | None = None, destroy: bool = False, detailed_exitcode: bool = True) -> PlanSummary:
        """terraform plan; the summary counts what would be added, changed and destroyed.

        With ``detailed_exitcode`` terraform's exit code (0 = no changes, 2 = changes) must
        agree with the printed summary, or TerraformError is raised.
        """
        tf = self._tf()
        text = self._run(
            f"terraform plan ({self.env})",
            tf,
            "plan",
            detailed_exitcode=IsFlagged if detailed_exitcode else IsNotFlagged,
            out=str(out) if out else None,
            destroy=IsFlagged if destroy else IsNotFlagged,
            ok=(0, 2) if detailed_exitcode else (0,),
            lock_timeout="60s",
            **self._var_options(),
        )
        add, change, destroy_count = parse_plan_summary(text)
        summary = PlanSummary(add, change, destroy_count, text, out)
        if detailed_exitcode and (self._last_code == 2) != summary.has_changes:
            raise TerraformError(
                f"terraform plan exit code {self._last_code} disagrees with its summary ({summary})", text
            )
        return summary

    def apply(self, plan_file: Path | None = None) -> str:
        """terraform apply: a saved plan as is, or plan-and-apply with the env's variables."""
        options: dict[str, Any] = {
            "auto_approve": IsFlagged,
            "input": False,
            "lock_timeout": "60s",
            "parallelism": self.parallelism,
            "var": None,
        }
        args: list[str] = []
        if plan_file is not None:
            args.append(str(plan_file))
        else:
            options.update(self._var_options())
        return self._run(f"terraform apply ({self.env})", self._tf(), "apply", *args, **options)

    def destroy(self) -> str:
        """terraform destroy -auto-approve (python-terraform's destroy passes the removed -force)."""
        return self._run(
            f"terraform destroy ({self.env})",
            self._tf(),
            "destroy",
            auto_approve=IsFlagged,
            lock_timeout="60s",
            parallelism=self.parallelism,
            **self._var_options(),
        )

    def show_plan(self, plan_file: Path) -> dict[str, Any]:
        """A saved plan as terraform's JSON plan representation."""
        text = self._run(f"terraform show ({self.env})", self._tf(), "show", str(plan_file), json=IsFlagged)
        result: dict[str, Any] = json.loads(text[text.index("{") :])
        return result

    def output(self) -> dict[str, Any]:
        """The root module's outputs as {name: value} (empty before the first apply)."""
        text = self._run(f"terraform output ({self.env})", self._tf(), "output", json=IsFlagged)
        raw: dict[str, dict[str, Any]] = json.loads(text[text.index("{") :]) if "{" in text else {}
        return {name: item.get("value") for name, item in raw.items()}

    def state_resources(self) -> list[str]:
        """Addresses of the resources in the state (empty when there is none)."""
        text = self._run(f"terraform state list ({self.env})", self._tf(), "state list", no_color=None)
        return [ln.strip() for ln in text.splitlines() if ln.strip()]


def main(argv: list[str] | None = None) -> int:
    """`python -m tooling.terraform ENV COMMAND`: a thin CLI for debugging the runner."""
    import argparse

    parser = argparse.ArgumentParser(description="Run terraform for one environment.")
    parser.add_argument("env", help="environment name (environments/<env>.tfvars)")
    parser.add_argument("command", choices=["init", "validate", "plan", "apply", "destroy", "output"])
    parser.add_argument("--endpoint-url", help="embedded backend endpoint (local runs)")
    args = parser.parse_args(argv)
    try:
        runner = TerraformRunner(args.env, endpoint_url=args.endpoint_url, echo=print)
        if args.command == "init":
            runner.init()
        elif args.command == "validate":
            runner.validate()
        elif args.command == "plan":
            print(runner.plan())
        elif args.command == "apply":
            runner.apply()
        elif args.command == "destroy":
            runner.destroy()
        else:
            print(json.dumps(runner.output(), indent=2))
    except TerraformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
