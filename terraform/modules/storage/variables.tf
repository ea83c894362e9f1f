variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"jobs-dev\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "deletion_protection" {
  description = "Protect the jobs and quotas tables from deletion (turn off before destroying the environment)."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "Enable DynamoDB point-in-time recovery on the jobs and quotas tables."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the table and the bucket; null uses the AWS managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>) or null."
  }
}

variable "result_retention_days" {
  description = "Days after which result objects expire from the bucket."
  type        = number
  default     = 30

  validation {
    condition     = var.result_retention_days >= 1 && floor(var.result_retention_days) == var.result_retention_days
    error_message = "result_retention_days must be a whole number of days, at least 1."
  }
}

variable "force_destroy" {
  description = "Allow destroying the results bucket while it still holds objects (throwaway environments only)."
  type        = bool
  default     = false
}

variable "stream_enabled" {
  description = "Enable the jobs table's DynamoDB stream (NEW_AND_OLD_IMAGES), the source of the job status events."
  type        = bool
  default     = true
}

variable "result_cors_origins" {
  description = "Browser origins that may read results through their presigned URLs with fetch() (the web console's preview); [\"*\"] allows any, [] sets no CORS rule."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.result_cors_origins : o == "*" || can(regex("^https?://[^,/ ]+$", o))])
    error_message = "result_cors_origins must list \"*\" or origins like https://app.example.com (scheme and host, no path)."
  }
}
