variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"jobs-dev\"."
  type        = string
}

variable "bus_name" {
  description = "Name of the EventBridge bus the jobs' `Job Status Changed` events are put on (module events)."
  type        = string
}

variable "event_source" {
  description = "The `source` of the jobs' events (\"<project>.jobs\"): the rule matches only it."
  type        = string
}

variable "table_name" {
  description = "Name of the jobs table (the notifier records each job's delivery state there)."
  type        = string
}

variable "table_arn" {
  description = "ARN of the jobs table."
  type        = string
}

variable "zip_path" {
  description = "Path of build/notifier.zip."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime of the notifier (the same as the other functions')."
  type        = string
}

variable "architecture" {
  description = "Lambda architecture of the notifier (arm64 or x86_64)."
  type        = string
}

variable "memory_mb" {
  description = "Memory of the notifier function (MB)."
  type        = number
  default     = 256
}

variable "max_concurrency" {
  description = "Maximum concurrency of the webhooks queue's event source mapping (2-1000)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_concurrency >= 2 && var.max_concurrency <= 1000
    error_message = "max_concurrency must be between 2 and 1000 (the SQS event source mapping limits)."
  }
}

variable "attempt_timeout_seconds" {
  description = "Timeout of each socket operation of a delivery attempt (connect, send, read)."
  type        = number
  default     = 5

  validation {
    condition     = var.attempt_timeout_seconds >= 0.5 && var.attempt_timeout_seconds <= 30
    error_message = "attempt_timeout_seconds must be between 0.5 and 30."
  }
}

variable "max_receive_count" {
  description = "Delivery attempts of an event before its message goes to the webhooks DLQ."
  type        = number
  default     = 12

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 100
    error_message = "max_receive_count must be between 1 and 100."
  }
}

variable "backoff_base_seconds" {
  description = "Back-off after the first failed attempt; doubles with each attempt (equal jitter), up to backoff_cap_seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.backoff_base_seconds >= 0 && var.backoff_base_seconds <= 43200
    error_message = "backoff_base_seconds must be between 0 and 43200 (12 hours, the SQS visibility maximum)."
  }
}

variable "backoff_cap_seconds" {
  description = "Longest back-off between two attempts (at most 43200 s, the SQS visibility maximum)."
  type        = number
  default     = 7200

  validation {
    condition     = var.backoff_cap_seconds >= 0 && var.backoff_cap_seconds <= 43200
    error_message = "backoff_cap_seconds must be between 0 and 43200 (12 hours, the SQS visibility maximum)."
  }
}

variable "message_retention_seconds" {
  description = "Retention of the webhooks queue: longer than every attempt's back-off together."
  type        = number
  default     = 345600
}

variable "allow_loopback" {
  description = "Callback URLs may lead to loopback addresses (over http too). Only for the embedded default: never on AWS."
  type        = bool
  default     = false
}

variable "metrics_namespace" {
  description = "CloudWatch metrics namespace of the functions."
  type        = string
}

variable "log_level" {
  description = "Log level of the notifier (DEBUG, INFO, WARNING, ERROR, CRITICAL)."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the notifier's log group (days)."
  type        = number
}

variable "secret_version" {
  description = "Version of the signing secret: raise it (1, 2, ...) to write a new random secret (rotation)."
  type        = number
  default     = 1

  validation {
    condition     = var.secret_version >= 1 && floor(var.secret_version) == var.secret_version
    error_message = "secret_version must be a whole number >= 1."
  }
}
