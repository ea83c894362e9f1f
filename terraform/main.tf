# Root module: wires the modules together. Every name comes from local.name_prefix;
# environments differ only by their tfvars (environments/<env>.tfvars).

locals {
  name_prefix = "${var.project}-${var.env}"

  # The web console (module web, optional): its origins join the API's CORS origins and the
  # results bucket's (result previews); its CSP names the API, Cognito and the results bucket.
  console_origins = var.console_enabled ? module.web[0].console_origins : []
  # (concat, not distinct: the list's length must be known at plan while the CloudFront domain is not)
  cors_allowed_origins = contains(var.cors_allowed_origins, "*") ? ["*"] : concat(var.cors_allowed_origins, local.console_origins)
  cognito_region       = split(":", module.identity.user_pool_arn)[3]
  console_connect_origins = [
    "https://${module.api.rest_api_id}.execute-api.${var.region}.amazonaws.com",
    "https://cognito-idp.${local.cognito_region}.amazonaws.com",
    # presigned result URLs: virtual-hosted style, global (us-east-1) or regional endpoint
    "https://${module.storage.bucket_name}.s3.amazonaws.com",
    "https://${module.storage.bucket_name}.s3.${var.region}.amazonaws.com",
  ]
}

module "identity" {
  source = "./modules/identity"

  name_prefix         = local.name_prefix
  user_pool_arn       = var.cognito_user_pool_arn
  app_client_id       = var.cognito_app_client_id
  issuer_url          = var.cognito_issuer_url
  deletion_protection = var.deletion_protection
}

module "storage" {
  source = "./modules/storage"

  name_prefix            = local.name_prefix
  deletion_protection    = var.deletion_protection
  point_in_time_recovery = var.point_in_time_recovery
  result_retention_days  = var.result_retention_days
  force_destroy          = var.force_destroy_bucket
  result_cors_origins    = local.cors_allowed_origins
}

module "queue" {
  source = "./modules/queue"

  name_prefix               = local.name_prefix
  worker_timeout_seconds    = var.worker_timeout_seconds
  batching_window_seconds   = var.worker_batching_window_seconds
  max_receive_count         = var.max_receive_count
  message_retention_seconds = var.queue_message_retention_seconds
}

module "scheduling" {
  source = "./modules/scheduling"

  name_prefix           = local.name_prefix
  target_queue_arns     = values(module.queue.queue_arns)
  dead_letter_queue_arn = module.queue.dlq_arn
}

module "compute" {
  source = "./modules/compute"

  name_prefix     = local.name_prefix
  api_zip_path    = var.api_zip_path
  worker_zip_path = var.worker_zip_path
  runtime         = var.lambda_runtime
  architecture    = var.lambda_architecture

  api_memory_mb               = var.api_memory_mb
  api_timeout_seconds         = var.api_timeout_seconds
  api_reserved_concurrency    = var.api_reserved_concurrency
  worker_memory_mb            = var.worker_memory_mb
  worker_timeout_seconds      = var.worker_timeout_seconds
  worker_reserved_concurrency = var.worker_reserved_concurrency
  batch_size                  = var.worker_batch_size
  batching_window_seconds     = var.worker_batching_window_seconds
  max_concurrency             = var.worker_max_concurrency
  priority_max_concurrency    = var.worker_priority_concurrency
  high_priority_group         = var.high_priority_group

  table_name       = module.storage.table_name
  table_arn        = module.storage.table_arn
  table_index_arns = module.storage.table_index_arns
  quota_table_name = module.storage.quota_table_name
  quota_table_arn  = module.storage.quota_table_arn
  bucket_name      = module.storage.bucket_name
  bucket_arn       = module.storage.bucket_arn
  queue_urls       = module.queue.queue_urls
  queue_arns       = module.queue.queue_arns
  dlq_arn          = module.queue.dlq_arn

  schedule_group_name              = module.scheduling.schedule_group_name
  schedules_arn_pattern            = module.scheduling.schedules_arn_pattern
  scheduler_role_arn               = module.scheduling.scheduler_role_arn
  max_schedule_days                = var.max_schedule_days
  schedule_delay_threshold_seconds = var.schedule_delay_threshold_seconds

  allowed_client_id      = module.identity.app_client_id
  cors_allowed_origins   = local.cors_allowed_origins
  max_receive_count      = module.queue.max_receive_count
  job_retention_days     = var.job_retention_days
  result_url_ttl_seconds = var.result_url_ttl_seconds
  metrics_namespace      = local.name_prefix

  quota_max_active_jobs        = var.quota_max_active_jobs
  quota_submit_rate_per_second = var.quota_submit_rate_per_second
  quota_submit_burst           = var.quota_submit_burst
  quota_tiers                  = var.quota_tiers

  log_level          = var.log_level
  log_retention_days = var.log_retention_days
}

module "api" {
  source = "./modules/api"

  name_prefix             = local.name_prefix
  stage_name              = var.env
  user_pool_arn           = module.identity.user_pool_arn
  function_name           = module.compute.api_function_name
  function_invoke_arn     = module.compute.api_invoke_arn
  authorization_scopes    = var.api_authorization_scopes
  throttling_rate_limit   = var.api_throttling_rate_limit
  throttling_burst_limit  = var.api_throttling_burst_limit
  execution_logging_level = var.api_execution_logging_level
  log_retention_days      = var.log_retention_days
  manage_cloudwatch_role  = var.manage_api_gateway_cloudwatch_role
}

module "monitoring" {
  source = "./modules/monitoring"

  name_prefix                          = local.name_prefix
  queue_names                          = module.queue.queue_names
  dlq_name                             = module.queue.dlq_name
  api_function_name                    = module.compute.api_function_name
  worker_function_name                 = module.compute.worker_function_name
  rest_api_name                        = module.api.rest_api_name
  stage_name                           = module.api.stage_name
  metrics_namespace                    = local.name_prefix
  oldest_message_age_threshold_seconds = var.oldest_message_age_alarm_seconds
  create_alarm_topic                   = var.create_alarm_topic
  alarm_email                          = var.alarm_email
}

module "web" {
  source = "./modules/web"
  count  = var.console_enabled ? 1 : 0

  name_prefix         = local.name_prefix
  connect_origins     = local.console_connect_origins
  price_class         = var.console_price_class
  aliases             = var.console_aliases
  acm_certificate_arn = var.console_acm_certificate_arn
  force_destroy       = true # the files are rebuilt from the repository by every deploy
}
