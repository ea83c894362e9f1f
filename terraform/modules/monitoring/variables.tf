variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"jobs-dev\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "queue_names" {
  description = "Name of each priority's jobs queue: { high, normal, low }."
  type = object({
    high   = string
    normal = string
    low    = string
  })
}

variable "dlq_name" {
  description = "Name of the dead-letter queue."
  type        = string
}

variable "api_function_name" {
  description = "Name of the api Lambda function."
  type        = string
}

variable "worker_function_name" {
  description = "Name of the worker Lambda function."
  type        = string
}

# The job status events (module events) and the webhooks (module webhooks).

variable "publisher_function_name" {
  description = "Name of the event publisher function (the jobs table's stream -> the bus)."
  type        = string
}

variable "publisher_failures_queue_name" {
  description = "Name of the queue the publisher's stream mapping sends a batch it gave up on (its on-failure destination)."
  type        = string
}

variable "notifier_function_name" {
  description = "Name of the webhooks' notifier function."
  type        = string
}

variable "webhook_queue_name" {
  description = "Name of the webhooks queue (events waiting for delivery or their next attempt)."
  type        = string
}

variable "webhook_dlq_name" {
  description = "Name of the webhooks DLQ (events whose every delivery attempt failed)."
  type        = string
}

variable "rest_api_name" {
  description = "Name of the REST API (the ApiName metric dimension)."
  type        = string
}

variable "stage_name" {
  description = "Name of the API stage (the Stage metric dimension)."
  type        = string
}

variable "metrics_namespace" {
  description = "Namespace of the application metrics (POWERTOOLS_METRICS_NAMESPACE)."
  type        = string
}

variable "oldest_message_age_threshold_seconds" {
  description = "Alarm when the oldest queued job is older than this many seconds."
  type        = number
  default     = 900

  validation {
    condition     = var.oldest_message_age_threshold_seconds >= 60
    error_message = "oldest_message_age_threshold_seconds must be at least 60."
  }
}

variable "publisher_iterator_age_threshold_seconds" {
  description = "Alarm when the publisher's stream iterator age (its oldest record not yet processed) exceeds this many seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.publisher_iterator_age_threshold_seconds >= 60 && var.publisher_iterator_age_threshold_seconds <= 86400
    error_message = "publisher_iterator_age_threshold_seconds must be from 60 to 86400 (the stream keeps records 24 h)."
  }
}

variable "alarm_period_seconds" {
  description = "Evaluation period of every alarm in seconds."
  type        = number
  default     = 300

  validation {
    condition     = contains([60, 300, 900, 3600], var.alarm_period_seconds)
    error_message = "alarm_period_seconds must be 60, 300, 900 or 3600."
  }
}

variable "create_alarm_topic" {
  description = "Create an SNS topic (with its own KMS key) that every alarm notifies."
  type        = bool
  default     = false
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (needs create_alarm_topic); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an e-mail address or null."
  }

  validation {
    condition     = var.alarm_email == null || var.create_alarm_topic
    error_message = "alarm_email needs create_alarm_topic = true."
  }
}
