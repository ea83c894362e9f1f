# Job status events: the stack's EventBridge bus, the publisher Lambda that turns the jobs
# table's DynamoDB stream into `Job Status Changed` events on it, and the operators' SNS topic
# (FAILED jobs, optionally every completion) fed by a rule on the bus.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  bus_name         = "${var.name_prefix}-events"
  function_name    = "${var.name_prefix}-publisher"
  role_name        = "${var.name_prefix}-publisher-${data.aws_region.current.name}-role"
  failures_name    = "${var.name_prefix}-publisher-failures"
  topic_name       = "${var.name_prefix}-job-events"
  operators_rule   = "${var.name_prefix}-job-events-operators"
  detail_type      = "Job Status Changed"
  account_id       = data.aws_caller_identity.current.account_id
  operator_status  = var.notify_completions ? ["FAILED", "COMPLETE"] : ["FAILED"]
  application_logs = { DEBUG = "DEBUG", INFO = "INFO", WARNING = "WARN", ERROR = "ERROR", CRITICAL = "FATAL" }[var.log_level]
  system_logs      = { DEBUG = "DEBUG", INFO = "INFO", WARNING = "WARN", ERROR = "WARN", CRITICAL = "WARN" }[var.log_level]
}

# ---------------------------------------------------------------------------------------
# The bus
# ---------------------------------------------------------------------------------------

resource "aws_cloudwatch_event_bus" "this" {
  name = local.bus_name
}

# ---------------------------------------------------------------------------------------
# Where the stream mapping sends a batch it gave up on (retries or record age exhausted):
# the batch's shard and sequence numbers, so an operator can read the records again
# within the stream's 24 hours. Nothing is dropped silently.
# ---------------------------------------------------------------------------------------

resource "aws_sqs_queue" "publisher_failures" {
  name                      = local.failures_name
  message_retention_seconds = 1209600 # 14 days, the SQS maximum
  sqs_managed_sse_enabled   = true
}

# ---------------------------------------------------------------------------------------
# The publisher: log group, role (least privilege), function, stream mapping
# ---------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "publisher" {
  #checkov:skip=CKV_AWS_158:Logs are encrypted by CloudWatch Logs by default; a customer managed key is not required for job logs.
  #checkov:skip=CKV_AWS_338:Retention is an environment setting (log_retention_days), deliberately shorter than a year outside prod.
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "publisher" {
  name               = local.role_name
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json

  lifecycle {
    precondition {
      condition     = length(local.role_name) <= 64
      error_message = "The IAM role name ${local.role_name} has more than 64 characters: shorten name_prefix."
    }
  }
}

data "aws_iam_policy_document" "publisher" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.publisher.arn}:*"]
  }

  # The mapping reads the stream as the function's role.
  statement {
    sid = "ReadJobsStream"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
    ]
    resources = [var.table_stream_arn]
  }

  # The mapping lists the table's streams (AWS SAM's DynamoDBStreamReadPolicy scopes it so).
  statement {
    sid       = "ListJobsStreams"
    actions   = ["dynamodb:ListStreams"]
    resources = ["${split("/stream/", var.table_stream_arn)[0]}/stream/*"]
  }

  statement {
    sid       = "PutJobEvents"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.this.arn]
  }

  # The mapping's on-failure destination is written with the function's role too.
  statement {
    sid       = "ReportFailedBatches"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.publisher_failures.arn]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

resource "aws_iam_role_policy" "publisher" {
  name   = "${local.function_name}-access"
  role   = aws_iam_role.publisher.id
  policy = data.aws_iam_policy_document.publisher.json
}

