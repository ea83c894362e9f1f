# The Cognito inputs of the stack: the environment's existing user pool and app client, or
# (when none is given, e.g. the local environment) a pool and client created here.

locals {
  create = var.user_pool_arn == null
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

  access_token_validity  = 60
  id_token_validity      = 60
  refresh_token_validity = 30

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }
}
