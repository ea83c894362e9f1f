variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"jobs-dev\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "stage_name" {
  description = "Name of the API stage (the path segment after the host), e.g. \"dev\"."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.stage_name))
    error_message = "stage_name may only contain letters, digits, hyphens and underscores."
  }
}

variable "user_pool_arn" {
  description = "ARN of the Cognito user pool whose tokens the authorizer accepts."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:[0-9]{12}:userpool/[a-z0-9-]+_[A-Za-z0-9]+$", var.user_pool_arn))
    error_message = "user_pool_arn must look like arn:aws:cognito-idp:<region>:<account>:userpool/<region>_<id>."
  }
}

variable "function_name" {
  description = "Name of the api Lambda function behind every route."
  type        = string
}

variable "function_invoke_arn" {
  description = "Invoke ARN of the api Lambda function (the proxy integration URI)."
  type        = string
}

variable "authorization_scopes" {
  description = "OAuth scopes the Cognito authorizer requires on every route: [] takes ID tokens only; otherwise access tokens holding at least one of these scopes, and no ID tokens."
  type        = list(string)
  default     = []

  validation {
    # RFC 6749 scope-token characters: printable ASCII except space, double quote and backslash
    condition     = alltrue([for s in var.authorization_scopes : can(regex("^[!#-\\[\\]-~]{1,256}$", s))]) && length(distinct(var.authorization_scopes)) == length(var.authorization_scopes)
    error_message = "authorization_scopes must be distinct OAuth scope names (e.g. \"aws.cognito.signin.user.admin\" or \"<resource server>/<scope>\"), without spaces, quotes or backslashes."
  }
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second allowed on the stage."
  type        = number
  default     = 50

  validation {
    condition     = var.throttling_rate_limit > 0
    error_message = "throttling_rate_limit must be positive."
  }
}

variable "throttling_burst_limit" {
  description = "Burst of requests allowed on the stage."
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_burst_limit >= 1 && floor(var.throttling_burst_limit) == var.throttling_burst_limit
    error_message = "throttling_burst_limit must be a positive whole number."
  }
}

variable "tracing_enabled" {
  description = "Enable X-Ray tracing on the stage."
  type        = bool
  default     = true
}

variable "execution_logging_level" {
  description = "API Gateway execution logging level: OFF, ERROR or INFO."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["OFF", "ERROR", "INFO"], var.execution_logging_level)
    error_message = "execution_logging_level must be OFF, ERROR or INFO."
  }
}

variable "log_retention_days" {
  description = "Retention of the access and execution log groups in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "manage_cloudwatch_role" {
  description = "Create the account-wide API Gateway CloudWatch Logs role (one stack per account and region should)."
  type        = bool
  default     = false
}
