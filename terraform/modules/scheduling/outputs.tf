output "schedule_group_name" {
  description = "Name of the schedule group that holds the jobs' one-time schedules."
  value       = aws_scheduler_schedule_group.jobs.name
}

output "schedule_group_arn" {
  description = "ARN of the schedule group."
  value       = aws_scheduler_schedule_group.jobs.arn
}

output "schedules_arn_pattern" {
  description = "ARN pattern of every schedule in the group (for the IAM policy of whoever creates and deletes them)."
  value       = "arn:${data.aws_partition.current.partition}:scheduler:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:schedule/${aws_scheduler_schedule_group.jobs.name}/*"
}

output "scheduler_role_arn" {
  description = "ARN of the role the schedules act as (sqs:SendMessage on the job queues and the DLQ only)."
  value       = aws_iam_role.scheduler.arn
}

output "scheduler_role_name" {
  description = "Name of that role."
  value       = aws_iam_role.scheduler.name
}
