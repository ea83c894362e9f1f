# Jobs table and results bucket.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  table_name       = "${var.name_prefix}-jobs"
  quota_table_name = "${var.name_prefix}-quotas"
  # Bucket names are global: the account id and region make this one unique.
  bucket_name = "${var.name_prefix}-results-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.name}"
}

# ---------------------------------------------------------------------------------------
# DynamoDB: jobs keyed by owner (partition) and a time-ordered job id (sort)
# ---------------------------------------------------------------------------------------

resource "aws_dynamodb_table" "jobs" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key by default; pass kms_key_arn to use a customer managed key.
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "owner_id"
  range_key                   = "job_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "owner_id"
    type = "S"
  }

  attribute {
    name = "job_id"
    type = "S"
  }

  attribute {
    name = "owner_status"
    type = "S"
  }

  # "My jobs with status X, newest first" is one Query with full pages.
  global_secondary_index {
    name            = "by_owner_status"
    hash_key        = "owner_status"
    range_key       = "job_id"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  # Every write, with the item before and after it: the job status events are derived from
  # it (module events), so a function dying after its write loses no event.
  stream_enabled   = var.stream_enabled
  stream_view_type = var.stream_enabled ? "NEW_AND_OLD_IMAGES" : null

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}

# ---------------------------------------------------------------------------------------
# DynamoDB: one quota counter item per user (active jobs, submission token bucket), written
# in the same transactions as the job records (lambda_src/jobs/store.py)
# ---------------------------------------------------------------------------------------

resource "aws_dynamodb_table" "quotas" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key by default; pass kms_key_arn to use a customer managed key.
  name                        = local.quota_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "owner_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "owner_id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}

# ---------------------------------------------------------------------------------------
# S3: results at <owner_id>/<YYYY-MM-DD>/<job_id>.<txt|json|csv> (the job's format)
# ---------------------------------------------------------------------------------------

resource "aws_s3_bucket" "results" {
  #checkov:skip=CKV_AWS_18:Results are read through presigned URLs only; CloudTrail data events are the audit trail, not server access logs.
  #checkov:skip=CKV_AWS_144:Results are reproducible job output kept for a short retention; cross-region replication is not worth its cost.
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events; the job record in DynamoDB is the notification.
  bucket        = local.bucket_name
  force_destroy = var.force_destroy

  lifecycle {
    precondition {
      condition     = length(local.bucket_name) <= 63
      error_message = "The bucket name ${local.bucket_name} has ${length(local.bucket_name)} characters, but S3 allows at most 63: shorten name_prefix (it may have ${41 - length(data.aws_region.current.name)} characters in ${data.aws_region.current.name})."
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "results" {
  bucket = aws_s3_bucket.results.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    id     = "expire-results"
    status = "Enabled"

    filter {}

    expiration {
      days = var.result_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # Lifecycle rules need versioning in its final state first.
  depends_on = [aws_s3_bucket_versioning.results]
}

# Browsers may read a result through its presigned URL (the web console previews the first
# few KB with fetch()): a GET needs CORS; the URL's signature is still what grants access.
resource "aws_s3_bucket_cors_configuration" "results" {
  count  = length(var.result_cors_origins) > 0 ? 1 : 0
  bucket = aws_s3_bucket.results.id

  cors_rule {
    allowed_methods = ["GET", "HEAD"]
    allowed_origins = var.result_cors_origins
    allowed_headers = ["Range"]
    expose_headers  = ["Content-Length", "Content-Type", "Content-Disposition"]
    max_age_seconds = 600
  }
}

data "aws_iam_policy_document" "results_tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.results.arn,
      "${aws_s3_bucket.results.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "results" {
  bucket = aws_s3_bucket.results.id
  policy = data.aws_iam_policy_document.results_tls_only.json

  # A bucket policy is refused while the public access block is being applied.
  depends_on = [aws_s3_bucket_public_access_block.results]
}
