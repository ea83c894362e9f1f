"""Offline init through the mirror setting, validate, and plans of dev and prod against the
embedded backend (test credentials, the placeholder pool inputs of their tfvars, backend
disabled): the plans create the stack the code's contract describes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.terraform.contract import (
    DEFAULT_ARCHITECTURE,
    ENV_VARS,
    HANDLERS,
    RUNTIME,
    planned_change,
    planned_resources,
)
from tooling.terraform import TerraformError, discover_provider_mirror

pytestmark = pytest.mark.terraform

ROOT = Path(__file__).resolve().parents[2]


def tfvars(env: str) -> dict[str, str]:
    text = (ROOT / "environments" / f"{env}.tfvars").read_text()
    return {k: v.strip().strip('"') for k, v in re.findall(r"^(\w+)\s*=\s*(.+?)\s*$", text, re.M)}


def test_offline_init_through_the_mirror_setting_then_validate(make_runner, tmp_path):
    mirror = discover_provider_mirror()
    if mirror is None and not os.environ.get("CI"):
        pytest.skip("no provider mirror on this machine (terraform installs from the registry)")
    assert mirror is not None, "CI machines carry a provider mirror: discovery must find it"
    runner = make_runner("dev", work_root=tmp_path, extra_env={"TF_PROVIDER_MIRROR": str(mirror)})
    runner.init()
    config = (tmp_path / "terraformrc").read_text()
    assert f'"{mirror}"' in config
    installed = list((runner.data_dir / "providers" / "registry.terraform.io" / "hashicorp" / "aws").iterdir())
    assert [p.name for p in installed] and all(p.name.startswith("5.") for p in installed)
    result = runner.validate()
    assert result["valid"] is True and result["error_count"] == 0


@pytest.fixture(scope="module", params=["dev", "prod"])
def env_plan(request, make_runner, tmp_path_factory):
    env = request.param
    runner = make_runner(env)
    runner.init()
    plan_file = tmp_path_factory.mktemp(f"plan-{env}") / f"{env}.tfplan"
    summary = runner.plan(out=plan_file)
    return env, summary, runner.show_plan(plan_file)


def test_plan_creates_the_stack_and_nothing_else(env_plan):
    _env, summary, plan = env_plan
    assert summary.has_changes and summary.add > 40
    assert (summary.change, summary.destroy) == (0, 0)
    actions = {tuple(rc["change"]["actions"]) for rc in plan["resource_changes"]}
    assert actions <= {("create",), ("no-op",), ("read",)}


def test_plan_uses_the_env_user_pool_and_creates_none(env_plan):
    env, _, plan = env_plan
    resources = planned_resources(plan)
    assert not [a for a in resources if "aws_cognito_user_pool" in a]
    authorizer = resources["module.api.aws_api_gateway_authorizer.cognito"]
    assert authorizer["provider_arns"] == [tfvars(env)["cognito_user_pool_arn"]]
    assert authorizer["type"] == "COGNITO_USER_POOLS"
    outputs = plan["planned_values"]["outputs"]
    assert outputs["user_pool_client_id"]["value"] == tfvars(env)["cognito_app_client_id"]
    assert outputs["issuer_url"]["value"] == tfvars(env)["cognito_issuer_url"]
    assert outputs["user_pool_id"]["value"] == tfvars(env)["cognito_user_pool_arn"].split("/")[1]


def test_plan_functions_follow_the_contract(env_plan):
    env, _, plan = env_plan
    resources = planned_resources(plan)
    settings = tfvars(env)
    for name, handler in HANDLERS.items():
        fn = resources[f'module.compute.aws_lambda_function.function["{name}"]']
        assert fn["function_name"] == f"jobs-{env}-{name}"
        assert fn["handler"] == handler
        assert fn["runtime"] == RUNTIME
        assert fn["architectures"] == [settings.get("lambda_architecture", DEFAULT_ARCHITECTURE)]
        assert fn["tracing_config"] == [{"mode": "Active"}]
        logging = fn["logging_config"][0]
        assert logging["log_format"] == "JSON"
        # the env's log level reaches CloudWatch: Lambda filters JSON logs by these
        assert (logging["application_log_level"], logging["system_log_level"]) == {
            "DEBUG": ("DEBUG", "DEBUG"),
            "INFO": ("INFO", "INFO"),
        }[settings["log_level"]]
        # The environment map holds the queue URL, known only after apply: its names and values
        # are checked on the applied stack (test_apply_local.py).
        after, unknown = planned_change(plan, f'module.compute.aws_lambda_function.function["{name}"]')
        assert unknown["environment"] == [{"variables": True}] or set(after["environment"][0]["variables"]) == ENV_VARS
        assert fn["reserved_concurrent_executions"] == int(settings[f"{name}_reserved_concurrency"])


def test_plan_storage_and_queue_follow_the_contract(env_plan):
    env, _, plan = env_plan
    resources = planned_resources(plan)
    settings = tfvars(env)
    quotas = resources["module.storage.aws_dynamodb_table.quotas"]
    assert (quotas["name"], quotas["hash_key"], quotas.get("range_key")) == (f"jobs-{env}-quotas", "owner_id", None)
    assert quotas["billing_mode"] == "PAY_PER_REQUEST"
    assert quotas["deletion_protection_enabled"] is (settings["deletion_protection"] == "true")
    assert quotas["point_in_time_recovery"][0]["enabled"] is True
    assert quotas["server_side_encryption"][0]["enabled"] is True
    table = resources["module.storage.aws_dynamodb_table.jobs"]
    assert (table["hash_key"], table["range_key"], table["billing_mode"]) == ("owner_id", "job_id", "PAY_PER_REQUEST")
    assert table["deletion_protection_enabled"] is (settings["deletion_protection"] == "true")
    [gsi] = table["global_secondary_index"]
    assert (gsi["name"], gsi["hash_key"], gsi["range_key"], gsi["projection_type"]) == (
        "by_owner_status",
        "owner_status",
        "job_id",
        "ALL",
    )
    assert table["ttl"] == [{"attribute_name": "expires_at", "enabled": True}]
    assert table["point_in_time_recovery"][0]["enabled"] is True
    queue = resources["module.queue.aws_sqs_queue.jobs"]
    timeout, window = int(settings["worker_timeout_seconds"]), int(settings["worker_batching_window_seconds"])
    assert queue["visibility_timeout_seconds"] == 6 * timeout + window
    dlq_retention = resources["module.queue.aws_sqs_queue.dlq"]["message_retention_seconds"]
    assert dlq_retention == 14 * 24 * 3600
    # a dead letter keeps its age: it must have days left in the DLQ to be seen and redriven
    assert dlq_retention - queue["message_retention_seconds"] >= 4 * 24 * 3600
    # one queue per priority, the same settings and the same DLQ; normal keeps its address
    for priority in ("high", "low"):
        other = resources[f'module.queue.aws_sqs_queue.priority["{priority}"]']
        assert other["name"] == f"jobs-{env}-jobs-{priority}"
        for key in ("visibility_timeout_seconds", "message_retention_seconds", "receive_wait_time_seconds"):
            assert other[key] == queue[key], (priority, key)
    assert queue["name"] == f"jobs-{env}-jobs"
    # one mapping per priority, each with its own maximum concurrency (AWS minimum 2)
    weights = {
        "normal": int(settings["worker_max_concurrency"]),
        **{k: int(v) for k, v in re.findall(r"(high|low)\s*=\s*(\d+)", settings["worker_priority_concurrency"])},
    }
    assert set(weights) == {"high", "normal", "low"} and min(weights.values()) >= 2
    for priority, concurrency in weights.items():
        esm = resources[f'module.compute.aws_lambda_event_source_mapping.worker["{priority}"]']
        assert esm["function_response_types"] == ["ReportBatchItemFailures"]
        assert esm["batch_size"] == int(settings["worker_batch_size"])
        assert esm["scaling_config"] == [{"maximum_concurrency": concurrency}]
    reserved = int(settings["worker_reserved_concurrency"])
    assert reserved < 0 or reserved >= sum(weights.values())
    bucket = resources["module.storage.aws_s3_bucket.results"]
    assert bucket["force_destroy"] is (settings["force_destroy_bucket"] == "true")
    rule = resources["module.storage.aws_s3_bucket_lifecycle_configuration.results"]["rule"][0]
    assert rule["expiration"][0]["days"] == int(settings["result_retention_days"])


def _api_parts(resources: dict[str, dict], kind: str) -> dict[str, dict]:
    prefix = f"module.api.aws_api_gateway_{kind}."
    return {a: v for a, v in resources.items() if a.startswith(prefix)}


def test_plan_api_gateways_own_errors_are_readable_by_every_allowed_origin(env_plan):
    """A gateway response's headers are static: with dev's two origins, only "*" lets the
    second origin's browser read a 401 (the function's own responses echo the origin)."""
    env, _, plan = env_plan
    origins = json.loads(tfvars(env)["cors_allowed_origins"])
    assert "*" not in origins and (env != "dev" or len(origins) >= 2)
    responses = _api_parts(planned_resources(plan), "gateway_response")
    assert {v["response_type"] for v in responses.values()} >= {
        "UNAUTHORIZED",
        "THROTTLED",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    }
    for address, values in responses.items():
        allowed = values["response_parameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert allowed.startswith("'") and allowed.endswith("'"), (address, allowed)  # a static value
        for origin in origins:  # the Fetch standard's check for a request without credentials
            assert allowed[1:-1] in ("*", origin), (address, origin, allowed)


def test_plan_methods_take_id_tokens_without_scopes(env_plan):
    env, _, plan = env_plan
    assert tfvars(env)["api_authorization_scopes"] == "[]"
    methods = _api_parts(planned_resources(plan), "method")
    routes = {a: v for a, v in methods.items() if v["http_method"] != "OPTIONS"}
    assert len(routes) == 7  # POST/GET/DELETE /job, GET /jobs, GET /quota, POST /jobs/batch, GET /actions
    for address, values in routes.items():
        assert values["authorization"] == "COGNITO_USER_POOLS", address
        assert not values.get("authorization_scopes"), address


def test_api_authorization_scopes_go_on_every_authorized_method(make_runner, tmp_path):
    scopes = ["aws.cognito.signin.user.admin", "https://jobs.example.com/submit"]
    runner = make_runner(
        "dev",
        work_root=tmp_path,
        variables={
            "api_authorization_scopes": scopes,
        },
    )
    runner.init()
    plan_file = tmp_path / "scoped.tfplan"
    runner.plan(out=plan_file)
    methods = _api_parts(planned_resources(runner.show_plan(plan_file)), "method")
    by_verb = {(a.split('"')[1], v["http_method"]): v for a, v in methods.items()}
    routes = {k: v for k, v in by_verb.items() if k[1] != "OPTIONS"}
    # + an OPTIONS preflight per path (job, jobs, quota, jobs/batch, actions)
    assert len(routes) == 7 and len(by_verb) == 12
    assert ("GET /actions", "GET") in routes and ("actions", "OPTIONS") in by_verb
    for key, values in routes.items():
        assert values["authorization"] == "COGNITO_USER_POOLS", key
        assert sorted(values["authorization_scopes"]) == sorted(scopes), key
    for key, values in by_verb.items():
        if key[1] == "OPTIONS":  # the preflight stays unauthenticated
            assert values["authorization"] == "NONE" and not values.get("authorization_scopes"), key

    # a scope with a space (two scopes in one string) is refused at plan
    runner.variables["api_authorization_scopes"] = ["openid email"]
    with pytest.raises(TerraformError) as refused:
        runner.plan()
    said = " ".join(refused.value.details.replace("│", " ").split())
    assert "authorization_scopes must be distinct OAuth scope names" in said


def test_plan_leaves_the_account_wide_api_gateway_logging_role_alone(env_plan):
    # one aws_api_gateway_account per account and region: neither shipped env owns it (destroying
    # its owner would break every other stack's execution logging there)
    env, _, plan = env_plan
    assert tfvars(env)["manage_api_gateway_cloudwatch_role"] == "false"
    resources = planned_resources(plan)
    assert not [a for a in resources if "aws_api_gateway_account" in a or "aws_iam_role.cloudwatch" in a]


def test_plan_tags_every_resource_with_project_and_env(env_plan):
    env, _, plan = env_plan
    for address, values in planned_resources(plan).items():
        if "tags_all" in values and values["tags_all"] is not None:
            assert values["tags_all"].get("project") == "jobs", address
            assert values["tags_all"].get("env") == env, address


def test_a_queue_retention_that_would_let_dead_letters_expire_is_refused(make_runner, tmp_path):
    runner = make_runner(
        "dev",
        work_root=tmp_path,
        variables={
            "queue_message_retention_seconds": 1209600,
        },
    )
    runner.init()
    with pytest.raises(TerraformError) as refused:
        runner.plan()
    said = " ".join(refused.value.details.replace("│", " ").split())  # terraform wraps and frames errors
    assert "message_retention_seconds must be between 60 and 864000 (10 days)" in said


def test_plan_takes_the_quota_settings_of_the_env_and_the_functions_accept_them(env_plan):
    """The env's limits reach the plan (the applied local stack shows them in the functions'
    environment: test_apply_local.py); the code's own parser accepts what they become."""
    from jobs.quotas import Limits, parse_tiers

    env, _, plan = env_plan
    settings = tfvars(env)
    given = {name: plan["variables"][name]["value"] for name in plan["variables"] if name.startswith("quota_")}
    assert given["quota_max_active_jobs"] == int(settings["quota_max_active_jobs"])
    assert given["quota_submit_rate_per_second"] == float(settings["quota_submit_rate_per_second"])
    assert given["quota_submit_burst"] == int(settings["quota_submit_burst"])
    tiers = parse_tiers(json.dumps(given["quota_tiers"]))  # QUOTA_TIERS = jsonencode(var.quota_tiers)
    assert tiers, f"{env} names no tier"
    defaults = Limits(
        given["quota_max_active_jobs"], given["quota_submit_rate_per_second"], given["quota_submit_burst"]
    )
    for name, tier in tiers.items():  # a tier lifts: every limit at least the default
        assert tier.most_generous(defaults) == tier, name


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"quota_max_active_jobs": 0}, "quota_max_active_jobs must be a whole number from 1 to 1000000"),
        ({"quota_submit_burst": 2.5}, "quota_submit_burst must be a whole number from 1 to 1000000"),
        ({"quota_submit_rate_per_second": 0}, "quota_submit_rate_per_second must be above 0 and at most 1000"),
        (
            {"quota_tiers": {"a,b": {"max_active_jobs": 1, "submit_rate_per_second": 1, "submit_burst": 1}}},
            "quota_tiers keys are Cognito group names",
        ),
        (
            {"quota_tiers": {"gold": {"max_active_jobs": 1, "submit_rate_per_second": 0, "submit_burst": 1}}},
            "Each quota tier needs max_active_jobs and submit_burst as whole numbers",
        ),
    ],
    ids=["cap-zero", "burst-fraction", "rate-zero", "group-comma", "tier-rate-zero"],
)
def test_bad_quota_settings_are_refused_at_plan(make_runner, tmp_path, variables, message):
    runner = make_runner("dev", work_root=tmp_path, variables=variables)
    runner.init()
    with pytest.raises(TerraformError) as refused:
        runner.plan()
    said = " ".join(refused.value.details.replace("│", " ").split())
    assert message in said


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"worker_priority_concurrency": {"high": 1, "low": 2}}, "priority_max_concurrency.high and .low must be"),
        ({"high_priority_group": "a,b"}, "high_priority_group must be a Cognito group name"),
        (
            {"worker_reserved_concurrency": 6, "worker_priority_concurrency": {"high": 2, "low": 2}},
            "worker_reserved_concurrency (6) is below the sum of the priority mappings' maximum concurrency (9)",
        ),
    ],
    ids=["high-below-aws-minimum", "group-comma", "reserved-below-the-mappings"],
)
def test_bad_priority_settings_are_refused_at_plan(make_runner, tmp_path, variables, message):
    runner = make_runner("dev", work_root=tmp_path, variables=variables)  # dev: normal 5
    runner.init()
    with pytest.raises(TerraformError) as refused:
        runner.plan()
    said = " ".join(refused.value.details.replace("│", " ").split())
    assert message in said


