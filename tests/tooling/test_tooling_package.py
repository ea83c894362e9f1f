"""`invoke package`: deterministic zips for the env's runtime and architecture, from a
hash-pinned lock, and what the task prints."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tooling import environments, packaging
from tooling.packaging import (
    LOCK_FILE,
    PLATFORMS,
    PROVIDED_BY_RUNTIME,
    SUPPORTED_RUNTIMES,
    LambdaTarget,
    Lock,
    PackagingError,
    Resolved,
    all_targets,
    build_all,
    code_sha256,
    lock_text,
    package_env,
    pip_install_command,
    runtime_requirements,
)

ROOT = Path(__file__).resolve().parents[2]


def make_env(root: Path, name: str, tfvars: str, variables_tf: str | None = None) -> environments.Environment:
    (root / "environments").mkdir(parents=True, exist_ok=True)
    (root / "environments" / f"{name}.tfvars").write_text(tfvars)
    if variables_tf is not None:
        (root / "terraform").mkdir(exist_ok=True)
        (root / "terraform" / "variables.tf").write_text(variables_tf)
    return environments.resolve(name, root=root)


def test_two_builds_give_identical_bytes(tmp_path):
    first = build_all(LambdaTarget("python3.12", "arm64"), build_dir=tmp_path)
    first_bytes = {a.function: a.path.read_bytes() for a in first}
    for artifact in first:
        artifact.path.unlink()
    second = build_all(LambdaTarget("python3.12", "arm64"), build_dir=tmp_path)
    assert {a.function for a in second} == {"api", "worker", "publisher", "notifier"}
    for artifact in second:
        assert artifact.path.read_bytes() == first_bytes[artifact.function]
        assert artifact.sha256_b64 == code_sha256(artifact.path)
        with zipfile.ZipFile(artifact.path) as zf:
            infos = zf.infolist()
            assert [i.filename for i in infos] == sorted(i.filename for i in infos)
            assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
            assert f"jobs/{artifact.function}.py" in zf.namelist()
            # each zip holds its own function's entry only (the publisher's neither the api's nor the worker's)
            others = {"api", "worker", "publisher"} - {artifact.function}
            assert not {f"jobs/{other}.py" for other in others} & set(zf.namelist())


def test_the_ci_command_and_a_local_build_in_other_folders_give_identical_zips(tmp_path):
    """What the workflow runs (a fresh pip install into its own folder) and a local build."""
    proc = subprocess.run(
        [sys.executable, "-m", "tooling.packaging", "build", "--env", "dev", "--build-dir", str(tmp_path / "ci")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "packaging for arm64, python3.12 (env dev)"
    local = build_all(LambdaTarget.for_env(environments.resolve("dev")), build_dir=tmp_path / "local")
    for artifact in local:
        ci_zip = tmp_path / "ci" / f"{artifact.function}.zip"
        assert ci_zip.read_bytes() == artifact.path.read_bytes()
        assert f"sha256={artifact.sha256_b64}" in proc.stdout
        with zipfile.ZipFile(artifact.path) as zf:
            names = zf.namelist()
        # What pip writes about the install (varies with pip's version) stays out; the lock too.
        assert not [n for n in names if n.split("/")[-1] in {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}]
        assert "requirements.txt" not in names
        # Exactly the locked distributions, at the locked versions.
        bundled = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        pins = Lock.read().pins
        assert bundled == {f"{name.replace('-', '_')}-{version}.dist-info" for name, version in pins.items()}
        # Nothing the Lambda runtime provides is bundled.
        assert not [n for n in names if n.split("/")[0] in {"boto3", "botocore", "urllib3", "jmespath", "dateutil"}]


def test_wheels_follow_the_target_python_and_architecture(tmp_path):
    artifacts = build_all(LambdaTarget("python3.13", "x86_64"), build_dir=tmp_path)
    wrapt = Lock.read().pins["wrapt"]
    for artifact in artifacts:
        with zipfile.ZipFile(artifact.path) as zf:
            extensions = [n for n in zf.namelist() if n.endswith(".so")]
            wheel = zf.read(f"wrapt-{wrapt}.dist-info/WHEEL").decode()
        assert extensions == ["wrapt/_wrappers.cpython-313-x86_64-linux-gnu.so"]
        assert "Tag: cp313-cp313-" in wheel and "x86_64" in wheel and "aarch64" not in wheel


def test_invoke_package_prints_each_zip_with_size_and_hash():
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "package", "--env", "local"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "packaging for arm64, python3.12 (env local)"
    for function in ("api", "worker", "publisher", "notifier"):
        path = ROOT / "build" / f"{function}.zip"
        pattern = rf"^  {function}\s+build/{function}\.zip  [\d,]+ KiB  sha256=(\S+)$"
        found = [m for m in (re.match(pattern, ln) for ln in lines) if m]
        assert len(found) == 1, proc.stdout
        assert found[0].group(1) == code_sha256(path)


# ----------------------------------------------------------- the target comes from the env


def test_target_is_the_env_runtime_and_architecture(tmp_path):
    env = make_env(tmp_path, "ci", 'lambda_runtime      = "python3.13"\nlambda_architecture = "x86_64"\n')
    target = LambdaTarget.for_env(env)
    assert target == LambdaTarget("python3.13", "x86_64")
    assert target.python_version == "3.13"
    assert target.platforms == PLATFORMS["x86_64"]


def test_target_defaults_come_from_terraform_variables(tmp_path):
    variables_tf = (
        'variable "lambda_runtime" {\n  description = "d"\n  type        = string\n  default     = "python3.13"\n\n'
        '  validation {\n    condition     = true\n    error_message = "x"\n  }\n}\n\n'
        'variable "lambda_architecture" {\n  description = "d"\n  type        = string\n  default     = "x86_64"\n}\n'
    )
    env = make_env(tmp_path, "bare", 'region = "eu-west-1"\n', variables_tf)
    assert LambdaTarget.for_env(env) == LambdaTarget("python3.13", "x86_64")
    # The repository's own defaults: what an env that sets neither gets.
    assert LambdaTarget.default() == LambdaTarget("python3.12", "arm64")


@pytest.mark.parametrize("name", environments.known_environments())
def test_every_env_builds_for_a_target_the_lock_covers(name):
    target = LambdaTarget.for_env(environments.resolve(name))
    Lock.read().check(runtime_requirements(), target)  # raises if not


def test_unsupported_runtime_or_architecture_is_refused_with_what_to_do(tmp_path):
    env = make_env(tmp_path, "old", 'lambda_runtime = "python3.9"\n')
    with pytest.raises(PackagingError, match=r"python3\.9.*python3\.12, python3\.13.*tooling.packaging lock"):
        LambdaTarget.for_env(env)
    with pytest.raises(PackagingError, match="lambda_architecture 'ppc64le' is unknown: use one of arm64, x86_64"):
        LambdaTarget("python3.12", "ppc64le")


@pytest.mark.parametrize("target", all_targets(), ids=lambda t: t.label)
def test_pip_command_installs_the_locked_wheels_for_the_target(target, tmp_path):
    cmd = pip_install_command(target, LOCK_FILE, tmp_path / "deps")
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]

    def value(flag: str) -> str:
        return cmd[cmd.index(flag) + 1]

    assert value("--python-version") == target.python_version
    assert value("--implementation") == "cp"
    assert value("--target") == str(tmp_path / "deps")
    assert value("--requirement") == str(LOCK_FILE)
    assert [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--platform"] == PLATFORMS[target.architecture]
    assert {"--only-binary=:all:", "--require-hashes", "--no-deps", "--no-compile"} <= set(cmd)
    # Nothing outside the lock: no requirement given on the command line.
    assert not [arg for arg in cmd if "==" in arg]


def test_package_env_runs_pip_for_the_env_target(tmp_path, monkeypatch):
    """`invoke package --env X` (package_env) without the network: pip replaced by a fake."""
    commands: list[list[str]] = []

    def fake_pip(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        commands.append(cmd)
        target = Path(cmd[cmd.index("--target") + 1])
        (target / "fake").mkdir(parents=True)
        (target / "fake" / "__init__.py").write_text("")
        (target / "fake" / "_speedups.cpython-313-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
        info = target / "fake-1.0.dist-info"
        info.mkdir()
        for name in ("METADATA", "WHEEL", "INSTALLER", "REQUESTED", "RECORD", "direct_url.json"):
            (info / name).write_text(name)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(packaging, "_run_pip", fake_pip)
    env = make_env(tmp_path / "root", "ci", 'lambda_runtime = "python3.13"\nlambda_architecture = "x86_64"\n')
    lines: list[str] = []
    artifacts = package_env(env, lines.append, build_dir=tmp_path / "build")

    assert lines[0] == "packaging for x86_64, python3.13 (env ci)"
    assert len(commands) == 1  # one install for both zips
    cmd = commands[0]
    assert cmd[cmd.index("--python-version") + 1] == "3.13"
    assert "manylinux2014_x86_64" in cmd and not [a for a in cmd if "aarch64" in a]
    for artifact in artifacts:
        with zipfile.ZipFile(artifact.path) as zf:
            names = set(zf.namelist())
        assert {"fake/__init__.py", "fake/_speedups.cpython-313-x86_64-linux-gnu.so"} <= names
        assert {"fake-1.0.dist-info/METADATA", "fake-1.0.dist-info/WHEEL"} <= names
        assert not {n for n in names if n.startswith("fake-1.0.dist-info/")} - {
            "fake-1.0.dist-info/METADATA",
            "fake-1.0.dist-info/WHEEL",
        }
        assert f"jobs/{artifact.function}.py" in names and "requirements.txt" not in names
    assert [ln.split()[0] for ln in lines[1:]] == ["api", "worker", "publisher", "notifier"]


# ---------------------------------------------------------------------------------- the lock


def test_lock_pins_every_bundled_distribution_with_hashes():
    lock = Lock.read()
    text = LOCK_FILE.read_text()
    assert list(lock.sources) == runtime_requirements()
    assert set(lock.targets) == {t.label for t in all_targets()}
    assert not set(lock.pins) & PROVIDED_BY_RUNTIME
    # pyproject.toml's own pins are the lock's.
    for requirement in runtime_requirements():
        name, _, version = requirement.partition("==")
        assert lock.pins[packaging.normalize(name)] == version
    # Each requirement: name==version, then only sha256 hashes (pip --require-hashes).
    entries = re.findall(r"^([a-z0-9-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.M)
    assert {name for name, _, _ in entries} == set(lock.pins)
    assert len(lock.pins) >= 4  # powertools, xray sdk and their own dependencies
    # wrapt is compiled: one wheel per supported Python and architecture.
    wrapt = next(hashes for name, _, hashes in entries if name == "wrapt")
    assert wrapt.count("--hash=") == len(SUPPORTED_RUNTIMES) * len(PLATFORMS)


def test_a_stale_or_incomplete_lock_is_refused(tmp_path):
    stale = tmp_path / "requirements.txt"
    stale.write_text(LOCK_FILE.read_text().replace("# source: aws-xray-sdk==2.15.0\n", ""))
    with pytest.raises(PackagingError, match=r"pyproject\.toml now declares.*python -m tooling\.packaging lock"):
        Lock.read(stale).check(runtime_requirements(), LambdaTarget("python3.12", "arm64"))
    partial = tmp_path / "partial.txt"
    partial.write_text(LOCK_FILE.read_text().replace("# target: python3.13-x86_64\n", ""))
    with pytest.raises(PackagingError, match=r"no wheels for python3\.13-x86_64.*tooling\.packaging lock"):
        Lock.read(partial).check(runtime_requirements(), LambdaTarget("python3.13", "x86_64"))
    with pytest.raises(PackagingError, match="is missing: generate it with"):
        Lock.read(tmp_path / "absent.txt")


def test_lock_generation_merges_every_target_and_leaves_out_what_lambda_provides():
    def resolver(requirements, target):
        assert list(requirements) == ["pkg==1.0"]
        wheel = f"speedups-2.0-{target.label}.whl"  # a compiled package: one wheel per target
        return [
            Resolved("pkg", "1.0", "a" * 64),
            Resolved("speedups", "2.0", hashlib.sha256(wheel.encode()).hexdigest()),
            Resolved("botocore", "1.40.0", "c" * 64),
        ]

    targets = [LambdaTarget("python3.12", "arm64"), LambdaTarget("python3.13", "x86_64")]
    text = lock_text(["pkg==1.0"], targets, resolver)
    assert "# source: pkg==1.0\n# target: python3.12-arm64\n# target: python3.13-x86_64\n" in text
    assert "# not bundled, the Lambda runtime provides them: botocore\n" in text
    assert not re.search(r"^botocore==", text, re.M)
    assert re.search(r"^pkg==1\.0 \\\n    --hash=sha256:a{64}\n", text, re.M)
    speedups = re.search(r"^speedups==2\.0 \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.M)
    assert speedups is not None and speedups.group(1).count("--hash=") == 2

    def disagreeing(requirements, target):
        return [Resolved("pkg", "1.0" if target.runtime == "python3.12" else "1.1", "a" * 64)]

    with pytest.raises(PackagingError, match=r"pkg resolves to 1\.0 for python3\.12-arm64 but 1\.1 for python3\.13"):
        lock_text(["pkg"], targets, disagreeing)


def test_terraform_accepts_exactly_the_runtimes_the_packager_builds_for() -> None:
    """A runtime Terraform allows but the lock has no wheels for would fail only at package time."""
    variables = (ROOT / "terraform" / "variables.tf").read_text()
    block = variables[variables.index('variable "lambda_runtime"') :]
    allowed = re.search(r"contains\(\[([^\]]*)\], var\.lambda_runtime\)", block)
    assert allowed is not None
    assert tuple(re.findall(r'"([^"]+)"', allowed.group(1))) == packaging.SUPPORTED_RUNTIMES
