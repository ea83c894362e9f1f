"""JobHandler Lambda: the REST API (POST /job, POST /jobs/batch, GET /job, GET /jobs, DELETE /job,
GET /quota, GET /actions).

Thin: it reads the request, asks ``JobService``, and maps domain errors to JSON errors.
Identity is the verified claims the API Gateway Cognito authorizer put in the event.
"""

from __future__ import annotations

import json
import math
import re
import time
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobs import aws
from jobs.actions import all_actions
from jobs.errors import Forbidden, InvalidBatch, JobError, TooManyRequests, Unauthorized, ValidationError
from jobs.model import Job, Status, parse_idempotency_key, parse_job_id, parse_limit, parse_status_filter
from jobs.quotas import Limits, Plan, Usage, groups_from_claim, limits_for
from jobs.service import JobService
from jobs.settings import get_settings
from jobs.telemetry import logger, metrics, tracer

settings = get_settings()  # fails at start-up, naming the missing variable

cors = CORSConfig(
    allow_origin=settings.cors_allowed_origins[0],
    extra_origins=list(settings.cors_allowed_origins[1:]),
    allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
    expose_headers=["Location", "X-Next-Token", "Idempotent-Replayed", "Retry-After", "RateLimit", "RateLimit-Policy"],
    max_age=600,
)
app = APIGatewayRestResolver(cors=cors)


@cache
def service() -> JobService:
    return JobService(
        settings,
        aws.job_table(settings),
        aws.result_bucket(settings),
        aws.job_queue(settings),
        aws.job_scheduler(settings),
    )


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, ensure_ascii=False),
        headers=headers or {},
    )


# Which claim names the app client, by token type (``token_use``).
_CLIENT_CLAIM = {"id": "aud", "access": "client_id"}


def _claims() -> dict[str, Any]:
    authorizer = app.current_event.request_context.authorizer
    return (authorizer.claims if authorizer else None) or {}


def caller() -> str:
    """The caller's user id (``sub``) from the authorizer's verified claims.

    The REST API's Cognito authorizer does not check which app client a token was issued
    to, so this does: ``aud`` of an ID token, ``client_id`` of an access token.
    """
    claims = _claims()
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized("this request carries no verified identity")
    client_claim = _CLIENT_CLAIM.get(str(claims.get("token_use")))
    client = claims.get(client_claim) if client_claim else None
    if client != settings.allowed_client_id:
        raise Forbidden("this token was not issued to this API's app client")
    return sub


def quota_plan() -> Plan:
    """The caller's limits: the defaults, or the tiers their Cognito groups lift them to.

    Kept in the request's context so that every POST answer, errors included, can advertise it.
    """
    groups = groups_from_claim(_claims().get("cognito:groups"))
    plan = limits_for(groups, settings.quota_defaults, settings.quota_tiers)
    app.append_context(quota_plan=plan)
    return plan


def ratelimit_headers(limits: Limits, usage: Usage | None) -> dict[str, str]:
    """``RateLimit-Policy`` and (when the counter is known) ``RateLimit``, in the structured-field
    syntax of draft-ietf-httpapi-ratelimit-headers-11: policy ``"burst"`` is the submission
    bucket (``q`` tokens, refilled in ``w`` seconds), ``"active"`` the cap on unfinished jobs;
    ``r`` is what is left now, ``t`` the seconds until the bucket gains a token."""
    headers = {
        "RateLimit-Policy": f'"burst";q={limits.submit_burst};w={limits.refill_seconds}, '
        f'"active";q={limits.max_active_jobs};qu="concurrent-requests"'
    }
    if usage is not None:
        now_ms = int(time.time() * 1000)
        burst = f'"burst";r={usage.tokens(limits, now_ms)}'
        wait_ms = usage.next_token_ms(limits, now_ms)
        if wait_ms is not None:
            burst += f";t={math.ceil(wait_ms / 1000)}"
        headers["RateLimit"] = f'{burst}, "active";r={usage.free_slots(limits)}'
    return headers


def _job_id_param() -> str:
    return parse_job_id(app.current_event.get_query_string_value("job_id"))


_PATH = re.compile(r"/[!-~]*")  # an absolute path of printable ASCII, nothing a header could not carry
_STAGE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _job_path() -> str:
    """The path of ``GET /job`` as the caller addressed this API, for the ``Location`` header.

    It is the request's own path (``/<stage>/job`` on the execute-api host, the mapped path on
    a custom domain); if the event lacks it, ``/<stage>/job``, else ``/job``. Never raises: it
    is read before the job is written, and nothing after the write may fail (a client would
    retry a 5xx and submit the job twice).
    """
    context = app.current_event.raw_event.get("requestContext")
    context = context if isinstance(context, dict) else {}
    path, stage = context.get("path"), context.get("stage")
    if isinstance(path, str) and _PATH.fullmatch(path):
        return path
    if isinstance(stage, str) and _STAGE.fullmatch(stage):
        return f"/{stage}/job"
    return "/job"


def _submission() -> tuple[str | None, str | None, list[str]]:
    """A POST's body, Idempotency-Key and the caller's Cognito groups (or a 400)."""
    key = parse_idempotency_key(app.current_event.headers.get("Idempotency-Key"))
    try:
        body = app.current_event.decoded_body
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("the request body is not UTF-8 JSON", "invalid_json") from None
    return body, key, groups_from_claim(_claims().get("cognito:groups"))


