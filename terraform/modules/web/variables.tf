variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"jobs-dev\"."
  type        = string
}

variable "connect_origins" {
  description = "Origins the console's page may fetch() from (the CSP's connect-src besides 'self'): the API, Cognito's endpoint and the results bucket, e.g. https://abc123.execute-api.us-east-1.amazonaws.com."
  type        = list(string)

  validation {
    condition     = length(var.connect_origins) > 0 && alltrue([for o in var.connect_origins : can(regex("^https://[A-Za-z0-9.-]+$", o))])
    error_message = "connect_origins must list https origins (scheme and host, no path, no wildcard)."
  }
}

variable "price_class" {
  description = "CloudFront price class: PriceClass_100 (North America, Europe), PriceClass_200 or PriceClass_All."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.price_class)
    error_message = "price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "aliases" {
  description = "Custom domain names of the console (need acm_certificate_arn); [] serves it at the distribution's cloudfront.net name."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate (in us-east-1) for the aliases; null uses CloudFront's default certificate."
  type        = string
  default     = null

  validation {
    condition     = var.acm_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/", var.acm_certificate_arn))
    error_message = "acm_certificate_arn must be an ACM certificate ARN in us-east-1 (CloudFront's requirement)."
  }
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted version of a console file is kept."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1 && floor(var.noncurrent_version_days) == var.noncurrent_version_days
    error_message = "noncurrent_version_days must be a whole number of days, at least 1."
  }
}

variable "force_destroy" {
  description = "Allow destroying the console bucket while it still holds files (they are rebuilt by every deploy)."
  type        = bool
  default     = false
}
