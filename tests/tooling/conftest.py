"""Fixtures of the tooling tests: one embedded backend (moto server on loopback) per session."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import clean_env_vars, create_jobs_table
from tooling.aws_access import AwsAccess, for_endpoint
from tooling.embedded_backend import EmbeddedBackend

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def backend(tmp_path_factory) -> Iterator[EmbeddedBackend]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with EmbeddedBackend(log_path=str(log)) as server:
        yield server


@pytest.fixture
def access(backend) -> AwsAccess:
    return for_endpoint(backend.endpoint)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


def _tiny_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("jobs/__init__.py", "")
    return buf.getvalue()


@pytest.fixture
def seeded_stack(access, unique) -> dict[str, str]:
    """The resources `status`/`logs` read, created with boto3 directly (no terraform).

    Returns terraform-style outputs naming them.
    """
    sqs, ddb, lam, iam, logs = (access.client(s) for s in ("sqs", "dynamodb", "lambda", "iam", "logs"))
    prefix = f"t{unique}"
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]

    def arn(url: str) -> str:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    dlq_arn = arn(dlq_url)
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-jobs",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})},
    )["QueueUrl"]
    table = f"{prefix}-jobs"
    create_jobs_table(ddb, table)
    role_arn = iam.create_role(
        RoleName=f"{prefix}-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    functions = {}
    for label in ("api", "worker"):
        name = f"{prefix}-{label}"
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role_arn,
            Handler=f"jobs.{label}.lambda_handler",
            Code={"ZipFile": _tiny_zip()},
            Architectures=["arm64"],
        )
        logs.create_log_group(logGroupName=f"/aws/lambda/{name}")
        functions[label] = name
    lam.create_event_source_mapping(  # by ARN, as terraform makes it
        EventSourceArn=arn(queue_url),
        FunctionName=lam.get_function(FunctionName=functions["worker"])["Configuration"]["FunctionArn"],
        BatchSize=10,
    )
    return {
        "queue_url": queue_url,
        "dlq_url": dlq_url,
        "table_name": table,
        "api_function_name": functions["api"],
        "worker_function_name": functions["worker"],
        "api_log_group": f"/aws/lambda/{functions['api']}",
        "worker_log_group": f"/aws/lambda/{functions['worker']}",
        "region": "us-east-1",
        "prefix": prefix,
    }


@pytest.fixture
def clean_env():
    """Build a subprocess environment with no AWS credentials (plus the given variables)."""
    return clean_env_vars
