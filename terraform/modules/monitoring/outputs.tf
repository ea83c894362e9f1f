output "alarm_topic_arn" {
  description = "ARN of the alarm SNS topic, or null when none was created."
  value       = var.create_alarm_topic ? aws_sns_topic.alarms[0].arn : null
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms."
  value       = [for a in aws_cloudwatch_metric_alarm.this : a.alarm_name]
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
