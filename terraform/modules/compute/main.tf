# The api and worker Lambdas, their log groups and roles, and the SQS event source mappings
# (one per priority queue).

data "aws_region" "current" {}

locals {
  functions = {
    api = {
      name                 = "${var.name_prefix}-api"
      handler              = "jobs.api.lambda_handler"
      zip_path             = var.api_zip_path
      memory_mb            = var.api_memory_mb
      timeout_seconds      = var.api_timeout_seconds
      reserved_concurrency = var.api_reserved_concurrency
      service_name         = "jobs-api"
    }
    worker = {
      name                 = "${var.name_prefix}-worker"
      handler              = "jobs.worker.lambda_handler"
      zip_path             = var.worker_zip_path
      memory_mb            = var.worker_memory_mb
      timeout_seconds      = var.worker_timeout_seconds
      reserved_concurrency = var.worker_reserved_concurrency
      service_name         = "jobs-worker"
    }
  }

  # Every setting the code reads (docs/architecture.md); POWERTOOLS_SERVICE_NAME is per function.
  common_environment = merge({
    JOBS_TABLE_NAME                  = var.table_name
    RESULTS_BUCKET_NAME              = var.bucket_name
    JOBS_QUEUE_URL                   = var.queue_urls["normal"]
    JOBS_QUEUE_URL_HIGH              = var.queue_urls["high"]
    JOBS_QUEUE_URL_LOW               = var.queue_urls["low"]
    ALLOWED_CLIENT_ID                = var.allowed_client_id
    CORS_ALLOWED_ORIGINS             = join(",", var.cors_allowed_origins)
    MAX_RECEIVE_COUNT                = tostring(var.max_receive_count)
    JOB_RETENTION_DAYS               = tostring(var.job_retention_days)
    RESULT_URL_TTL_SECONDS           = tostring(var.result_url_ttl_seconds)
    QUOTA_TABLE_NAME                 = var.quota_table_name
    QUOTA_MAX_ACTIVE_JOBS            = tostring(var.quota_max_active_jobs)
    QUOTA_SUBMIT_RATE_PER_SECOND     = tostring(var.quota_submit_rate_per_second)
    QUOTA_SUBMIT_BURST               = tostring(var.quota_submit_burst)
    QUOTA_TIERS                      = jsonencode(var.quota_tiers)
    JOBS_QUEUE_ARN                   = var.queue_arns["normal"]
    JOBS_QUEUE_ARN_HIGH              = var.queue_arns["high"]
    JOBS_QUEUE_ARN_LOW               = var.queue_arns["low"]
    JOBS_DLQ_ARN                     = var.dlq_arn
    JOBS_DLQ_URL                     = var.dlq_url
    SCHEDULE_GROUP_NAME              = var.schedule_group_name
    SCHEDULER_ROLE_ARN               = var.scheduler_role_arn
    MAX_SCHEDULE_DAYS                = tostring(var.max_schedule_days)
    SCHEDULE_DELAY_THRESHOLD_SECONDS = tostring(var.schedule_delay_threshold_seconds)
    POWERTOOLS_METRICS_NAMESPACE     = var.metrics_namespace
    POWERTOOLS_LOG_LEVEL             = var.log_level
    WEBHOOK_ALLOW_LOOPBACK           = tostring(var.webhook_allow_loopback) # callback URL check (README "Webhooks")
    }, var.high_priority_group == null || var.high_priority_group == "" ? {} : {
    HIGH_PRIORITY_GROUP = var.high_priority_group # absent: nobody may submit high
  })

  # Lambda's advanced logging controls filter JSON logs by level, with names of their own:
  # without them a function with JSON log format drops DEBUG lines whatever the code logs.
  application_log_level = { DEBUG = "DEBUG", INFO = "INFO", WARNING = "WARN", ERROR = "ERROR", CRITICAL = "FATAL" }[var.log_level]
  system_log_level      = { DEBUG = "DEBUG", INFO = "INFO", WARNING = "WARN", ERROR = "WARN", CRITICAL = "WARN" }[var.log_level]

  # Each priority queue's mapping and its maximum concurrency (normal: max_concurrency).
  mapping_concurrency = {
    high   = var.priority_max_concurrency.high
    normal = var.max_concurrency
    low    = var.priority_max_concurrency.low
  }
  queue_arns = [for priority in ["high", "normal", "low"] : var.queue_arns[priority]]

  lambda_logs_actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
  xray_actions        = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
}

