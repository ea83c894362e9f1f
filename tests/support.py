"""Helpers shared by the test rings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def clean_env_vars(**extra: str) -> dict[str, str]:
    """os.environ without AWS credentials or endpoint settings, plus ``extra``: the environment
    of a subprocess that must find its AWS settings where the tooling puts them, nowhere else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "JOBSTACK_", "SMOKE_"))}
    env.update(
        {
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    env.update(extra)
    return env


def run_invoke(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``invoke <args>`` as a user runs it from the repository, in a subprocess with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def create_jobs_table(ddb: Any, name: str) -> None:
    """The jobs table as docs/architecture.md defines it (what terraform/modules/storage builds)."""
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "owner_id", "AttributeType": "S"},
            {"AttributeName": "job_id", "AttributeType": "S"},
            {"AttributeName": "owner_status", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "owner_id", "KeyType": "HASH"},
            {"AttributeName": "job_id", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_owner_status",
                "KeySchema": [
                    {"AttributeName": "owner_status", "KeyType": "HASH"},
                    {"AttributeName": "job_id", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def create_quota_table(ddb: Any, name: str) -> None:
    """The quotas table (terraform/modules/storage): one counter item per user."""
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "owner_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "owner_id", "KeyType": "HASH"}],
    )
