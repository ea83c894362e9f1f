"""The embedded backend's patches: moto behaves like AWS where the stack depends on it."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from tooling.aws_access import LOCAL_CREDENTIALS, AwsAccess


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


def test_tls_only_policy_lets_sdk_traffic_through(access: AwsAccess) -> None:
    s3 = access.client("s3")
    s3.create_bucket(Bucket="tls-only")
    s3.put_bucket_policy(Bucket="tls-only", Policy=_policy("tls-only", {"Bool": {"aws:SecureTransport": "false"}}))
    s3.put_object(Bucket="tls-only", Key="k", Body=b"v")
    assert s3.get_object(Bucket="tls-only", Key="k")["Body"].read() == b"v"
    s3.delete_object(Bucket="tls-only", Key="k")


def test_unconditional_deny_still_denies(access: AwsAccess) -> None:
    s3 = access.client("s3")
    s3.create_bucket(Bucket="deny-all")
    s3.put_bucket_policy(Bucket="deny-all", Policy=_policy("deny-all", None))
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="deny-all", Key="k", Body=b"v")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_deny_when_transport_is_secure_applies(access: AwsAccess) -> None:
    s3 = access.client("s3")
    s3.create_bucket(Bucket="deny-tls")
    s3.put_bucket_policy(Bucket="deny-tls", Policy=_policy("deny-tls", {"Bool": {"aws:SecureTransport": "true"}}))
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="deny-tls", Key="k", Body=b"v")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_partitioned_query_returns_exactly_what_dynamodb_would(access: AwsAccess) -> None:
    from tests.support import create_jobs_table

    ddb = access.client("dynamodb")
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


def test_sqs_counts_delays_and_retention_are_reported_as_sqs_does(access: AwsAccess) -> None:
    """The fast queue scans change no answer: counts by state, delays, visibility, retention, DLQ."""
    import time

    sqs = access.client("sqs")
    dlq = sqs.create_queue(QueueName="scans-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName="scans",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]

    def counts(queue: str = url) -> tuple[int, ...]:
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
        return tuple(int(attrs[n]) for n in names)

    for i in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert counts() == (25, 0, 1)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 10 and "later" not in {m["Body"] for m in got}
    assert counts() == (15, 10, 1)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"], VisibilityTimeout=0)
    assert counts() == (16, 9, 1)
    all_attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (all_attrs["ApproximateNumberOfMessages"], all_attrs["MessageRetentionPeriod"]) == ("16", "345600")
    # A message received maxReceiveCount times moves to the DLQ on its next receive.
    lone = sqs.create_queue(
        QueueName="scans-lone",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    sqs.send_message(QueueUrl=lone, MessageBody="poison")
    for _ in range(2):
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=lone)["Messages"]] == ["poison"]
    assert sqs.receive_message(QueueUrl=lone).get("Messages", []) == []
    assert counts(dlq)[0] == 1
    # A message older than the retention period is not handed out.
    old = sqs.create_queue(
        QueueName="scans-retention", Attributes={"VisibilityTimeout": "0", "MessageRetentionPeriod": "60"}
    )["QueueUrl"]
    sqs.send_message(QueueUrl=old, MessageBody="fresh")
    time.sleep(1.2)
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=old)["Messages"]] == ["fresh"]
    sqs.set_queue_attributes(QueueUrl=old, Attributes={"MessageRetentionPeriod": "1"})
    assert sqs.receive_message(QueueUrl=old).get("Messages", []) == []


def test_concurrent_conditional_claims_of_one_item_let_exactly_one_through(access: AwsAccess) -> None:
    """DynamoDB's conditional writes are atomic: of many concurrent claims one wins, every
    time, also while large Queries are being answered beside them."""
    import concurrent.futures

    from tests.support import create_jobs_table

    def client():  # a client per request, as separate workers would have
        return boto3.client("dynamodb", endpoint_url=access.endpoint_url, region_name="us-east-1", **LOCAL_CREDENTIALS)

    ddb = client()
    create_jobs_table(ddb, "claims")
    for n in range(300):  # a partition large enough that answering a Query of it takes a while
        ddb.put_item(TableName="claims", Item={"owner_id": {"S": "big"}, "job_id": {"S": f"{n:04d}"}})

    def claim(item: str, who: int) -> bool:
        try:
            client().update_item(
                TableName="claims",
                Key={"owner_id": {"S": "o"}, "job_id": {"S": item}},
                UpdateExpression="SET lease_owner = :me",
                ConditionExpression="attribute_not_exists(lease_owner)",
                ExpressionAttributeValues={":me": {"S": str(who)}},
            )
            return True
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False

    def query() -> int:
        return len(
            client().query(
                TableName="claims",
                KeyConditionExpression="owner_id = :o",
                ExpressionAttributeValues={":o": {"S": "big"}},
            )["Items"]
        )

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        listings = [pool.submit(query) for _ in range(4)]
        rounds = [[pool.submit(claim, f"item-{r}", who) for who in range(8)] for r in range(25)]
        assert [f.result() for f in listings] == [300] * 4
        wins = [sum(f.result() for f in claims) for claims in rounds]
    assert wins == [1] * 25


def test_a_cancelled_transaction_changes_nothing_and_its_cost_does_not_grow_with_the_table(
    access: AwsAccess,
) -> None:
    """moto rolls a transaction back by copying whole tables; the embedded backend restores
    just the items it named: the same outcome, at a cost that does not grow with the table."""
    import statistics
    import time

    from tests.support import create_jobs_table, create_quota_table

    ddb = access.client("dynamodb")
    create_jobs_table(ddb, "tx-jobs")
    create_quota_table(ddb, "tx-quotas")
    ddb.put_item(TableName="tx-jobs", Item={"owner_id": {"S": "o"}, "job_id": {"S": "kept"}, "v": {"N": "1"}})
    ddb.put_item(TableName="tx-jobs", Item={"owner_id": {"S": "o"}, "job_id": {"S": "gone"}, "v": {"N": "1"}})
    ddb.put_item(TableName="tx-quotas", Item={"owner_id": {"S": "o"}, "active_jobs": {"N": "2"}})

    def snapshot() -> tuple[list, list]:
        return (
            sorted(json.dumps(i, sort_keys=True) for i in ddb.scan(TableName="tx-jobs")["Items"]),
            ddb.scan(TableName="tx-quotas")["Items"],
        )

    before = snapshot()
    items = [
        {"Put": {"TableName": "tx-jobs", "Item": {"owner_id": {"S": "o"}, "job_id": {"S": "new"}}}},
        {
            "Update": {
                "TableName": "tx-jobs",
                "Key": {"owner_id": {"S": "o"}, "job_id": {"S": "kept"}},
                "UpdateExpression": "SET v = v + :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {"Delete": {"TableName": "tx-jobs", "Key": {"owner_id": {"S": "o"}, "job_id": {"S": "gone"}}}},
        {
            "Update": {
                "TableName": "tx-quotas",
                "Key": {"owner_id": {"S": "o"}},
                "UpdateExpression": "ADD active_jobs :one",
                "ConditionExpression": "active_jobs < :cap",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":cap": {"N": "2"}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    ]
    with pytest.raises(ClientError) as cancelled:
        ddb.transact_write_items(TransactItems=items)
    reasons = cancelled.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "None", "None", "ConditionalCheckFailed"]
    assert reasons[3]["Item"] == {"owner_id": {"S": "o"}, "active_jobs": {"N": "2"}}
    assert snapshot() == before
    items[3]["Update"]["ExpressionAttributeValues"][":cap"] = {"N": "3"}
    ddb.transact_write_items(TransactItems=items)
    jobs = {i["job_id"]["S"]: i for i in ddb.scan(TableName="tx-jobs")["Items"]}
    assert set(jobs) == {"kept", "new"} and jobs["kept"]["v"] == {"N": "2"}
    assert ddb.scan(TableName="tx-quotas")["Items"][0]["active_jobs"] == {"N": "3"}

    def median_transaction_s(owner: str) -> float:
        times = []
        for n in range(15):
            put = {"owner_id": {"S": owner}, "job_id": {"S": f"{n:04d}"}}
            started = time.perf_counter()
            ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "tx-jobs", "Item": put}}])
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    small = median_transaction_s("small")
    bulk = [{"owner_id": {"S": "bulk"}, "job_id": {"S": f"{n:05d}"}, "payload": {"S": "x" * 200}} for n in range(3000)]
    batch_put(ddb, "tx-jobs", bulk)
    big = median_transaction_s("big")
    # moto's whole-table copy: ~0.5 s per transaction beside 3,000 items (50x the small table)
    assert big < max(5 * small, 0.05), (small, big)


def batch_put(ddb, table: str, items: list[dict]) -> None:
    """BatchWriteItem in pages of 25 (fast seeding)."""
    for start in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]})


def test_a_long_poll_returns_a_delayed_message_as_soon_as_it_is_due(access: AwsAccess) -> None:
    """SQS hands a delayed message to a waiting long poll when its delay ends (a scheduled job
    due within 15 minutes is such a message); moto re-checked only once a second."""
    import time

    sqs = access.client("sqs")
    url = sqs.create_queue(QueueName="delayed-wakeup")["QueueUrl"]
    lags = []
    for _ in range(3):
        sent = time.time()
        sqs.send_message(QueueUrl=url, MessageBody="due", DelaySeconds=1)
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages") is None  # not early
        [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
        lags.append(time.time() - sent - 1.0)
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert min(lags) >= -0.05 and max(lags) < 0.5, lags


def _bodies(sqs, url: str, count: int = 10) -> list[str]:
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count, AttributeNames=["All"]).get("Messages", [])
    return [m["Body"] for m in got]


def test_a_standard_queue_serves_message_groups_fairly(access: AwsAccess) -> None:
    """SQS fair queues, emulated: a tenant (MessageGroupId) with many messages in flight does
    not hold back a quiet tenant's messages; arrival order within a tenant; round-robin
    between tenants alike; a message without a group is a tenant of its own."""
    sqs = access.client("sqs")
    url = sqs.create_queue(QueueName="fair", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for i in range(30):
        sqs.send_message(QueueUrl=url, MessageBody=f"a{i}", MessageGroupId="tenant-a")
    assert _bodies(sqs, url) == [f"a{i}" for i in range(10)]  # alone: arrival order
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"b{i}", MessageGroupId="tenant-b")
    sqs.send_message(QueueUrl=url, MessageBody="lone")  # no group: its own tenant
    # a holds 10 in flight, b and the lone message none: they come first, then a again
    assert _bodies(sqs, url, 6) == ["b0", "lone", "b1", "b2", "a10", "a11"]
    # equal loads: round-robin, the tenant whose oldest waiting message is oldest first
    url2 = sqs.create_queue(QueueName="fair-rr", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url2, MessageBody=f"c{i}", MessageGroupId="tenant-c")
    for i in range(3):
        sqs.send_message(QueueUrl=url2, MessageBody=f"d{i}", MessageGroupId="tenant-d")
    assert _bodies(sqs, url2) == ["c0", "d0", "c1", "d1", "c2", "d2"]
    # the group id is reported, as SQS does
    sqs.send_message(QueueUrl=url2, MessageBody="e0", MessageGroupId="tenant-e")
    got = sqs.receive_message(QueueUrl=url2, AttributeNames=["All"])["Messages"]
    assert [(m["Body"], m["Attributes"]["MessageGroupId"]) for m in got] == [("e0", "tenant-e")]


def test_a_queue_without_groups_keeps_arrival_order(access: AwsAccess) -> None:
    sqs = access.client("sqs")
    url = sqs.create_queue(QueueName="unfair", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for i in range(15):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    assert _bodies(sqs, url) == [f"m{i}" for i in range(10)]
    assert _bodies(sqs, url) == [f"m{i}" for i in range(10, 15)]


def test_fair_order_keeps_a_deep_queue_fast(access: AwsAccess) -> None:
    """2,000 messages of two tenants (the issue-13 depth): a receive stays well under 100 ms."""
    import time

    sqs = access.client("sqs")
    url = sqs.create_queue(QueueName="fair-deep", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for start in range(0, 2000, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": f"m{i}", "MessageGroupId": "heavy" if i % 50 else "light"}
                for i in range(start, start + 10)
            ],
        )
    durations = []
    for _ in range(10):
        began = time.perf_counter()
        assert len(_bodies(sqs, url)) == 10
        durations.append(time.perf_counter() - began)
    assert sorted(durations)[5] < 0.1, durations


def test_a_browser_can_sign_in_to_the_user_pool_across_origins(access: AwsAccess, backend) -> None:
    """The web console calls Cognito's JSON API with fetch(): the preflight (no target, no
    signature) is a 200 that allows the headers asked for, and the call itself carries
    Access-Control-Allow-Origin, as on AWS."""
    import requests

    cognito = access.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="console-cors")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="console", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=pool, Username="ann", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool, Username="ann", Password="Pa55word!x", Permanent=True)
    origin = "http://127.0.0.1:8123"

    preflight = requests.options(
        backend.endpoint + "/",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-amz-target",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "x-amz-target" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]

    signed_in = requests.post(
        backend.endpoint + "/",
        headers={
            "Origin": origin,
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
        },
        data=json.dumps(
            {
                "AuthFlow": "USER_PASSWORD_AUTH",
                "ClientId": client,
                "AuthParameters": {"USERNAME": "ann", "PASSWORD": "Pa55word!x"},
            }
        ),
        timeout=10,
    )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.headers["Access-Control-Allow-Origin"] == origin
    assert signed_in.json()["AuthenticationResult"]["IdToken"]
