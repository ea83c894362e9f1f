# REST API: Cognito-authorized Lambda proxy routes, CORS, gateway responses, a logged and
# throttled stage, and a deployment replaced exactly when the API changes.

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  api_name = "${var.name_prefix}-api"

  # The API's routes. Query parameters marked true are required (checked by the request
  # validator before the function runs); false ones are declared for documentation.
  routes = {
    "POST /job"   = { path = "job", method = "POST", query = {} }
    "GET /job"    = { path = "job", method = "GET", query = { job_id = true } }
    "DELETE /job" = { path = "job", method = "DELETE", query = { job_id = true } }
    "GET /jobs"   = { path = "jobs", method = "GET", query = { status = false, limit = false, next_token = false } }
    "GET /quota"  = { path = "quota", method = "GET", query = {} }
    # The registered actions with their descriptions and formats (the console's action list).
    "GET /actions" = { path = "actions", method = "GET", query = {} }
    # Many jobs in one request (up to 100), validated and answered per item.
    "POST /jobs/batch" = { path = "jobs/batch", method = "POST", query = {} }
  }
  paths = toset([for r in local.routes : r.path])
  # Paths of one segment hang from the root; "a/b" from the resource of "a" (which must be a
  # route's path too).
  top_paths   = toset([for p in local.paths : p if length(split("/", p)) == 1])
  child_paths = { for p in local.paths : p => split("/", p) if length(split("/", p)) == 2 }
  resource_ids = merge(
    { for p, r in aws_api_gateway_resource.path : p => r.id },
    { for p, r in aws_api_gateway_resource.child : p => r.id },
  )

  # CORS headers of the errors API Gateway answers itself (401 from the authorizer, 429
  # throttled, 404 no such route, 5xx, ...). A gateway response's header values are static:
  # they cannot echo the caller's Origin, so naming one allowed origin would leave every
  # other allowed origin's browser unable to read the error. They carry "*" instead: these
  # bodies hold no user data (only API Gateway's own message), and a bearer token in the
  # Authorization header is not a CORS credential, so "*" is readable by fetch() without
  # credentials: "include". The allow-list still guards everything else: a browser only sends
  # a cross-origin request with an Authorization header after a preflight, which the function
  # answers for the configured origins only, and the function's own responses (every 2xx and
  # every error it returns) echo the caller's origin only when it is on the list.
  gateway_response_headers = {
    "gatewayresponse.header.Access-Control-Allow-Origin"  = "'*'"
    "gatewayresponse.header.Access-Control-Allow-Headers" = "'Authorization,Content-Type,Idempotency-Key'"
  }

  # Errors produced by API Gateway itself, in the API's error shape {"error", "message"}.
  gateway_responses = {
    UNAUTHORIZED                 = { status = "401", error = "unauthorized", message = "$context.error.messageString" }
    ACCESS_DENIED                = { status = "403", error = "forbidden", message = "$context.error.messageString" }
    MISSING_AUTHENTICATION_TOKEN = { status = "404", error = "route_not_found", message = "\"no such route\"" }
    BAD_REQUEST_PARAMETERS       = { status = "400", error = "missing_job_id", message = "\"$context.error.validationErrorString\"" }
    BAD_REQUEST_BODY             = { status = "400", error = "invalid_request", message = "\"$context.error.validationErrorString\"" }
    THROTTLED                    = { status = "429", error = "throttled", message = "$context.error.messageString" }
    DEFAULT_4XX                  = { status = null, error = "client_error", message = "$context.error.messageString" }
    DEFAULT_5XX                  = { status = null, error = "internal_error", message = "$context.error.messageString" }
  }
}

resource "aws_api_gateway_rest_api" "this" {
  name        = local.api_name
  description = "Job API of ${var.name_prefix}"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_authorizer" "cognito" {
  name            = "${var.name_prefix}-cognito"
  rest_api_id     = aws_api_gateway_rest_api.this.id
  type            = "COGNITO_USER_POOLS"
  provider_arns   = [var.user_pool_arn]
  identity_source = "method.request.header.Authorization"
}

resource "aws_api_gateway_request_validator" "params" {
  name                        = "${var.name_prefix}-params"
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  validate_request_parameters = true
  validate_request_body       = false
}

resource "aws_api_gateway_resource" "path" {
  for_each = local.top_paths

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = each.key
}

resource "aws_api_gateway_resource" "child" {
  for_each = local.child_paths

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.path[each.value[0]].id
  path_part   = each.value[1]
}

# A Cognito-authorized method without authorization scopes takes ID tokens only; with scopes
# it takes access tokens only, holding at least one of them (API Gateway's rule).
resource "aws_api_gateway_method" "route" {
  for_each = local.routes

  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = local.resource_ids[each.value.path]
  http_method          = each.value.method
  authorization        = "COGNITO_USER_POOLS"
  authorizer_id        = aws_api_gateway_authorizer.cognito.id
  authorization_scopes = var.authorization_scopes
  request_validator_id = aws_api_gateway_request_validator.params.id
  request_parameters   = { for name, required in each.value.query : "method.request.querystring.${name}" => required }
}

