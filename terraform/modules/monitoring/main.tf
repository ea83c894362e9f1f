# Alarms, an optional SNS topic (with an optional e-mail subscription), and a dashboard.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  alarm_actions = var.create_alarm_topic ? [aws_sns_topic.alarms[0].arn] : []
  region        = data.aws_region.current.name

  alarms = {
    dlq-not-empty = {
      description = "Messages reached the dead-letter queue: jobs failed every attempt. Inspect, fix, then redrive."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = var.dlq_name }
      statistic   = "Maximum"
      threshold   = 0
    }
    queue-oldest-message-age = {
      description = "The oldest job waiting in the queue is older than ${var.oldest_message_age_threshold_seconds}s: the worker is not keeping up or failing."
      namespace   = "AWS/SQS"
      metric      = "ApproximateAgeOfOldestMessage"
      dimensions  = { QueueName = var.queue_names.normal }
      statistic   = "Maximum"
      threshold   = var.oldest_message_age_threshold_seconds
    }
    # The other priorities' queues (normal's alarm above keeps its name from before priorities).
    queue-high-oldest-message-age = {
      description = "The oldest high-priority job waiting is older than ${var.oldest_message_age_threshold_seconds}s: the high mapping's concurrency is too low, or the worker is failing."
      namespace   = "AWS/SQS"
      metric      = "ApproximateAgeOfOldestMessage"
      dimensions  = { QueueName = var.queue_names.high }
      statistic   = "Maximum"
      threshold   = var.oldest_message_age_threshold_seconds
    }
    queue-low-oldest-message-age = {
      description = "The oldest low-priority job waiting is older than ${var.oldest_message_age_threshold_seconds}s: low is starved of concurrency, or the worker is failing."
      namespace   = "AWS/SQS"
      metric      = "ApproximateAgeOfOldestMessage"
      dimensions  = { QueueName = var.queue_names.low }
      statistic   = "Maximum"
      threshold   = var.oldest_message_age_threshold_seconds
    }
    worker-errors = {
      description = "The worker function raised errors (a whole batch failed; a failing job is a partial batch failure, not an error): look at invoke logs --function worker."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = { FunctionName = var.worker_function_name }
      statistic   = "Sum"
      threshold   = 0
    }
    worker-throttles = {
      description = "The worker function was throttled: raise its reserved concurrency or lower the mapping's maximum concurrency."
      namespace   = "AWS/Lambda"
      metric      = "Throttles"
      dimensions  = { FunctionName = var.worker_function_name }
      statistic   = "Sum"
      threshold   = 0
    }
    # --- job status events (module events) and webhooks (module webhooks) ---------------
    publisher-failures-not-empty = {
      description = "A batch of the jobs table's stream could not be published to the bus after every retry (or its records grew too old): those status changes have no event (no webhook, no operators' e-mail) until an operator acts. Each message in ${var.publisher_failures_queue_name} names the shard and the first and last sequence numbers: read it (aws sqs receive-message), find the cause (invoke logs --function publisher), fix it, then read those records from the stream again while it keeps them (24 h) and put their events. No task of tasks.py replays this queue."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = var.publisher_failures_queue_name }
      statistic   = "Maximum"
      threshold   = 0
    }
    publisher-errors = {
      description = "The event publisher function failed (crashed or timed out) on a stream batch: the mapping retries the batch, halved, so events are late; a batch still failing after the retries goes to ${var.publisher_failures_queue_name}. Look at invoke logs --function publisher. (An event PutEvents refused is a partial failure, not an error.)"
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = { FunctionName = var.publisher_function_name }
      statistic   = "Sum"
      threshold   = 0
    }
    publisher-iterator-age = {
      description = "The publisher is more than ${var.publisher_iterator_age_threshold_seconds}s behind the jobs table's stream (IteratorAge): job events, webhooks and the operators' e-mails are that late, and records older than the mapping's maximum record age go to ${var.publisher_failures_queue_name}. Look for publisher errors or throttles (invoke logs --function publisher)."
      namespace   = "AWS/Lambda"
      metric      = "IteratorAge"
      dimensions  = { FunctionName = var.publisher_function_name }
      statistic   = "Maximum"
      threshold   = var.publisher_iterator_age_threshold_seconds * 1000 # IteratorAge is in milliseconds
    }
    webhooks-dlq-not-empty = {
      description = "Webhook deliveries gave up: every attempt failed, and the job shows webhook.state = failed with its lastError (GET /job); or, rarely, the rule could not send an event to the queue. Fix the receiver (or find why in invoke logs --function notifier), then move the events back to ${var.webhook_queue_name} with SQS's DLQ redrive (aws sqs start-message-move-task --source-arn <${var.webhook_dlq_name} ARN> --destination-arn <${var.webhook_queue_name} ARN>): each is delivered again with a fresh set of attempts. invoke redrive is for the jobs DLQ only."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = var.webhook_dlq_name }
      statistic   = "Maximum"
      threshold   = 0
    }
    notifier-errors = {
      description = "The webhooks' notifier function failed as a whole (crashed or timed out, e.g. it could not read the signing secret): its batch comes back after the visibility timeout and uses up attempts. A receiver answering errors is not counted here (those are partial batch failures). Look at invoke logs --function notifier."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = { FunctionName = var.notifier_function_name }
      statistic   = "Sum"
      threshold   = 0
    }
    api-5xx = {
      description = "The API answered with 5xx errors: look at invoke logs --function api and the stage's access logs (output api_access_log_group)."
      namespace   = "AWS/ApiGateway"
      metric      = "5XXError"
      dimensions  = { ApiName = var.rest_api_name, Stage = var.stage_name }
      statistic   = "Sum"
      threshold   = 0
    }
  }
}

