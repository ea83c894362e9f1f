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

variable "domain_prefix" {
  description = "A pool created here only: prefix of its hosted login domain, https://<prefix>.auth.<region>.amazoncognito.com (globally unique in the region); null: no hosted login."
  type        = string
  default     = null

  validation {
    condition     = var.domain_prefix == null || can(regex("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", var.domain_prefix))
    error_message = "domain_prefix must be 1-63 lowercase letters, digits and hyphens, neither starting nor ending with a hyphen."
  }

  validation {
    condition     = var.domain_prefix == null || !can(regex("aws|amazon|cognito", coalesce(var.domain_prefix, "-")))
    error_message = "domain_prefix must not contain \"aws\", \"amazon\" or \"cognito\" (Cognito reserves them)."
  }

  validation {
    condition     = var.domain_prefix == null || var.user_pool_arn == null
    error_message = "domain_prefix creates the hosted login of a pool created here; for an existing pool (user_pool_arn) give its domain as hosted_login_url instead."
  }
}

variable "oauth_callback_urls" {
  description = "With domain_prefix: the URLs the hosted login may send users back to, after sign-in and after sign-out (the console's URL)."
  type        = list(string)
  default     = []

  validation {
    condition     = var.domain_prefix == null || length(var.oauth_callback_urls) > 0
    error_message = "domain_prefix needs at least one callback URL (the console's); enable the console (console_enabled) for a hosted login."
  }

  validation {
    condition     = alltrue([for u in var.oauth_callback_urls : can(regex("^(https://[^/?#\\s]+|http://localhost(:[0-9]+)?)/[^?#\\s]*$", u))])
    error_message = "oauth_callback_urls must be https URLs (http only for localhost), with no query or fragment, e.g. https://d111abcdef8.cloudfront.net/."
  }
}

variable "oauth_scopes" {
  description = "OAuth scopes the hosted login grants the console (and the app client allows): openid is needed for an ID token."
  type        = list(string)
  default     = ["openid", "email", "profile"]

  validation {
    condition     = contains(var.oauth_scopes, "openid") && length(distinct(var.oauth_scopes)) == length(var.oauth_scopes)
    error_message = "oauth_scopes must include \"openid\" (no ID token without it) and name each scope once."
  }

  validation {
    condition     = alltrue([for s in var.oauth_scopes : can(regex("^[!#-\\[\\]-~]+$", s))])
    error_message = "oauth_scopes must be OAuth scope names: one scope per item, no spaces, quotes or backslashes."
  }
}

variable "hosted_login_url" {
  description = "An existing pool (user_pool_arn) only: the https base URL of its hosted login domain, e.g. https://auth.example.com or https://myprefix.auth.eu-west-1.amazoncognito.com; null: no hosted login."
  type        = string
  default     = null

  validation {
    condition     = var.hosted_login_url == null || can(regex("^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.hosted_login_url))
    error_message = "hosted_login_url must be an https origin in lowercase with no path or trailing slash, e.g. https://myprefix.auth.eu-west-1.amazoncognito.com."
  }

  validation {
    condition     = var.hosted_login_url == null || var.user_pool_arn != null
    error_message = "hosted_login_url names the login domain of an existing pool (user_pool_arn); for a pool created here, set domain_prefix instead."
  }
}
