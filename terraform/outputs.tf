output "api_url" {
  description = "Invoke URL of the API stage (append /job or /jobs)."
  value       = module.api.invoke_url
}

output "api_authorization_scopes" {
  description = "OAuth scopes every method requires: empty = Cognito ID tokens; else access tokens with one of them (invoke smoke picks the token)."
  value       = var.api_authorization_scopes
}

output "rest_api_id" {
  description = "Id of the REST API."
  value       = module.api.rest_api_id
}

output "stage_name" {
  description = "Name of the API stage."
  value       = module.api.stage_name
}

output "table_name" {
  description = "Jobs DynamoDB table."
  value       = module.storage.table_name
}

output "quota_table_name" {
  description = "Quotas DynamoDB table (one counter item per user)."
  value       = module.storage.quota_table_name
}

output "bucket_name" {
  description = "Results S3 bucket."
  value       = module.storage.bucket_name
}

output "queue_url" {
  description = "Jobs SQS queue URL (normal priority)."
  value       = module.queue.queue_url
}

output "queue_urls" {
  description = "URL of each priority's jobs queue: { high, normal, low }."
  value       = module.queue.queue_urls
}

output "dlq_url" {
  description = "Dead-letter queue URL."
  value       = module.queue.dlq_url
}

output "api_function_name" {
  description = "Name of the api Lambda function."
  value       = module.compute.api_function_name
}

output "worker_function_name" {
  description = "Name of the worker Lambda function."
  value       = module.compute.worker_function_name
}

output "api_log_group" {
  description = "Log group of the api function."
  value       = module.compute.api_log_group
}

output "worker_log_group" {
  description = "Log group of the worker function."
  value       = module.compute.worker_log_group
}

output "api_access_log_group" {
  description = "Log group of the API stage's access logs."
  value       = module.api.access_log_group
}

output "user_pool_id" {
  description = "Cognito user pool the API trusts."
  value       = module.identity.user_pool_id
}

output "user_pool_arn" {
  description = "ARN of that user pool."
  value       = module.identity.user_pool_arn
}

output "user_pool_client_id" {
  description = "App client id tokens must be issued to."
  value       = module.identity.app_client_id
}

output "user_pool_created" {
  description = "Whether this stack created the user pool (true when the env gives none)."
  value       = module.identity.created
}

output "issuer_url" {
  description = "Issuer (iss) of the pool's tokens."
  value       = module.identity.issuer_url
}

output "region" {
  description = "AWS region of the stack."
  value       = var.region
}

output "name_prefix" {
  description = "Prefix of every resource name."
  value       = local.name_prefix
}

output "visibility_timeout_seconds" {
  description = "Visibility timeout of the jobs queue."
  value       = module.queue.visibility_timeout_seconds
}

output "max_receive_count" {
  description = "Deliveries before a job message moves to the DLQ."
  value       = module.queue.max_receive_count
}

output "event_source_mapping_uuids" {
  description = "UUID of each priority queue's event source mapping: { high, normal, low }."
  value       = module.compute.event_source_mapping_uuids
}

output "event_source_mapping_uuid" {
  description = "UUID of the SQS -> worker event source mapping."
  value       = module.compute.event_source_mapping_uuid
}

output "alarm_topic_arn" {
  description = "Alarm SNS topic, or null."
  value       = module.monitoring.alarm_topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the stack."
  value       = module.monitoring.dashboard_name
}

output "schedule_group_name" {
  description = "EventBridge Scheduler group of the jobs' one-time schedules (jobs due beyond the SQS delay threshold)."
  value       = module.scheduling.schedule_group_name
}

output "scheduler_role_arn" {
  description = "Role the jobs' schedules act as (may only send to the job queues and the DLQ)."
  value       = module.scheduling.scheduler_role_arn
}

# --- job status events (module events) ---------------------------------------------------

output "event_bus_name" {
  description = "The stack's EventBridge bus (`Job Status Changed` events)."
  value       = module.events.bus_name
}

output "event_bus_arn" {
  description = "ARN of the stack's EventBridge bus."
  value       = module.events.bus_arn
}

output "event_source" {
  description = "The job status events' `source` (`<project>.jobs`)."
  value       = module.events.event_source
}

output "publisher_function_name" {
  description = "The event publisher function (the jobs table's stream -> the bus)."
  value       = module.events.publisher_function_name
}

output "publisher_log_group" {
  description = "Log group of the event publisher."
  value       = module.events.publisher_log_group
}

output "publisher_failures_queue_url" {
  description = "Queue that gets the description of a stream batch the publisher gave up on."
  value       = module.events.publisher_failures_queue_url
}

output "job_events_topic_arn" {
  description = "The operators' SNS topic (FAILED jobs, and COMPLETE ones when job_events_notify_completions)."
  value       = module.events.job_events_topic_arn
}

# Webhooks (README "Webhooks")

output "webhook_queue_url" {
  description = "Webhooks queue (events waiting for delivery or their next attempt)."
  value       = module.webhooks.queue_url
}

output "webhook_dlq_url" {
  description = "Webhooks DLQ (events whose every delivery attempt failed)."
  value       = module.webhooks.dlq_url
}

output "notifier_function_name" {
  description = "Name of the webhooks' notifier function."
  value       = module.webhooks.function_name
}

output "notifier_log_group" {
  description = "Log group of the notifier function."
  value       = module.webhooks.log_group
}

output "webhook_secret_parameter" {
  description = "SSM SecureString parameter holding the webhook signing secret."
  value       = module.webhooks.secret_parameter_name
}

output "console_url" {
  description = "URL of the web console on CloudFront (null when console_enabled is false; the embedded default serves it on loopback)."
  value       = var.console_enabled ? module.web[0].console_url : null
}

output "console_bucket_name" {
  description = "Bucket of the web console's files (invoke deploy uploads them and config.json)."
  value       = var.console_enabled ? module.web[0].bucket_name : null
}

output "console_distribution_id" {
  description = "CloudFront distribution of the web console (invoke deploy invalidates it after an upload)."
  value       = var.console_enabled ? module.web[0].distribution_id : null
}

output "cognito_oauth_domain" {
  description = "https base URL of the user pool's hosted login domain, written to the console's config.json as oauth_domain (null: password sign-in only)."
  value       = module.identity.oauth_domain_url
}

output "cognito_oauth_scopes" {
  description = "Scopes the console asks the hosted login for ([] without a hosted login)."
  value       = module.identity.oauth_scopes
}
