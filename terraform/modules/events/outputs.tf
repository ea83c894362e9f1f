output "bus_name" {
  description = "Name of the custom EventBridge bus that carries the jobs' events."
  value       = aws_cloudwatch_event_bus.jobs.name
}

output "bus_arn" {
  description = "ARN of the jobs' event bus."
  value       = aws_cloudwatch_event_bus.jobs.arn
}
