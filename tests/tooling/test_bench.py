"""`invoke bench`: its pieces (counting, targets, prices) and one tiny end-to-end run.

No timing assertions: the figures are checked for presence and for being computed from the
measured numbers, never for their size.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

import pytest

from tooling import deploy, environments
from tooling.bench import BenchConfig, config_from_flags, counting, prices, report, run, runner
from tooling.bench import variables as bench_variables
from tooling.bench.runner import ConsoleTap
from tooling.bench.stats import percentile, ratio
from tooling.embedded_backend import request_identity
from tooling.environments import ENDPOINT_ENV_VAR, LOCAL_ENV
from tooling.errors import OperatorError

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_UA = "Boto3/1.35 md/Botocore#1.35 exec-env/AWS_Lambda_python3.12 Botocore/1.35"
SCOPE = "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/{}/aws4_request, SignedHeaders=host"


def _headers(service: str, agent: str = "Boto3/1.35", **extra: str) -> dict[str, str]:
    return {"user-agent": agent, "authorization": SCOPE.format(service), **extra}


# ---- request identity (the embedded backend's counting) ----------------------------------


def test_request_identity_reads_caller_service_and_operation():
    target = {"x-amz-target": "DynamoDB_20120810.PutItem"}
    assert request_identity("POST", "/", "", _headers("dynamodb", FUNCTION_UA, **target)) == (
        "function",
        "dynamodb",
        "PutItem",
    )
    bench_ua = "Boto3/1.35 app/jobstack-bench-floor Botocore/1.35"
    sqs = {"x-amz-target": "AmazonSQS.SendMessage"}
    assert request_identity("POST", "/", "", _headers("sqs", bench_ua, **sqs)) == (
        "jobstack-bench-floor",
        "sqs",
        "SendMessage",
    )
    assert request_identity("POST", "/", "", _headers("sts"), b"Action=GetCallerIdentity&Version=2011-06-15") == (
        "other",
        "sts",
        "GetCallerIdentity",
    )


def test_request_identity_names_s3_object_operations():
    assert request_identity("PUT", "/bucket/owner/2025-01-01/job.txt", "", _headers("s3"))[2] == "PutObject"
    assert request_identity("GET", "/bucket/key.txt", "", _headers("s3"))[2] == "GetObject"
    assert request_identity("GET", "/bucket", "list-type=2&prefix=a", _headers("s3"))[2] == "ListObjectsV2"
    copy = _headers("s3", **{"x-amz-copy-source": "/b/k"})
    assert request_identity("PUT", "/bucket/key", "", copy)[2] == "CopyObject"


def test_counts_are_grouped_by_source():
    rows = [
        {"caller": "function", "service": "dynamodb", "operation": "PutItem", "count": 3},
        {"caller": "other", "service": "sqs", "operation": "ReceiveMessage", "count": 2},
        {"caller": "other", "service": "logs", "operation": "PutLogEvents", "count": 5},
        {"caller": "other", "service": "lambda", "operation": "GET /2015-03-31/functions", "count": 1},
        {"caller": "jobstack-bench", "service": "dynamodb", "operation": "Query", "count": 7},
        {"caller": "jobstack-bench-floor", "service": "sqs", "operation": "SendMessage", "count": 4},
    ]
    counts = counting.RequestCounts.from_rows(rows)
    assert counts.get("function", "dynamodb:PutItem") == 3
    assert counts.get("event_source_mapping", "sqs:ReceiveMessage") == 2
    assert counts.total("log_shipping") == 5
    assert counts.total("runtime_other") == 1
    assert counts.total("bench") == 7
    assert counts.get("floor", "sqs:SendMessage") == 4


def test_console_tap_reads_report_lines_and_log_bytes():
    tap = ConsoleTap(functions={"jobs-local-worker"})
    tap("[jobs-local-worker] START RequestId: abc Version: $LATEST")
    tap("[jobs-local-worker] REPORT RequestId: abc\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB")
    tap("[api-gateway] 202 for POST /local/job")
    assert tap.reports == [("jobs-local-worker", 12.5, 13, 256)]
    expected = sum(
        len(m.encode()) + prices.LOG_EVENT_OVERHEAD_BYTES
        for m in (
            "START RequestId: abc Version: $LATEST",
            "REPORT RequestId: abc\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB",
        )
    )
    assert tap.log_bytes == {"jobs-local-worker": expected}


# ---- targets, statistics, prices ----------------------------------------------------------


def test_targets_say_by_how_much_they_are_missed():
    target = report.Target("x", "x", "<=", 1.5)
    assert report.check(target, 1.2)["verdict"] == "met"
    missed = report.check(target, 1.8)
    assert missed["met"] is False
    assert missed["missed_by"] == pytest.approx(0.3)
    assert missed["missed_by_pct"] == pytest.approx(20.0)
    assert report.check(report.Target("y", "y", ">=", 0.8), 0.6)["missed_by_pct"] == pytest.approx(25.0)
    assert report.check(target, None)["verdict"] == "not measured"


def test_percentile_and_ratio():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([10.0], 99) == 10.0
    assert math.isnan(percentile([], 50))
    assert ratio(3.0, 2.0) == 1.5
    assert math.isnan(ratio(1.0, 0.0))


def test_cost_estimate_follows_the_price_table():
    per_job = {"apigw_requests": 1.0, "sqs_requests": 1.0, "ddb_put": 1.0, "ddb_update": 2.0, "s3_put": 1.0}
    estimate = prices.estimate(per_job, "arm64", item_kb=0.5)
    lines = estimate["breakdown_usd_per_million_jobs"]
    assert lines["API Gateway requests"] == pytest.approx(prices.PRICE["apigw_rest_request"])
    assert lines["S3 PUT"] == pytest.approx(prices.PRICE["s3_put"] * 1000)
    # PutItem: table + index; each UpdateItem: table + index delete + index put.
    assert estimate["assumptions"]["wru_per_job"] == pytest.approx(2 + 2 * 3)
    # with quotas: a create and a finish transaction of record + counter (2 WRU per item and KB)
    quota_job = {"ddb_update": 1.0, "ddb_transactions": 2.0}
    assert prices.estimate(quota_job, "arm64", item_kb=0.5)["assumptions"]["wru_per_job"] == pytest.approx(
        3 + (2 + 2 + 1) + (2 + 2 + 2)
    )
    assert estimate["usd_per_million_jobs"] == pytest.approx(sum(lines.values()), abs=0.01)


def test_readme_shows_the_price_table_the_bench_uses():
    readme = (ROOT / "README.md").read_text()
    assert "## Benchmarks" in readme
    assert prices.markdown_table() in readme
    assert prices.PRICES_AS_OF in readme


def test_flags_make_the_config_and_name_the_command():
    default = config_from_flags()
    assert (default.jobs, default.clients, default.listing_items, default.command) == (500, 8, 100_000, "invoke bench")
    quick = config_from_flags(quick=True, jobs=40, skip_listing=True)
    assert (quick.jobs, quick.cold_runs, quick.skip_listing, quick.schedule_jobs) == (40, 3, True, 10)
    assert config_from_flags(schedule_jobs=0).schedule_jobs == 0
    assert config_from_flags(schedule_jobs=5).command == "invoke bench --schedule-jobs=5"
    assert quick.command == "invoke bench --quick --jobs=40 --skip-listing"


# ---- --var: Terraform variables of the bench's stack ---------------------------------------


def test_vars_are_typed_by_their_declaration():
    parsed = bench_variables.parse(
        [
            "worker_batch_size=1",
            "worker_batching_window_seconds=2",
            "log_level=DEBUG",
            "deletion_protection=true",
            'cors_allowed_origins=["https://a.example", "https://b.example"]',
            "api_throttling_rate_limit=12.5",
            "worker_batch_size=5",  # a later value wins, as with terraform -var
        ]
    )
    assert parsed == {
        "worker_batch_size": 5,
        "worker_batching_window_seconds": 2,
        "log_level": "DEBUG",
        "deletion_protection": True,
        "cors_allowed_origins": ["https://a.example", "https://b.example"],
        "api_throttling_rate_limit": 12.5,
    }
    assert bench_variables.parse([]) == {}
    declared = bench_variables.declared()
    assert declared["worker_max_concurrency"] == "number" and declared["cors_allowed_origins"] == "list(string)"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("worker_batch_size", "is not NAME=VALUE"),
        ("=3", "is not NAME=VALUE"),
        ("worker_batch_sise=1", "is not a variable of terraform/variables.tf; did you mean --var worker_batch_size=1?"),
        ("worker_batch_size=ten", "worker_batch_size is a number, and 'ten' is not a number"),
        ("worker_batch_size=true", "is not a number"),
        ("worker_batch_size=", "is not a number"),
        ("deletion_protection=yes", "is not true or false"),
        ("cors_allowed_origins=*", "is not JSON"),
        ("api_zip_path=/tmp/x.zip", "api_zip_path is set by the bench itself"),
    ],
)
def test_an_invalid_var_is_one_error_line(spec, words):
    with pytest.raises(OperatorError) as caught:
        config_from_flags(var=[spec])
    line = caught.value.line()
    assert line.startswith("error: --var ") and "\n" not in line
    assert words in line


def test_vars_are_in_the_command_and_the_config():
    config = config_from_flags(
        jobs=150,
        skip_listing=True,
        cold_runs=1,
        var=["worker_batch_size=1", "worker_max_concurrency=2", 'cors_allowed_origins=["*"]'],
    )
    assert config.variables == {"worker_batch_size": 1, "worker_max_concurrency": 2, "cors_allowed_origins": ["*"]}
    assert config.command == (
        "invoke bench --jobs=150 --cold-runs=1 --skip-listing --var=worker_batch_size=1 "
        "--var=worker_max_concurrency=2 --var='cors_allowed_origins=[\"*\"]'"
    )
    # The printed command gives the same variables back.
    flags = [arg.removeprefix("--var=") for arg in shlex.split(config.command) if arg.startswith("--var=")]
    assert bench_variables.parse(flags) == config.variables
    assert config_from_flags().variables == {}


def test_vars_reach_the_deployment_of_the_bench_stack(monkeypatch, tmp_path):
    """run() deploys its stack with the variables; they land after local.tfvars, so they win."""
    seen: dict[str, Any] = {}

    class Deployed(Exception):
        pass

    def start(out, console=None, variables=None, **_):
        seen["variables"] = variables
        env = environments.resolve(LOCAL_ENV)
        seen["var_options"] = deploy.terraform_for(env, variables=variables).runner._var_options()
        raise Deployed

    monkeypatch.setenv("JOBSTACK_WORK_ROOT", str(tmp_path))  # own terraform work dir: never another session's
    monkeypatch.setenv(ENDPOINT_ENV_VAR, "http://127.0.0.1:9")  # what start() sets once its backend is up
    monkeypatch.setattr(runner.local_stack, "start", start)
    config = config_from_flags(out=str(tmp_path / "out"), var=["worker_batch_size=1", "worker_max_concurrency=2"])
    with pytest.raises(Deployed):
        run(config, out=lambda line: None)
    assert seen["variables"] == {"worker_batch_size": 1, "worker_max_concurrency": 2}
    files = seen["var_options"]["var_file"]
    assert Path(files[0]).name == "local.tfvars"
    overrides = json.loads(Path(files[-1]).read_text())
    assert overrides["worker_batch_size"] == 1 and overrides["worker_max_concurrency"] == 2
    assert overrides["api_zip_path"].endswith("api.zip")  # the runner's own variables are kept


def test_the_worker_mapping_is_found_by_its_function_arn():
    """moto filters FunctionName against what the mapping was created with (an ARN): list all, match here."""
    arn = "arn:aws:lambda:us-east-1:123456789012:function:{}"
    pages = [
        {"EventSourceMappings": [{"UUID": "a", "FunctionArn": arn.format("jobs-local-api")}]},
        {"EventSourceMappings": [{"UUID": "b", "FunctionArn": arn.format("jobs-local-worker") + ":$LATEST"}]},
        {
            "EventSourceMappings": [
                {
                    "UUID": "c",
                    "FunctionArn": arn.format("jobs-local-worker"),
                    "EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:jobs-local-jobs",
                }
            ]
        },
    ]

    class Lambda:
        def get_paginator(self, name):
            assert name == "list_event_source_mappings"
            return type("Paginator", (), {"paginate": lambda self: iter(pages)})()

    assert runner.worker_mapping(Lambda(), "jobs-local-worker")["UUID"] == "b"
    assert runner.worker_mapping(Lambda(), "jobs-local-work") == {}
    # one mapping per priority: the one of the named queue (normal's, where the bench's jobs go)
    assert runner.worker_mapping(Lambda(), "jobs-local-worker", "jobs-local-jobs")["UUID"] == "c"
    assert runner.worker_mapping(Lambda(), "jobs-local-worker", "jobs-local-jobs-high") == {}


def test_results_show_the_vars():
    results = {
        "started_at": "2026-01-01T00:00:00Z",
        "machine": "test",
        "command": "invoke bench --var=worker_batch_size=1",
        "config": {"jobs": 1, "clients": 1},
        "variables": {"worker_batch_size": 1, "log_level": "DEBUG"},
        "targets": {},
        "figures": {"settings": {"worker_batch_size": 1}},
    }
    markdown = report.markdown(results)
    assert "`invoke bench --var=worker_batch_size=1`" in markdown
    assert 'Terraform variables over `environments/local.tfvars`: `worker_batch_size = 1`, `log_level = "DEBUG"`.' in (
        markdown
    )
    assert "| settings.worker_batch_size | 1 |" in markdown


# ---- one tiny run on the embedded stack ---------------------------------------------------

JOBS, CLIENTS = 20, 2


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench-work")
    out_dir = tmp_path_factory.mktemp("bench-out")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOBSTACK_WORK_ROOT", str(work))  # own terraform state: never another session's
        config = BenchConfig(
            jobs=JOBS,
            clients=CLIENTS,
            out_dir=out_dir,
            listing_items=200,
            listing_samples=3,
            cold_runs=1,
            schedule_jobs=4,
            webhook_jobs=4,
            command="pytest tiny run",
            fair_a_jobs=40,
            fair_b_jobs=3,
            priority_backlog=20,
        )
        results = run(config, out=lambda line: None)
    return results, out_dir


@pytest.mark.slow
@pytest.mark.e2e
def test_tiny_run_writes_every_figure(tiny_run):
    _, out_dir = tiny_run
    saved = json.loads((out_dir / "results.json").read_text())
    figures = saved["figures"]
    for key in ("jobs_per_s", "create_p50_ms", "create_latency", "submit_to_complete"):
        assert key in figures["floor"]
    stack = figures["stack"]
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        assert isinstance(stack["post_latency"][key], float)
    for key in ("p50_ms", "p99_ms"):
        assert isinstance(stack["submit_to_complete"][key], float)
    assert stack["accepted"] == JOBS and stack["completed"] == JOBS
    assert figures["floor"]["completed"] == JOBS
    webhooks = figures["webhooks"]  # README "Webhooks": status change -> webhook received
    assert webhooks["delivered"] == 4 and isinstance(webhooks["change_to_webhook"]["p95_ms"], float)
    assert webhooks["cost_first_attempt"]["usd_per_million_webhooks"] > 0
    listing = figures["listing"]
    assert listing["other_jobs"] == 200 and listing["empty"]["page_size"] == 50 == listing["big"]["page_size"]
    cold = figures["cold_start"]
    assert cold["import_boto3_ms"] > 0
    for label in ("api", "worker"):
        fn = cold["functions"][label]
        assert fn["import_traced_ms"] > 0 and fn["import_untraced_ms"] > 0 and fn["zip_bytes"] > 0
    assert saved["cost"]["estimate"]["usd_per_million_jobs"] > 0
    scheduling = figures["scheduling"]  # local.tfvars' threshold: the SQS-delay path
    assert scheduling["path"] == "sqs_delay" and scheduling["complete"] == 4 and scheduling["started_early"] == 0
    assert isinstance(scheduling["run_at_to_started"]["max_ms"], float)
    assert set(saved["targets"]) == {t.key for t in report.TARGETS}
    assert all(row["verdict"] for row in saved["targets"].values())
    markdown = (out_dir / "results.md").read_text()
    assert "## Targets" in markdown
    for target in report.TARGETS:
        assert target.label in markdown
    assert saved["files"]["markdown"] == str(out_dir / "results.md")


@pytest.mark.slow
@pytest.mark.e2e
def test_tiny_run_ratios_come_from_the_measured_numbers(tiny_run):
    results, _ = tiny_run
    figures, targets = results["figures"], results["targets"]
    stack, floor = figures["stack"], figures["floor"]
    assert stack["jobs_per_s_vs_floor"] == ratio(stack["jobs_per_s"], floor["jobs_per_s"])
    assert stack["post_p50_vs_floor_create_p50"] == ratio(stack["post_latency"]["p50_ms"], floor["create_p50_ms"])
    assert stack["jobs_per_s"] == pytest.approx(stack["completed"] / stack["wall_s"], rel=0.01)
    listing = figures["listing"]
    assert listing["ratio_get_jobs_p50"] == ratio(
        listing["big"]["get_jobs"]["p50_ms"], listing["empty"]["get_jobs"]["p50_ms"]
    )
    cold = figures["cold_start"]
    api = cold["functions"]["api"]
    assert api["ratio_traced_vs_boto3"] == ratio(api["import_traced_ms"], cold["import_boto3_ms"])
    assert targets["stack_vs_floor_jobs_per_s"]["value"] == stack["jobs_per_s_vs_floor"]
    assert targets["listing_ratio"]["value"] == listing["ratio_get_jobs_p50"]
    assert targets["cold_start_api_vs_boto3"]["value"] == api["ratio_traced_vs_boto3"]
    assert targets["aws_requests_per_job"]["value"] == results["cost"]["aws_requests_per_job"]
    fair, prio = figures["flow"]["fairness"], figures["flow"]["priorities"]
    assert (fair["a_jobs"], fair["b_jobs"], prio["backlog"]) == (40, 3, 20)
    # (the figures are rounded after the ratio is taken)
    assert fair["b_median_vs_a_drain"] == pytest.approx(fair["b_median_s"] / fair["a_drain_s"], abs=0.01)
    assert prio["high_backlog_vs_idle"] == pytest.approx(
        prio["high_backlog_median_s"] / prio["high_idle_median_s"], rel=0.05
    )
    # the queue's share of a high job's time is part of it (claimed after it was created)
    assert 0 <= prio["high_idle_wait_median_s"] <= prio["high_idle_median_s"]
    assert 0 <= prio["high_backlog_wait_median_s"] <= prio["high_backlog_median_s"]
    assert targets["fairness_b_median_vs_a_drain"]["value"] == fair["b_median_vs_a_drain"]
    assert targets["high_backlog_vs_idle"]["value"] == prio["high_backlog_vs_idle"]


@pytest.mark.slow
@pytest.mark.e2e
def test_tiny_run_counts_the_expected_requests(tiny_run):
    results, _ = tiny_run
    cost = results["cost"]
    by_op = cost["requests_per_job_by_operation"]
    function = by_op["function"]
    # Creating: the quota counter's GetItem, a TransactWriteItems (job record + counter) and
    # SendMessage; processing: the claim UpdateItem, one PutObject and the completing
    # TransactWriteItems (record + counter).
    assert "dynamodb:PutItem" not in function
    assert function["dynamodb:GetItem"] >= 1.0
    assert function["dynamodb:TransactWriteItems"] >= 2.0
    assert function["sqs:SendMessage"] == 1.0
    assert function["dynamodb:UpdateItem"] >= 1.0
    assert function["s3:PutObject"] == 1.0
    esm = by_op["event_source_mapping"]
    assert esm["sqs:ReceiveMessage"] > 0 and esm["sqs:DeleteMessageBatch"] > 0
    assert by_op["api_gateway"]["apigateway:POST /job"] == 1.0
    expected = 1.0 + sum(function.values()) + sum(esm.values())
    assert cost["aws_requests_per_job"] == pytest.approx(expected, abs=0.01)
    assert cost["lambda_invocations"]["api"] == JOBS and cost["lambda_invocations"]["worker"] >= 1
    floor = results["figures"]["floor"]["requests"]
    # the stack's calls: counter read + transaction (record, charge) per create; claim, result,
    # transaction (complete, counter) per job
    assert floor["dynamodb:GetItem"] == JOBS and floor["sqs:SendMessage"] == JOBS
    assert floor["dynamodb:TransactWriteItems"] == 2 * JOBS
    assert floor["dynamodb:UpdateItem"] >= JOBS and floor["s3:PutObject"] == JOBS
    assert floor["sqs:ReceiveMessage"] >= 1 and floor["sqs:DeleteMessageBatch"] >= 1
