variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"jobs-dev\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "event_source" {
  description = "The events' `source`: `<project>.jobs`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.jobs$", var.event_source))
    error_message = "event_source must be \"<project>.jobs\"."
  }
}

variable "table_stream_arn" {
  description = "ARN of the jobs table's DynamoDB stream (NEW_AND_OLD_IMAGES), module storage's table_stream_arn."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/.+/stream/.+$", var.table_stream_arn))
    error_message = "table_stream_arn must be a DynamoDB stream ARN (the jobs table's stream must be enabled)."
  }
}

# --- the publisher ----------------------------------------------------------------------

variable "publisher_zip_path" {
  description = "Path of the publisher function's zip (built by `invoke package` as build/publisher.zip)."
  type        = string

  validation {
    condition     = endswith(var.publisher_zip_path, ".zip")
    error_message = "publisher_zip_path must point at a .zip file."
  }
}

variable "runtime" {
  description = "Lambda runtime of the publisher."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(["python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be python3.12 or python3.13."
  }
}

variable "architecture" {
  description = "Instruction set of the publisher; its zip must be built for the same one."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_mb" {
  description = "Memory of the publisher in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must be from 128 to 10240."
  }
}

variable "timeout_seconds" {
  description = "Timeout of the publisher in seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout_seconds >= 3 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must be from 3 to 900."
  }
}

variable "put_attempts" {
  description = "Attempts at an entry PutEvents reports failed, within one invocation (EVENT_PUT_ATTEMPTS)."
  type        = number
  default     = 4

  validation {
    condition     = var.put_attempts >= 1 && var.put_attempts <= 10 && floor(var.put_attempts) == var.put_attempts
    error_message = "put_attempts must be a whole number from 1 to 10."
  }
}

variable "batch_size" {
  description = "Stream records per publisher invocation (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be from 1 to 10000."
  }
}

variable "batching_window_seconds" {
  description = "Maximum time the mapping gathers records before invoking, in seconds (0-300)."
  type        = number
  default     = 0

  validation {
    condition     = var.batching_window_seconds >= 0 && var.batching_window_seconds <= 300
    error_message = "batching_window_seconds must be from 0 to 300."
  }
}

variable "maximum_retry_attempts" {
  description = "Retries of a failing stream batch before it goes to the failures queue (0-10000)."
  type        = number
  default     = 10

  validation {
    condition     = var.maximum_retry_attempts >= 0 && var.maximum_retry_attempts <= 10000
    error_message = "maximum_retry_attempts must be from 0 to 10000."
  }
}

variable "maximum_record_age_seconds" {
  description = "Age after which a record still not published goes to the failures queue (60-604800; the stream keeps records 24 h)."
  type        = number
  default     = 21600

  validation {
    condition     = var.maximum_record_age_seconds >= 60 && var.maximum_record_age_seconds <= 604800
    error_message = "maximum_record_age_seconds must be from 60 to 604800."
  }
}

variable "metrics_namespace" {
  description = "POWERTOOLS_METRICS_NAMESPACE of the publisher."
  type        = string
}

variable "log_level" {
  description = "POWERTOOLS_LOG_LEVEL of the publisher."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

variable "log_retention_days" {
  description = "Retention of the publisher's log group in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

# --- the operators' topic ----------------------------------------------------------------

variable "notify_completions" {
  description = "Send COMPLETE events to the operators' topic too (FAILED ones always go)."
  type        = bool
  default     = false
}

variable "operator_email" {
  description = "E-mail address subscribed to the operators' topic (null: no subscription)."
  type        = string
  default     = null

  validation {
    condition     = var.operator_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.operator_email))
    error_message = "operator_email must be an e-mail address or null."
  }
}
