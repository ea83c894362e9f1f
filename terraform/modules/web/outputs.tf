output "console_url" {
  description = "URL of the console (https://<first alias or the distribution's domain>/)."
  value       = "https://${length(var.aliases) > 0 ? var.aliases[0] : aws_cloudfront_distribution.console.domain_name}/"
}

output "console_origins" {
  description = "The console's browser origins (for the API's CORS and the results bucket's CORS)."
  value       = [for d in concat([aws_cloudfront_distribution.console.domain_name], var.aliases) : "https://${d}"]
}

output "bucket_name" {
  description = "Name of the bucket holding the console's files (invoke deploy uploads them)."
  value       = aws_s3_bucket.console.id
}

output "distribution_id" {
  description = "Id of the CloudFront distribution (invoke deploy invalidates its cache)."
  value       = aws_cloudfront_distribution.console.id
}

output "content_security_policy" {
  description = "The Content-Security-Policy CloudFront sends with every file."
  value       = local.content_security_policy
}
