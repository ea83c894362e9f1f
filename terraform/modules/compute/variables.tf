variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"jobs-dev\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

# --- code -------------------------------------------------------------------------------

variable "api_zip_path" {
  description = "Path of the api function's zip (built by `invoke package` as build/api.zip)."
  type        = string

  validation {
    condition     = endswith(var.api_zip_path, ".zip")
    error_message = "api_zip_path must point at a .zip file."
  }
}

variable "worker_zip_path" {
  description = "Path of the worker function's zip (built by `invoke package` as build/worker.zip)."
  type        = string

  validation {
    condition     = endswith(var.worker_zip_path, ".zip")
    error_message = "worker_zip_path must point at a .zip file."
  }
}

variable "runtime" {
  description = "Lambda runtime of both functions."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(["python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be python3.12 or python3.13."
  }
}

variable "architecture" {
  description = "Instruction set of both functions; the zips must be built for the same one."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

# --- sizing -----------------------------------------------------------------------------

variable "api_memory_mb" {
  description = "Memory of the api function in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.api_memory_mb >= 128 && var.api_memory_mb <= 10240
    error_message = "api_memory_mb must be between 128 and 10240."
  }
}

variable "api_timeout_seconds" {
  description = "Timeout of the api function in seconds (API Gateway gives up after 29 s)."
  type        = number
  default     = 10

  validation {
    condition     = var.api_timeout_seconds >= 1 && var.api_timeout_seconds <= 29
    error_message = "api_timeout_seconds must be between 1 and 29 (API Gateway's integration timeout)."
  }
}

variable "api_reserved_concurrency" {
  description = "Reserved concurrency of the api function; -1 leaves it unreserved."
  type        = number
  default     = -1

  validation {
    condition     = var.api_reserved_concurrency >= -1
    error_message = "api_reserved_concurrency must be -1 (unreserved) or a non-negative number."
  }
}

variable "worker_memory_mb" {
  description = "Memory of the worker function in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.worker_memory_mb >= 128 && var.worker_memory_mb <= 10240
    error_message = "worker_memory_mb must be between 128 and 10240."
  }
}

variable "worker_timeout_seconds" {
  description = "Timeout of the worker function in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.worker_timeout_seconds >= 1 && var.worker_timeout_seconds <= 900
    error_message = "worker_timeout_seconds must be between 1 and 900."
  }
}

variable "worker_reserved_concurrency" {
  description = "Reserved concurrency of the worker function; -1 leaves it unreserved."
  type        = number
  default     = -1

  validation {
    condition     = var.worker_reserved_concurrency >= -1
    error_message = "worker_reserved_concurrency must be -1 (unreserved) or a non-negative number."
  }
}

# --- event source mapping ---------------------------------------------------------------

variable "batch_size" {
  description = "Messages per worker invocation."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be between 1 and 10000."
  }
}

variable "batching_window_seconds" {
  description = "Maximum time to gather a batch, in seconds (required >= 1 when batch_size > 10)."
  type        = number
  default     = 0

  validation {
    condition     = var.batching_window_seconds >= 0 && var.batching_window_seconds <= 300
    error_message = "batching_window_seconds must be between 0 and 300."
  }

  validation {
    condition     = var.batch_size <= 10 || var.batching_window_seconds >= 1
    error_message = "SQS needs batching_window_seconds >= 1 when batch_size is above 10."
  }
}

variable "max_concurrency" {
  description = "Maximum concurrent worker invocations the normal-priority queue's mapping starts (2-1000)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_concurrency >= 2 && var.max_concurrency <= 1000
    error_message = "max_concurrency must be between 2 and 1000."
  }
}

variable "priority_max_concurrency" {
  description = "Maximum concurrent worker invocations of the high- and low-priority queues' mappings (2-1000 each, the AWS minimum is 2). They are the priorities' weights next to max_concurrency (normal). A reserved concurrency of the worker, when set, must be at least the sum of the three."
  type = object({
    high = number
    low  = number
  })
  default = { high = 2, low = 2 }

  validation {
    condition     = alltrue([for n in values(var.priority_max_concurrency) : n >= 2 && n <= 1000 && floor(n) == n])
    error_message = "priority_max_concurrency.high and .low must be whole numbers between 2 and 1000 (the SQS event source mapping's limits)."
  }
}