@app.post("/job")
def create_job() -> Response:
    owner = caller()
    plan = quota_plan()
    body, key, groups = _submission()
    location = _job_path()
    submitted = service().submit(owner, body, key, plan.limits, groups)
    # Recorded and queued: from here on only values already known, nothing that can fail.
    job = submitted.job
    logger.set_correlation_id(job.job_id)
    headers = {"Location": f"{location}?job_id={job.job_id}", **ratelimit_headers(plan.limits, submitted.usage)}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
        logger.info("idempotent replay", extra={"action": job.action})
    else:
        metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
        logger.info("job submitted", extra={"action": job.action})
    return _json(202, {"job_id": job.job_id, "status": job.status.value}, headers)


@app.post("/jobs/batch")
def create_jobs() -> Response:
    owner = caller()
    plan = quota_plan()
    body, key, groups = _submission()
    submitted = service().submit_batch(owner, body, key, plan.limits, groups)
    headers = ratelimit_headers(plan.limits, submitted.usage)
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
        logger.info("idempotent replay of a batch", extra={"jobs": len(submitted.items)})
    else:
        queued = sum(1 for item in submitted.items if item.error is None)
        metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=queued)
        logger.info("batch submitted", extra={"jobs": len(submitted.items), "queued": queued})
    return _json(202, {"jobs": [item.view() for item in submitted.items]}, headers)


@app.get("/job")
def get_job() -> Response:
    owner = caller()
    job_id = _job_id_param()
    logger.set_correlation_id(job_id)
    job, url = service().get(owner, job_id)
    return _json(200, job.public_view(result_url=url))


@app.delete("/job")
def cancel_job() -> Response:
    owner = caller()
    job_id = _job_id_param()
    logger.set_correlation_id(job_id)
    job = service().cancel(owner, job_id)
    if job.status is Status.PROCESSING:
        # Running: the request is recorded; the worker stops the job at its next progress report.
        logger.info("cancel of a running job requested")
        return _json(202, job.public_view())
    logger.info("job cancelled")
    return _json(200, job.public_view())


@app.get("/jobs")
def list_jobs() -> Response:
    owner = caller()
    event = app.current_event
    limit = parse_limit(event.get_query_string_value("limit"))
    status = parse_status_filter(event.get_query_string_value("status"))
    page = service().list(owner, status, limit, event.get_query_string_value("next_token"))
    headers = {"X-Next-Token": page.next_token} if page.next_token else {}
    return _json(200, [job.public_view() for job in page.jobs], headers)


@app.get("/quota")
def get_quota() -> Response:
    owner = caller()
    plan = quota_plan()
    usage = service().quota(owner)
    now_ms = int(time.time() * 1000)
    wait_ms = usage.next_token_ms(plan.limits, now_ms)
    body = {
        "tiers": list(plan.tiers),
        "limits": plan.limits.as_dict(),
        "usage": {
            "active_jobs": usage.active_jobs,
            "free_slots": usage.free_slots(plan.limits),
            "submit_tokens": usage.tokens(plan.limits, now_ms),
            "next_token_seconds": math.ceil(wait_ms / 1000) if wait_ms is not None else None,
        },
    }
    return _json(200, body, ratelimit_headers(plan.limits, usage))


@app.get("/actions")
def list_actions() -> Response:
    """The registered actions, by name, with what each does and the formats it produces."""
    caller()
    body = [
        {"name": a.name, "description": a.description, "formats": [f.value for f in a.formats]} for a in all_actions()
    ]
    return _json(200, body)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json(status, {"error": code, "message": message}, headers)


@app.exception_handler(JobError)
def handle_job_error(exc: JobError) -> Response:
    if exc.status >= 500:
        # The cause (e.g. AccessDenied from SQS) is for the operator, not for the client.
        cause = f"{type(exc.__cause__).__name__}: {exc.__cause__}" if exc.__cause__ else None
        logger.error("request failed", extra={"error": exc.code, "cause": cause})
    headers: dict[str, str] = {}
    plan = app.context.get("quota_plan")
    if isinstance(plan, Plan) and app.current_event.http_method == "POST":
        # Every POST answer to a known caller advertises their policy; a refusal also the
        # counter it saw and when to come back.
        usage = exc.usage if isinstance(exc, TooManyRequests) and isinstance(exc.usage, Usage) else None
        headers.update(ratelimit_headers(plan.limits, usage))
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, InvalidBatch):
        return _json(exc.status, {"error": exc.code, "message": exc.message, "items": exc.items}, headers)
    return _error(exc.status, exc.code, exc.message, headers)


@app.not_found
def handle_not_found(_: NotFoundError) -> Response:
    event = app.current_event
    return _error(404, "route_not_found", f"no route for {event.http_method} {event.resource or event.path}")


@app.exception_handler(Exception)
def handle_unexpected(exc: Exception) -> Response:
    logger.exception("unhandled error")
    return _error(500, "internal_error", "the request failed unexpectedly; it was logged")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


__all__ = ["Job", "app", "lambda_handler"]
