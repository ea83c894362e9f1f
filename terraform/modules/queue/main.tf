# The job queues, one per priority (high, normal, low), and their one dead-letter queue.
# They are standard queues used as SQS fair queues: the api sends every message with
# MessageGroupId = the job's owner, and SQS then serves quiet owners before one whose
# messages hold most of the in-flight capacity.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # normal keeps the name (and the resource address, aws_sqs_queue.jobs) of the one queue
  # that existed before priorities, so an existing stack keeps its queue and messages.
  queue_names = {
    high   = "${var.name_prefix}-jobs-high"
    normal = "${var.name_prefix}-jobs"
    low    = "${var.name_prefix}-jobs-low"
  }
  # The queues' ARNs, built from their names so that the DLQ can name them in its
  # redrive-allow policy at creation (a queue refers to the DLQ, so a reference back
  # would be a cycle; a separate policy resource would wait for a third queue update).
  queue_arns = {
    for priority, name in local.queue_names :
    priority => "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:${name}"
  }
  other_priorities = toset(["high", "low"])
  dlq_name         = "${var.name_prefix}-jobs-dlq"
  # A message must stay invisible while the worker may still be processing it: at least six
  # worker timeouts (AWS guidance for Lambda event sources) plus the batching window.
  visibility_timeout_seconds = 6 * var.worker_timeout_seconds + var.batching_window_seconds
}

resource "aws_sqs_queue" "dlq" {
  name                      = local.dlq_name
  message_retention_seconds = 1209600 # 14 days, the SQS maximum: time to inspect and redrive
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn

  # Only the job queues may use the DLQ as their dead-letter target.
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [for priority in ["high", "normal", "low"] : local.queue_arns[priority]]
  })
}

# The normal-priority queue.
resource "aws_sqs_queue" "jobs" {
  name                       = local.queue_names["normal"]
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

# The high- and low-priority queues: the same settings and the same redrive policy.
resource "aws_sqs_queue" "priority" {
  for_each = local.other_priorities

  name                       = local.queue_names[each.key]
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

locals {
  queues = {
    high   = aws_sqs_queue.priority["high"]
    normal = aws_sqs_queue.jobs
    low    = aws_sqs_queue.priority["low"]
  }
}
