locals {
  # The embedded backend (moto) is used only when aws_endpoint_url is set; with null every
  # setting below is unset and this is a plain AWS provider.
  embedded = var.aws_endpoint_url != null
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.extra_tags, {
      project = var.project
      env     = var.env
    })
  }

  # Embedded backend only (the tflocal approach): endpoints, path-style S3, no credential
  # or instance-metadata checks. The account id is still requested (from the embedded
  # STS) so ARNs carry it.
  s3_use_path_style           = local.embedded ? true : null
  skip_credentials_validation = local.embedded ? true : null
  skip_metadata_api_check     = local.embedded ? true : null
  skip_requesting_account_id  = false

  dynamic "endpoints" {
    for_each = local.embedded ? [var.aws_endpoint_url] : []

    content {
      apigateway     = endpoints.value
      cloudwatch     = endpoints.value
      cloudwatchlogs = endpoints.value
      cognitoidp     = endpoints.value
      dynamodb       = endpoints.value
      eventbridge    = endpoints.value # the jobs' bus, its rules, the webhooks rule
      iam            = endpoints.value
      kms            = endpoints.value
      lambda         = endpoints.value
      s3             = endpoints.value
      scheduler      = endpoints.value
      secretsmanager = endpoints.value # GetRandomPassword: the webhook signing secret
      sns            = endpoints.value
      sqs            = endpoints.value
      ssm            = endpoints.value # the webhook signing secret
      sts            = endpoints.value
    }
  }
}
