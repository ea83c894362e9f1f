"""Resource names fit AWS's limits in every region, and account-global names carry the region.

Every name starts with "<project>-<env>"; the longest is the results bucket,
"<project>-<env>-results-<account id>-<region>" (S3: 63 characters), so how long project and env
may be depends on the region. terraform/variables.tf refuses a combination that does not fit,
at plan, naming the limit. Plans of dev's tfvars on the embedded backend, with a long project
and env, in one of the longest regions and in us-east-1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tooling.terraform import TerraformError

pytestmark = pytest.mark.terraform

LONG_REGION = "ap-southeast-5"  # 14 characters, the longest region names today
# 17 + 9 = 26 characters: the most project and env may have together in a 14-character region
PROJECT, ENV = "acme-job-platform", "staging42"

# Documented maximum length of each resource name the stack sets (attribute per type).
NAME_LIMITS: dict[str, tuple[str, int]] = {
    "aws_s3_bucket": ("bucket", 63),
    "aws_lambda_function": ("function_name", 64),
    "aws_iam_role": ("name", 64),
    "aws_iam_role_policy": ("name", 128),
    "aws_sqs_queue": ("name", 80),
    "aws_dynamodb_table": ("name", 255),
    "aws_cloudwatch_log_group": ("name", 512),
    "aws_cloudwatch_metric_alarm": ("alarm_name", 255),
    "aws_cloudwatch_dashboard": ("dashboard_name", 255),
    "aws_sns_topic": ("name", 256),
    "aws_cognito_user_pool": ("name", 128),
    "aws_cognito_user_pool_client": ("name", 128),
    "aws_scheduler_schedule_group": ("name", 64),
    "aws_cloudwatch_event_bus": ("name", 256),
    "aws_cloudwatch_event_rule": ("name", 64),
    "aws_ssm_parameter": ("name", 2048),
    "aws_cloudfront_origin_access_control": ("name", 64),
    "aws_cloudfront_response_headers_policy": ("name", 128),
}
# Named resources whose names have no documented length limit.
UNLIMITED = {"aws_api_gateway_rest_api", "aws_api_gateway_authorizer", "aws_api_gateway_request_validator"}
# Names global to the account (or to S3): one env in two regions of one account must not collide.
GLOBAL_NAMES = {"aws_iam_role": "name", "aws_cloudwatch_dashboard": "dashboard_name", "aws_s3_bucket": "bucket"}


def said(error: TerraformError) -> str:
    return " ".join(error.details.replace("│", " ").split())  # terraform wraps and frames errors


def names(plan: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """address -> (type, planned name) of every named resource a plan creates."""
    found = {}
    for change in plan["resource_changes"]:
        if change["mode"] != "managed":
            continue
        kind, values = change["type"], change["change"]["after"] or {}
        attribute = NAME_LIMITS.get(kind, ("name", 0))[0]
        if isinstance(values.get(attribute), str):
            found[change["address"]] = (kind, values[attribute])
    return found


@pytest.fixture(scope="module")
def region_plans(
    make_runner: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """JSON plans of the same long project and env in a 14-character region and in us-east-1."""
    plans = {}
    for region in (LONG_REGION, "us-east-1"):
        work = tmp_path_factory.mktemp(f"names-{region}")
        runner = make_runner(
            "dev",
            work_root=work,
            variables={
                "project": PROJECT,
                "env": ENV,
                "region": region,
                "manage_api_gateway_cloudwatch_role": True,  # its role is named too
            },
        )
        runner.init()
        runner.plan(out=work / "names.tfplan")
        plans[region] = runner.show_plan(work / "names.tfplan")
    return plans


def test_a_name_too_long_for_the_region_is_refused_naming_the_limit(make_runner, tmp_path):
    runner = make_runner("dev", work_root=tmp_path, variables={"project": PROJECT, "env": ENV + "x"})
    runner.init()
    runner.variables["region"] = LONG_REGION  # one character more than the longest allowed there
    with pytest.raises(TerraformError) as refused:
        runner.plan()
    assert (
        f'The results bucket would be named "{PROJECT}-{ENV}x-results-<account id>-{LONG_REGION}", 64 characters, '
        f"but S3 bucket names have at most 63: in {LONG_REGION} project and env may have at most 26 characters "
        "together (now 27); shorten project or env."
    ) in said(refused.value)

    # project and env of the longest lengths their own validations allow: beyond the modules' 32
    runner.variables.update({"project": "p" * 20, "env": "e" * 12, "region": "us-east-1"})
    with pytest.raises(TerraformError) as refused:
        runner.plan()
    assert (
        f'project and env make the name prefix "{"p" * 20}-{"e" * 12}" of 33 characters, but the modules allow '
        "at most 32: shorten project or env."
    ) in said(refused.value)


def test_the_longest_allowed_names_plan_within_every_limit(region_plans):
    for region, plan in region_plans.items():
        planned = names(plan)
        kinds = {kind for kind, _ in planned.values()}
        assert kinds - UNLIMITED <= set(NAME_LIMITS), f"a named resource without a known limit: {kinds}"
        assert {"aws_s3_bucket", "aws_iam_role", "aws_lambda_function", "aws_sqs_queue"} <= kinds
        for address, (kind, name) in planned.items():
            if kind in NAME_LIMITS:
                assert len(name) <= NAME_LIMITS[kind][1], (region, address, name, len(name))
        bucket = planned["module.storage.aws_s3_bucket.results"][1]
        assert bucket.startswith(f"{PROJECT}-{ENV}-results-") and bucket.endswith(f"-{region}")
        console = planned["module.web[0].aws_s3_bucket.console"][1]
        assert console.startswith(f"{PROJECT}-{ENV}-console-") and console.endswith(f"-{region}")
    # in the long region the bucket name is exactly S3's maximum: the check allows no less
    assert len(names(region_plans[LONG_REGION])["module.storage.aws_s3_bucket.results"][1]) == 63


def test_account_global_names_differ_between_two_regions(region_plans):
    by_region = {
        region: {a: n for a, (kind, n) in names(plan).items() if GLOBAL_NAMES.get(kind)}
        for region, plan in region_plans.items()
    }
    long_region, us_east_1 = by_region[LONG_REGION], by_region["us-east-1"]
    roles = [a for a in long_region if ".aws_iam_role." in a]
    assert len(roles) == 6, (
        roles
    )  # api, worker, API Gateway's logging role, the scheduler's, the event publisher's, the notifier's
    assert set(long_region) == set(us_east_1)
    for address, name in long_region.items():
        assert name != us_east_1[address], address
        assert LONG_REGION in name and "us-east-1" in us_east_1[address], (name, us_east_1[address])
    assert long_region['module.compute.aws_iam_role.function["worker"]'] == f"{PROJECT}-{ENV}-worker-{LONG_REGION}-role"
    assert us_east_1["module.api.aws_iam_role.cloudwatch[0]"] == f"{PROJECT}-{ENV}-apigw-logs-us-east-1-role"
    assert long_region["module.scheduling.aws_iam_role.scheduler"] == f"{PROJECT}-{ENV}-scheduler-{LONG_REGION}-role"
    assert long_region["module.events.aws_iam_role.publisher"] == f"{PROJECT}-{ENV}-publisher-{LONG_REGION}-role"
    assert long_region["module.webhooks.aws_iam_role.notifier"] == f"{PROJECT}-{ENV}-notifier-{LONG_REGION}-role"
