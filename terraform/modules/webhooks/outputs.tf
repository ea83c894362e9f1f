output "queue_url" {
  description = "URL of the webhooks queue (events waiting for delivery or their next attempt)."
  value       = aws_sqs_queue.webhooks.url
}

output "queue_name" {
  description = "Name of the webhooks queue (the QueueName dimension of the dashboard's metrics)."
  value       = aws_sqs_queue.webhooks.name
}

output "queue_arn" {
  description = "ARN of the webhooks queue."
  value       = aws_sqs_queue.webhooks.arn
}

output "dlq_url" {
  description = "URL of the webhooks DLQ (events whose every attempt failed)."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_name" {
  description = "Name of the webhooks DLQ (for an alarm)."
  value       = aws_sqs_queue.dlq.name
}

output "function_name" {
  description = "Name of the notifier function."
  value       = aws_lambda_function.notifier.function_name
}

output "log_group" {
  description = "Log group of the notifier function."
  value       = aws_cloudwatch_log_group.notifier.name
}

output "role_arn" {
  description = "Execution role of the notifier function."
  value       = aws_iam_role.notifier.arn
}

output "secret_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the webhook signing secret."
  value       = aws_ssm_parameter.signing_secret.name
}

output "rule_name" {
  description = "Name of the EventBridge rule that routes final statuses with a callback URL to the queue."
  value       = aws_cloudwatch_event_rule.webhooks.name
}
