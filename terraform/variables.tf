# ---------------------------------------------------------------------------------------
# Identity of the environment
# ---------------------------------------------------------------------------------------

variable "project" {
  description = "Project name: the first part of every resource name and the `project` tag."
  type        = string
  default     = "jobs"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.project))
    error_message = "project must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }

  # The results bucket's name starts with project: S3 refuses names with these prefixes.
  validation {
    condition     = !anytrue([for reserved in ["xn--", "sthree-", "amzn-s3-demo-"] : startswith(var.project, reserved)])
    error_message = "project must not start with xn--, sthree- or amzn-s3-demo- (S3 reserves them for bucket names)."
  }
}

variable "env" {
  description = "Environment name (dev, prod, local, ...): the second part of every name, the API stage and the `env` tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,11}$", var.env))
    error_message = "env must be 2-12 lowercase letters and digits, starting with a letter."
  }

  # Every name starts with "<project>-<env>" (name_prefix), which the modules take up to 32
  # characters long. The longest names also carry the region (IAM roles are global to the
  # account, so theirs name it; the results bucket's name is global to S3):
  #   <name_prefix>-results-<12-digit account id>-<region>  S3 bucket, at most 63: project + env + region <= 40
  #   <name_prefix>-apigw-logs-<region>-role              IAM role, at most 64:  project + env + region <= 46
  #   <name_prefix>-worker-<region>-role                  IAM role, at most 64:  project + env + region <= 50
  # The other names (functions 64, queues 80, table 255, log groups 512, alarms 255, ...) are
  # shorter than their limits whenever these fit. Regions today have at most 14 characters
  # (ap-southeast-5, ap-northeast-3): there project + env may have 26 characters together.
  validation {
    condition     = length("${var.project}-${var.env}") <= 32
    error_message = "project and env make the name prefix \"${var.project}-${var.env}\" of ${length("${var.project}-${var.env}")} characters, but the modules allow at most 32: shorten project or env."
  }

  validation {
    condition     = length(var.project) + length(var.env) + length(var.region) <= 40
    error_message = "The results bucket would be named \"${var.project}-${var.env}-results-<account id>-${var.region}\", ${length(var.project) + length(var.env) + length(var.region) + 23} characters, but S3 bucket names have at most 63: in ${var.region} project and env may have at most ${40 - length(var.region)} characters together (now ${length(var.project) + length(var.env)}); shorten project or env."
  }
}

