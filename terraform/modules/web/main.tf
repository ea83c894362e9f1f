# The web console: its static files in a private S3 bucket, served by CloudFront through an
# origin access control (the bucket admits only this distribution), HTTPS only, with security
# headers and a Content-Security-Policy that lets the page talk to exactly the API, Cognito
# and the results bucket (result previews).

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  # Bucket names are global: the account id and region make this one unique.
  bucket_name = "${var.name_prefix}-console-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.name}"
  # CloudFront's managed cache policy "Managed-CachingOptimized" (a fixed, documented id; a data
  # source would call CloudFront at plan time). The files are uploaded with Cache-Control:
  # no-cache and every deploy invalidates /*.
  caching_optimized_policy_id = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  connect_src                 = join(" ", concat(["'self'"], sort(distinct(var.connect_origins))))
  content_security_policy = join("; ", [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src ${local.connect_src}",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ])
}

# ---------------------------------------------------------------------------------------
# The bucket: private, encrypted, versioned, TLS only, readable by the distribution only
# ---------------------------------------------------------------------------------------

resource "aws_s3_bucket" "console" {
  #checkov:skip=CKV_AWS_18:The console's files are public web content served by CloudFront; the distribution's requests are the audit trail, not server access logs.
  #checkov:skip=CKV_AWS_144:The files are rebuilt from the repository by every deploy; cross-region replication is not worth its cost.
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events.
  #checkov:skip=CKV_AWS_145:SSE-S3, not SSE-KMS: CloudFront's origin access control cannot decrypt objects under the AWS managed aws/s3 key, and the files are public web content.
  bucket        = local.bucket_name
  force_destroy = var.force_destroy

  lifecycle {
    precondition {
      condition     = length(local.bucket_name) <= 63
      error_message = "The console bucket name ${local.bucket_name} has ${length(local.bucket_name)} characters, but S3 allows at most 63: shorten project or env (the results bucket's name has the same length)."
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "console" {
  bucket = aws_s3_bucket.console.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "console" {
  bucket                  = aws_s3_bucket.console.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "console" {
  bucket = aws_s3_bucket.console.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "console" {
  bucket = aws_s3_bucket.console.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "console" {
  bucket = aws_s3_bucket.console.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    # Earlier versions of the files: kept a while to roll back by hand, then gone.
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.console]
}

data "aws_iam_policy_document" "console" {
  statement {
    sid       = "CloudFrontReadsThroughOriginAccessControl"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.console.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.console.arn]
    }
  }

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.console.arn,
      "${aws_s3_bucket.console.arn}/*",
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

resource "aws_s3_bucket_policy" "console" {
  bucket = aws_s3_bucket.console.id
  policy = data.aws_iam_policy_document.console.json

  depends_on = [aws_s3_bucket_public_access_block.console]
}

# ---------------------------------------------------------------------------------------
# CloudFront
# ---------------------------------------------------------------------------------------

resource "aws_cloudfront_origin_access_control" "console" {
  name                              = "${var.name_prefix}-console"
  description                       = "The web console of ${var.name_prefix}: CloudFront signs its requests to the bucket."
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_response_headers_policy" "console" {
  name    = "${var.name_prefix}-console"
  comment = "Security headers of the web console of ${var.name_prefix}."

  security_headers_config {
    content_security_policy {
      content_security_policy = local.content_security_policy
      override                = true
    }

    content_type_options {
      override = true
    }

    frame_options {
      frame_option = "DENY"
      override     = true
    }

    referrer_policy {
      referrer_policy = "no-referrer"
      override        = true
    }

    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
  }
}

resource "aws_cloudfront_distribution" "console" {
  #checkov:skip=CKV_AWS_68:Static files with no server logic; the API behind it has its own throttling and quotas. Attach a WAF web ACL per account if policy requires one.
  #checkov:skip=CKV2_AWS_47:No WAF here (see CKV_AWS_68): there is no server code that Log4j rules could protect.
  #checkov:skip=CKV_AWS_86:Access logs of public static files are not worth their storage here; enable standard logging per account if needed.
  #checkov:skip=CKV_AWS_310:One origin (the bucket); a failover origin would be a copy of the same files.
  #checkov:skip=CKV_AWS_374:The console is for the stack's users wherever they are; no geo restriction.
  #checkov:skip=CKV_AWS_174:The default *.cloudfront.net certificate allows no minimum TLS version; with a custom domain (aliases + an ACM certificate) the distribution uses TLSv1.2_2021.
  #checkov:skip=CKV2_AWS_42:A custom certificate comes with a custom domain, which is optional (acm_certificate_arn).
  enabled             = true
  comment             = "Web console of ${var.name_prefix}"
  default_root_object = "index.html"
  http_version        = "http2and3"
  is_ipv6_enabled     = true
  price_class         = var.price_class
  aliases             = var.aliases

  origin {
    origin_id                = "console-bucket"
    domain_name              = aws_s3_bucket.console.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.console.id
  }

  default_cache_behavior {
    target_origin_id           = "console-bucket"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.caching_optimized_policy_id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.console.id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.acm_certificate_arn == null
    acm_certificate_arn            = var.acm_certificate_arn
    ssl_support_method             = var.acm_certificate_arn == null ? null : "sni-only"
    minimum_protocol_version       = var.acm_certificate_arn == null ? "TLSv1" : "TLSv1.2_2021"
  }
}