variable "high_priority_group" {
  description = "Cognito group whose members may submit high-priority jobs (HIGH_PRIORITY_GROUP); null or \"\": nobody may."
  type        = string
  default     = null

  validation {
    condition     = var.high_priority_group == null || can(regex("^[^\\s,\\[\\]]{0,128}$", var.high_priority_group))
    error_message = "high_priority_group must be a Cognito group name of at most 128 characters without spaces, commas or brackets."
  }
}

# --- wiring: the resources the code uses ------------------------------------------------

variable "table_name" {
  description = "Name of the jobs table (JOBS_TABLE_NAME)."
  type        = string
}

variable "table_arn" {
  description = "ARN of the jobs table."
  type        = string
}

variable "table_index_arns" {
  description = "ARNs of the table's indexes the api may Query."
  type        = list(string)
}

variable "quota_table_name" {
  description = "Name of the quotas table (QUOTA_TABLE_NAME)."
  type        = string
}

variable "quota_table_arn" {
  description = "ARN of the quotas table."
  type        = string
}

variable "bucket_name" {
  description = "Name of the results bucket (RESULTS_BUCKET_NAME)."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the results bucket."
  type        = string
}

variable "queue_urls" {
  description = "URL of each priority's queue: high (JOBS_QUEUE_URL_HIGH), normal (JOBS_QUEUE_URL), low (JOBS_QUEUE_URL_LOW)."
  type = object({
    high   = string
    normal = string
    low    = string
  })
}

variable "queue_arns" {
  description = "ARN of each priority's queue: { high, normal, low }."
  type = object({
    high   = string
    normal = string
    low    = string
  })
}

# --- settings the code reads ------------------------------------------------------------

variable "allowed_client_id" {
  description = "Cognito app client id a token must have been issued to (ALLOWED_CLIENT_ID)."
  type        = string

  validation {
    condition     = length(var.allowed_client_id) > 0
    error_message = "allowed_client_id must not be empty."
  }
}

variable "cors_allowed_origins" {
  description = "Origins allowed by CORS (CORS_ALLOWED_ORIGINS, joined with commas); [\"*\"] allows any."
  type        = list(string)

  validation {
    condition     = length(var.cors_allowed_origins) > 0 && alltrue([for o in var.cors_allowed_origins : o == "*" || can(regex("^https?://[^,/ ]+$", o))])
    error_message = "cors_allowed_origins must list \"*\" or origins like https://app.example.com (scheme and host, no path)."
  }
}

variable "max_receive_count" {
  description = "The queue's redrive maxReceiveCount (MAX_RECEIVE_COUNT): the worker's last attempt."
  type        = number

  validation {
    condition     = var.max_receive_count >= 1
    error_message = "max_receive_count must be at least 1."
  }
}

variable "job_retention_days" {
  description = "Days after creation when job records expire through DynamoDB TTL (JOB_RETENTION_DAYS)."
  type        = number

  validation {
    condition     = var.job_retention_days >= 1
    error_message = "job_retention_days must be at least 1."
  }
}