# ---------------------------------------------------------------------------------------
# Log groups: created (with retention) before the functions, so Lambda never creates an
# unmanaged, never-expiring one.
# ---------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:Logs are encrypted by CloudWatch Logs by default; a customer managed key is not required for job logs.
  #checkov:skip=CKV_AWS_338:Retention is an environment setting (log_retention_days), deliberately shorter than a year outside prod.
  for_each = local.functions

  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
}

# ---------------------------------------------------------------------------------------
# IAM: one role per function, least privilege on exact ARNs. Role names are global to the
# account: they carry the region, so one env deployed to two regions of an account does not
# collide (inline policy names belong to their role and need no region).
# ---------------------------------------------------------------------------------------

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${each.value.name}-${data.aws_region.current.name}-role"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json

  lifecycle {
    precondition {
      condition     = length("${each.value.name}-${data.aws_region.current.name}-role") <= 64
      error_message = "The IAM role name ${each.value.name}-${data.aws_region.current.name}-role has more than 64 characters: shorten name_prefix."
    }
  }
}

data "aws_iam_policy_document" "api" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = local.lambda_logs_actions
    resources = ["${aws_cloudwatch_log_group.function["api"].arn}:*"]
  }

  statement {
    sid = "JobRecords"
    actions = [
      "dynamodb:BatchGetItem",   # a batch's jobs, for the replay of its Idempotency-Key
      "dynamodb:BatchWriteItem", # a batch's records, 25 per call
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = [var.table_arn]
  }

  statement {
    sid       = "QueryIndexes"
    actions   = ["dynamodb:Query"]
    resources = var.table_index_arns
  }

  # The caller's counter: read for GET /quota and before a submit; charged in the submit's
  # transaction, freed in the transaction of a cancel or of an unqueued job's FAILED.
  statement {
    sid       = "QuotaCounters"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [var.quota_table_arn]
  }

  statement {
    sid       = "EnqueueJobs"
    actions   = ["sqs:SendMessage"]
    resources = local.queue_arns
  }

  # Jobs due beyond the SQS delay threshold: one one-time schedule each, created at submit,
  # deleted when the job is cancelled (it deletes itself once it fired).
  statement {
    sid       = "ScheduleJobs"
    actions   = ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]
    resources = [var.schedules_arn_pattern]
  }

  # A schedule acts as the scheduler role: creating one passes that role to Scheduler.
  statement {
    sid       = "PassSchedulerRole"
    actions   = ["iam:PassRole"]
    resources = [var.scheduler_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["scheduler.amazonaws.com"]
    }
  }

  statement {
    sid       = "PresignResults"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arn}/*"]
  }

  statement {
    sid       = "Tracing"
    actions   = local.xray_actions
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = local.lambda_logs_actions
    resources = ["${aws_cloudwatch_log_group.function["worker"].arn}:*"]
  }

  statement {
    sid = "UpdateJobRecords"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:UpdateItem",
    ]
    resources = [var.table_arn]
  }

  # A job's slot is freed in the transaction that finishes it (COMPLETE or FAILED).
  statement {
    sid       = "FreeQuotaSlots"
    actions   = ["dynamodb:UpdateItem"]
    resources = [var.quota_table_arn]
  }

  statement {
    sid       = "WriteResults"
    actions   = ["s3:PutObject"]
    resources = ["${var.bucket_arn}/*"]
  }

  # A retried job checks whether its died predecessor already wrote the result (HeadObject);
  # ListBucket makes a missing key answer 404 instead of 403.
  statement {
    sid       = "CheckResults"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arn}/*"]
  }

  statement {
    sid       = "CheckMissingResults"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }

  statement {
    sid = "ConsumeJobs"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
    ]
    resources = local.queue_arns
  }

  # A record an invocation has no time left to start is sent again as a new message (so it
  # keeps its attempts) instead of waiting out its visibility timeout (lambda_src/jobs/worker.py).
  statement {
    sid       = "RequeueJobs"
    actions   = ["sqs:SendMessage"]
    resources = local.queue_arns
  }

  # A job that failed its last attempt while its (re-queued) message still had receives left
  # in SQS: the worker puts the message in the DLQ itself, where SQS would not yet.
  statement {
    sid       = "DeadLetterFailedJobs"
    actions   = ["sqs:SendMessage"]
    resources = [var.dlq_arn]
  }

  statement {
    sid       = "Tracing"
    actions   = local.xray_actions
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${each.value.name}-access"
  role   = aws_iam_role.function[each.key].id
  policy = each.key == "api" ? data.aws_iam_policy_document.api.json : data.aws_iam_policy_document.worker.json
}

# ---------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_116:The worker's failures go to the SQS DLQ through the queue's redrive policy; the api is invoked synchronously. A function DLQ only serves async invokes.
  #checkov:skip=CKV_AWS_117:The functions only call regional AWS APIs; no VPC resources to reach, and a VPC would need NAT or endpoints.
  #checkov:skip=CKV_AWS_173:Environment variables hold resource names only, no secrets; the default Lambda key encrypts them at rest.
  #checkov:skip=CKV_AWS_272:Code is built deterministically from this repository and deployed by Terraform; code signing is left to the organisation's pipeline.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is an environment setting (-1 = unreserved) and set in prod.
  for_each = local.functions

  function_name    = each.value.name
  role             = aws_iam_role.function[each.key].arn
  handler          = each.value.handler
  runtime          = var.runtime
  architectures    = [var.architecture]
  filename         = each.value.zip_path
  source_code_hash = filebase64sha256(each.value.zip_path)
  memory_size      = each.value.memory_mb
  timeout          = each.value.timeout_seconds

  reserved_concurrent_executions = each.value.reserved_concurrency

  lifecycle {
    precondition {
      condition     = each.key != "worker" || var.worker_reserved_concurrency < 0 || var.worker_reserved_concurrency >= sum(values(local.mapping_concurrency))
      error_message = "worker_reserved_concurrency (${var.worker_reserved_concurrency}) is below the sum of the priority mappings' maximum concurrency (${sum(values(local.mapping_concurrency))}): the mappings would be throttled and high could wait behind normal. Raise it, or lower the mappings' concurrency."
    }
  }

  environment {
    variables = merge(local.common_environment, {
      POWERTOOLS_SERVICE_NAME = each.value.service_name
    })
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.function[each.key].name
    application_log_level = local.application_log_level
    system_log_level      = local.system_log_level
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
  ]
}

# ---------------------------------------------------------------------------------------
# SQS -> worker
# ---------------------------------------------------------------------------------------

# One mapping per priority queue, each with its own maximum concurrency: high is served
# while normal's mapping is saturated, and low always has its own (no starvation).
resource "aws_lambda_event_source_mapping" "worker" {
  for_each = local.mapping_concurrency

  event_source_arn                   = var.queue_arns[each.key]
  function_name                      = aws_lambda_function.function["worker"].arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = each.value
  }

  # The role must be able to receive from the queue before the mapping is created.
  depends_on = [aws_iam_role_policy.function]
}

# The mapping that existed before priorities is normal's: same resource, no replacement.
moved {
  from = aws_lambda_event_source_mapping.worker
  to   = aws_lambda_event_source_mapping.worker["normal"]
}
