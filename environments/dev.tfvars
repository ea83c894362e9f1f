# dev: a shared development stack on AWS. State: dev.backend.hcl.
project = "jobs"
env     = "dev"
region  = "us-east-1"

# The existing Cognito user pool (the seed's UserPoolArn / IssuerUrl / CognitoClientId).
# Placeholders (they contain CHANGEME): replace them with your pool's values. `invoke plan`
# and `invoke deploy` refuse to run while a placeholder is left here or in <env>.backend.hcl.
cognito_user_pool_arn = "arn:aws:cognito-idp:us-east-1:111111111111:userpool/us-east-1_CHANGEMEdev"
cognito_issuer_url    = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_CHANGEMEdev"
cognito_app_client_id = "devchangeme0000000000000001"
cors_allowed_origins  = ["http://localhost:3000", "https://dev.app.example.com"]
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
api_memory_mb                  = 256
api_timeout_seconds            = 10
api_reserved_concurrency       = -1
worker_memory_mb               = 512
worker_timeout_seconds         = 60
worker_reserved_concurrency    = -1
worker_batch_size              = 10
worker_batching_window_seconds = 0
worker_max_concurrency         = 5
log_level                      = "DEBUG"

# Priorities (README "Flow control"): one queue and one event source mapping per priority.
# worker_max_concurrency is normal's mapping; these are high's and low's (2-1000 each): the
# priorities' weights. A set worker_reserved_concurrency must cover the three together.
worker_priority_concurrency = { high = 2, low = 2 }
# Members of this Cognito group may submit priority "high" (others: 403 priority_not_allowed);
# null: nobody may. Create the group in the pool.
high_priority_group = "priority-high"

max_receive_count               = 3
queue_message_retention_seconds = 345600
job_retention_days              = 14
result_retention_days           = 14
result_url_ttl_seconds          = 900

# Per-user quotas (README "Flow control"): unfinished jobs at once, and a submission token
# bucket (rate per second + burst). A Cognito group named in quota_tiers lifts its members
# to that tier's limits (the groups are the pool's: create them there).
quota_max_active_jobs        = 50
quota_submit_rate_per_second = 2
quota_submit_burst           = 20
quota_tiers = {
  "power-users" = { max_active_jobs = 500, submit_rate_per_second = 20, submit_burst = 200 }
}

api_throttling_rate_limit   = 20
api_throttling_burst_limit  = 40
api_execution_logging_level = "INFO"
# API Gateway logs through ONE role per account and region (an account setting): exactly one
# env per account/region may manage it, or destroying that env breaks the others' logging.
# false here: set it true in the one env that owns it, or create the role once by hand
# (docs/infrastructure.md). The stage's access and execution logs need it to exist: `invoke
# deploy` refuses to apply without it.
manage_api_gateway_cloudwatch_role = false
log_retention_days                 = 14

deletion_protection    = false
point_in_time_recovery = true
force_destroy_bucket   = true

create_alarm_topic               = true
alarm_email                      = null
oldest_message_age_alarm_seconds = 900

# Job status events (README "Events and notifications"): the jobs table's stream -> the
# publisher -> the bus. A stream batch whose events cannot be put is retried this many times
# (or until its records are this old), then described in the publisher's failures queue.
events_batch_size                 = 100
events_batching_window_seconds    = 0
events_maximum_retry_attempts     = 10
events_maximum_record_age_seconds = 21600
# The operators' topic gets FAILED jobs; COMPLETE ones too when this is true.
job_events_notify_completions = true
job_events_email              = null