def test_plan_serves_the_console_through_cloudfront_https_only_from_a_private_bucket(env_plan):
    env, _, plan = env_plan
    assert tfvars(env)["console_enabled"] == "true"
    resources = planned_resources(plan)
    web = {a.removeprefix("module.web[0]."): v for a, v in resources.items() if a.startswith("module.web[0].")}
    block = web["aws_s3_bucket_public_access_block.console"]
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls"))
    assert block["restrict_public_buckets"] is True
    sse = web["aws_s3_bucket_server_side_encryption_configuration.console"]["rule"][0]
    assert sse["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "AES256"
    assert web["aws_s3_bucket_versioning.console"]["versioning_configuration"][0]["status"] == "Enabled"
    assert "aws_s3_bucket_website_configuration.console" not in web  # never a public website endpoint
    oac = web["aws_cloudfront_origin_access_control.console"]
    assert (oac["origin_access_control_origin_type"], oac["signing_behavior"]) == ("s3", "always")
    distribution = web["aws_cloudfront_distribution.console"]
    behavior = distribution["default_cache_behavior"][0]
    assert behavior["viewer_protocol_policy"] == "redirect-to-https"
    assert sorted(behavior["allowed_methods"]) == ["GET", "HEAD"]
    assert distribution["default_root_object"] == "index.html"
    headers = web["aws_cloudfront_response_headers_policy.console"]["security_headers_config"][0]
    assert headers["frame_options"][0]["frame_option"] == "DENY"
    assert headers["strict_transport_security"][0]["access_control_max_age_sec"] >= 31536000
    # the CSP names the API, Cognito and the results bucket, all known only after apply here
    _, unknown = planned_change(plan, "module.web[0].aws_cloudfront_response_headers_policy.console")
    assert unknown["security_headers_config"][0]["content_security_policy"][0]["content_security_policy"] is True
    assert "console_url" in plan["planned_values"]["outputs"] or "console_url" in plan["output_changes"]


def _alarms_expected(env: str) -> dict[str, tuple[str, str, dict[str, str], str, float]]:
    """alarm key -> (namespace, metric, dimensions, statistic, threshold) of every alarm of env."""
    settings, p = tfvars(env), f"jobs-{env}"
    age = float(settings["oldest_message_age_alarm_seconds"])
    visible, oldest = "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"
    return {
        "dlq-not-empty": ("AWS/SQS", visible, {"QueueName": f"{p}-jobs-dlq"}, "Maximum", 0),
        "queue-oldest-message-age": ("AWS/SQS", oldest, {"QueueName": f"{p}-jobs"}, "Maximum", age),
        "queue-high-oldest-message-age": ("AWS/SQS", oldest, {"QueueName": f"{p}-jobs-high"}, "Maximum", age),
        "queue-low-oldest-message-age": ("AWS/SQS", oldest, {"QueueName": f"{p}-jobs-low"}, "Maximum", age),
        "worker-errors": ("AWS/Lambda", "Errors", {"FunctionName": f"{p}-worker"}, "Sum", 0),
        "worker-throttles": ("AWS/Lambda", "Throttles", {"FunctionName": f"{p}-worker"}, "Sum", 0),
        "api-5xx": ("AWS/ApiGateway", "5XXError", {"ApiName": f"{p}-api", "Stage": env}, "Sum", 0),
        # the job status events (module events) and the webhooks (module webhooks)
        "publisher-failures-not-empty": ("AWS/SQS", visible, {"QueueName": f"{p}-publisher-failures"}, "Maximum", 0),
        "publisher-errors": ("AWS/Lambda", "Errors", {"FunctionName": f"{p}-publisher"}, "Sum", 0),
        # IteratorAge is in milliseconds; publisher_iterator_age_alarm_seconds defaults to 300
        "publisher-iterator-age": ("AWS/Lambda", "IteratorAge", {"FunctionName": f"{p}-publisher"}, "Maximum", 300_000),
        "webhooks-dlq-not-empty": ("AWS/SQS", visible, {"QueueName": f"{p}-webhooks-dlq"}, "Maximum", 0),
        "notifier-errors": ("AWS/Lambda", "Errors", {"FunctionName": f"{p}-notifier"}, "Sum", 0),
    }


def test_plan_alarms_watch_their_metric_and_notify_the_alarm_topic(env_plan):
    env, _, plan = env_plan
    assert tfvars(env)["create_alarm_topic"] == "true"
    prefix = 'module.monitoring.aws_cloudwatch_metric_alarm.this["'
    alarms = {a.removeprefix(prefix)[:-2]: v for a, v in planned_resources(plan).items() if a.startswith(prefix)}
    expected = _alarms_expected(env)
    assert set(alarms) == set(expected), "an alarm was added or removed: list it in _alarms_expected"
    assert planned_resources(plan)["module.monitoring.aws_sns_topic.alarms[0]"]["name"] == f"jobs-{env}-alarms"
    tasks = set(re.findall(r"^def (\w+)\(", (ROOT / "tasks.py").read_text(), re.M))
    for key, (namespace, metric, dimensions, statistic, threshold) in expected.items():
        alarm = alarms[key]
        assert alarm["alarm_name"] == f"jobs-{env}-{key}"
        assert (alarm["namespace"], alarm["metric_name"], alarm["dimensions"]) == (namespace, metric, dimensions), key
        assert (alarm["statistic"], alarm["threshold"]) == (statistic, threshold), key
        assert (alarm["comparison_operator"], alarm["evaluation_periods"]) == ("GreaterThanThreshold", 1), key
        assert alarm["period"] == 300 and alarm["treat_missing_data"] == "notBreaching", key
        # what it means and what to do; every task it names exists (invoke redrive: the jobs DLQ only)
        description = alarm["alarm_description"]
        assert len(description) >= 40, key
        assert set(re.findall(r"invoke (\w+)", description)) <= tasks, (key, description)
        for function in re.findall(r"invoke logs --function (\w+)", description):
            assert function in ("api", "worker", "publisher", "notifier"), (key, function)
        # the actions: the alarm topic, created in dev and prod, whose ARN is known only after apply
        # (without a topic they are known: [])
        _, unknown = planned_change(plan, f'{prefix}{key}"]')
        assert unknown["alarm_actions"] is True and unknown["ok_actions"] is True, key
    # the alarms that need an operator say which queue to look at and how to act on it
    p = f"jobs-{env}"
    failures = alarms["publisher-failures-not-empty"]["alarm_description"]
    assert f"{p}-publisher-failures" in failures and "invoke logs --function publisher" in failures
    webhooks = alarms["webhooks-dlq-not-empty"]["alarm_description"]
    assert "start-message-move-task" in webhooks and f"{p}-webhooks-dlq" in webhooks and f"{p}-webhooks " in webhooks
    assert "invoke redrive" not in failures and "invoke redrive is for the jobs DLQ only" in webhooks


def test_plan_dashboard_shows_every_queue_and_function_an_alarm_watches(env_plan):
    env, _, plan = env_plan
    dashboard = planned_resources(plan)["module.monitoring.aws_cloudwatch_dashboard.this"]
    widgets = json.loads(dashboard["dashboard_body"])["widgets"]
    shown: set[tuple[str, str]] = set()  # (metric, dimension value), the "." and "..." shorthands resolved
    for widget in widgets:
        previous: list = []
        for row in widget["properties"]["metrics"]:
            plain = [v for v in row if not isinstance(v, dict)]
            if plain[0] == "...":
                plain = previous[: len(previous) - len(plain) + 1] + plain[1:]
            plain = [previous[i] if v == "." else v for i, v in enumerate(plain)]
            shown |= {(plain[1], plain[i]) for i in range(3, len(plain), 2)}
            previous = plain
    for key, (_namespace, metric, dimensions, _statistic, _threshold) in _alarms_expected(env).items():
        for value in dimensions.values():
            if value != env:  # the stage
                assert (metric, value) in shown, (key, metric, value)


def test_a_created_pool_with_a_domain_prefix_gets_a_hosted_login_back_to_the_console(make_runner, tmp_path):
    """The pool created here (no pool in the tfvars) + cognito_domain_prefix: a login domain, an
    app client for the code flow with the console's URL as callback, and the domain in the CSP.
    The client's callback URL comes from the console's distribution while the console's CSP
    names the domain: the plan shows they do not form a cycle."""
    pool_inputs = {"cognito_user_pool_arn": None, "cognito_issuer_url": None, "cognito_app_client_id": None}
    runner = make_runner(
        "dev", work_root=tmp_path, variables={**pool_inputs, "cognito_domain_prefix": "jobs-dev-login"}
    )
    runner.init()
    plan_file = tmp_path / "hosted.tfplan"
    runner.plan(out=plan_file)
    plan = runner.show_plan(plan_file)
    resources = planned_resources(plan)
    domain = resources["module.identity.aws_cognito_user_pool_domain.this[0]"]
    assert domain["domain"] == "jobs-dev-login"
    client = resources["module.identity.aws_cognito_user_pool_client.this[0]"]
    assert client["allowed_oauth_flows"] == ["code"] and client["allowed_oauth_flows_user_pool_client"] is True
    assert sorted(client["allowed_oauth_scopes"]) == ["email", "openid", "profile"]
    assert client["supported_identity_providers"] == ["COGNITO"]
    assert "ALLOW_USER_PASSWORD_AUTH" in client["explicit_auth_flows"]  # the password form still works
    _, unknown = planned_change(plan, "module.identity.aws_cognito_user_pool_client.this[0]")
    assert unknown["callback_urls"] == unknown["logout_urls"] == [True]  # the CloudFront URL, known after apply
    outputs = plan["planned_values"]["outputs"]
    assert outputs["cognito_oauth_domain"]["value"] == "https://jobs-dev-login.auth.us-east-1.amazoncognito.com"
    assert outputs["cognito_oauth_scopes"]["value"] == ["openid", "email", "profile"]

    # wrong inputs are refused at plan, each with a message saying what to do (terraform reports
    # the failed validations of a child module together, and none while a root one fails)
    others = {k: v for k, v in runner.variables.items() if k not in pool_inputs and k != "cognito_domain_prefix"}
    for variables, messages in (
        (  # the root module's (terraform stops at the first of them: one here)
            {
                "cognito_hosted_login_url": "https://auth.example.com",
                "api_authorization_scopes": ["aws.cognito.signin.user.admin"],
            },
            ["cognito_oauth_scopes must include every scope of api_authorization_scopes"],
        ),
        (  # the identity module's, with a pool created here
            {
                **pool_inputs,
                "cognito_domain_prefix": "my-aws-login-",
                "cognito_hosted_login_url": "https://auth.example.com/login",
                "cognito_oauth_scopes": ["email"],
            },
            [
                "must not contain",
                "lowercase letters, digits and hyphens",
                "for a pool created here, set domain_prefix instead",
                "no path or trailing slash",
                'must include "openid"',
            ],
        ),
        (  # the identity module's, with the env's own pool
            {"cognito_domain_prefix": "login"},
            ["for an existing pool (user_pool_arn) give its domain as hosted_login_url"],
        ),
    ):
        runner.variables = {**others, **variables}
        with pytest.raises(TerraformError) as refused:
            runner.plan()
        said = " ".join(refused.value.details.replace("│", " ").split())
        for message in messages:
            assert message in said, (message, said[-1500:])
