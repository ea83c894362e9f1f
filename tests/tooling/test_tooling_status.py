"""`invoke status` figures against a state seeded on the embedded backend."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from tooling import status


def uuid7_at(when: datetime) -> str:
    """A UUIDv7 whose timestamp is ``when`` (as the api Lambda mints them)."""
    ms = int(when.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (secrets.randbits(12) << 64) | (0b10 << 62) | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def put_job(ddb, table, owner, job_id, state, created=None):
    item = {
        "owner_id": {"S": owner},
        "job_id": {"S": job_id},
        "status": {"S": state},
        "owner_status": {"S": f"{owner}#{state}"},
        "action": {"S": "process-data"},
    }
    if created:
        item["createdAt"] = {"S": created}
    ddb.put_item(TableName=table, Item=item)


def test_job_time_reads_uuid7_and_created_at():
    when = datetime(2025, 7, 14, 12, 0, 0, 123000, tzinfo=UTC)
    assert status.job_time({"job_id": uuid7_at(when)}) == when
    assert status.job_time({"job_id": str(uuid.uuid4()), "createdAt": "2025-07-14T12:00:00Z"}) == datetime(
        2025, 7, 14, 12, tzinfo=UTC
    )
    assert status.job_time({"job_id": "nope"}) is None


def test_status_matches_the_seeded_state(access, seeded_stack):
    sqs, ddb, cw = access.client("sqs"), access.client("dynamodb"), access.client("cloudwatch")
    out = seeded_stack
    for n in range(3):
        sqs.send_message(QueueUrl=out["queue_url"], MessageBody=f'{{"n": {n}}}')
    received = sqs.receive_message(QueueUrl=out["queue_url"], MaxNumberOfMessages=1, VisibilityTimeout=300)
    assert len(received["Messages"]) == 1
    sqs.send_message(QueueUrl=out["dlq_url"], MessageBody="poison")

    now = datetime.now(UTC)
    table = out["table_name"]
    recent = now - timedelta(hours=1)
    for state in ("COMPLETE", "COMPLETE", "FAILED", "PENDING", "PROCESSING"):
        put_job(ddb, table, "alice", uuid7_at(recent), state)
    put_job(ddb, table, "bob", uuid7_at(now - timedelta(minutes=5)), "CANCELLED")
    put_job(ddb, table, "bob", uuid7_at(now - timedelta(hours=48)), "COMPLETE")  # outside the window
    put_job(ddb, table, "carol", str(uuid.uuid4()), "FAILED", created=(now - timedelta(hours=2)).isoformat())
    # an idempotency record is not a job
    ddb.put_item(
        TableName=table,
        Item={
            "owner_id": {"S": "alice#idempotency"},
            "job_id": {"S": "ab" * 32},
            "status": {"S": "COMPLETE"},
        },
    )

    dlq_name = out["dlq_url"].rsplit("/", 1)[-1]
    cw.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": dlq_name}],
                "Timestamp": now - timedelta(minutes=1),
                "Value": 420.0,
            }
        ],
    )
    alarm = f"{out['prefix']}-dlq-not-empty"
    cw.put_metric_alarm(
        AlarmName=alarm,
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": dlq_name}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="1 message in the DLQ")
    cw.put_metric_alarm(  # named with the stack's prefix, dimensions not among the outputs: shown
        AlarmName=f"{out['prefix']}-api-5xx",
        Namespace="AWS/ApiGateway",
        MetricName="5XXError",
        Dimensions=[{"Name": "ApiName", "Value": f"{out['prefix']}-api"}, {"Name": "Stage", "Value": "dev"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName=f"{out['prefix']}-api-5xx", StateValue="OK", StateReason="fine")
    cw.put_metric_alarm(  # someone else's alarm: not shown
        AlarmName=f"other-{out['prefix']}",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "somebody-elses-queue"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )

    report = status.collect(access, out, env="test")

    jobs_q, dlq = report.queues
    assert (jobs_q.label, jobs_q.visible, jobs_q.in_flight, jobs_q.delayed) == ("jobs", 2, 1, 0)
    assert jobs_q.oldest_age_seconds is None
    assert (dlq.visible, dlq.in_flight, dlq.oldest_age_seconds) == (1, 0, 420.0)

    api, worker = report.functions
    assert api.name == out["api_function_name"] and api.state == "Active"
    assert worker.name == out["worker_function_name"]
    assert worker.runtime == "python3.12" and len(worker.code_sha256) == 44
    assert worker.event_source_states and worker.event_source_states[0].startswith(out["prefix"] + "-jobs:")
    assert api.event_source_states == []

    assert report.jobs is not None
    assert report.jobs.counts == {"PENDING": 1, "PROCESSING": 1, "COMPLETE": 2, "FAILED": 2, "CANCELLED": 1}
    assert report.jobs.total == 7
    assert report.jobs.truncated is False
    assert report.jobs.items_read == 9

    assert [(a.name, a.state) for a in report.alarms] == [
        (alarm, "ALARM"),
        (f"{out['prefix']}-api-5xx", "OK"),
    ]

    text = status.render(report)
    assert "dlq                1          0        0  7m  <- messages in the DLQ" in text
    assert "jobs created in the last 24h: 7" in text
    assert "PENDING=1  PROCESSING=1  COMPLETE=2  FAILED=2  CANCELLED=1" in text
    assert f"ALARM             {alarm}  (1 message in the DLQ)" in text


def test_job_counts_stop_at_the_scan_cap_and_say_so(access, seeded_stack):
    ddb = access.client("dynamodb")
    now = datetime.now(UTC)
    for n in range(7):
        put_job(ddb, seeded_stack["table_name"], f"user{n}", uuid7_at(now), "COMPLETE")
    counts = status.job_counts(ddb, seeded_stack["table_name"], cap=3)
    assert counts.truncated is True
    assert counts.items_read == 3
    assert counts.counts["COMPLETE"] == 3
    full = status.job_counts(ddb, seeded_stack["table_name"], cap=100)
    assert (full.truncated, full.items_read, full.counts["COMPLETE"]) == (False, 7, 7)


def test_missing_output_is_an_operator_error(access, seeded_stack):
    import pytest

    from tooling.errors import OperatorError

    outputs = {k: v for k, v in seeded_stack.items() if k != "dlq_url"}
    with pytest.raises(OperatorError, match="no output 'dlq_url'"):
        status.collect(access, outputs, env="test")


def test_status_shows_each_priority_queue(access, seeded_stack):
    sqs = access.client("sqs")
    out = dict(seeded_stack)
    urls = {"normal": out["queue_url"]}
    for priority in ("high", "low"):
        urls[priority] = sqs.create_queue(QueueName=f"{out['prefix']}-jobs-{priority}")["QueueUrl"]
    out["queue_urls"] = urls
    for n in range(2):
        sqs.send_message(QueueUrl=urls["high"], MessageBody=f'{{"n": {n}}}', MessageGroupId="alice")
    sqs.send_message(QueueUrl=urls["low"], MessageBody='{"n": 9}', MessageGroupId="bob")

    report = status.collect(access, out, env="test")

    shown = {q.label: (q.url, q.visible) for q in report.queues}
    assert list(shown) == ["jobs-high", "jobs-normal", "jobs-low", "dlq"]
    assert shown["jobs-high"] == (urls["high"], 2) and shown["jobs-low"] == (urls["low"], 1)
    assert shown["jobs-normal"][0] == urls["normal"]


def test_status_shows_the_events_and_webhooks_queues_and_their_alarms(access, seeded_stack):
    """The publisher's failures queue and the webhooks DLQ get a row each (depth, oldest age, a
    warning when not empty), and their alarms are the stack's: by name, or by the dimensions."""
    sqs, cw = access.client("sqs"), access.client("cloudwatch")
    out = dict(seeded_stack)
    prefix = out["prefix"]
    failures = sqs.create_queue(QueueName=f"{prefix}-publisher-failures")["QueueUrl"]
    webhook_dlq = sqs.create_queue(QueueName=f"{prefix}-webhooks-dlq")["QueueUrl"]
    out |= {
        "publisher_failures_queue_url": failures,
        "webhook_dlq_url": webhook_dlq,
        "publisher_function_name": f"{prefix}-publisher",
        "notifier_function_name": f"{prefix}-notifier",
    }
    sqs.send_message(QueueUrl=failures, MessageBody='{"DDBStreamBatchInfo": {"shardId": "shardId-1"}}')
    for n in range(2):
        sqs.send_message(QueueUrl=webhook_dlq, MessageBody=f'{{"detail": {{"n": {n}}}}}')
    now = datetime.now(UTC)
    cw.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": f"{prefix}-webhooks-dlq"}],
                "Timestamp": now - timedelta(minutes=1),
                "Value": 5400.0,
            }
        ],
    )

    def alarm(name: str, namespace: str, metric: str, dimension: tuple[str, str], state: str) -> None:
        cw.put_metric_alarm(
            AlarmName=name,
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": dimension[0], "Value": dimension[1]}],
            Statistic="Maximum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"{name} is {state}")

    visible = "ApproximateNumberOfMessagesVisible"
    alarm(
        f"{prefix}-publisher-failures-not-empty",
        "AWS/SQS",
        visible,
        ("QueueName", f"{prefix}-publisher-failures"),
        "ALARM",
    )
    alarm(f"{prefix}-webhooks-dlq-not-empty", "AWS/SQS", visible, ("QueueName", f"{prefix}-webhooks-dlq"), "ALARM")
    # not named with the stack's prefix: shown because they watch the stack's notifier and queue
    alarm(f"ops-{prefix}-notifier", "AWS/Lambda", "Errors", ("FunctionName", f"{prefix}-notifier"), "OK")
    alarm(
        f"ops-{prefix}-failures",
        "AWS/SQS",
        visible,
        ("QueueName", f"{prefix}-publisher-failures"),
        "OK",
    )

    report = status.collect(access, out, env="test")

    shown = {q.label: (q.url, q.visible, q.in_flight, q.oldest_age_seconds) for q in report.queues}
    assert list(shown) == ["jobs", "dlq", "publisher-failures", "webhooks-dlq"]
    assert shown["publisher-failures"] == (failures, 1, 0, None)
    assert shown["webhooks-dlq"] == (webhook_dlq, 2, 0, 5400.0)
    assert [(a.name, a.state) for a in report.alarms] == [
        (f"{prefix}-publisher-failures-not-empty", "ALARM"),
        (f"{prefix}-webhooks-dlq-not-empty", "ALARM"),
        (f"ops-{prefix}-failures", "OK"),
        (f"ops-{prefix}-notifier", "OK"),
    ]

    text = status.render(report)
    assert "queues                visible  in-flight  delayed  oldest" in text
    assert "  jobs                     0          0        0  no data\n" in text
    assert "  dlq                      0          0        0  no data\n" in text
    assert (
        "  publisher-failures       1          0        0  no data  <- stream batches not published: events missing"
        in text
    )
    assert "  webhooks-dlq             2          0        0  90m  <- webhook deliveries that gave up" in text
    assert (
        f"ALARM             {prefix}-publisher-failures-not-empty  ({prefix}-publisher-failures-not-empty is ALARM)"
        in text
    )
    assert f"ALARM             {prefix}-webhooks-dlq-not-empty  ({prefix}-webhooks-dlq-not-empty is ALARM)" in text


def test_status_of_a_stack_without_events_or_webhooks_has_no_rows_for_them(access, seeded_stack):
    report = status.collect(access, seeded_stack, env="test")
    assert [q.label for q in report.queues] == ["jobs", "dlq"]
    assert status.render(report).splitlines()[2] == "queues          visible  in-flight  delayed  oldest"