resource "aws_api_gateway_integration" "route" {
  for_each = local.routes

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = local.resource_ids[each.value.path]
  http_method             = aws_api_gateway_method.route[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.function_invoke_arn
}

# CORS preflight: answered by the function (Powertools CORSConfig), which knows the full
# list of allowed origins. Browsers send no Authorization header on preflight.
resource "aws_api_gateway_method" "options" {
  #checkov:skip=CKV_AWS_59:CORS preflight (OPTIONS) must be unauthenticated; the function answers it without touching data.
  for_each = local.paths

  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = local.resource_ids[each.key]
  http_method          = "OPTIONS"
  authorization        = "NONE"
  request_validator_id = aws_api_gateway_request_validator.params.id
}

resource "aws_api_gateway_integration" "options" {
  for_each = local.paths

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = local.resource_ids[each.key]
  http_method             = aws_api_gateway_method.options[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.function_invoke_arn
}

resource "aws_api_gateway_gateway_response" "error" {
  for_each = local.gateway_responses

  rest_api_id   = aws_api_gateway_rest_api.this.id
  response_type = each.key
  status_code   = each.value.status

  response_templates = {
    "application/json" = "{\"error\":\"${each.value.error}\",\"message\":${each.value.message}}"
  }

  response_parameters = local.gateway_response_headers
}

# Redeploy when, and only when, the API changes: hash the configuration that defines the API
# and the ids of its parts, never resource attributes (a refresh fills in defaults such as
# request_parameters = {} and would force a new deployment on every plan).
resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  description = "Deployment of ${local.api_name}"

  triggers = {
    redeployment = sha1(jsonencode({
      # what the API is: the configuration that defines it ...
      routes                   = local.routes
      gateway_responses        = local.gateway_responses
      gateway_response_headers = local.gateway_response_headers
      authorization_scopes     = var.authorization_scopes
      user_pool_arn            = var.user_pool_arn
      function                 = var.function_invoke_arn
      # ... and the ids of its parts (a part that is replaced gets a new id)
      ids = concat(
        [aws_api_gateway_authorizer.cognito.id, aws_api_gateway_request_validator.params.id],
        values(local.resource_ids),
        [for m in aws_api_gateway_method.route : m.id],
        [for m in aws_api_gateway_method.options : m.id],
        [for i in aws_api_gateway_integration.route : i.id],
        [for i in aws_api_gateway_integration.options : i.id],
        [for g in aws_api_gateway_gateway_response.error : g.id],
      )
    }))
  }

  lifecycle {
    create_before_destroy = true
  }
}

# ---------------------------------------------------------------------------------------
# Stage: access logs (JSON), execution logs with retention, throttling, X-Ray
# ---------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_158:Logs are encrypted by CloudWatch Logs by default; a customer managed key is not required for access logs.
  #checkov:skip=CKV_AWS_338:Retention is an environment setting (log_retention_days), deliberately shorter than a year outside prod.
  name              = "/aws/apigateway/${local.api_name}/${var.stage_name}/access"
  retention_in_days = var.log_retention_days
}

# API Gateway would create this group itself, without retention, on first execution log.
resource "aws_cloudwatch_log_group" "execution" {
  #checkov:skip=CKV_AWS_158:Logs are encrypted by CloudWatch Logs by default; a customer managed key is not required for execution logs.
  #checkov:skip=CKV_AWS_338:Retention is an environment setting (log_retention_days), deliberately shorter than a year outside prod.
  name              = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.this.id}/${var.stage_name}"
  retention_in_days = var.log_retention_days
}

# API Gateway writes logs through one role per account and region. Exactly one stack per
# account/region should manage it (manage_cloudwatch_role = true); the others rely on it.
# IAM role names are global to the account: the name carries the region.
data "aws_iam_policy_document" "apigateway_assume" {
  count = var.manage_cloudwatch_role ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cloudwatch" {
  count = var.manage_cloudwatch_role ? 1 : 0

  name               = "${var.name_prefix}-apigw-logs-${data.aws_region.current.name}-role"
  assume_role_policy = data.aws_iam_policy_document.apigateway_assume[0].json
}

resource "aws_iam_role_policy_attachment" "cloudwatch" {
  count = var.manage_cloudwatch_role ? 1 : 0

  role       = aws_iam_role.cloudwatch[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.manage_cloudwatch_role ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.cloudwatch[0].arn

  depends_on = [aws_iam_role_policy_attachment.cloudwatch]
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Responses are per-user and change as jobs progress; caching them would serve stale or foreign data.
  #checkov:skip=CKV2_AWS_29:WAF is an organisation-level choice (cost, rules); throttling and the Cognito authorizer protect the API here.
  #checkov:skip=CKV2_AWS_51:Clients are browsers and scripts authenticated by Cognito tokens; the backend is Lambda, so no client certificate is needed.
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = var.tracing_enabled

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      extendedRequestId  = "$context.extendedRequestId"
      ip                 = "$context.identity.sourceIp"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      resourcePath       = "$context.resourcePath"
      status             = "$context.status"
      protocol           = "$context.protocol"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
      responseLatency    = "$context.responseLatency"
      errorMessage       = "$context.error.message"
      authorizerError    = "$context.authorizer.error"
      sub                = "$context.authorizer.claims.sub"
      xrayTraceId        = "$context.xrayTraceId"
    })
  }

  depends_on = [
    aws_api_gateway_account.this,
    aws_cloudwatch_log_group.execution,
  ]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Caching is off on purpose: per-user, fast-changing job data must not be served from a cache.
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = var.execution_logging_level
    data_trace_enabled     = false
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
    caching_enabled        = false
  }
}

# The function may be invoked by this API's stage only.
resource "aws_lambda_permission" "api" {
  statement_id  = "AllowInvokeFrom-${aws_api_gateway_rest_api.this.id}"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/*/*"
}
