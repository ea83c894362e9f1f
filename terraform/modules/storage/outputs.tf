output "table_name" {
  description = "Name of the jobs DynamoDB table."
  value       = aws_dynamodb_table.jobs.name
}

output "table_arn" {
  description = "ARN of the jobs DynamoDB table."
  value       = aws_dynamodb_table.jobs.arn
}

output "table_index_arns" {
  description = "ARNs covering the table's secondary indexes (for Query permissions)."
  value       = ["${aws_dynamodb_table.jobs.arn}/index/*"]
}

output "table_stream_arn" {
  description = "ARN of the jobs table's DynamoDB stream (NEW_AND_OLD_IMAGES), or null when the stream is off."
  value       = var.stream_enabled ? aws_dynamodb_table.jobs.stream_arn : null
}

output "quota_table_name" {
  description = "Name of the quotas DynamoDB table (one counter item per user)."
  value       = aws_dynamodb_table.quotas.name
}

output "quota_table_arn" {
  description = "ARN of the quotas DynamoDB table."
  value       = aws_dynamodb_table.quotas.arn
}

output "bucket_name" {
  description = "Name of the results S3 bucket."
  value       = aws_s3_bucket.results.id
}

output "bucket_arn" {
  description = "ARN of the results S3 bucket."
  value       = aws_s3_bucket.results.arn
}
