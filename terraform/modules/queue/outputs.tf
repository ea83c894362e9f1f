output "queue_urls" {
  description = "URL of each priority's queue: { high, normal, low }."
  value       = { for priority, queue in local.queues : priority => queue.url }
}

output "queue_arns" {
  description = "ARN of each priority's queue: { high, normal, low }."
  value       = { for priority, queue in local.queues : priority => queue.arn }
}

output "queue_names" {
  description = "Name of each priority's queue: { high, normal, low }."
  value       = { for priority, queue in local.queues : priority => queue.name }
}

output "queue_url" {
  description = "URL of the normal-priority jobs queue."
  value       = aws_sqs_queue.jobs.url
}

output "queue_arn" {
  description = "ARN of the normal-priority jobs queue."
  value       = aws_sqs_queue.jobs.arn
}

output "queue_name" {
  description = "Name of the normal-priority jobs queue."
  value       = aws_sqs_queue.jobs.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "visibility_timeout_seconds" {
  description = "Visibility timeout of the job queues (6x the worker timeout + batching window)."
  value       = aws_sqs_queue.jobs.visibility_timeout_seconds
}

output "max_receive_count" {
  description = "Deliveries before a message moves to the DLQ."
  value       = var.max_receive_count
}
