output "bus_name" {
  description = "Name of the stack's EventBridge bus (`Job Status Changed` events)."
  value       = aws_cloudwatch_event_bus.this.name
}

output "bus_arn" {
  description = "ARN of the stack's EventBridge bus."
  value       = aws_cloudwatch_event_bus.this.arn
}

output "event_source" {
  description = "The events' `source` (`<project>.jobs`)."
  value       = var.event_source
}

output "publisher_function_name" {
  description = "Name of the publisher function (stream -> bus)."
  value       = aws_lambda_function.publisher.function_name
}

output "publisher_log_group" {
  description = "Log group of the publisher function."
  value       = aws_cloudwatch_log_group.publisher.name
}

output "publisher_role_arn" {
  description = "ARN of the publisher's execution role."
  value       = aws_iam_role.publisher.arn
}

output "publisher_failures_queue_url" {
  description = "URL of the queue that gets the description of a stream batch the publisher gave up on."
  value       = aws_sqs_queue.publisher_failures.url
}

output "publisher_failures_queue_name" {
  description = "Name of that queue (the QueueName dimension of its alarm)."
  value       = aws_sqs_queue.publisher_failures.name
}

output "publisher_failures_queue_arn" {
  description = "ARN of that queue."
  value       = aws_sqs_queue.publisher_failures.arn
}

output "job_events_topic_arn" {
  description = "ARN of the operators' SNS topic (FAILED jobs, and COMPLETE ones when notify_completions)."
  value       = aws_sns_topic.job_events.arn
}

output "operators_rule_arn" {
  description = "ARN of the rule that sends the operators' events to the topic."
  value       = aws_cloudwatch_event_rule.operators.arn
}
