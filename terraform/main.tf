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
  # The hosted login (authorization code + PKCE): the console fetches its token and revoke
  # endpoints, so its origin joins the CSP's connect-src (its length is known from the inputs).
  hosted_login           = var.cognito_domain_prefix != null || var.cognito_hosted_login_url != null
  console_login_origins  = local.hosted_login ? [module.identity.oauth_domain_url] : []
  console_callback_urls  = [for origin in local.console_origins : "${origin}/"]
  console_csp_connect_to = concat(local.console_connect_origins, local.console_login_origins)
}

module "identity" {
  source = "./modules/identity"

  name_prefix         = local.name_prefix
  user_pool_arn       = var.cognito_user_pool_arn
  app_client_id       = var.cognito_app_client_id
  issuer_url          = var.cognito_issuer_url
  deletion_protection = var.deletion_protection
  # the hosted login: created with the pool, or the existing pool's (README "Web console")
  domain_prefix       = var.cognito_domain_prefix
  hosted_login_url    = var.cognito_hosted_login_url
  oauth_scopes        = var.cognito_oauth_scopes
  oauth_callback_urls = var.cognito_domain_prefix == null ? [] : local.console_callback_urls
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

# Job status events: the bus, the stream publisher and the operators' topic (README "Events and
# notifications").
module "events" {
  source = "./modules/events"

  name_prefix        = local.name_prefix
  event_source       = "${var.project}.jobs"
  table_stream_arn   = module.storage.table_stream_arn
  publisher_zip_path = var.publisher_zip_path
  runtime            = var.lambda_runtime
  architecture       = var.lambda_architecture

  batch_size                 = var.events_batch_size
  batching_window_seconds    = var.events_batching_window_seconds
  maximum_retry_attempts     = var.events_maximum_retry_attempts
  maximum_record_age_seconds = var.events_maximum_record_age_seconds
  notify_completions         = var.job_events_notify_completions
  operator_email             = var.job_events_email

  metrics_namespace  = local.name_prefix
  log_level          = var.log_level
  log_retention_days = var.log_retention_days
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
  dlq_url          = module.queue.dlq_url

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

  webhook_allow_loopback = var.webhook_allow_loopback

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

  # the job status events and the webhooks (README "Events and notifications")
  publisher_function_name                  = module.events.publisher_function_name
  publisher_failures_queue_name            = module.events.publisher_failures_queue_name
  publisher_iterator_age_threshold_seconds = var.publisher_iterator_age_alarm_seconds
  notifier_function_name                   = module.webhooks.function_name
  webhook_queue_name                       = module.webhooks.queue_name
  webhook_dlq_name                         = module.webhooks.dlq_name
}

# ---------------------------------------------------------------------------------------
# Events and notifications (README "Events and notifications")
# ---------------------------------------------------------------------------------------

module "webhooks" {
  source = "./modules/webhooks"

  name_prefix  = local.name_prefix
  bus_name     = module.events.bus_name
  event_source = "${var.project}.jobs"
  table_name   = module.storage.table_name
  table_arn    = module.storage.table_arn
  zip_path     = var.notifier_zip_path
  runtime      = var.lambda_runtime
  architecture = var.lambda_architecture

  max_concurrency         = var.notifier_max_concurrency
  attempt_timeout_seconds = var.webhook_timeout_seconds
  max_receive_count       = var.webhook_max_receive_count
  backoff_base_seconds    = var.webhook_backoff_base_seconds
  backoff_cap_seconds     = var.webhook_backoff_cap_seconds
  allow_loopback          = var.webhook_allow_loopback
  secret_version          = var.webhook_secret_version

  metrics_namespace  = local.name_prefix
  log_level          = var.log_level
  log_retention_days = var.log_retention_days
}

module "web" {
  source = "./modules/web"
  count  = var.console_enabled ? 1 : 0

  name_prefix         = local.name_prefix
  connect_origins     = local.console_csp_connect_to
  price_class         = var.console_price_class
  aliases             = var.console_aliases
  acm_certificate_arn = var.console_acm_certificate_arn
  force_destroy       = true # the files are rebuilt from the repository by every deploy
}
