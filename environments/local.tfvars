# local: the embedded backend (moto on loopback), no AWS account. Local state under
# .local/state/local/. No user pool is given, so the stack creates one with an app client
# that allows USER_PASSWORD_AUTH, and outputs both.
project = "jobs"
env     = "local"
region  = "us-east-1"

cors_allowed_origins = ["*"]
# The web console's CloudFront distribution (module web): moto implements no CloudFront response
# headers policy, so the embedded default serves web/ itself on loopback (tooling/console.py).
console_enabled = false

# Which Cognito tokens the API takes. [] (the default): ID tokens only. A list of OAuth scopes:
# access tokens holding at least one of them, and no ID tokens (API Gateway's rule), e.g.
# ["aws.cognito.signin.user.admin"] (every access token InitiateAuth issues) or a resource
# server's custom scope ["<identifier>/<scope>"]. README: "The API", tokens.
api_authorization_scopes = []

lambda_architecture            = "arm64"
api_memory_mb                  = 256
api_timeout_seconds            = 10
api_reserved_concurrency       = -1
worker_memory_mb               = 256
worker_timeout_seconds         = 30
worker_reserved_concurrency    = -1
worker_batch_size              = 10
worker_batching_window_seconds = 1
worker_max_concurrency         = 4
log_level                      = "INFO"

# Priorities (README "Flow control"): one queue and one event source mapping per priority.
# worker_max_concurrency is normal's mapping; these are high's and low's (2-1000 each): the
# priorities' weights. A set worker_reserved_concurrency must cover the three together.
worker_priority_concurrency = { high = 2, low = 2 }
# Members of this Cognito group may submit priority "high" (others: 403 priority_not_allowed);
# null: nobody may. The e2e tests create it for their high-priority users.
# 4 + 2 + 2 = 8: the local runtime's default concurrency of an unreserved function.
high_priority_group = "priority-high"

max_receive_count               = 3
queue_message_retention_seconds = 345600
job_retention_days              = 7
result_retention_days           = 7
result_url_ttl_seconds          = 900

# Per-user quotas (README "Flow control"). Generous here: the reliability suite submits 2,000
# jobs for 4 users and `invoke bench` 500 for 8 back to back; the e2e tests add small tiers
# for the users whose limits they test (tests/e2e/conftest.py).
quota_max_active_jobs        = 5000
quota_submit_rate_per_second = 200
quota_submit_burst           = 2000
quota_tiers                  = {}

api_throttling_rate_limit   = 100
api_throttling_burst_limit  = 200
api_execution_logging_level = "ERROR"
# moto has no AWS managed IAM policies; the API Gateway logging role is an account setting anyway.
manage_api_gateway_cloudwatch_role = false
log_retention_days                 = 7

deletion_protection    = false
point_in_time_recovery = false
force_destroy_bucket   = true

create_alarm_topic               = false
alarm_email                      = null
oldest_message_age_alarm_seconds = 300

# Job status events (README "Events and notifications"): the jobs table's stream -> the
# publisher -> the bus. A stream batch whose events cannot be put is retried this many times
# (or until its records are this old), then described in the publisher's failures queue.
events_batch_size                 = 100
events_batching_window_seconds    = 0
events_maximum_retry_attempts     = 5
events_maximum_record_age_seconds = 3600
# The operators' topic gets FAILED jobs; COMPLETE ones too when this is true.
job_events_notify_completions = false
job_events_email              = null
# Webhooks (README "Webhooks"). Loopback receivers are allowed here ONLY: the embedded default
# runs everything on this machine. Never set webhook_allow_loopback in an AWS env's tfvars.
webhook_allow_loopback       = true
webhook_timeout_seconds      = 5
webhook_max_receive_count    = 8
webhook_backoff_base_seconds = 1
webhook_backoff_cap_seconds  = 60
