output "user_pool_arn" {
  description = "ARN of the user pool the API trusts."
  value       = local.create ? aws_cognito_user_pool.this[0].arn : var.user_pool_arn
}

output "user_pool_id" {
  description = "Id of the user pool the API trusts."
  value       = local.create ? aws_cognito_user_pool.this[0].id : split("/", var.user_pool_arn)[1]
}

output "app_client_id" {
  description = "App client id tokens must have been issued to."
  value       = local.create ? aws_cognito_user_pool_client.this[0].id : var.app_client_id
}

output "issuer_url" {
  description = "Issuer (iss claim) of the pool's tokens."
  value       = local.create ? "https://${aws_cognito_user_pool.this[0].endpoint}" : var.issuer_url
}

output "created" {
  description = "Whether this stack created the user pool and app client."
  value       = local.create
}

output "oauth_domain_url" {
  description = "https base URL of the pool's hosted login domain (its /oauth2/authorize, /oauth2/token, /logout), or null when it has none."
  value       = local.hosted ? "https://${aws_cognito_user_pool_domain.this[0].domain}.auth.${data.aws_region.current.name}.amazoncognito.com" : var.hosted_login_url
}

output "oauth_scopes" {
  description = "Scopes the console asks the hosted login for ([] without a hosted login)."
  value       = local.hosted || var.hosted_login_url != null ? var.oauth_scopes : []
}
