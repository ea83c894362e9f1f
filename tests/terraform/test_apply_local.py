"""``invoke deploy --env local`` on the embedded backend, then everything that deployment
must be: what the invoke tasks print (deploy, outputs, an unchanged redeploy, events, status),
the stack the contract describes, a second ``plan -detailed-exitcode`` with no changes, and a
destroy (``invoke destroy``, with a versioned bucket holding results) that leaves nothing behind.

One deployment serves the whole module (a deploy and a destroy take about three minutes here);
the tests run in file order, the destroy last.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support import clean_env_vars, run_invoke
from tests.terraform.contract import ENV_VARS, HANDLERS, REQUIRED_OUTPUTS, RUNTIME, SERVICE_NAMES
from tooling.packaging import code_sha256

pytestmark = [pytest.mark.terraform, pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
LOCAL = {
    k: v.strip().strip('"')
    for k, v in re.findall(r"^(\w+)\s*=\s*(.+?)\s*$", (ROOT / "environments" / "local.tfvars").read_text(), re.M)
}


def invoke(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``invoke <args>`` as a user runs it, in a subprocess; it must never end in a traceback."""
    proc = run_invoke(list(args), env, timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def task_env(moto_backend, tf_work_root) -> dict[str, str]:
    """The invoke tasks' environment: no AWS credentials or settings of the caller's, the
    session's embedded backend, and the terraform tests' work root (state, records)."""
    return clean_env_vars(JOBSTACK_ENDPOINT_URL=moto_backend.endpoint, JOBSTACK_WORK_ROOT=str(tf_work_root))


@pytest.fixture(scope="module")
def first_deploy(task_env) -> subprocess.CompletedProcess[str]:
    """``invoke deploy --env local --yes`` on an empty backend."""
    return invoke(task_env, "deploy", "--env", "local", "--yes")


@pytest.fixture(scope="module")
def local_stack(first_deploy, make_runner):
    """A terraform runner on that deployment's state, and its outputs; destroyed at the end if
    the last test did not."""
    assert first_deploy.returncode == 0, first_deploy.stdout[-3000:] + first_deploy.stderr
    runner = make_runner("local")
    runner.init()
    yield runner, runner.output()
    if runner.state_resources():
        runner.destroy()


def test_deploy_prints_the_plan_applies_it_and_shows_the_outputs(first_deploy, local_stack, task_env, moto_backend):
    out = first_deploy.stdout.splitlines()
    assert out[0] == f"env local: embedded backend at {moto_backend.endpoint}"
    summary = next(ln for ln in out if ln.startswith("Plan: "))
    added = int(summary.split()[1])
    assert added > 20 and summary.endswith("0 to change, 0 to destroy.")
    assert f"Apply complete: {added} added, 0 changed, 0 destroyed." in out
    outputs_start = out.index("") + 1
    assert out[outputs_start].startswith("api_url ")  # API URL first

    outputs = json.loads(invoke(task_env, "outputs", "--env", "local", "--json").stdout)
    assert set(outputs) >= REQUIRED_OUTPUTS
    assert next(iter(outputs)) == "api_url"
    assert outputs == local_stack[1]


def test_outputs(local_stack):
    runner, outputs = local_stack
    assert set(outputs) >= REQUIRED_OUTPUTS
    assert all(outputs[name] not in (None, "") for name in REQUIRED_OUTPUTS)
    assert outputs["stage_name"] == "local" and outputs["region"] == "us-east-1"
    assert outputs["user_pool_created"] is True
    assert outputs["issuer_url"] == f"https://cognito-idp.us-east-1.amazonaws.com/{outputs['user_pool_id']}"
    assert outputs["api_url"].endswith(f"{outputs['rest_api_id']}.execute-api.us-east-1.amazonaws.com/local")
    assert runner.state_file.is_file(), "local keeps local state"


def test_functions_match_the_contract_and_the_zips(local_stack, aws, lambda_zips):
    _, outputs = local_stack
    lam = aws("lambda")
    for name, handler in HANDLERS.items():
        config = lam.get_function_configuration(FunctionName=outputs[f"{name}_function_name"])
        assert config["Handler"] == handler
        assert config["Runtime"] == RUNTIME
        assert config["Architectures"] == [LOCAL["lambda_architecture"]]
        assert config["TracingConfig"]["Mode"] == "Active"
        assert config["LoggingConfig"] == {
            "LogFormat": "JSON",
            "LogGroup": outputs[f"{name}_log_group"],
            "ApplicationLogLevel": LOCAL["log_level"],
            "SystemLogLevel": LOCAL["log_level"],
        }
        assert config["CodeSha256"] == code_sha256(lambda_zips[name])
        variables = config["Environment"]["Variables"]
        assert set(variables) == ENV_VARS
        sqs = aws("sqs")
        queue_arn = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["QueueArn"])
        queue_arn = queue_arn["Attributes"]["QueueArn"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=outputs["dlq_url"], AttributeNames=["QueueArn"])
        dlq_arn = dlq_arn["Attributes"]["QueueArn"]
        assert variables == {
            "JOBS_TABLE_NAME": outputs["table_name"],
            "RESULTS_BUCKET_NAME": outputs["bucket_name"],
            "JOBS_QUEUE_URL": outputs["queue_url"],
            "JOBS_QUEUE_URL_HIGH": outputs["queue_urls"]["high"],
            "JOBS_QUEUE_URL_LOW": outputs["queue_urls"]["low"],
            "HIGH_PRIORITY_GROUP": LOCAL["high_priority_group"].strip('"'),
            "ALLOWED_CLIENT_ID": outputs["user_pool_client_id"],
            "CORS_ALLOWED_ORIGINS": "*",
            "MAX_RECEIVE_COUNT": LOCAL["max_receive_count"],
            "JOB_RETENTION_DAYS": LOCAL["job_retention_days"],
            "RESULT_URL_TTL_SECONDS": LOCAL["result_url_ttl_seconds"],
            "QUOTA_TABLE_NAME": outputs["quota_table_name"],
            "QUOTA_MAX_ACTIVE_JOBS": LOCAL["quota_max_active_jobs"],
            "QUOTA_SUBMIT_RATE_PER_SECOND": LOCAL["quota_submit_rate_per_second"],
            "QUOTA_SUBMIT_BURST": LOCAL["quota_submit_burst"],
            "QUOTA_TIERS": "{}",
            "JOBS_QUEUE_ARN": queue_arn,
            **{
                f"JOBS_QUEUE_ARN_{priority.upper()}": sqs.get_queue_attributes(
                    QueueUrl=outputs["queue_urls"][priority], AttributeNames=["QueueArn"]
                )["Attributes"]["QueueArn"]
                for priority in ("high", "low")
            },
            "JOBS_DLQ_ARN": dlq_arn,
            "JOBS_DLQ_URL": outputs["dlq_url"],
            "SCHEDULE_GROUP_NAME": outputs["schedule_group_name"],
            "SCHEDULER_ROLE_ARN": outputs["scheduler_role_arn"],
            "MAX_SCHEDULE_DAYS": "30",
            "SCHEDULE_DELAY_THRESHOLD_SECONDS": "900",
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAMES[name],
            "POWERTOOLS_METRICS_NAMESPACE": "jobs-local",
            "POWERTOOLS_LOG_LEVEL": LOCAL["log_level"],
            "WEBHOOK_ALLOW_LOOPBACK": LOCAL["webhook_allow_loopback"],  # true here only (README "Webhooks")
        }
    # the webhooks' notifier: its own environment and its mapping (README "Webhooks")
    notifier = lam.get_function_configuration(FunctionName=outputs["notifier_function_name"])
    assert notifier["Handler"] == "jobs.notifier.lambda_handler" and notifier["Runtime"] == RUNTIME
    assert notifier["CodeSha256"] == code_sha256(lambda_zips["notifier"])
    assert notifier["TracingConfig"]["Mode"] == "Active" and notifier["LoggingConfig"]["LogFormat"] == "JSON"
    assert notifier["Environment"]["Variables"] == {
        "JOBS_TABLE_NAME": outputs["table_name"],
        "WEBHOOK_QUEUE_URL": outputs["webhook_queue_url"],
        "WEBHOOK_SECRET_PARAMETER": outputs["webhook_secret_parameter"],
        "WEBHOOK_TIMEOUT_SECONDS": LOCAL["webhook_timeout_seconds"],
        "WEBHOOK_MAX_RECEIVE_COUNT": LOCAL["webhook_max_receive_count"],
        "WEBHOOK_BACKOFF_BASE_SECONDS": LOCAL["webhook_backoff_base_seconds"],
        "WEBHOOK_BACKOFF_CAP_SECONDS": LOCAL["webhook_backoff_cap_seconds"],
        "WEBHOOK_ALLOW_LOOPBACK": LOCAL["webhook_allow_loopback"],
        "POWERTOOLS_SERVICE_NAME": "jobs-notifier",
        "POWERTOOLS_METRICS_NAMESPACE": "jobs-local",
        "POWERTOOLS_LOG_LEVEL": LOCAL["log_level"],
    }
    webhook_queue = aws("sqs").get_queue_attributes(QueueUrl=outputs["webhook_queue_url"], AttributeNames=["All"])
    redrive = json.loads(webhook_queue["Attributes"]["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == int(LOCAL["webhook_max_receive_count"])
    assert webhook_queue["Attributes"]["SqsManagedSseEnabled"] == "true"
    [mapping] = [
        m
        for m in lam.list_event_source_mappings()["EventSourceMappings"]
        if m["FunctionArn"] == notifier["FunctionArn"]
    ]
    assert mapping["EventSourceArn"] == webhook_queue["Attributes"]["QueueArn"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert outputs["queue_urls"]["normal"] == outputs["queue_url"]
    assert outputs["event_source_mapping_uuids"]["normal"] == outputs["event_source_mapping_uuid"]
    weights = {
        "normal": int(LOCAL["worker_max_concurrency"]),
        **{k: int(v) for k, v in re.findall(r"(high|low)\s*=\s*(\d+)", LOCAL["worker_priority_concurrency"])},
    }
    for priority in ("high", "normal", "low"):
        mapping = lam.get_event_source_mapping(UUID=outputs["event_source_mapping_uuids"][priority])
        assert mapping["FunctionArn"].endswith(f":function:{outputs['worker_function_name']}")
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["BatchSize"] == int(LOCAL["worker_batch_size"])
        assert mapping["MaximumBatchingWindowInSeconds"] == int(LOCAL["worker_batching_window_seconds"])
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": weights[priority]}
        url = outputs["queue_urls"][priority]
        queue_arn = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        assert mapping["EventSourceArn"] == queue_arn["Attributes"]["QueueArn"]


def test_roles_are_least_privilege_on_exact_arns(local_stack, aws):
    iam = aws("iam")
    documents = {}
    for name in ("api", "worker"):
        role = f"jobs-local-{name}-us-east-1-role"  # IAM names are account-global: they carry the region
        [policy_name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
        doc = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        documents[name] = doc if isinstance(doc, dict) else json.loads(doc)
        assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    for name, doc in documents.items():
        for statement in doc["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if resources == ["*"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all(a.startswith("xray:") for a in actions), (name, statement)
    api_actions = {
        a
        for s in documents["api"]["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    worker_actions = {
        a
        for s in documents["worker"]["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert "sqs:SendMessage" in api_actions and "sqs:ReceiveMessage" not in api_actions
    # the api sends to, and the worker consumes, exactly the three priority queues
    queue_arns = sorted(
        aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in local_stack[1]["queue_urls"].values()
    )

    def on_queues(doc: dict, action: str) -> list[str]:
        return sorted(
            r
            for s in doc["Statement"]
            if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
            for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        )

    assert on_queues(documents["api"], "sqs:SendMessage") == queue_arns
    assert on_queues(documents["worker"], "sqs:ReceiveMessage") == queue_arns
    # the worker re-queues what an invocation had no time to start (to those queues) and puts a
    # finally failed job's re-queued message in the DLQ: nowhere else
    dlq = aws("sqs").get_queue_attributes(QueueUrl=local_stack[1]["dlq_url"], AttributeNames=["QueueArn"])
    assert on_queues(documents["worker"], "sqs:SendMessage") == sorted([*queue_arns, dlq["Attributes"]["QueueArn"]])
    assert "s3:GetObject" in api_actions and "s3:PutObject" not in api_actions
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "s3:PutObject", "dynamodb:UpdateItem"} <= worker_actions
    assert "dynamodb:DeleteItem" not in worker_actions
    # the quotas table: the api reads and charges counters, the worker only frees slots
    quota_arn = aws("dynamodb").describe_table(TableName="jobs-local-quotas")["Table"]["TableArn"]

    def on_quotas(doc: dict) -> set[str]:
        found = set()
        for s in doc["Statement"]:
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            if quota_arn in resources:
                found |= set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        return found

    assert on_quotas(documents["api"]) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert on_quotas(documents["worker"]) == {"dynamodb:UpdateItem"}
    # scheduled jobs: the api creates/deletes schedules of the stack's group only, and passes the
    # scheduler role to Scheduler only; the worker does neither
    group = local_stack[1]["schedule_group_name"]
    scheduler_role = local_stack[1]["scheduler_role_arn"]
    by_sid = {s.get("Sid"): s for s in documents["api"]["Statement"]}
    schedules = by_sid["ScheduleJobs"]
    assert sorted(schedules["Action"]) == ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    assert schedules["Resource"] == f"arn:aws:scheduler:us-east-1:123456789012:schedule/{group}/*"
    passing = by_sid["PassSchedulerRole"]
    assert passing["Action"] == "iam:PassRole" and passing["Resource"] == scheduler_role
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    assert not any(a.startswith(("scheduler:", "iam:")) for a in worker_actions)
    # the scheduler role: trusted by Scheduler for this account, may only send to the job queues
    role_name = scheduler_role.rsplit("/", 1)[-1]
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    trust = trust if isinstance(trust, dict) else json.loads(trust)
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    [policy_name] = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    doc = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    doc = doc if isinstance(doc, dict) else json.loads(doc)
    sqs = aws("sqs")
    # the three priority queues (a schedule sends to its job's) and the DLQ (its dead letters)
    urls = [*local_stack[1]["queue_urls"].values(), local_stack[1]["dlq_url"]]
    arns = {sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"] for u in urls}
    assert len(arns) == 4
    granted = set()
    for s in doc["Statement"]:
        assert s["Action"] == "sqs:SendMessage", s
        granted |= set(s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    assert granted == arns


def _listed(value):
    return value if isinstance(value, list) else [value]


def test_the_event_publisher_reads_only_its_stream_and_puts_only_on_its_bus(local_stack, aws):
    """Module events: the publisher's role, its stream mapping and the operators' topic policy."""
    _, outputs = local_stack
    iam, lam = aws("iam"), aws("lambda")
    table = aws("dynamodb").describe_table(TableName=outputs["table_name"])["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    stream_arn = table["LatestStreamArn"]
    bus_arn = outputs["event_bus_arn"]
    assert outputs["event_bus_name"] == "jobs-local-events" and outputs["event_source"] == "jobs.jobs"
    failures_arn = aws("sqs").get_queue_attributes(
        QueueUrl=outputs["publisher_failures_queue_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    config = lam.get_function_configuration(FunctionName=outputs["publisher_function_name"])
    assert config["Handler"] == "jobs.publisher.lambda_handler" and config["Runtime"] == RUNTIME
    assert config["TracingConfig"]["Mode"] == "Active"
    assert config["LoggingConfig"]["LogGroup"] == outputs["publisher_log_group"]
    assert config["Environment"]["Variables"] == {
        "EVENT_BUS_NAME": "jobs-local-events",
        "EVENT_SOURCE": "jobs.jobs",
        "EVENT_PUT_ATTEMPTS": "4",
        "POWERTOOLS_SERVICE_NAME": "jobs-publisher",
        "POWERTOOLS_METRICS_NAMESPACE": "jobs-local",
        "POWERTOOLS_LOG_LEVEL": LOCAL["log_level"],
    }

    role = config["Role"].rsplit("/", 1)[-1]
    assert role == "jobs-local-publisher-us-east-1-role"
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    [policy_name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    doc = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    doc = doc if isinstance(doc, dict) else json.loads(doc)
    granted = {}
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in _listed(statement["Action"]):
            granted.setdefault(action, set()).update(_listed(statement["Resource"]))
    log_group = f"arn:aws:logs:us-east-1:123456789012:log-group:{outputs['publisher_log_group']}:*"
    assert granted == {
        "logs:CreateLogStream": {log_group},
        "logs:PutLogEvents": {log_group},
        "dynamodb:DescribeStream": {stream_arn},
        "dynamodb:GetRecords": {stream_arn},
        "dynamodb:GetShardIterator": {stream_arn},
        "dynamodb:ListStreams": {f"{table['TableArn']}/stream/*"},
        "events:PutEvents": {bus_arn},
        "sqs:SendMessage": {failures_arn},
        "xray:PutTelemetryRecords": {"*"},
        "xray:PutTraceSegments": {"*"},
    }

    [mapping] = [
        m for m in lam.list_event_source_mappings()["EventSourceMappings"] if m["EventSourceArn"] == stream_arn
    ]
    assert mapping["FunctionArn"].endswith(f":function:{outputs['publisher_function_name']}")
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["BatchSize"] == int(LOCAL["events_batch_size"])
    assert mapping["MaximumRetryAttempts"] == int(LOCAL["events_maximum_retry_attempts"])
    assert mapping["MaximumRecordAgeInSeconds"] == int(LOCAL["events_maximum_record_age_seconds"])
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": failures_arn}}

    # the operators' topic: KMS-encrypted; only the operators' rule of this bus may publish
    sns, events = aws("sns"), aws("events")
    topic = sns.get_topic_attributes(TopicArn=outputs["job_events_topic_arn"])["Attributes"]
    assert topic["KmsMasterKeyId"].startswith("arn:aws:kms:")
    rule = events.describe_rule(Name="jobs-local-job-events-operators", EventBusName="jobs-local-events")
    assert json.loads(rule["EventPattern"]) == {
        "source": ["jobs.jobs"],
        "detail-type": ["Job Status Changed"],
        "detail": {"status": ["FAILED"]},  # local.tfvars: job_events_notify_completions = false
    }
    [statement] = json.loads(topic["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert _listed(statement["Action"]) == ["sns:Publish"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}
    [target] = events.list_targets_by_rule(Rule=rule["Name"], EventBusName="jobs-local-events")["Targets"]
    assert target["Arn"] == outputs["job_events_topic_arn"]


def test_the_notifier_role_reads_its_secret_consumes_its_queue_and_writes_only_the_webhook_state(local_stack, aws):
    """README "Webhooks": the notifier's own role, least privilege."""
    _, outputs = local_stack
    iam = aws("iam")
    role = "jobs-local-notifier-us-east-1-role"
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    [policy_name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    doc = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    doc = doc if isinstance(doc, dict) else json.loads(doc)
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    listed = lambda v: sorted(v if isinstance(v, list) else [v])  # noqa: E731
    queue_arn = aws("sqs").get_queue_attributes(QueueUrl=outputs["webhook_queue_url"], AttributeNames=["QueueArn"])
    assert listed(by_sid["ConsumeWebhooks"]["Resource"]) == [queue_arn["Attributes"]["QueueArn"]]
    assert listed(by_sid["ConsumeWebhooks"]["Action"]) == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    secret = f"arn:aws:ssm:us-east-1:123456789012:parameter{outputs['webhook_secret_parameter']}"
    assert (by_sid["ReadSigningSecret"]["Action"], by_sid["ReadSigningSecret"]["Resource"]) == (
        "ssm:GetParameter",
        secret,
    )
    decrypt = by_sid["DecryptSigningSecret"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:ViaService": "ssm.us-east-1.amazonaws.com",
        "kms:EncryptionContext:PARAMETER_ARN": secret,
    }
    table_arn = aws("dynamodb").describe_table(TableName=outputs["table_name"])["Table"]["TableArn"]
    state = by_sid["RecordDeliveryState"]
    assert (state["Action"], state["Resource"]) == ("dynamodb:UpdateItem", table_arn)
    assert listed(state["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == [
        "job_id",
        "owner_id",
        "webhook",
    ]
    actions = {a for s in doc["Statement"] for a in listed(s["Action"])}
    assert not actions & {
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "sqs:SendMessage",
        "s3:GetObject",
    }
    for statement in doc["Statement"]:
        if listed(statement["Resource"]) == ["*"]:
            assert all(a.startswith("xray:") for a in listed(statement["Action"])), statement
    # the secret is a SecureString; the queue takes messages from the webhooks rule only
    parameter = aws("ssm").get_parameter(Name=outputs["webhook_secret_parameter"], WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString" and len(parameter["Value"]) == 48
    policy = json.loads(
        aws("sqs").get_queue_attributes(QueueUrl=outputs["webhook_queue_url"], AttributeNames=["Policy"])["Attributes"][
            "Policy"
        ]
    )
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(":rule/jobs-local-events/jobs-local-webhooks")


def test_alarms_of_the_events_and_the_webhooks_watch_the_applied_queues_and_functions(local_stack, aws):
    """Module monitoring: the alarms on the publisher's failures queue, the webhooks DLQ, the
    publisher's and the notifier's errors and the publisher's iterator age, as the embedded
    backend holds them (local: no alarm topic, so no actions)."""
    _, outputs = local_stack

    def queue(url: str) -> list[dict[str, str]]:
        return [{"Name": "QueueName", "Value": url.rsplit("/", 1)[-1]}]

    def function(name: str) -> list[dict[str, str]]:
        return [{"Name": "FunctionName", "Value": name}]

    visible, publisher = "ApproximateNumberOfMessagesVisible", outputs["publisher_function_name"]
    expected = {
        "publisher-failures-not-empty": ("AWS/SQS", visible, queue(outputs["publisher_failures_queue_url"]), 0.0),
        "webhooks-dlq-not-empty": ("AWS/SQS", visible, queue(outputs["webhook_dlq_url"]), 0.0),
        "publisher-errors": ("AWS/Lambda", "Errors", function(publisher), 0.0),
        "notifier-errors": ("AWS/Lambda", "Errors", function(outputs["notifier_function_name"]), 0.0),
        "publisher-iterator-age": ("AWS/Lambda", "IteratorAge", function(publisher), 300_000.0),  # ms
    }
    alarms = aws("cloudwatch").describe_alarms(AlarmNamePrefix="jobs-local-")["MetricAlarms"]
    by_name = {a["AlarmName"].removeprefix("jobs-local-"): a for a in alarms}
    assert set(expected) <= set(by_name), sorted(by_name)
    for key, (namespace, metric, dimensions, threshold) in expected.items():
        alarm = by_name[key]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (namespace, metric, dimensions), key
        statistic = "Sum" if metric == "Errors" else "Maximum"
        assert (alarm["Statistic"], alarm["Threshold"]) == (statistic, threshold), key
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [] and alarm["AlarmDescription"], key


def test_storage_and_queues(local_stack, aws):
    _, outputs = local_stack
    table = aws("dynamodb").describe_table(TableName=outputs["table_name"])["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"owner_id": "HASH", "job_id": "RANGE"}
    [gsi] = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "by_owner_status" and gsi["Projection"]["ProjectionType"] == "ALL"
    assert {k["AttributeName"]: k["KeyType"] for k in gsi["KeySchema"]} == {"owner_status": "HASH", "job_id": "RANGE"}
    ttl = aws("dynamodb").describe_time_to_live(TableName=outputs["table_name"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    quotas = aws("dynamodb").describe_table(TableName=outputs["quota_table_name"])["Table"]
    assert outputs["quota_table_name"] == "jobs-local-quotas"
    assert quotas["KeySchema"] == [{"AttributeName": "owner_id", "KeyType": "HASH"}]
    assert quotas["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    s3 = aws("s3")
    bucket = outputs["bucket_name"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    [deny] = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    [lifecycle] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle["Expiration"]["Days"] == int(LOCAL["result_retention_days"])
    assert lifecycle["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1

    sqs = aws("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])["Attributes"]
    timeout, window = int(LOCAL["worker_timeout_seconds"]), int(LOCAL["worker_batching_window_seconds"])
    assert int(attrs["VisibilityTimeout"]) == 6 * timeout + window
    redrive = json.loads(attrs["RedrivePolicy"])
    dlq = sqs.get_queue_attributes(QueueUrl=outputs["dlq_url"], AttributeNames=["All"])["Attributes"]
    assert redrive == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": int(LOCAL["max_receive_count"])}
    assert int(dlq["MessageRetentionPeriod"]) == 14 * 24 * 3600
    arns = {}
    for priority, url in outputs["queue_urls"].items():
        each = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert json.loads(each["RedrivePolicy"]) == redrive, priority  # one DLQ policy for all three
        assert each["VisibilityTimeout"] == attrs["VisibilityTimeout"], priority
        arns[priority] = each["QueueArn"]
    assert json.loads(dlq["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [arns["high"], arns["normal"], arns["low"]],
    }
    assert attrs["SqsManagedSseEnabled"] == "true"


def test_results_are_readable_by_browsers_and_no_cloudfront_locally(local_stack, aws):
    """The web console previews results with fetch(): the results bucket has a CORS rule for
    the API's origins. Locally the console is served by the tooling (moto has no CloudFront
    response headers policies), so the web module is off and its outputs are null."""
    _, outputs = local_stack
    [rule] = aws("s3").get_bucket_cors(Bucket=outputs["bucket_name"])["CORSRules"]
    assert sorted(rule["AllowedMethods"]) == ["GET", "HEAD"]
    assert rule["AllowedOrigins"] == ["*"]  # local.tfvars' cors_allowed_origins
    assert LOCAL["console_enabled"] == "false"
    assert outputs.get("console_url") is None and outputs.get("console_bucket_name") is None


def test_rest_api_and_user_pool(local_stack, aws):
    _, outputs = local_stack
    apigw = aws("apigateway")
    api_id = outputs["rest_api_id"]
    [authorizer] = apigw.get_authorizers(restApiId=api_id)["items"]
    pool_arn = aws("cognito-idp").describe_user_pool(UserPoolId=outputs["user_pool_id"])["UserPool"]["Arn"]
    assert authorizer["type"] == "COGNITO_USER_POOLS" and authorizer["providerARNs"] == [pool_arn]
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api_id)["items"]}
    assert set(resources["/job"]["resourceMethods"]) == {"POST", "GET", "DELETE", "OPTIONS"}
    assert set(resources["/jobs"]["resourceMethods"]) == {"GET", "OPTIONS"}
    for path, method in (("/job", "POST"), ("/job", "GET"), ("/job", "DELETE"), ("/jobs", "GET")):
        found = apigw.get_method(restApiId=api_id, resourceId=resources[path]["id"], httpMethod=method)
        assert found["authorizationType"] == "COGNITO_USER_POOLS" and found["authorizerId"] == authorizer["id"]
        assert found["methodIntegration"]["type"] == "AWS_PROXY"
        assert outputs["api_function_name"] in found["methodIntegration"]["uri"]
    get_job = apigw.get_method(restApiId=api_id, resourceId=resources["/job"]["id"], httpMethod="GET")
    assert get_job["requestParameters"] == {"method.request.querystring.job_id": True}
    stage = apigw.get_stage(restApiId=api_id, stageName="local")
    assert stage["tracingEnabled"] is True
    assert stage["accessLogSettings"]["destinationArn"].endswith(
        "log-group:/aws/apigateway/jobs-local-api/local/access"
    )
    assert json.loads(stage["accessLogSettings"]["format"])["requestId"] == "$context.requestId"
    responses = {r["responseType"]: r for r in apigw.get_gateway_responses(restApiId=api_id)["items"]}
    assert {"UNAUTHORIZED", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for response in responses.values():  # static, so "*": every allowed origin reads API Gateway's errors
        assert response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
    client = aws("cognito-idp").describe_user_pool_client(
        UserPoolId=outputs["user_pool_id"], ClientId=outputs["user_pool_client_id"]
    )["UserPoolClient"]
    assert "ALLOW_USER_PASSWORD_AUTH" in client["ExplicitAuthFlows"]
    assert not client.get("ClientSecret")


def test_authorization_scopes_change_in_place_and_back(local_stack, aws):
    """The provider changes a method's scopes with UpdateMethod (supplied by the embedded
    backend) and redeploys the API; back to [] the methods take ID tokens again."""
    runner, outputs = local_stack
    apigw = aws("apigateway")
    api_id = outputs["rest_api_id"]
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api_id)["items"]}
    routes = (("/job", "POST"), ("/job", "GET"), ("/job", "DELETE"), ("/jobs", "GET"), ("/jobs/batch", "POST"))

    def scopes() -> set[tuple[str, ...]]:
        return {
            tuple(
                sorted(
                    apigw.get_method(restApiId=api_id, resourceId=resources[p], httpMethod=m).get("authorizationScopes")
                    or ()
                )
            )
            for p, m in routes
        }

    deployment = apigw.get_stage(restApiId=api_id, stageName="local")["deploymentId"]
    runner.variables["api_authorization_scopes"] = ["aws.cognito.signin.user.admin"]
    try:
        runner.apply()
        assert scopes() == {("aws.cognito.signin.user.admin",)}
        assert apigw.get_stage(restApiId=api_id, stageName="local")["deploymentId"] != deployment
    finally:
        del runner.variables["api_authorization_scopes"]
        runner.apply()
    assert scopes() == {()}


def test_second_plan_reports_no_changes(local_stack):
    runner, _ = local_stack
    summary = runner.plan(detailed_exitcode=True)
    assert not summary.has_changes, summary.output[-6000:]


def test_an_unchanged_redeploy_changes_nothing_and_events_and_status_show_the_stack(
    first_deploy, local_stack, task_env, aws
):
    _, outputs = local_stack
    lam = aws("lambda")
    functions = ("api_function_name", "worker_function_name")
    before = {fn: lam.get_function(FunctionName=outputs[fn])["Configuration"] for fn in functions}

    second = invoke(task_env, "deploy", "--env", "local", "--yes")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    assert "Plan: 0 to add, 0 to change, 0 to destroy." in second.stdout.splitlines()
    assert "env local is up to date: nothing to apply." in second.stdout
    for fn, config in before.items():  # no function code update
        after = lam.get_function(FunctionName=outputs[fn])["Configuration"]
        assert (after["CodeSha256"], after["LastModified"]) == (config["CodeSha256"], config["LastModified"])

    events = invoke(task_env, "events", "--env", "local", "--limit", "2")
    assert events.returncode == 0, events.stderr
    lines = events.stdout.splitlines()
    assert "deploy of env 'local' no-changes: 0 added, 0 changed, 0 destroyed" in lines[0]
    first_record = next(ln for ln in lines if "deploy of env 'local' applied" in ln)
    added = int(next(ln for ln in first_deploy.stdout.splitlines() if ln.startswith("Plan: ")).split()[1])
    assert f"{added} added, 0 changed, 0 destroyed" in first_record
    assert any(ln.strip().startswith("+ module.compute.aws_lambda_function") for ln in lines)

    status = invoke(task_env, "status", "--env", "local")
    assert status.returncode == 0, status.stderr
    assert f"  api     {outputs['api_function_name']}  state=Active" in status.stdout
    assert "jobs created in the last 24h: 0" in status.stdout


def test_destroy_empties_the_versioned_bucket_and_leaves_nothing_behind(local_stack, task_env, aws):
    runner, outputs = local_stack
    s3 = aws("s3")
    bucket = outputs["bucket_name"]
    # moto evaluates the stack's TLS-only bucket policy against its plain-HTTP loopback endpoint
    # and so denies every object write and delete: lift the policy (it is not under test here).
    assert "aws:SecureTransport" in s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    for n in range(3):
        s3.put_object(Bucket=bucket, Key=f"owner/2025-07-14/job-{n}.txt", Body=b"v1")
        s3.put_object(Bucket=bucket, Key=f"owner/2025-07-14/job-{n}.txt", Body=b"v2")
    s3.delete_object(Bucket=bucket, Key="owner/2025-07-14/job-0.txt")

    gone = invoke(task_env, "destroy", "--env", "local", "--yes")
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr
    assert f"emptied s3://{bucket}: 7 object versions and delete markers deleted" in gone.stdout
    assert "Destroy complete:" in gone.stdout
    nothing = invoke(task_env, "outputs", "--env", "local")
    assert nothing.returncode == 1
    assert nothing.stderr.strip() == (
        "error: env 'local' has no outputs: it is not deployed; run invoke deploy --env local"
    )

    assert runner.state_resources() == []
    assert aws("dynamodb").list_tables()["TableNames"] == []
    assert aws("s3").list_buckets()["Buckets"] == []
    assert aws("sqs").list_queues().get("QueueUrls", []) == []
    assert aws("lambda").list_functions()["Functions"] == []
    assert aws("lambda").list_event_source_mappings()["EventSourceMappings"] == []
    assert aws("apigateway").get_rest_apis()["items"] == []
    assert aws("cognito-idp").list_user_pools(MaxResults=60)["UserPools"] == []
    assert [r for r in aws("iam").list_roles()["Roles"] if r["RoleName"].startswith("jobs-local")] == []
    assert [g for g in aws("logs").describe_log_groups()["logGroups"] if "jobs-local" in g["logGroupName"]] == []
    assert aws("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert aws("cloudwatch").list_dashboards()["DashboardEntries"] == []
    groups = aws("scheduler").list_schedule_groups()["ScheduleGroups"]
    assert [g["Name"] for g in groups] == ["default"]
