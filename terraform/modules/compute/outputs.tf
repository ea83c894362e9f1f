output "api_function_name" {
  description = "Name of the api Lambda function."
  value       = aws_lambda_function.function["api"].function_name
}

output "api_function_arn" {
  description = "ARN of the api Lambda function."
  value       = aws_lambda_function.function["api"].arn
}

output "api_invoke_arn" {
  description = "Invoke ARN of the api function, for the API Gateway integration."
  value       = aws_lambda_function.function["api"].invoke_arn
}

output "worker_function_name" {
  description = "Name of the worker Lambda function."
  value       = aws_lambda_function.function["worker"].function_name
}

output "worker_function_arn" {
  description = "ARN of the worker Lambda function."
  value       = aws_lambda_function.function["worker"].arn
}

output "api_log_group" {
  description = "Log group of the api function."
  value       = aws_cloudwatch_log_group.function["api"].name
}

output "worker_log_group" {
  description = "Log group of the worker function."
  value       = aws_cloudwatch_log_group.function["worker"].name
}

output "api_role_arn" {
  description = "Execution role of the api function."
  value       = aws_iam_role.function["api"].arn
}

output "worker_role_arn" {
  description = "Execution role of the worker function."
  value       = aws_iam_role.function["worker"].arn
}

output "event_source_mapping_uuids" {
  description = "UUID of each priority queue's event source mapping: { high, normal, low }."
  value       = { for priority, mapping in aws_lambda_event_source_mapping.worker : priority => mapping.uuid }
}

output "event_source_mapping_uuid" {
  description = "UUID of the SQS -> worker event source mapping."
  value       = aws_lambda_event_source_mapping.worker["normal"].uuid
}
