# The Cognito inputs of the stack: the environment's existing user pool and app client, or
# (when none is given, e.g. the local environment) a pool and client created here. A pool
# created here may get a hosted login domain (domain_prefix): the app client then also allows
# the authorization-code flow (the console's "Sign in with the hosted login page", with PKCE).

data "aws_region" "current" {}

locals {
  create = var.user_pool_arn == null
  hosted = local.create && var.domain_prefix != null
}

resource "aws_cognito_user_pool" "this" {
  count = local.create ? 1 : 0

  name                     = "${var.name_prefix}-users"
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  deletion_protection      = var.deletion_protection ? "ACTIVE" : "INACTIVE"
  mfa_configuration        = "OFF"

  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 7
  }

  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }
}

resource "aws_cognito_user_pool_client" "this" {
  count = local.create ? 1 : 0

  name            = "${var.name_prefix}-client"
  user_pool_id    = aws_cognito_user_pool.this[0].id
  generate_secret = false

  # USER_PASSWORD_AUTH lets scripts and the smoke test sign in with a password.
  explicit_auth_flows = [
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
  ]
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true

  # The hosted login (domain_prefix): the authorization-code flow only (no implicit flow: tokens
  # never travel in a URL), for a public client, which must use PKCE. The callback and sign-out
  # URLs are the console's own (its CloudFront origins).
  allowed_oauth_flows_user_pool_client = local.hosted
  allowed_oauth_flows                  = local.hosted ? ["code"] : null
  allowed_oauth_scopes                 = local.hosted ? var.oauth_scopes : null
  supported_identity_providers         = local.hosted ? ["COGNITO"] : null
  callback_urls                        = local.hosted ? var.oauth_callback_urls : null
  logout_urls                          = local.hosted ? var.oauth_callback_urls : null

  access_token_validity  = 60
  id_token_validity      = 60
  refresh_token_validity = 30

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }
}

# The pool's hosted login domain: https://<domain_prefix>.auth.<region>.amazoncognito.com
resource "aws_cognito_user_pool_domain" "this" {
  count = local.hosted ? 1 : 0

  domain       = var.domain_prefix
  user_pool_id = aws_cognito_user_pool.this[0].id
}
