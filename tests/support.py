"""Helpers shared by the test rings."""

from __future__ import annotations

from typing import Any


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
