"""Fixtures of the terraform tests: one embedded backend (moto on loopback) per session,
the Lambda zips, and runners that keep their data dirs and state in a temporary work root."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tooling.aws_access import LOCAL_CREDENTIALS
from tooling.embedded_backend import REGION, EmbeddedBackend
from tooling.packaging import build_all
from tooling.terraform import TerraformRunner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def moto_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBackend]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with EmbeddedBackend(log_path=str(log)) as server:
        yield server


@pytest.fixture(scope="session")
def lambda_zips() -> dict[str, Path]:
    """build/api.zip and build/worker.zip, built as `invoke package` builds them."""
    return {artifact.function: artifact.path for artifact in build_all()}


@pytest.fixture(scope="session")
def tf_work_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tfwork")


@pytest.fixture(scope="session")
def make_runner(
    moto_backend: EmbeddedBackend, lambda_zips: dict[str, Path], tf_work_root: Path
) -> Callable[..., TerraformRunner]:
    """A runner for ``env`` on the embedded backend with local state (backend disabled).

    ``variables`` add to (or override) the built zips' paths, which every plan needs.
    """

    def make(env: str, **kwargs: Any) -> TerraformRunner:
        kwargs.setdefault("backend", False)
        kwargs.setdefault("endpoint_url", moto_backend.endpoint)
        kwargs.setdefault("extra_env", moto_backend.env())
        kwargs.setdefault("work_root", tf_work_root)
        zips = {
            "api_zip_path": str(lambda_zips["api"]),
            "worker_zip_path": str(lambda_zips["worker"]),
            "notifier_zip_path": str(lambda_zips["notifier"]),
        }
        kwargs["variables"] = {**zips, **(kwargs.get("variables") or {})}
        return TerraformRunner(env, **kwargs)

    return make


@pytest.fixture(scope="session")
def aws(moto_backend: EmbeddedBackend) -> Callable[[str], Any]:
    """boto3 clients on the embedded backend."""
    session = boto3.Session(**LOCAL_CREDENTIALS, region_name=REGION)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=moto_backend.endpoint)

    return client
