"""Deterministic Lambda packaging: one zip per function, same sources -> same bytes.

Each zip holds the ``jobs`` package from ``lambda_src/`` (minus the other function's entry
module) and the Lambda runtime dependencies, installed as wheels for the functions' runtime
and architecture: ``lambda_runtime`` and ``lambda_architecture`` of the env's tfvars, else
the defaults of ``terraform/variables.tf`` (:class:`LambdaTarget`).

The dependencies come from the lock file ``lambda_src/requirements.txt``: every package
the zips bundle (transitive ones too), pinned with the sha256 of its wheel for every
supported target, installed with ``--require-hashes --no-deps``. It is generated from
``[project].dependencies`` in pyproject.toml (minus boto3/botocore and the rest of what the
Lambda runtime provides) by ``python -m tooling.packaging lock``; a build refuses a lock
that no longer matches pyproject.toml.

Determinism: entries are sorted, every timestamp is 1980-01-01 00:00:00, every mode is
0644, byte-code caches are left out, and so is what the installer writes about itself
(``INSTALLER``, ``REQUESTED``, ``RECORD``, ``direct_url.json``: not needed at run time, and
they vary with pip's version). So the same sources and lock give the same zip on a laptop
and in CI, an unchanged deploy uploads nothing new and terraform sees the same
``source_code_hash``.

``python -m tooling.packaging build --env ENV`` is what the CI workflow runs (it needs only
the standard library and pip); ``invoke package --env ENV`` does the same.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tooling import environments
from tooling.environments import Environment
from tooling.errors import friendly_errors

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "lambda_src"
BUILD_DIR = ROOT / "build"
LOCK_FILE = SOURCE_DIR / "requirements.txt"
LOCK_COMMAND = "python -m tooling.packaging lock"
VARIABLES_TF = Path("terraform") / "variables.tf"
# The Lambda runtimes the lock file covers (terraform/variables.tf's lambda_runtime).
SUPPORTED_RUNTIMES = ("python3.12", "python3.13")
PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
# Top-level entries of the runtime-provided distributions (pulled in transitively, e.g. by
# aws-xray-sdk -> botocore): left out of the zip, the Lambda runtime has them.
PROVIDED_TOP_LEVEL = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py"}
# What pip writes into a dist-info folder about the installation itself (not the package).
INSTALLER_FILES = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}
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
    "api": FunctionSpec("api", "jobs.api.lambda_handler", ("jobs/worker.py", "jobs/publisher.py", "jobs/notifier.py")),
    "worker": FunctionSpec(
        "worker", "jobs.worker.lambda_handler", ("jobs/api.py", "jobs/publisher.py", "jobs/notifier.py")
    ),
    # The job status event publisher (the jobs table's stream -> the bus): module events.
    "publisher": FunctionSpec(
        "publisher", "jobs.publisher.lambda_handler", ("jobs/api.py", "jobs/worker.py", "jobs/notifier.py")
    ),
    # The webhooks' notifier (README "Webhooks").
    "notifier": FunctionSpec(
        "notifier", "jobs.notifier.lambda_handler", ("jobs/api.py", "jobs/worker.py", "jobs/publisher.py")
    ),
}


class PackagingError(RuntimeError):
    """Packaging failed; the message says why and what to do."""


def terraform_default(name: str, variables_tf: Path = ROOT / VARIABLES_TF) -> str:
    """The string default of root variable ``name`` in terraform/variables.tf."""
    text = variables_tf.read_text()
    block = re.search(rf'^variable "{re.escape(name)}" {{\n(.*?)^}}', text, re.S | re.M)
    default = re.search(r'^  default\s*=\s*"([^"]*)"', block.group(1), re.M) if block else None
    if default is None:
        raise PackagingError(f"{variables_tf} declares no string default for variable {name!r}")
    return default.group(1)


@dataclass(frozen=True)
class LambdaTarget:
    """What the zips are built for: the functions' runtime (``python3.12``) and architecture."""

    runtime: str
    architecture: str

    def __post_init__(self) -> None:
        if self.runtime not in SUPPORTED_RUNTIMES:
            raise PackagingError(
                f"lambda_runtime {self.runtime!r} is not one the packager supports ({', '.join(SUPPORTED_RUNTIMES)}); "
                "use one of those, or add it to SUPPORTED_RUNTIMES in tooling/packaging.py and run "
                f"`{LOCK_COMMAND}`"
            )
        if self.architecture not in PLATFORMS:
            raise PackagingError(
                f"lambda_architecture {self.architecture!r} is unknown: use one of {', '.join(sorted(PLATFORMS))}"
            )

    @classmethod
    def default(cls, root: Path = ROOT) -> LambdaTarget:
        """The defaults of terraform/variables.tf (an env's tfvars that set neither)."""
        return cls.for_variables({}, root)

    @classmethod
    def for_env(cls, env: Environment) -> LambdaTarget:
        """The env's ``lambda_runtime`` and ``lambda_architecture``, else terraform's defaults."""
        return cls.for_variables(env.variables, env.root)

    @classmethod
    def for_variables(cls, variables: dict[str, object], root: Path = ROOT) -> LambdaTarget:
        variables_tf = root / VARIABLES_TF if (root / VARIABLES_TF).is_file() else ROOT / VARIABLES_TF
        values = []
        for name in ("lambda_runtime", "lambda_architecture"):
            value = variables.get(name)
            values.append(value if isinstance(value, str) and value else terraform_default(name, variables_tf))
        return cls(*values)

    @property
    def python_version(self) -> str:
        """``3.12`` for ``python3.12``: pip's ``--python-version``."""
        return self.runtime.removeprefix("python")

    @property
    def platforms(self) -> list[str]:
        """pip's ``--platform`` tags: the manylinux wheels that run on this architecture."""
        return PLATFORMS[self.architecture]

    @property
    def label(self) -> str:
        return f"{self.runtime}-{self.architecture}"

    def describe(self) -> str:
        return f"{self.architecture}, {self.runtime}"


