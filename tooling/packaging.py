"""Deterministic Lambda packaging: one zip per function, same sources -> same bytes.

Each zip holds the ``jobs`` package from ``lambda_src/`` (minus the other function's entry
module) and the project's Lambda runtime dependencies (``[project].dependencies`` in
pyproject.toml, minus boto3/botocore which the Lambda runtime provides), installed as
wheels for the Lambda runtime's Python version and architecture.

Determinism: entries are sorted, every timestamp is 1980-01-01 00:00:00, every mode is
0644, byte-code caches are left out. So an unchanged deploy uploads nothing new and
terraform sees the same ``source_code_hash``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "lambda_src"
BUILD_DIR = ROOT / "build"
LAMBDA_PYTHON = "3.12"
PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
# Top-level entries of the runtime-provided distributions (pulled in transitively, e.g. by
# aws-xray-sdk -> botocore): left out of the zip, the Lambda runtime has them.
PROVIDED_TOP_LEVEL = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py"}
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
PLATFORMS = {
    "arm64": ["manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64"],
    "x86_64": ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64"],
}


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    excluded_modules: tuple[str, ...]


FUNCTIONS: dict[str, FunctionSpec] = {
    "api": FunctionSpec("api", "jobs.api.lambda_handler", ("jobs/worker.py",)),
    "worker": FunctionSpec("worker", "jobs.worker.lambda_handler", ("jobs/api.py",)),
}


@dataclass(frozen=True)
class Artifact:
    function: str
    path: Path
    size: int
    sha256_b64: str  # the form Lambda reports as CodeSha256 and terraform's filebase64sha256 gives

    def describe(self) -> str:
        return (
            f"{self.function:<7} {self.path.relative_to(ROOT)}  {self.size / 1024:,.0f} KiB  sha256={self.sha256_b64}"
        )


class PackagingError(RuntimeError):
    """Packaging failed; the message says why and what to do."""


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The Lambda runtime dependencies declared in pyproject.toml, minus what Lambda provides."""
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = []
    for req in project.get("dependencies", []):
        name = req.split(";")[0].split("[")[0]
        for sep in ("==", ">=", "<=", "~=", "<", ">", "!="):
            name = name.split(sep)[0]
        if name.strip().lower() not in PROVIDED_BY_RUNTIME:
            reqs.append(req)
    return sorted(reqs)


def _install_dependencies(requirements: list[str], architecture: str, build_dir: Path) -> Path:
    """Install the wheels for the Lambda platform once per (requirements, architecture)."""
    if architecture not in PLATFORMS:
        raise PackagingError(f"unknown architecture {architecture!r}: use one of {sorted(PLATFORMS)}")
    key = hashlib.sha256(json.dumps([requirements, architecture, LAMBDA_PYTHON]).encode()).hexdigest()[:16]
    target = build_dir / f".deps-{architecture}-{key}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON,
        "--only-binary=:all:",
    ]
    for platform in PLATFORMS[architecture]:
        cmd += ["--platform", platform]
    proc = subprocess.run([*cmd, *requirements], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PackagingError(
            "could not download the Lambda dependencies "
            f"({', '.join(requirements)}) for {architecture}: {proc.stderr.strip().splitlines()[-1:]}; "
            "check your network or package index settings"
        )
    (target / ".complete").write_text("ok\n")
    return target


def _files(base: Path, skip: tuple[str, ...] = ()) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in base.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(base).as_posix()
        if "__pycache__" in rel.split("/") or rel.endswith((".pyc", ".pyo")) or rel == ".complete":
            continue
        top = rel.split("/")[0]
        dist = top.split("-")[0].lower().replace("_", "-") if top.endswith(".dist-info") else None
        if rel in skip or top == "bin" or rel.endswith(".c") or top in PROVIDED_TOP_LEVEL:
            continue
        if dist is not None and dist in PROVIDED_BY_RUNTIME:
            continue
        out[rel] = path
    return out


def write_deterministic_zip(entries: dict[str, Path], destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            zf.writestr(info, entries[name].read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp.replace(destination)


def code_sha256(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def build(
    function: str,
    architecture: str = "arm64",
    build_dir: Path = BUILD_DIR,
    source_dir: Path = SOURCE_DIR,
) -> Artifact:
    """Build ``build/<function>.zip``."""
    if function not in FUNCTIONS:
        raise PackagingError(f"unknown function {function!r}: use one of {sorted(FUNCTIONS)}")
    spec = FUNCTIONS[function]
    deps = _install_dependencies(runtime_requirements(), architecture, build_dir)
    entries = _files(deps)
    code = _files(source_dir, skip=spec.excluded_modules)
    clash = sorted(set(entries) & set(code))
    if clash:
        raise PackagingError(f"lambda_src files clash with dependency files: {clash[:5]}")
    entries.update(code)
    destination = build_dir / f"{function}.zip"
    write_deterministic_zip(entries, destination)
    return Artifact(function, destination, destination.stat().st_size, code_sha256(destination))


def build_all(architecture: str = "arm64", build_dir: Path = BUILD_DIR) -> list[Artifact]:
    return [build(name, architecture, build_dir) for name in FUNCTIONS]
