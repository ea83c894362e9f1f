"""Which environment a task acts on, and what its tfvars say.

An environment is a file ``environments/<name>.tfvars`` (plus, for a remote state,
``environments/<name>.backend.hcl``). ``--env`` picks one; without it the
``JOBSTACK_ENV`` environment variable does, else ``dev``. An unknown name is an error that
lists the known environments.

The ``local`` environment runs on the embedded AWS backend (moto on loopback): its endpoint
comes from ``JOBSTACK_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL``), or from the runtime file
``.local/runtime/local.json`` that ``invoke local`` writes while it runs
(:func:`write_runtime_info`). ``JOBSTACK_WORK_ROOT`` moves ``.local/`` (terraform's data
dirs, local state, the apply records) elsewhere, e.g. for tests.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooling.errors import OperatorError

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS_DIR = ROOT / "environments"
STATE_DIR = ROOT / ".local"
ENV_VAR = "JOBSTACK_ENV"
ENDPOINT_ENV_VAR = "JOBSTACK_ENDPOINT_URL"
WORK_ROOT_ENV_VAR = "JOBSTACK_WORK_ROOT"
DEFAULT_ENV = "dev"
LOCAL_ENV = "local"
DEFAULT_REGION = "us-east-1"

# Top-level `key = value` lines with a scalar value (string, number, bool).
_SCALAR = re.compile(
    r'^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)\s*(?:#.*|//.*)?$'
)


def parse_tfvars_scalars(text: str) -> dict[str, Any]:
    """The top-level scalar assignments of a tfvars file (lists, maps and blocks are skipped)."""
    values: dict[str, Any] = {}
    depth = 0
    for raw in text.splitlines():
        line = re.split(r"#|//", re.sub(r'"(?:[^"\\]|\\.)*"', '""', raw), maxsplit=1)[0]
        if depth == 0:
            match = _SCALAR.match(raw)
            if match:
                key, literal = match.groups()
                values[key] = json.loads(literal)
                continue
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
        depth = max(depth, 0)
    return values


@dataclass(frozen=True)
class Environment:
    """One deployable environment."""

    name: str
    tfvars: Path
    backend_config: Path | None
    variables: dict[str, Any] = field(default_factory=dict)
    root: Path = ROOT

    @property
    def is_local(self) -> bool:
        """Runs on the embedded backend (moto), not on AWS."""
        return self.name == LOCAL_ENV or bool(self.variables.get("use_embedded_backend"))

    @property
    def region(self) -> str:
        for key in ("region", "aws_region"):
            value = self.variables.get(key)
            if isinstance(value, str) and value:
                return value
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION

    @property
    def architecture(self) -> str:
        """The Lambda architecture the env deploys (the packager builds wheels for it)."""
        for key in ("lambda_architecture", "architecture"):
            value = self.variables.get(key)
            if isinstance(value, str) and value:
                return value
        return "arm64"

    @property
    def work_root(self) -> Path:
        """Machine-local working data: terraform data dirs, local state, records (.local/)."""
        configured = os.environ.get(WORK_ROOT_ENV_VAR)
        return Path(configured).resolve() if configured else self.root / ".local"

    @property
    def events_file(self) -> Path:
        """The record of this env's applies (one JSON object a line), for `invoke events`."""
        return self.work_root / "events" / f"{self.name}.jsonl"

    @property
    def allows_bucket_emptying(self) -> bool:
        """Destroy may delete the results (tfvar ``force_destroy_bucket``, false by default)."""
        return self.variables.get("force_destroy_bucket") is True

    def endpoint_url(self) -> str | None:
        """The AWS endpoint override: the embedded backend's URL for a local env, else None."""
        explicit = os.environ.get(ENDPOINT_ENV_VAR)
        if explicit:
            return explicit
        if not self.is_local:
            return None
        if os.environ.get("AWS_ENDPOINT_URL"):
            return os.environ["AWS_ENDPOINT_URL"]
        info = read_runtime_info(self)
        endpoint = info.get("endpoint_url")
        if isinstance(endpoint, str) and endpoint:
            return endpoint
        raise OperatorError(
            f"env {self.name!r} runs on the embedded backend, but none is running",
            f"start it with `invoke local` (or set {ENDPOINT_ENV_VAR} to its URL)",
        )


def known_environments(environments_dir: Path = ENVIRONMENTS_DIR) -> list[str]:
    return sorted(p.stem for p in environments_dir.glob("*.tfvars"))


def resolve(name: str | None = None, root: Path = ROOT) -> Environment:
    """The environment called ``name`` (default: $JOBSTACK_ENV, else dev)."""
    chosen = (name or os.environ.get(ENV_VAR) or DEFAULT_ENV).strip()
    environments_dir = root / "environments"
    known = known_environments(environments_dir)
    tfvars = environments_dir / f"{chosen}.tfvars"
    if not tfvars.is_file():
        listing = ", ".join(known) if known else "none yet"
        raise OperatorError(
            f"unknown environment {chosen!r}: environments/{chosen}.tfvars not found (known environments: {listing})",
            f"pass --env with a known one, set {ENV_VAR}, or create environments/{chosen}.tfvars",
        )
    backend = environments_dir / f"{chosen}.backend.hcl"
    return Environment(
        name=chosen,
        tfvars=tfvars,
        backend_config=backend if backend.is_file() else None,
        variables=parse_tfvars_scalars(tfvars.read_text()),
        root=root,
    )


def runtime_info_path(env: Environment) -> Path:
    return env.work_root / "runtime" / f"{env.name}.json"


def read_runtime_info(env: Environment) -> dict[str, Any]:
    """What a running `invoke local` published: {"endpoint_url", "api_url", ...} (or {})."""
    path = runtime_info_path(env)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_runtime_info(env: Environment, **info: Any) -> Path:
    """Publish a running local stack's addresses for the other tasks (smoke, logs, status)."""
    path = runtime_info_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def clear_runtime_info(env: Environment) -> None:
    runtime_info_path(env).unlink(missing_ok=True)
