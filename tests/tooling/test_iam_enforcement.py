"""Issue 9: the embedded backend enforces IAM as AWS does, and the local runtime's credentials.

Identity policies decide every request; a role is assumed only by the principal its trust
policy names; DynamoDB, SQS, S3 and Logs are checked against the resources AWS checks.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tooling.aws_access import AwsAccess
from tooling.embedded_backend import LAMBDA_SERVICE_CREDENTIALS, EmbeddedBackend, dynamodb_resources
from tooling.local_runtime.credentials import ExecutionRoles
from tooling.local_runtime.errors import LocalRuntimeError

ACCOUNT = "123456789012"
LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def _client(backend: EmbeddedBackend, service: str, creds: dict[str, str]) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=backend.endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=creds.get("AWS_SESSION_TOKEN"),
    )


def _role(access: AwsAccess, name: str, statements: list[dict[str, Any]], trust: str = LAMBDA_TRUST) -> str:
    iam = access.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    document = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    return str(arn)


def _as_role(backend: EmbeddedBackend, role_arn: str) -> dict[str, str]:
    creds = ExecutionRoles(backend.endpoint, "us-east-1").credentials(role_arn, "fn")
    return creds.env()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_unknown_keys_are_refused(backend: EmbeddedBackend) -> None:
    stranger = {"AWS_ACCESS_KEY_ID": "AKIANOBODYKNOWSTHIS1", "AWS_SECRET_ACCESS_KEY": "x"}
    expected = {
        ("sqs", "list_queues"): "InvalidClientTokenId",
        ("dynamodb", "list_tables"): "UnrecognizedClientException",
        ("s3", "list_buckets"): "InvalidAccessKeyId",
        ("lambda", "list_functions"): "UnrecognizedClientException",
    }
    for (service, call), code in expected.items():
        with pytest.raises(ClientError) as refused:
            getattr(_client(backend, service, stranger), call)()
        assert _code(refused) == code, (service, refused.value)


def test_only_the_lambda_service_assumes_an_execution_role(
    backend: EmbeddedBackend, access: AwsAccess, unique: str
) -> None:
    role = _role(access, f"fn-{unique}", [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}])
    with pytest.raises(ClientError) as refused:  # the administrator is not lambda.amazonaws.com
        access.client("sts").assume_role(RoleArn=role, RoleSessionName="admin")
    assert _code(refused) == "AccessDenied"
    creds = _as_role(backend, role)
    identity = _client(backend, "sts", creds).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/fn-{unique}/fn"
    # a role that trusts another service cannot be used by the local runtime either
    ec2_trust = LAMBDA_TRUST.replace("lambda.amazonaws.com", "ec2.amazonaws.com")
    iam = access.client("iam")
    other = iam.create_role(RoleName=f"ec2-{unique}", AssumeRolePolicyDocument=ec2_trust)["Role"]["Arn"]
    with pytest.raises(LocalRuntimeError, match="could not assume"):
        ExecutionRoles(backend.endpoint, "us-east-1").credentials(other, "fn")
    # and the Lambda service identity itself can do nothing but assume roles
    with pytest.raises(ClientError) as limited:
        _client(backend, "sqs", LAMBDA_SERVICE_CREDENTIALS).list_queues()
    assert _code(limited) == "AccessDenied"


def test_dynamodb_is_checked_against_the_table_and_index(
    backend: EmbeddedBackend, access: AwsAccess, unique: str
) -> None:
    ddb = access.client("dynamodb")
    tables = [f"a-{unique}", f"b-{unique}"]
    for name in tables:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "k", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    table_a = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{tables[0]}"
    role = _role(
        access,
        f"ddb-{unique}",
        [
            {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"], "Resource": table_a},
            {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": f"{table_a}/index/by-g"},
        ],
    )
    mine = _client(backend, "dynamodb", _as_role(backend, role))
    mine.put_item(TableName=tables[0], Item={"k": {"S": "1"}, "g": {"S": "x"}})
    found = mine.query(
        TableName=tables[0],
        IndexName="by-g",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "x"}},
    )
    assert found["Count"] == 1
    refused = [
        lambda: mine.put_item(TableName=tables[1], Item={"k": {"S": "1"}}),  # another table
        lambda: mine.get_item(TableName=tables[0], Key={"k": {"S": "1"}}),  # an action not granted
        lambda: mine.query(  # the table itself: only the index was granted
            TableName=tables[0], KeyConditionExpression="k = :k", ExpressionAttributeValues={":k": {"S": "1"}}
        ),
        lambda: mine.transact_write_items(  # one item of the transaction on another table
            TransactItems=[
                {"Put": {"TableName": tables[0], "Item": {"k": {"S": "2"}}}},
                {"Put": {"TableName": tables[1], "Item": {"k": {"S": "2"}}}},
            ]
        ),
    ]
    for call in refused:
        with pytest.raises(ClientError) as denied:
            call()
        assert _code(denied) == "AccessDeniedException"
        assert "is not authorized to perform: dynamodb:" in denied.value.response["Error"]["Message"]
    # the transaction's items are each authorized as their own action: allowed on table a
    mine.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": tables[0],
                    "Key": {"k": {"S": "1"}},
                    "UpdateExpression": "SET g = :g",
                    "ExpressionAttributeValues": {":g": {"S": "y"}},
                }
            }
        ]
    )
    assert access.client("dynamodb").get_item(TableName=tables[0], Key={"k": {"S": "1"}})["Item"]["g"] == {"S": "y"}


def test_dynamodb_resources_of_each_request_shape() -> None:
    region, account = "eu-west-1", "111122223333"
    table = f"arn:aws:dynamodb:{region}:{account}:table/t"
    assert dynamodb_resources("GetItem", {"TableName": "t"}, region, account) == [("GetItem", table)]
    assert dynamodb_resources("Query", {"TableName": "t", "IndexName": "i"}, region, account) == [
        ("Query", f"{table}/index/i")
    ]
    assert dynamodb_resources("BatchWriteItem", {"RequestItems": {"t": [], "u": []}}, region, account) == [
        ("BatchWriteItem", table),
        ("BatchWriteItem", f"arn:aws:dynamodb:{region}:{account}:table/u"),
    ]
    assert dynamodb_resources(
        "TransactWriteItems",
        {"TransactItems": [{"ConditionCheck": {"TableName": "t"}}, {"Delete": {"TableName": "t"}}]},
        region,
        account,
    ) == [("ConditionCheckItem", table), ("DeleteItem", table)]
    assert dynamodb_resources("ListTables", {}, region, account) == [("ListTables", "*")]


def test_sqs_batches_are_authorized_as_the_single_message_action(
    backend: EmbeddedBackend, access: AwsAccess, unique: str
) -> None:
    sqs = access.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{unique}")["QueueUrl"]
    other = sqs.create_queue(QueueName=f"other-{unique}")["QueueUrl"]
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q-{unique}"
    role = _role(
        access,
        f"sqs-{unique}",
        [
            {
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"],
                "Resource": arn,
            }
        ],
    )
    mine = _client(backend, "sqs", _as_role(backend, role))
    mine.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "a"}, {"Id": "2", "MessageBody": "b"}])
    got = mine.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    done = mine.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
    )
    assert len(done["Successful"]) == len(got) >= 1
    with pytest.raises(ClientError) as denied:
        mine.send_message(QueueUrl=other, MessageBody="x")
    assert _code(denied) == "AccessDenied"
    assert f"sqs:SendMessage on resource: arn:aws:sqs:us-east-1:{ACCOUNT}:other-{unique}" in str(denied.value)


def test_a_presigned_url_is_authorized_as_its_signer_and_expires(
    backend: EmbeddedBackend, access: AwsAccess, unique: str
) -> None:
    bucket = f"presign-{unique}"
    s3 = access.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"result")
    reader = _role(
        access,
        f"reader-{unique}",
        [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}],
    )
    writer = _role(
        access,
        f"writer-{unique}",
        [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}],
    )

    def fetch(role: str, expires: int = 60) -> tuple[int, bytes]:
        client = _client(backend, "s3", _as_role(backend, role))
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=expires)
        try:
            with urllib.request.urlopen(url) as resp:  # noqa: S310 - loopback backend
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    assert fetch(reader) == (200, b"result")
    status, body = fetch(writer)  # signed by a role that may not read the object
    assert status == 403 and b"AccessDenied" in body
    client = _client(backend, "s3", _as_role(backend, reader))
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1)
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as expired:
        urllib.request.urlopen(url)  # noqa: S310
    assert expired.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as anonymous:  # no signature at all: the bucket is private
        urllib.request.urlopen(f"{backend.endpoint}/{bucket}/k")  # noqa: S310
    assert anonymous.value.code == 403


def test_role_credentials_are_cached_and_assumed_again_before_they_expire(
    backend: EmbeddedBackend, access: AwsAccess, unique: str
) -> None:
    role = _role(access, f"refresh-{unique}", [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}])
    now = [time.time()]
    roles = ExecutionRoles(backend.endpoint, "us-east-1", duration_seconds=900, clock=lambda: now[0])
    first = roles.credentials(role, "fn")
    assert roles.credentials(role, "fn") is first and roles.assumed == 1
    # asking for more time than is left assumes again
    again = roles.credentials(role, "fn", min_remaining=first.remaining(now[0]) + 1)
    assert again.access_key_id != first.access_key_id and roles.assumed == 2
    # kept until a quarter of their life has passed (measured on the fake clock from their expiry,
    # so the time this test itself takes does not matter), then renewed
    now[0] = again.expiration - 900 * 0.75 - 5
    assert roles.credentials(role, "fn") is again and roles.assumed == 2
    now[0] = again.expiration - 900 * 0.75 + 1
    renewed = roles.credentials(role, "fn")
    assert renewed.access_key_id != again.access_key_id and roles.assumed == 3
    # and a client made from them keeps working as the role
    sts = roles.client(role, "fn", "sts")
    assert sts.get_caller_identity()["Arn"].endswith(f":assumed-role/refresh-{unique}/fn")


SCHEDULER_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ],
    }
)


def test_schedules_are_checked_against_their_group_and_need_pass_role(
    backend: EmbeddedBackend, access: AwsAccess, unique: str
) -> None:
    """As the api role creates and deletes a job's schedule: scheduler actions on
    ``schedule/<group>/*`` only, and iam:PassRole of the scheduler role."""
    scheduler = access.client("scheduler")
    group, other = f"jobs-{unique}", f"other-{unique}"
    for name in (group, other):
        scheduler.create_schedule_group(Name=name)
    access.client("sqs").create_queue(QueueName=f"q-{unique}")
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q-{unique}"
    target_role = _role(
        access,
        f"sched-{unique}",
        [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}],
        SCHEDULER_TRUST,
    )
    schedules = f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/{group}/*"
    manage = {
        "Effect": "Allow",
        "Action": ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"],
        "Resource": schedules,
    }
    pass_role = {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": target_role,
        "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
    }
    api = _client(backend, "scheduler", _as_role(backend, _role(access, f"api-{unique}", [manage, pass_role])))
    no_pass = _client(backend, "scheduler", _as_role(backend, _role(access, f"nopass-{unique}", [manage])))

    def create(client: Any, name: str, in_group: str) -> None:
        client.create_schedule(
            Name=name,
            GroupName=in_group,
            ScheduleExpression="at(2030-01-01T00:00:00)",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={"Arn": queue_arn, "RoleArn": target_role, "Input": "{}"},
        )

    create(api, "job-1", group)
    with pytest.raises(ClientError) as wrong_group:
        create(api, "job-2", other)
    assert _code(wrong_group) == "AccessDeniedException"
    assert f"schedule/{other}/job-2" in str(wrong_group.value)
    with pytest.raises(ClientError) as cannot_pass:
        create(no_pass, "job-3", group)
    assert _code(cannot_pass) == "AccessDeniedException" and "iam:PassRole" in str(cannot_pass.value)
    with pytest.raises(ClientError) as cannot_read:  # GetSchedule was not granted
        api.get_schedule(Name="job-1", GroupName=group)
    assert _code(cannot_read) == "AccessDeniedException"
    api.delete_schedule(Name="job-1", GroupName=group)
    assert scheduler.list_schedules(GroupName=group)["Schedules"] == []
    assert [s["Name"] for s in scheduler.list_schedule_groups()["ScheduleGroups"]].count(group) == 1


def test_only_the_scheduler_service_assumes_a_scheduler_role_which_sends_to_its_queue_only(
    backend: EmbeddedBackend, access: AwsAccess, unique: str
) -> None:
    from tooling.embedded_backend import SCHEDULER_SERVICE_CREDENTIALS

    sqs = access.client("sqs")
    mine = sqs.create_queue(QueueName=f"mine-{unique}")["QueueUrl"]
    theirs = sqs.create_queue(QueueName=f"theirs-{unique}")["QueueUrl"]
    role = _role(
        access,
        f"sr-{unique}",
        [
            {
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": f"arn:aws:sqs:us-east-1:{ACCOUNT}:mine-{unique}",
            }
        ],
        SCHEDULER_TRUST,
    )
    with pytest.raises(LocalRuntimeError, match="could not assume"):  # Lambda is not trusted
        ExecutionRoles(backend.endpoint, "us-east-1").credentials(role, "fn")
    as_scheduler = ExecutionRoles(backend.endpoint, "us-east-1", service_credentials=SCHEDULER_SERVICE_CREDENTIALS)
    client = _client(backend, "sqs", as_scheduler.credentials(role, "schedule").env())
    client.send_message(QueueUrl=mine, MessageBody="due")
    with pytest.raises(ClientError) as refused:
        client.send_message(QueueUrl=theirs, MessageBody="due")
    assert _code(refused) == "AccessDenied"
    with pytest.raises(ClientError):  # the service identity itself only assumes roles
        _client(backend, "sqs", SCHEDULER_SERVICE_CREDENTIALS).send_message(QueueUrl=mine, MessageBody="x")


def test_ssm_parameters_are_checked_against_the_parameter(
    backend: EmbeddedBackend, access: AwsAccess, unique: str
) -> None:
    """The notifier may read its signing secret and no other parameter (README "Webhooks")."""
    ssm = access.client("ssm")
    mine_name, other_name = f"/{unique}/webhooks/signing-secret", f"/{unique}/other"
    for name in (mine_name, other_name):
        ssm.put_parameter(Name=name, Value=f"value of {name}", Type="SecureString")
    arn = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{mine_name}"
    role = _role(access, f"ssm-{unique}", [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": arn}])
    mine = _client(backend, "ssm", _as_role(backend, role))
    assert mine.get_parameter(Name=mine_name, WithDecryption=True)["Parameter"]["Value"] == f"value of {mine_name}"
    for call in (
        lambda: mine.get_parameter(Name=other_name, WithDecryption=True),  # another parameter
        lambda: mine.put_parameter(Name=mine_name, Value="x", Type="SecureString", Overwrite=True),  # not granted
    ):
        with pytest.raises(ClientError) as denied:
            call()
        assert _code(denied) == "AccessDeniedException"
