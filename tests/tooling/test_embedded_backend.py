"""The embedded backend's patches: moto behaves like AWS where the stack depends on it."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from tooling.embedded_backend import EmbeddedBackend


def _s3(backend: EmbeddedBackend):
    return boto3.client(
        "s3",
        endpoint_url=backend.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _policy(bucket: str, condition: dict | None) -> str:
    statement: dict = {
        "Sid": "Deny",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }
    if condition is not None:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_tls_only_policy_lets_sdk_traffic_through(backend: EmbeddedBackend) -> None:
    s3 = _s3(backend)
    s3.create_bucket(Bucket="tls-only")
    s3.put_bucket_policy(Bucket="tls-only", Policy=_policy("tls-only", {"Bool": {"aws:SecureTransport": "false"}}))
    s3.put_object(Bucket="tls-only", Key="k", Body=b"v")
    assert s3.get_object(Bucket="tls-only", Key="k")["Body"].read() == b"v"
    s3.delete_object(Bucket="tls-only", Key="k")


def test_unconditional_deny_still_denies(backend: EmbeddedBackend) -> None:
    s3 = _s3(backend)
    s3.create_bucket(Bucket="deny-all")
    s3.put_bucket_policy(Bucket="deny-all", Policy=_policy("deny-all", None))
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="deny-all", Key="k", Body=b"v")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_deny_when_transport_is_secure_applies(backend: EmbeddedBackend) -> None:
    s3 = _s3(backend)
    s3.create_bucket(Bucket="deny-tls")
    s3.put_bucket_policy(Bucket="deny-tls", Policy=_policy("deny-tls", {"Bool": {"aws:SecureTransport": "true"}}))
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="deny-tls", Key="k", Body=b"v")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_partitioned_query_returns_exactly_what_dynamodb_would(backend: EmbeddedBackend) -> None:
    from tests.support import create_jobs_table

    ddb = boto3.client(
        "dynamodb",
        endpoint_url=backend.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    create_jobs_table(ddb, "partitioned")
    for owner in ("a", "b", "c"):
        for n in range(12):
            ddb.put_item(
                TableName="partitioned",
                Item={
                    "owner_id": {"S": owner},
                    "job_id": {"S": f"{n:04d}"},
                    "owner_status": {"S": f"{owner}#{'DONE' if n % 2 else 'NEW'}"},
                },
            )
    page = ddb.query(
        TableName="partitioned",
        KeyConditionExpression="owner_id = :o AND job_id < :before",
        ExpressionAttributeValues={":o": {"S": "b"}, ":before": {"S": "0010"}},
        ScanIndexForward=False,
        Limit=4,
    )
    assert [i["job_id"]["S"] for i in page["Items"]] == ["0009", "0008", "0007", "0006"]
    assert {i["owner_id"]["S"] for i in page["Items"]} == {"b"}
    rest = ddb.query(
        TableName="partitioned",
        KeyConditionExpression="owner_id = :o AND job_id < :before",
        ExpressionAttributeValues={":o": {"S": "b"}, ":before": {"S": "0010"}},
        ScanIndexForward=False,
        ExclusiveStartKey=page["LastEvaluatedKey"],
    )
    assert [i["job_id"]["S"] for i in rest["Items"]] == ["0005", "0004", "0003", "0002", "0001", "0000"]
    assert (
        ddb.query(
            TableName="partitioned",
            KeyConditionExpression="owner_id = :o",
            ExpressionAttributeValues={":o": {"S": "nobody"}},
        )["Items"]
        == []
    )
    by_status = ddb.query(
        TableName="partitioned",
        IndexName="by_owner_status",
        KeyConditionExpression="owner_status = :s",
        ExpressionAttributeValues={":s": {"S": "c#DONE"}},
    )
    assert [i["job_id"]["S"] for i in by_status["Items"]] == [f"{n:04d}" for n in range(1, 12, 2)]
    assert ddb.scan(TableName="partitioned")["Count"] == 36
