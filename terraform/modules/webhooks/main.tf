# Signed webhooks per job (README "Webhooks"): a rule on the jobs' bus routes the final status
# events of jobs that have a callback URL to the webhooks queue; the notifier function delivers
# them (signed with the secret in SSM), retrying with back-off; what fails every attempt ends in
# the webhooks DLQ.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  function_name = "${var.name_prefix}-notifier"
  role_name     = "${local.function_name}-${data.aws_region.current.name}-role"
  queue_name    = "${var.name_prefix}-webhooks"
  dlq_name      = "${var.name_prefix}-webhooks-dlq"
  rule_name     = "${var.name_prefix}-webhooks"
  # Records per invocation: handled one after the other, each at most ~3 socket timeouts.
  batch_size = 5
  # The function may spend every record's attempt in full, plus margin.
  function_timeout_seconds = ceil(local.batch_size * 3 * var.attempt_timeout_seconds) + 10
  # A message stays invisible while an invocation may still hold it (AWS guidance: 6 x timeout).
  # A failed attempt sets its own, shorter or longer, visibility: its back-off.
  visibility_timeout_seconds = 6 * local.function_timeout_seconds
  queue_arn                  = "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:${local.queue_name}"
  dlq_arn                    = "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:${local.dlq_name}"
  rule_arn                   = "arn:${data.aws_partition.current.partition}:events:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:rule/${var.bus_name}/${local.rule_name}"

  application_log_level = { DEBUG = "DEBUG", INFO = "INFO", WARNING = "WARN", ERROR = "ERROR", CRITICAL = "FATAL" }[var.log_level]
  system_log_level      = { DEBUG = "DEBUG", INFO = "INFO", WARNING = "WARN", ERROR = "WARN", CRITICAL = "WARN" }[var.log_level]
}

# ---------------------------------------------------------------------------------------
# The signing secret: an SSM SecureString (AWS managed key aws/ssm), generated with Secrets
# Manager's GetRandomPassword (the AWS provider is the only provider here) as an EPHEMERAL
# value written through the write-only `value_wo`: it is in neither the plan nor the state.
# It is written when the parameter is created and whenever secret_version changes (rotation:
# README "Webhooks"); in between, the ephemeral password of each run is not used.
# ---------------------------------------------------------------------------------------

ephemeral "aws_secretsmanager_random_password" "signing" {
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_ssm_parameter" "signing_secret" {
  #checkov:skip=CKV_AWS_337:The AWS managed key aws/ssm encrypts it; only the notifier role may read it (and decrypt through SSM).
  name             = "/${var.name_prefix}/webhooks/signing-secret"
  description      = "HMAC-SHA256 key that signs the job webhooks (Webhook-Signature)."
  type             = "SecureString"
  value_wo         = ephemeral.aws_secretsmanager_random_password.signing.random_password
  value_wo_version = var.secret_version
}

# ---------------------------------------------------------------------------------------
# Rule -> queue (+ DLQ)
# ---------------------------------------------------------------------------------------

# Only the webhooks rule may send to the queue (and, for an event it could not deliver, to the
# DLQ). Each policy is set with its queue (the queue's ARN is built from its name, so there is no
# cycle): a separate aws_sqs_queue_policy would add the provider's ~25 s attribute-propagation
# wait to every first deploy, after the queue's own.
data "aws_iam_policy_document" "from_rule" {
  for_each = { webhooks = local.queue_arn, dlq = local.dlq_arn }

  statement {
    sid       = "FromTheWebhooksRule"
    actions   = ["sqs:SendMessage"]
    resources = [each.value]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.rule_arn]
    }
  }
}

# The policies were separate aws_sqs_queue_policy resources before: forget them without deleting
# them (a delete would clear the Policy attribute the queues now set themselves).
removed {
  from = aws_sqs_queue_policy.from_rule

  lifecycle {
    destroy = false
  }
}

resource "aws_sqs_queue" "dlq" {
  name                      = local.dlq_name
  message_retention_seconds = 1209600 # 14 days, the SQS maximum: time to inspect and redrive
  sqs_managed_sse_enabled   = true
  policy                    = data.aws_iam_policy_document.from_rule["dlq"].json

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.queue_arn]
  })
}

resource "aws_sqs_queue" "webhooks" {
  name                       = local.queue_name
  visibility_timeout_seconds = local.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true
  policy                     = data.aws_iam_policy_document.from_rule["webhooks"].json

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_cloudwatch_event_rule" "webhooks" {
  name           = local.rule_name
  description    = "Final status of a job that has a callback URL -> the webhooks queue."
  event_bus_name = var.bus_name
  event_pattern = jsonencode({
    source        = [var.event_source]
    "detail-type" = ["Job Status Changed"]
    detail = {
      status       = ["COMPLETE", "FAILED", "CANCELLED"]
      callback_url = [{ exists = true }]
    }
  })
}