def all_targets() -> list[LambdaTarget]:
    """Every target the lock file must cover."""
    return [LambdaTarget(runtime, arch) for runtime in SUPPORTED_RUNTIMES for arch in sorted(PLATFORMS)]


@dataclass(frozen=True)
class Artifact:
    function: str
    path: Path
    size: int
    sha256_b64: str  # the form Lambda reports as CodeSha256 and terraform's filebase64sha256 gives

    def describe(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{self.function:<7} {shown}  {self.size / 1024:,.0f} KiB  sha256={self.sha256_b64}"


def normalize(name: str) -> str:
    """A distribution name in its PEP 503 form (``typing_extensions`` -> ``typing-extensions``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The Lambda runtime dependencies declared in pyproject.toml, minus what Lambda provides."""
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = []
    for req in project.get("dependencies", []):
        name = req.split(";")[0].split("[")[0]
        for sep in ("==", ">=", "<=", "~=", "<", ">", "!="):
            name = name.split(sep)[0]
        if normalize(name.strip()) not in PROVIDED_BY_RUNTIME:
            reqs.append(req)
    return sorted(reqs)


# ------------------------------------------------------------------------------ the lock


@dataclass(frozen=True)
class Lock:
    """The lock file: what it was generated from, for which targets, and its pins."""

    path: Path
    sources: tuple[str, ...]  # the pyproject.toml requirements it resolves
    targets: tuple[str, ...]  # LambdaTarget labels it has wheels' hashes for
    pins: dict[str, str]  # normalized name -> version

    @classmethod
    def read(cls, path: Path = LOCK_FILE) -> Lock:
        if not path.is_file():
            raise PackagingError(f"{path} is missing: generate it with `{LOCK_COMMAND}`")
        text = path.read_text()
        sources = tuple(re.findall(r"^# source: (\S+)$", text, re.M))
        targets = tuple(re.findall(r"^# target: (\S+)$", text, re.M))
        pins = {normalize(n): v for n, v in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, re.M)}
        return cls(path, sources, targets, pins)

    def check(self, requirements: Sequence[str], target: LambdaTarget) -> None:
        """Refuse a lock that pyproject.toml has moved away from, or that lacks ``target``."""
        if list(self.sources) != list(requirements):
            raise PackagingError(
                f"{self.path.name} was generated from {list(self.sources)}, but pyproject.toml now declares "
                f"{list(requirements)}: regenerate it with `{LOCK_COMMAND}`"
            )
        if target.label not in self.targets:
            raise PackagingError(
                f"{self.path.name} has no wheels for {target.label} (it covers {', '.join(self.targets)}): "
                f"regenerate it with `{LOCK_COMMAND}`"
            )


