variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"jobs-dev\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "target_queue_arns" {
  description = "ARNs of the SQS queues a due schedule may send a job's message to (the job queues)."
  type        = list(string)

  validation {
    condition     = length(var.target_queue_arns) > 0 && alltrue([for arn in var.target_queue_arns : can(regex("^arn:[^:]+:sqs:[^:]+:[0-9]{12}:.+$", arn))])
    error_message = "target_queue_arns must list at least one SQS queue ARN."
  }
}

variable "dead_letter_queue_arn" {
  description = "ARN of the SQS queue that takes a schedule's message EventBridge Scheduler could not deliver."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:sqs:[^:]+:[0-9]{12}:.+$", var.dead_letter_queue_arn))
    error_message = "dead_letter_queue_arn must be an SQS queue ARN."
  }
}

variable "queue_kms_key_arn" {
  description = "Customer managed KMS key of the queues, if any (the role then may use it to send); null for SSE-SQS."
  type        = string
  default     = null
}
