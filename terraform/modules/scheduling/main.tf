# The jobs' one-time schedules (EventBridge Scheduler): their schedule group, and the role a
# schedule acts as when it fires, which may only send to the job queues (and to the DLQ that
# takes a message the schedule could not deliver).

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  group_name = "${var.name_prefix}-jobs"
  role_name  = "${var.name_prefix}-scheduler-${data.aws_region.current.name}-role"
}

resource "aws_scheduler_schedule_group" "jobs" {
  name = local.group_name
}

# Only EventBridge Scheduler acting for this account may assume the role (the confused
# deputy guard AWS recommends for service roles).
data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = local.role_name
  assume_role_policy = data.aws_iam_policy_document.assume.json

  lifecycle {
    precondition {
      condition     = length(local.role_name) <= 64
      error_message = "The IAM role name ${local.role_name} has more than 64 characters: shorten name_prefix."
    }
  }
}

data "aws_iam_policy_document" "send" {
  statement {
    sid       = "SendDueJobs"
    actions   = ["sqs:SendMessage"]
    resources = var.target_queue_arns
  }

  # EventBridge Scheduler sends an event it could not deliver to the schedule's DLQ as this role.
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [var.dead_letter_queue_arn]
  }

  dynamic "statement" {
    for_each = var.queue_kms_key_arn == null ? [] : [var.queue_kms_key_arn]

    content {
      sid       = "EncryptMessages"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name_prefix}-scheduler-send"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.send.json
}