resource "aws_lambda_function" "publisher" {
  #checkov:skip=CKV_AWS_116:Invoked by a stream event source mapping, whose on-failure destination (an SQS queue) keeps what could not be published; a function DLQ only serves async invokes.
  #checkov:skip=CKV_AWS_117:The function only calls regional AWS APIs; no VPC resources to reach, and a VPC would need NAT or endpoints.
  #checkov:skip=CKV_AWS_173:Environment variables hold resource names only, no secrets; the default Lambda key encrypts them at rest.
  #checkov:skip=CKV_AWS_272:Code is built deterministically from this repository and deployed by Terraform; code signing is left to the organisation's pipeline.
  #checkov:skip=CKV_AWS_115:One stream shard is read by one invocation at a time (parallelization factor 1): the mapping bounds its concurrency.
  function_name    = local.function_name
  role             = aws_iam_role.publisher.arn
  handler          = "jobs.publisher.lambda_handler"
  runtime          = var.runtime
  architectures    = [var.architecture]
  filename         = var.publisher_zip_path
  source_code_hash = filebase64sha256(var.publisher_zip_path)
  memory_size      = var.memory_mb
  timeout          = var.timeout_seconds

  environment {
    variables = {
      EVENT_BUS_NAME               = aws_cloudwatch_event_bus.this.name
      EVENT_SOURCE                 = var.event_source
      EVENT_PUT_ATTEMPTS           = tostring(var.put_attempts)
      POWERTOOLS_SERVICE_NAME      = "jobs-publisher"
      POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
      POWERTOOLS_LOG_LEVEL         = var.log_level
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.publisher.name
    application_log_level = local.application_logs
    system_log_level      = local.system_logs
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.publisher, aws_iam_role_policy.publisher]
}

# The jobs table's stream -> the publisher. A record whose event could not be put is reported
# in batchItemFailures: the batch is retried from it (bisected on a function error), up to
# maximum_retry_attempts times or until its records are maximum_record_age_seconds old; then
# the batch's description goes to the failures queue and the shard moves on.
resource "aws_lambda_event_source_mapping" "publisher" {
  event_source_arn                   = var.table_stream_arn
  function_name                      = aws_lambda_function.publisher.arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.batching_window_seconds
  parallelization_factor             = 1 # one batch per shard at a time: a job's events in write order
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = var.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.maximum_record_age_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.publisher_failures.arn
    }
  }

  # The role must be able to read the stream before the mapping is created.
  depends_on = [aws_iam_role_policy.publisher]
}

# ---------------------------------------------------------------------------------------
# Operators' topic: FAILED jobs (and every COMPLETE when notify_completions) from a rule on
# the bus. EventBridge cannot set SNS message attributes: subscribers filter on the message
# body (FilterPolicyScope = MessageBody), which is the event (README "Events and notifications").
# EventBridge can publish to an encrypted topic only with a customer managed key it may use.
# ---------------------------------------------------------------------------------------

data "aws_iam_policy_document" "topic_key" {
  #checkov:skip=CKV_AWS_111:A key policy's "*" resource is the key itself; the account-root statement is AWS's default key policy.
  #checkov:skip=CKV_AWS_356:A key policy's "*" resource is the key itself, not every resource.
  #checkov:skip=CKV_AWS_109:The account-root statement delegates key management to IAM (AWS's default key policy); without it the key is unmanageable.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "EventBridgePublishes"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"] # in a key policy, "*" is this key

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "topic" {
  description             = "Encrypts the ${var.name_prefix} job events topic"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.topic_key.json
}

resource "aws_sns_topic" "job_events" {
  name              = local.topic_name
  kms_master_key_id = aws_kms_key.topic.arn
}

resource "aws_cloudwatch_event_rule" "operators" {
  name           = local.operators_rule
  description    = "Job status events operators are told of: ${join(", ", local.operator_status)}."
  event_bus_name = aws_cloudwatch_event_bus.this.name
  event_pattern = jsonencode({
    source        = [var.event_source]
    "detail-type" = [local.detail_type]
    detail        = { status = local.operator_status }
  })
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "OperatorsRulePublishes"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.job_events.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.operators.arn]
    }
  }
}

resource "aws_sns_topic_policy" "job_events" {
  arn    = aws_sns_topic.job_events.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_cloudwatch_event_target" "operators" {
  rule           = aws_cloudwatch_event_rule.operators.name
  event_bus_name = aws_cloudwatch_event_bus.this.name
  target_id      = "job-events-topic"
  arn            = aws_sns_topic.job_events.arn

  depends_on = [aws_sns_topic_policy.job_events]
}

resource "aws_sns_topic_subscription" "email" {
  count = var.operator_email == null ? 0 : 1

  topic_arn = aws_sns_topic.job_events.arn
  protocol  = "email"
  endpoint  = var.operator_email
}
