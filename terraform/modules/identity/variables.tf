variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"jobs-local\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "user_pool_arn" {
  description = "ARN of an existing Cognito user pool; null creates a pool and app client here."
  type        = string
  default     = null

  validation {
    condition     = var.user_pool_arn == null || can(regex("^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:[0-9]{12}:userpool/[a-z0-9-]+_[A-Za-z0-9]+$", var.user_pool_arn))
    error_message = "user_pool_arn must look like arn:aws:cognito-idp:<region>:<account>:userpool/<region>_<id>, or be null."
  }
}

variable "app_client_id" {
  description = "App client id of the existing pool (required with user_pool_arn)."
  type        = string
  default     = null

  validation {
    condition     = (var.app_client_id == null) == (var.user_pool_arn == null)
    error_message = "Give user_pool_arn, app_client_id and issuer_url together, or none of them."
  }

  validation {
    condition     = var.app_client_id == null || can(regex("^[a-z0-9]{1,128}$", var.app_client_id))
    error_message = "app_client_id must be a Cognito app client id (lowercase letters and digits)."
  }
}

variable "issuer_url" {
  description = "Token issuer of the existing pool, https://cognito-idp.<region>.amazonaws.com/<pool id> (required with user_pool_arn)."
  type        = string
  default     = null

  validation {
    condition     = (var.issuer_url == null) == (var.user_pool_arn == null)
    error_message = "Give user_pool_arn, app_client_id and issuer_url together, or none of them."
  }

  validation {
    condition     = var.issuer_url == null || var.user_pool_arn == null || try(endswith(var.issuer_url, "/${split("/", var.user_pool_arn)[1]}"), false)
    error_message = "issuer_url must end with the user pool id of user_pool_arn."
  }

  validation {
    condition     = var.issuer_url == null || can(regex("^https://cognito-idp\\.[a-z0-9-]+\\.amazonaws\\.com/[a-z0-9-]+_[A-Za-z0-9]+$", var.issuer_url))
    error_message = "issuer_url must look like https://cognito-idp.<region>.amazonaws.com/<pool id>."
  }
}

variable "deletion_protection" {
  description = "Protect a pool created here from deletion."
  type        = bool
  default     = false
}
