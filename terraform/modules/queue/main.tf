# The jobs queue and its dead-letter queue.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  queue_name = "${var.name_prefix}-jobs"
  # The jobs queue's ARN, built from its name so that the DLQ can name it in its
  # redrive-allow policy at creation (the queue refers to the DLQ, so a reference back
  # would be a cycle; a separate policy resource would wait for a third queue update).
  queue_arn = "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:${local.queue_name}"
  dlq_name  = "${var.name_prefix}-jobs-dlq"
  # A message must stay invisible while the worker may still be processing it: at least six
  # worker timeouts (AWS guidance for Lambda event sources) plus the batching window.
  visibility_timeout_seconds = 6 * var.worker_timeout_seconds + var.batching_window_seconds
}

resource "aws_sqs_queue" "dlq" {
  name                      = local.dlq_name
  message_retention_seconds = 1209600 # 14 days, the SQS maximum: time to inspect and redrive
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn

  # Only the jobs queue may use the DLQ as its dead-letter target.
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.queue_arn]
  })
}

resource "aws_sqs_queue" "jobs" {
  name                       = local.queue_name
  visibility_timeout_seconds = local.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = var.kms_key_arn == null ? true : null
  kms_master_key_id          = var.kms_key_arn

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}