# ---------------------------------------------------------------------------------------
# Notification topic (optional). CloudWatch cannot publish to a topic encrypted with the
# AWS managed SNS key, so the topic gets its own key that allows CloudWatch to use it.
# ---------------------------------------------------------------------------------------

data "aws_iam_policy_document" "alarm_key" {
  #checkov:skip=CKV_AWS_111:A key policy's "*" resource is the key itself; the account-root statement is AWS's default key policy.
  #checkov:skip=CKV_AWS_356:A key policy's "*" resource is the key itself, not every resource.
  #checkov:skip=CKV_AWS_109:The account-root statement delegates key management to IAM (AWS's default key policy); without it the key is unmanageable.
  count = var.create_alarm_topic ? 1 : 0

  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchPublishes"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"] # in a key policy, "*" is this key

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_kms_key" "alarms" {
  count = var.create_alarm_topic ? 1 : 0

  description             = "Encrypts the ${var.name_prefix} alarm topic"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.alarm_key[0].json
}

resource "aws_sns_topic" "alarms" {
  count = var.create_alarm_topic ? 1 : 0

  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.alarms[0].arn
}

resource "aws_sns_topic_subscription" "email" {
  count = var.create_alarm_topic && var.alarm_email != null ? 1 : 0

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# ---------------------------------------------------------------------------------------
# Alarms
# ---------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  # Every metric here is absent when there is nothing to measure (no invocation, no request, an
  # idle queue: SQS stops reporting a queue that has been empty and unused for 6 hours, while a
  # queue holding messages keeps reporting): an empty period is a healthy one, for every alarm.
  treat_missing_data = "notBreaching"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions
}

# ---------------------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------------------

# Dashboards are global to the account (their ARNs have no region): the name carries the region.
resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = "${var.name_prefix}-${local.region}"
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "API requests and errors"
          region = local.region
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/ApiGateway", "Count", "ApiName", var.rest_api_name, "Stage", var.stage_name],
            [".", "4XXError", ".", ".", ".", "."],
            [".", "5XXError", ".", ".", ".", "."],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "API latency (p50, p99)"
          region = local.region
          period = 60
          metrics = [
            ["AWS/ApiGateway", "Latency", "ApiName", var.rest_api_name, "Stage", var.stage_name, { stat = "p50" }],
            ["...", { stat = "p99" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Queue depth (high, normal, low) and DLQ"
          region = local.region
          stat   = "Maximum"
          period = 60
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.queue_names.high],
            [".", "ApproximateNumberOfMessagesVisible", ".", var.queue_names.normal],
            [".", "ApproximateNumberOfMessagesNotVisible", ".", "."],
            [".", "ApproximateNumberOfMessagesVisible", ".", var.queue_names.low],
            [".", "ApproximateNumberOfMessagesVisible", ".", var.dlq_name],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "Oldest queued job (s)"
          region = local.region
          stat   = "Maximum"
          period = 60
          metrics = [
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.queue_names.high],
            ["...", var.queue_names.normal],
            ["...", var.queue_names.low],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title  = "Functions: invocations, errors, throttles"
          region = local.region
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/Lambda", "Invocations", "FunctionName", var.api_function_name],
            [".", "Errors", ".", "."],
            [".", "Invocations", ".", var.worker_function_name],
            [".", "Errors", ".", "."],
            [".", "Throttles", ".", "."],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title  = "Function duration (p99, ms)"
          region = local.region
          stat   = "p99"
          period = 60
          metrics = [
            ["AWS/Lambda", "Duration", "FunctionName", var.api_function_name],
            ["...", var.worker_function_name],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 18, width = 24, height = 6
        properties = {
          title  = "Jobs (application metrics)"
          region = local.region
          stat   = "Sum"
          period = 300
          metrics = [
            [var.metrics_namespace, "JobsSubmitted", "service", "jobs-api"],
            [var.metrics_namespace, "JobsCompleted", "service", "jobs-worker"],
            [var.metrics_namespace, "JobsFailed", "service", "jobs-worker"],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 24, width = 12, height = 6
        properties = {
          title  = "Events and webhooks: queues (publisher failures, webhooks, webhooks DLQ)"
          region = local.region
          stat   = "Maximum"
          period = 60
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.publisher_failures_queue_name],
            ["...", var.webhook_queue_name],
            [".", "ApproximateNumberOfMessagesNotVisible", ".", "."],
            [".", "ApproximateNumberOfMessagesVisible", ".", var.webhook_dlq_name],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 24, width = 12, height = 6
        properties = {
          title  = "Events and webhooks: functions (errors; publisher's iterator age, ms)"
          region = local.region
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/Lambda", "Invocations", "FunctionName", var.publisher_function_name],
            [".", "Errors", ".", "."],
            [".", "IteratorAge", ".", ".", { stat = "Maximum", yAxis = "right" }],
            [".", "Invocations", ".", var.notifier_function_name],
            [".", "Errors", ".", "."],
          ]
        }
      },
    ]
  })
}