@dataclass(frozen=True)
class Resolved:
    """One distribution pip would install for a target, and its wheel's sha256."""

    name: str
    version: str
    sha256: str


Resolver = Callable[[Sequence[str], LambdaTarget], list[Resolved]]


def pip_platform_args(target: LambdaTarget) -> list[str]:
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", target.python_version]
    for platform in target.platforms:
        args += ["--platform", platform]
    return args


def resolve_with_pip(requirements: Sequence[str], target: LambdaTarget) -> list[Resolved]:
    """What pip would install for ``target`` (``pip install --dry-run --report``; needs the index)."""
    with tempfile.TemporaryDirectory(prefix="jobstack-lock-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--disable-pip-version-check",
            "--ignore-installed",
            "--target",
            str(Path(tmp) / "unused"),  # pip takes platform options only with --target
            "--report",
            str(report),
            *pip_platform_args(target),
            *requirements,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise PackagingError(
                f"pip could not resolve {', '.join(requirements)} for {target.label}: "
                f"{' '.join(proc.stderr.strip().splitlines()[-3:])}; check your network or package index settings"
            )
        installs = json.loads(report.read_text())["install"]
    return [
        Resolved(
            normalize(item["metadata"]["name"]),
            item["metadata"]["version"],
            item["download_info"]["archive_info"]["hashes"]["sha256"],
        )
        for item in installs
    ]


def lock_text(
    requirements: Sequence[str], targets: Iterable[LambdaTarget], resolver: Resolver = resolve_with_pip
) -> str:
    """The lock file for ``requirements`` over ``targets``: one pin per bundled distribution,
    with the hash of each target's wheel. Every target must resolve the same versions."""
    versions: dict[str, tuple[str, str]] = {}  # name -> (version, first target's label)
    hashes: dict[str, set[str]] = {}
    provided: set[str] = set()
    names_by_target: dict[str, set[str]] = {}
    labels = []
    for target in targets:
        labels.append(target.label)
        names_by_target[target.label] = set()
        for item in resolver(requirements, target):
            if item.name in PROVIDED_BY_RUNTIME:
                provided.add(item.name)
                continue
            names_by_target[target.label].add(item.name)
            version, first = versions.setdefault(item.name, (item.version, target.label))
            if version != item.version:
                raise PackagingError(
                    f"{item.name} resolves to {version} for {first} but {item.version} for {target.label}: "
                    "pin it in pyproject.toml's dependencies"
                )
            hashes.setdefault(item.name, set()).add(item.sha256)
    differing = {label: names for label, names in names_by_target.items() if names != set(versions)}
    if differing:
        raise PackagingError(
            f"the targets need different packages ({differing}): the lock cannot hold them in one list"
        )
    lines = [
        "# The Lambda runtime dependencies bundled into build/api.zip and build/worker.zip, transitive",
        "# ones too, each with the sha256 of its wheel for every target. Generated from pyproject.toml's",
        f"# [project].dependencies by `{LOCK_COMMAND}`: do not edit by hand.",
        "# tooling/packaging.py installs it with pip --require-hashes --no-deps.",
        *(f"# source: {req}" for req in requirements),
        *(f"# target: {label}" for label in labels),
        f"# not bundled, the Lambda runtime provides them: {', '.join(sorted(provided)) or 'none'}",
    ]
    for name in sorted(versions):
        lines.append(f"{name}=={versions[name][0]} \\")
        wheel_hashes = sorted(hashes[name])
        for i, digest in enumerate(wheel_hashes):
            lines.append(f"    --hash=sha256:{digest}" + (" \\" if i < len(wheel_hashes) - 1 else ""))
    return "\n".join(lines) + "\n"


def write_lock(path: Path = LOCK_FILE, resolver: Resolver = resolve_with_pip) -> Lock:
    """Regenerate the lock file from pyproject.toml for every supported target."""
    path.write_text(lock_text(runtime_requirements(), all_targets(), resolver))
    return Lock.read(path)


# ---------------------------------------------------------------------------- the build


def pip_install_command(target: LambdaTarget, lock: Path, destination: Path) -> list[str]:
    """The pip command that installs the locked wheels for ``target`` into ``destination``."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-deps",
        "--require-hashes",
        "--target",
        str(destination),
        *pip_platform_args(target),
        "--requirement",
        str(lock),
    ]


def _run_pip(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _install_dependencies(target: LambdaTarget, build_dir: Path, lock_path: Path = LOCK_FILE) -> Path:
    """Install the locked wheels for ``target`` once per (lock, target) under ``build_dir``."""
    lock = Lock.read(lock_path)
    lock.check(runtime_requirements(), target)
    key = hashlib.sha256(lock_path.read_bytes() + target.label.encode()).hexdigest()[:16]
    destination = build_dir / f".deps-{target.label}-{key}"
    if (destination / ".complete").exists():
        return destination
    shutil.rmtree(destination, ignore_errors=True)
    proc = _run_pip(pip_install_command(target, lock_path, destination))
    if proc.returncode != 0:
        raise PackagingError(
            f"could not install the Lambda dependencies of {lock_path.name} for {target.label}: "
            f"{' '.join(proc.stderr.strip().splitlines()[-3:])}; check your network or package index settings"
        )
    (destination / ".complete").write_text("ok\n")
    return destination


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
        if dist is not None and (dist in PROVIDED_BY_RUNTIME or rel.partition("/")[2] in INSTALLER_FILES):
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
    target: LambdaTarget | None = None,
    build_dir: Path = BUILD_DIR,
    source_dir: Path = SOURCE_DIR,
) -> Artifact:
    """Build ``<build_dir>/<function>.zip`` for ``target`` (default: terraform's defaults)."""
    if function not in FUNCTIONS:
        raise PackagingError(f"unknown function {function!r}: use one of {sorted(FUNCTIONS)}")
    spec = FUNCTIONS[function]
    deps = _install_dependencies(target or LambdaTarget.default(), build_dir)
    entries = _files(deps)
    # The lock file sits in lambda_src/ (next to the code it serves) but is no code.
    code = _files(source_dir, skip=(*spec.excluded_modules, LOCK_FILE.name))
    clash = sorted(set(entries) & set(code))
    if clash:
        raise PackagingError(f"lambda_src files clash with dependency files: {clash[:5]}")
    entries.update(code)
    destination = build_dir / f"{function}.zip"
    write_deterministic_zip(entries, destination)
    return Artifact(function, destination, destination.stat().st_size, code_sha256(destination))


def build_all(target: LambdaTarget | None = None, build_dir: Path = BUILD_DIR) -> list[Artifact]:
    return [build(name, target, build_dir) for name in FUNCTIONS]


def package_env(env: Environment, out: Callable[[str], None] = print, build_dir: Path = BUILD_DIR) -> list[Artifact]:
    """Build the zips for the env's runtime and architecture; print each zip's size and hash."""
    target = LambdaTarget.for_env(env)
    out(f"packaging for {target.describe()} (env {env.name})")
    artifacts = build_all(target, build_dir)
    for artifact in artifacts:
        out("  " + artifact.describe())
    return artifacts


# ---------------------------------------------------------------------------- the CLI


@friendly_errors
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tooling.packaging",
        description="Build the Lambda zips, or regenerate their dependency lock.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser(
        "build",
        help="build build/{api,worker,publisher}.zip for the env's lambda_runtime and lambda_architecture",
    )
    build_cmd.add_argument("--env", default="", help="environment name (environments/<env>.tfvars); default dev")
    build_cmd.add_argument("--build-dir", type=Path, default=BUILD_DIR, help="where the zips go (default build/)")
    commands.add_parser(
        "lock",
        help=f"regenerate {LOCK_FILE.relative_to(ROOT)} from pyproject.toml for {', '.join(SUPPORTED_RUNTIMES)} "
        "on arm64 and x86_64 (needs the package index)",
    )
    args = parser.parse_args(argv)
    if args.command == "lock":
        lock = write_lock()
        print(f"wrote {lock.path.relative_to(ROOT)}: {len(lock.pins)} packages for {', '.join(lock.targets)}")
    else:
        package_env(environments.resolve(args.env or None), build_dir=args.build_dir.resolve())


if __name__ == "__main__":
    main()
