variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"jobs-dev\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "worker_timeout_seconds" {
  description = "Timeout of the worker Lambda; the visibility timeout is derived from it (6x + batching window)."
  type        = number

  validation {
    condition     = var.worker_timeout_seconds >= 1 && var.worker_timeout_seconds <= 900
    error_message = "worker_timeout_seconds must be between 1 and 900 (the Lambda maximum)."
  }
}

variable "batching_window_seconds" {
  description = "Maximum batching window of the worker's event source mapping, added to the visibility timeout."
  type        = number
  default     = 0

  validation {
    condition     = var.batching_window_seconds >= 0 && var.batching_window_seconds <= 300
    error_message = "batching_window_seconds must be between 0 and 300."
  }
}

variable "max_receive_count" {
  description = "Deliveries of a message before SQS moves it to the DLQ (the worker's last attempt)."
  type        = number
  default     = 3

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "message_retention_seconds" {
  description = "How long the jobs queue keeps an unprocessed message. At most 10 days: a message keeps its age when it moves to the DLQ, which holds it 14 days (the SQS maximum) from when it was first sent, so every dead letter stays at least 4 days in the DLQ to be seen and redriven."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 864000
    error_message = "message_retention_seconds must be between 60 and 864000 (10 days): a message's age carries over into the DLQ (14 days, the SQS maximum), so a longer queue retention lets dead letters expire before anyone sees them."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for every queue; null uses SQS-managed encryption (SSE-SQS)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN or null."
  }
}