resource "aws_cloudwatch_event_target" "webhooks" {
  rule           = aws_cloudwatch_event_rule.webhooks.name
  event_bus_name = var.bus_name
  target_id      = "webhooks-queue"
  arn            = aws_sqs_queue.webhooks.arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# ---------------------------------------------------------------------------------------
# The notifier function: its log group, role (least privilege) and queue mapping
# ---------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "notifier" {
  #checkov:skip=CKV_AWS_158:Logs are encrypted by CloudWatch Logs by default; a customer managed key is not required for delivery logs.
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

resource "aws_iam_role" "notifier" {
  name               = local.role_name
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json

  lifecycle {
    precondition {
      condition     = length(local.role_name) <= 64
      error_message = "The IAM role name ${local.role_name} has more than 64 characters: shorten name_prefix."
    }
  }
}

data "aws_iam_policy_document" "notifier" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.notifier.arn}:*"]
  }

  statement {
    sid = "ConsumeWebhooks"
    actions = [
      "sqs:ChangeMessageVisibility", # a failed attempt's back-off
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
    ]
    resources = [aws_sqs_queue.webhooks.arn]
  }

  statement {
    sid       = "ReadSigningSecret"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.signing_secret.arn]
  }

  # SecureString: SSM decrypts with the AWS managed key on the caller's behalf; only through
  # SSM, and only for this parameter.
  statement {
    sid       = "DecryptSigningSecret"
    actions   = ["kms:Decrypt"]
    resources = ["arn:${data.aws_partition.current.partition}:kms:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${data.aws_region.current.name}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:PARAMETER_ARN"
      values   = [aws_ssm_parameter.signing_secret.arn]
    }
  }

  # The job's delivery state only: UpdateItem on the jobs table, of the key and `webhook`.
  statement {
    sid       = "RecordDeliveryState"
    actions   = ["dynamodb:UpdateItem"]
    resources = [var.table_arn]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:Attributes"
      values   = ["owner_id", "job_id", "webhook"]
    }

    condition {
      test     = "StringEqualsIfExists"
      variable = "dynamodb:ReturnValues"
      values   = ["NONE"]
    }
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

resource "aws_iam_role_policy" "notifier" {
  name   = "${local.function_name}-access"
  role   = aws_iam_role.notifier.id
  policy = data.aws_iam_policy_document.notifier.json
}

resource "aws_lambda_function" "notifier" {
  #checkov:skip=CKV_AWS_116:Failed deliveries go to the webhooks DLQ through the queue's redrive policy; a function DLQ only serves async invokes.
  #checkov:skip=CKV_AWS_117:The notifier calls public HTTPS receivers and regional AWS APIs; a VPC would need NAT for both.
  #checkov:skip=CKV_AWS_173:Environment variables hold names and numbers only; the signing secret is read from SSM at run time.
  #checkov:skip=CKV_AWS_272:Code is built deterministically from this repository and deployed by Terraform; code signing is left to the organisation's pipeline.
  #checkov:skip=CKV_AWS_115:Its concurrency is bounded by the event source mapping's maximum concurrency (notifier_max_concurrency).
  function_name    = local.function_name
  role             = aws_iam_role.notifier.arn
  handler          = "jobs.notifier.lambda_handler"
  runtime          = var.runtime
  architectures    = [var.architecture]
  filename         = var.zip_path
  source_code_hash = filebase64sha256(var.zip_path)
  memory_size      = var.memory_mb
  timeout          = local.function_timeout_seconds

  environment {
    variables = {
      JOBS_TABLE_NAME              = var.table_name
      WEBHOOK_QUEUE_URL            = aws_sqs_queue.webhooks.url
      WEBHOOK_SECRET_PARAMETER     = aws_ssm_parameter.signing_secret.name
      WEBHOOK_TIMEOUT_SECONDS      = tostring(var.attempt_timeout_seconds)
      WEBHOOK_MAX_RECEIVE_COUNT    = tostring(var.max_receive_count)
      WEBHOOK_BACKOFF_BASE_SECONDS = tostring(var.backoff_base_seconds)
      WEBHOOK_BACKOFF_CAP_SECONDS  = tostring(var.backoff_cap_seconds)
      WEBHOOK_ALLOW_LOOPBACK       = tostring(var.allow_loopback)
      POWERTOOLS_SERVICE_NAME      = "jobs-notifier"
      POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
      POWERTOOLS_LOG_LEVEL         = var.log_level
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.notifier.name
    application_log_level = local.application_log_level
    system_log_level      = local.system_log_level
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.notifier, aws_iam_role_policy.notifier]
}

resource "aws_lambda_event_source_mapping" "notifier" {
  event_source_arn        = aws_sqs_queue.webhooks.arn
  function_name           = aws_lambda_function.notifier.arn
  batch_size              = local.batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.max_concurrency
  }

  depends_on = [aws_iam_role_policy.notifier]
}