variable "result_url_ttl_seconds" {
  description = "Lifetime of the presigned result_url in seconds (RESULT_URL_TTL_SECONDS)."
  type        = number

  validation {
    condition     = var.result_url_ttl_seconds >= 1 && var.result_url_ttl_seconds <= 604800
    error_message = "result_url_ttl_seconds must be between 1 and 604800 (7 days, the SigV4 maximum)."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch metrics namespace (POWERTOOLS_METRICS_NAMESPACE)."
  type        = string
}

variable "log_level" {
  description = "POWERTOOLS_LOG_LEVEL of both functions."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

# --- per-user quotas (QUOTA_*) ----------------------------------------------------------

variable "quota_max_active_jobs" {
  description = "Default cap on a user's unfinished jobs (QUOTA_MAX_ACTIVE_JOBS)."
  type        = number
  default     = 100

  validation {
    condition     = var.quota_max_active_jobs >= 1 && var.quota_max_active_jobs <= 1000000 && floor(var.quota_max_active_jobs) == var.quota_max_active_jobs
    error_message = "quota_max_active_jobs must be a whole number from 1 to 1000000."
  }
}

variable "quota_submit_rate_per_second" {
  description = "Default refill rate of a user's submission token bucket, jobs per second (QUOTA_SUBMIT_RATE_PER_SECOND)."
  type        = number
  default     = 5

  validation {
    condition     = var.quota_submit_rate_per_second > 0 && var.quota_submit_rate_per_second <= 1000
    error_message = "quota_submit_rate_per_second must be above 0 and at most 1000."
  }
}

variable "quota_submit_burst" {
  description = "Default size of a user's submission token bucket (QUOTA_SUBMIT_BURST)."
  type        = number
  default     = 20

  validation {
    condition     = var.quota_submit_burst >= 1 && var.quota_submit_burst <= 1000000 && floor(var.quota_submit_burst) == var.quota_submit_burst
    error_message = "quota_submit_burst must be a whole number from 1 to 1000000."
  }
}

variable "quota_tiers" {
  description = "Tiers by Cognito group name (QUOTA_TIERS, as JSON): a user in a group gets its limits instead of the defaults."
  type = map(object({
    max_active_jobs        = number
    submit_rate_per_second = number
    submit_burst           = number
  }))
  default = {}

  validation {
    condition     = alltrue([for name in keys(var.quota_tiers) : can(regex("^[^\\s,\\[\\]]{1,128}$", name))])
    error_message = "quota_tiers keys are Cognito group names: 1-128 characters without whitespace, commas or brackets (API Gateway joins a user's groups with commas)."
  }

  validation {
    condition = alltrue([for t in values(var.quota_tiers) : (
      t.max_active_jobs >= 1 && t.max_active_jobs <= 1000000 && floor(t.max_active_jobs) == t.max_active_jobs &&
      t.submit_burst >= 1 && t.submit_burst <= 1000000 && floor(t.submit_burst) == t.submit_burst &&
      t.submit_rate_per_second > 0 && t.submit_rate_per_second <= 1000
    )])
    error_message = "Each quota tier needs max_active_jobs and submit_burst as whole numbers from 1 to 1000000, and submit_rate_per_second above 0 and at most 1000."
  }

  validation {
    condition     = length(jsonencode(var.quota_tiers)) <= 2048
    error_message = "quota_tiers is over 2 KB as JSON: Lambda allows 4 KB of environment variables in all."
  }
}

# --- scheduled jobs (module scheduling) ---------------------------------------------------

variable "dlq_arn" {
  description = "ARN of the job dead-letter queue: where a schedule's undeliverable message goes (JOBS_DLQ_ARN)."
  type        = string
}

variable "dlq_url" {
  description = "URL of the job dead-letter queue: where the worker puts the message of a job that failed finally while SQS would still redeliver it (JOBS_DLQ_URL)."
  type        = string
}

variable "schedule_group_name" {
  description = "Schedule group of the jobs' one-time schedules (SCHEDULE_GROUP_NAME)."
  type        = string
}

variable "schedules_arn_pattern" {
  description = "ARN pattern of the schedules in that group: the api may create and delete them."
  type        = string
}

variable "scheduler_role_arn" {
  description = "Role the schedules act as; the api passes it to EventBridge Scheduler (SCHEDULER_ROLE_ARN)."
  type        = string
}

variable "max_schedule_days" {
  description = "How far ahead a job may be scheduled, in days (MAX_SCHEDULE_DAYS)."
  type        = number
  default     = 30

  validation {
    condition     = var.max_schedule_days >= 1 && var.max_schedule_days <= 365 && floor(var.max_schedule_days) == var.max_schedule_days
    error_message = "max_schedule_days must be a whole number from 1 to 365."
  }
}

variable "schedule_delay_threshold_seconds" {
  description = "A job due at most this many seconds ahead is sent with an SQS message delay; later, by a one-time schedule (SCHEDULE_DELAY_THRESHOLD_SECONDS)."
  type        = number
  default     = 900

  validation {
    condition     = var.schedule_delay_threshold_seconds >= 0 && var.schedule_delay_threshold_seconds <= 900 && floor(var.schedule_delay_threshold_seconds) == var.schedule_delay_threshold_seconds
    error_message = "schedule_delay_threshold_seconds must be a whole number from 0 to 900 (SQS's maximum DelaySeconds)."
  }
}

variable "webhook_allow_loopback" {
  description = "The api accepts callback URLs that lead to loopback addresses (WEBHOOK_ALLOW_LOOPBACK): only on the embedded default."
  type        = bool
  default     = false
}
