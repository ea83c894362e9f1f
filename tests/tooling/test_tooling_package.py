"""`invoke package`: deterministic zips, and what the task prints."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tooling.packaging import build_all, code_sha256

ROOT = Path(__file__).resolve().parents[2]


def test_two_builds_give_identical_bytes(tmp_path):
    first = build_all("arm64", build_dir=tmp_path)
    first_bytes = {a.function: a.path.read_bytes() for a in first}
    for artifact in first:
        artifact.path.unlink()
    second = build_all("arm64", build_dir=tmp_path)
    assert {a.function for a in second} == {"api", "worker"}
    for artifact in second:
        assert artifact.path.read_bytes() == first_bytes[artifact.function]
        assert artifact.sha256_b64 == code_sha256(artifact.path)
        with zipfile.ZipFile(artifact.path) as zf:
            infos = zf.infolist()
            assert [i.filename for i in infos] == sorted(i.filename for i in infos)
            assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
            assert f"jobs/{artifact.function}.py" in zf.namelist()


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
    assert lines[0] == "packaging for arm64 (env local)"
    for function in ("api", "worker"):
        path = ROOT / "build" / f"{function}.zip"
        pattern = rf"^  {function}\s+build/{function}\.zip  [\d,]+ KiB  sha256=(\S+)$"
        found = [m for m in (re.match(pattern, ln) for ln in lines) if m]
        assert len(found) == 1, proc.stdout
        assert found[0].group(1) == code_sha256(path)
