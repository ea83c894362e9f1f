# prod: the production stack on AWS. State: prod.backend.hcl.
project = "jobs"
env     = "prod"
region  = "us-east-1"

# The existing Cognito user pool (the seed's UserPoolArn / IssuerUrl / CognitoClientId).
# Placeholders (they contain CHANGEME): replace them with your pool's values. `invoke plan`
# and `invoke deploy` refuse to run while a placeholder is left here or in <env>.backend.hcl.
cognito_user_pool_arn = "arn:aws:cognito-idp:us-east-1:222222222222:userpool/us-east-1_CHANGEMEprod"
cognito_issuer_url    = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_CHANGEMEprod"
cognito_app_client_id = "prodchangeme000000000000001"
cors_allowed_origins  = ["https://app.example.com"]
# The web console on CloudFront (module web; README "Web console"): its origin joins the API's
# CORS origins by itself. Optional custom domain: console_aliases + console_acm_certificate_arn.
console_enabled     = true
console_price_class = "PriceClass_100"

# Which Cognito tokens the API takes. [] (the default): ID tokens only. A list of OAuth scopes:
# access tokens holding at least one of them, and no ID tokens (API Gateway's rule), e.g.
# ["aws.cognito.signin.user.admin"] (every access token InitiateAuth issues) or a resource
# server's custom scope ["<identifier>/<scope>"]. README: "The API", tokens.
api_authorization_scopes = []

lambda_architecture            = "arm64"
api_memory_mb                  = 512
api_timeout_seconds            = 10
api_reserved_concurrency       = 50
worker_memory_mb               = 1024
worker_timeout_seconds         = 60
worker_reserved_concurrency    = 26
worker_batch_size              = 10
worker_batching_window_seconds = 2
worker_max_concurrency         = 20
log_level                      = "INFO"

# Priorities (README "Flow control"): one queue and one event source mapping per priority.
# worker_max_concurrency is normal's mapping; these are high's and low's (2-1000 each): the
# priorities' weights. A set worker_reserved_concurrency must cover the three together:
# 26 = 20 (normal) + 4 (high) + 2 (low).
worker_priority_concurrency = { high = 4, low = 2 }
# Members of this Cognito group may submit priority "high" (others: 403 priority_not_allowed);
# null: nobody may. Create the group in the pool.
high_priority_group = "priority-high"

max_receive_count = 5
# 7 days (at most 10): a message keeps its age in the 14-day DLQ, so dead letters stay there at least 7 days
queue_message_retention_seconds = 604800
job_retention_days              = 90
result_retention_days           = 90
result_url_ttl_seconds          = 300

# Per-user quotas (README "Flow control"): unfinished jobs at once, and a submission token
# bucket (rate per second + burst). A Cognito group named in quota_tiers lifts its members
# to that tier's limits (the groups are the pool's: create them there).
quota_max_active_jobs        = 100
quota_submit_rate_per_second = 5
quota_submit_burst           = 50
quota_tiers = {
  "pro"      = { max_active_jobs = 1000, submit_rate_per_second = 25, submit_burst = 250 }
  "internal" = { max_active_jobs = 5000, submit_rate_per_second = 100, submit_burst = 1000 }
}

api_throttling_rate_limit   = 200
api_throttling_burst_limit  = 400
api_execution_logging_level = "ERROR"
# API Gateway logs through ONE role per account and region (an account setting): exactly one
# env per account/region may manage it, or destroying that env breaks the others' logging.
# false here: set it true in the one env that owns it, or create the role once by hand
# (docs/infrastructure.md). The stage's access and execution logs need it to exist: `invoke
# deploy` refuses to apply without it.
manage_api_gateway_cloudwatch_role = false
log_retention_days                 = 365

deletion_protection    = true
point_in_time_recovery = true
force_destroy_bucket   = false

create_alarm_topic               = true
alarm_email                      = "oncall@example.com"
oldest_message_age_alarm_seconds = 600

# Job status events (README "Events and notifications"): the jobs table's stream -> the
# publisher -> the bus. A stream batch whose events cannot be put is retried this many times
# (or until its records are this old), then described in the publisher's failures queue.
events_batch_size                 = 100
events_batching_window_seconds    = 0
events_maximum_retry_attempts     = 10
events_maximum_record_age_seconds = 21600
# The operators' topic gets FAILED jobs; COMPLETE ones too when this is true.
job_events_notify_completions = false
job_events_email              = "oncall@example.com"