variable "region" {
  description = "AWS region of the stack."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "extra_tags" {
  description = "Tags added to every resource besides project and env."
  type        = map(string)
  default     = {}
}

variable "aws_endpoint_url" {
  description = "Embedded backend only: the endpoint (e.g. http://127.0.0.1:5000) every AWS service is called at. null (the default) talks to AWS."
  type        = string
  default     = null

  validation {
    condition     = var.aws_endpoint_url == null || can(regex("^https?://[^/]+/?$", var.aws_endpoint_url))
    error_message = "aws_endpoint_url must be a URL such as http://127.0.0.1:5000, or null."
  }
}

# ---------------------------------------------------------------------------------------
# Cognito: the environment's existing pool (all three), or none to create one
# ---------------------------------------------------------------------------------------

variable "cognito_user_pool_arn" {
  description = "ARN of the existing Cognito user pool whose tokens the API accepts; null creates a pool and app client."
  type        = string
  default     = null
}

variable "cognito_issuer_url" {
  description = "Issuer URL of that pool: https://cognito-idp.<region>.amazonaws.com/<pool id>."
  type        = string
  default     = null
}

variable "cognito_app_client_id" {
  description = "App client id the API accepts tokens from (checked by the function against aud/client_id)."
  type        = string
  default     = null
}

variable "cognito_domain_prefix" {
  description = "A pool the stack creates only: prefix of its hosted login domain (https://<prefix>.auth.<region>.amazoncognito.com); the app client then allows the authorization-code flow back to the console (README \"Web console\"). null (the default): no hosted login."
  type        = string
  default     = null

  validation {
    condition     = var.cognito_domain_prefix == null || var.console_enabled
    error_message = "cognito_domain_prefix needs the console (console_enabled = true): the hosted login sends users back to the console's URL."
  }
}

variable "cognito_hosted_login_url" {
  description = "An existing pool (cognito_user_pool_arn) only: the https base URL of its hosted login domain, written to the console's config.json (its app client must allow the code flow back to the console's URL). null (the default): no hosted login."
  type        = string
  default     = null
}

variable "cognito_oauth_scopes" {
  description = "Scopes the console asks the hosted login for (and a pool created here allows); must include openid, and every api_authorization_scopes entry when the API takes access tokens."
  type        = list(string)
  default     = ["openid", "email", "profile"]

  validation {
    condition = (var.cognito_domain_prefix == null && var.cognito_hosted_login_url == null) || alltrue([
      for s in var.api_authorization_scopes : contains(var.cognito_oauth_scopes, s)
    ])
    error_message = "With a hosted login, cognito_oauth_scopes must include every scope of api_authorization_scopes: the API refuses an access token without one."
  }
}

variable "cors_allowed_origins" {
  description = "Origins allowed to call the API from a browser; [\"*\"] allows any."
  type        = list(string)
  default     = ["*"]
}

variable "api_authorization_scopes" {
  description = "OAuth scopes the API requires: [] (the default) takes Cognito ID tokens only; a list takes access tokens holding at least one of its scopes, and refuses ID tokens."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------------------------------
# Lambda code and sizing
# ---------------------------------------------------------------------------------------

variable "api_zip_path" {
  description = "Path of build/api.zip (relative to the terraform/ folder, or absolute)."
  type        = string
  default     = "../build/api.zip"
}

variable "worker_zip_path" {
  description = "Path of build/worker.zip (relative to the terraform/ folder, or absolute)."
  type        = string
  default     = "../build/worker.zip"
}

variable "publisher_zip_path" {
  description = "Path of build/publisher.zip, the job status event publisher (relative to the terraform/ folder, or absolute)."
  type        = string
  default     = "../build/publisher.zip"
}

variable "notifier_zip_path" {
  description = "Path of build/notifier.zip, the webhooks' notifier (relative to the terraform/ folder, or absolute)."
  type        = string
  default     = "../build/notifier.zip"
}

variable "lambda_runtime" {
  description = "Lambda runtime of both functions; `invoke package` builds the zips' wheels for it (tooling/packaging.py SUPPORTED_RUNTIMES)."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(["python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.12 or python3.13 (the runtimes the zips are packaged and locked for)."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of both functions (arm64 or x86_64); package the zips for the same one."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "api_memory_mb" {
  description = "Memory of the api function in MB."
  type        = number
  default     = 256
}

variable "api_timeout_seconds" {
  description = "Timeout of the api function in seconds (at most 29)."
  type        = number
  default     = 10
}

variable "api_reserved_concurrency" {
  description = "Reserved concurrency of the api function; -1 = unreserved."
  type        = number
  default     = -1
}

variable "worker_memory_mb" {
  description = "Memory of the worker function in MB."
  type        = number
  default     = 512
}

variable "worker_timeout_seconds" {
  description = "Timeout of the worker function in seconds; the queue's visibility timeout is 6x this + the batching window."
  type        = number
  default     = 60
}

variable "worker_reserved_concurrency" {
  description = "Reserved concurrency of the worker function; -1 = unreserved. When set, at least worker_max_concurrency + worker_priority_concurrency.high + .low (the three mappings' sum), or the mappings are throttled and high waits behind normal."
  type        = number
  default     = -1
}

variable "worker_batch_size" {
  description = "Messages per worker invocation."
  type        = number
  default     = 10
}

variable "worker_batching_window_seconds" {
  description = "Seconds the event source mapping may wait to fill a batch."
  type        = number
  default     = 0
}

variable "worker_max_concurrency" {
  description = "Maximum concurrent worker invocations started by the normal-priority queue's SQS mapping (2-1000)."
  type        = number
  default     = 5
}

variable "worker_priority_concurrency" {
  description = "Maximum concurrent worker invocations of the high- and low-priority queues' mappings (2-1000 each): the priorities' weights next to worker_max_concurrency (normal). README \"Flow control\"."
  type = object({
    high = number
    low  = number
  })
  default = { high = 2, low = 2 }
}

variable "high_priority_group" {
  description = "Cognito group whose members may submit jobs with priority high (others get 403 priority_not_allowed); null or \"\": nobody may."
  type        = string
  default     = null
}

variable "log_level" {
  description = "POWERTOOLS_LOG_LEVEL of both functions."
  type        = string
  default     = "INFO"
}

# ---------------------------------------------------------------------------------------
# Queue, retention, API limits
# ---------------------------------------------------------------------------------------

variable "max_receive_count" {
  description = "Deliveries of a job message before it moves to the DLQ; the worker marks the job FAILED on this attempt."
  type        = number
  default     = 3
}

variable "queue_message_retention_seconds" {
  description = "How long the jobs queue keeps an unprocessed message (60 s to 10 days: dead letters keep their age in the 14-day DLQ)."
  type        = number
  default     = 345600
}

variable "job_retention_days" {
  description = "Days after creation when job records expire (DynamoDB TTL)."
  type        = number
  default     = 30
}

variable "result_retention_days" {
  description = "Days after which result files expire from the bucket."
  type        = number
  default     = 30
}

variable "result_url_ttl_seconds" {
  description = "Lifetime of the presigned result_url returned for a COMPLETE job."
  type        = number
  default     = 900
}

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second on the API stage."
  type        = number
  default     = 50
}

variable "api_throttling_burst_limit" {
  description = "Request burst allowed on the API stage."
  type        = number
  default     = 100
}

variable "api_execution_logging_level" {
  description = "API Gateway execution logging: OFF, ERROR or INFO."
  type        = string
  default     = "ERROR"
}

variable "manage_api_gateway_cloudwatch_role" {
  description = "Create the role API Gateway writes the stage's logs through and set it for the account and region (aws_api_gateway_account). Exactly one env per account and region may own it; the others (and this default) rely on it existing (docs/infrastructure.md)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of every log group in days."
  type        = number
  default     = 30
}

# ---------------------------------------------------------------------------------------
# Per-user quotas (README "Flow control"); the API stage's throttling above stays the
# coarse outer limit over all users
# ---------------------------------------------------------------------------------------

variable "quota_max_active_jobs" {
  description = "Default cap on a user's unfinished jobs (created and not yet COMPLETE, FAILED or CANCELLED)."
  type        = number
  default     = 100
}

variable "quota_submit_rate_per_second" {
  description = "Default refill rate of a user's submission token bucket, in jobs per second (may be fractional, e.g. 0.5)."
  type        = number
  default     = 5
}

variable "quota_submit_burst" {
  description = "Default size of a user's submission token bucket: jobs a user may submit at once."
  type        = number
  default     = 20
}

variable "quota_tiers" {
  description = "Tiers by Cognito group name: a user in a group gets its limits instead of the defaults (in several: the largest of each limit)."
  type = map(object({
    max_active_jobs        = number
    submit_rate_per_second = number
    submit_burst           = number
  }))
  default = {}
}

# ---------------------------------------------------------------------------------------
# Data protection
# ---------------------------------------------------------------------------------------

variable "deletion_protection" {
  description = "Protect the jobs and quotas tables (and a created user pool) from deletion."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "DynamoDB point-in-time recovery on the jobs and quotas tables."
  type        = bool
  default     = true
}

variable "force_destroy_bucket" {
  description = "Let destroy delete the results bucket with its objects (throwaway environments only)."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------------------

variable "create_alarm_topic" {
  description = "Create an SNS topic that every alarm notifies."
  type        = bool
  default     = false
}

variable "alarm_email" {
  description = "E-mail subscribed to the alarm topic; null for none."
  type        = string
  default     = null
}

variable "oldest_message_age_alarm_seconds" {
  description = "Alarm when the oldest queued job waits longer than this."
  type        = number
  default     = 900
}

variable "publisher_iterator_age_alarm_seconds" {
  description = "Alarm when the event publisher is more than this many seconds behind the jobs table's stream (IteratorAge)."
  type        = number
  default     = 300
}

# --- scheduled jobs (README "Flow control") ------------------------------------------------

variable "max_schedule_days" {
  description = "How far ahead a job may be scheduled (run_at / delay_seconds), in days."
  type        = number
  default     = 30

  validation {
    condition     = var.max_schedule_days >= 1 && var.max_schedule_days <= 365 && floor(var.max_schedule_days) == var.max_schedule_days
    error_message = "max_schedule_days must be a whole number from 1 to 365."
  }
}

variable "schedule_delay_threshold_seconds" {
  description = "Jobs due at most this many seconds ahead are sent with an SQS message delay; later ones get an EventBridge Scheduler one-time schedule. 900 (SQS's maximum) outside tests."
  type        = number
  default     = 900

  validation {
    condition     = var.schedule_delay_threshold_seconds >= 0 && var.schedule_delay_threshold_seconds <= 900 && floor(var.schedule_delay_threshold_seconds) == var.schedule_delay_threshold_seconds
    error_message = "schedule_delay_threshold_seconds must be a whole number from 0 to 900 (SQS's maximum DelaySeconds)."
  }
}

# ---------------------------------------------------------------------------------------
# Job status events (module events; README "Events and notifications")
# ---------------------------------------------------------------------------------------

variable "events_batch_size" {
  description = "Stream records per invocation of the event publisher."
  type        = number
  default     = 100
}

variable "events_batching_window_seconds" {
  description = "Maximum time the stream mapping gathers records before invoking the publisher, in seconds."
  type        = number
  default     = 0
}

variable "events_maximum_retry_attempts" {
  description = "Retries of a stream batch whose events could not be put, before its description goes to the publisher's failures queue."
  type        = number
  default     = 10
}

variable "events_maximum_record_age_seconds" {
  description = "Age after which a stream record still not published goes to the publisher's failures queue (60-604800)."
  type        = number
  default     = 21600
}

variable "job_events_notify_completions" {
  description = "Send COMPLETE job events to the operators' SNS topic too (FAILED ones always go)."
  type        = bool
  default     = false
}

variable "job_events_email" {
  description = "E-mail subscribed to the operators' job events topic; null for none."
  type        = string
  default     = null
}

# Webhooks (README "Webhooks")
# ---------------------------------------------------------------------------------------

variable "webhook_allow_loopback" {
  description = "Callback URLs may lead to loopback addresses, over http too: true ONLY on the embedded default (local.tfvars), whose receivers run on the same machine. Never on AWS."
  type        = bool
  default     = false

  validation {
    condition     = !var.webhook_allow_loopback || var.aws_endpoint_url != null
    error_message = "webhook_allow_loopback may be true only on the embedded backend (aws_endpoint_url set): on AWS a callback URL must never reach the function's own loopback."
  }
}

variable "webhook_timeout_seconds" {
  description = "Timeout of each socket operation of a webhook delivery attempt (connect, send, read)."
  type        = number
  default     = 5
}

variable "webhook_max_receive_count" {
  description = "Delivery attempts of a webhook before its event goes to the webhooks DLQ."
  type        = number
  default     = 12
}

variable "webhook_backoff_base_seconds" {
  description = "Back-off after a webhook's first failed attempt; doubles per attempt (equal jitter) up to webhook_backoff_cap_seconds."
  type        = number
  default     = 30
}

variable "webhook_backoff_cap_seconds" {
  description = "Longest back-off between two webhook attempts (at most 43200, the SQS visibility maximum)."
  type        = number
  default     = 7200
}

variable "notifier_max_concurrency" {
  description = "Maximum concurrency of the notifier's event source mapping (2-1000)."
  type        = number
  default     = 5
}

variable "webhook_secret_version" {
  description = "Version of the webhook signing secret: raise it to write a new random secret (rotation, README \"Webhooks\")."
  type        = number
  default     = 1
}

# --- the web console (README "Web console") ---------------------------------------------------

variable "console_enabled" {
  description = "Deploy the web console: a private S3 bucket behind CloudFront (module web). false where CloudFront is not available (the embedded backend serves the console itself)."
  type        = bool
  default     = true
}

variable "console_price_class" {
  description = "CloudFront price class of the console: PriceClass_100, PriceClass_200 or PriceClass_All."
  type        = string
  default     = "PriceClass_100"
}

variable "console_aliases" {
  description = "Custom domain names of the console (need console_acm_certificate_arn); [] uses the distribution's cloudfront.net name."
  type        = list(string)
  default     = []
}

variable "console_acm_certificate_arn" {
  description = "ACM certificate in us-east-1 for console_aliases; null uses CloudFront's default certificate."
  type        = string
  default     = null
}
