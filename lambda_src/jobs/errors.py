"""Domain errors. The API maps each to one HTTP status; the worker maps them to retry/ack."""

from __future__ import annotations


class JobError(Exception):
    """Base of every error the domain raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ValidationError(JobError):
    status = 400
    code = "invalid_request"


class InvalidBatch(ValidationError):
    """Items of a batch failed validation; ``items``: one ``{"index", "error", "message"}`` each."""

    code = "invalid_batch"

    def __init__(self, message: str, items: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.items = items


class Unauthorized(JobError):
    status = 401
    code = "unauthorized"


class Forbidden(JobError):
    status = 403
    code = "forbidden"


class JobNotFound(JobError):
    status = 404
    code = "job_not_found"


class Conflict(JobError):
    status = 409
    code = "conflict"


class IdempotencyKeyReused(JobError):
    status = 422
    code = "idempotency_key_reused"


class TooManyRequests(JobError):
    """Over a per-user limit (``rate_limited`` or ``quota_exceeded``); nothing was written.

    ``retry_after`` is in seconds; ``usage`` is the caller's counter as the refusal saw it
    (a ``jobs.quotas.Usage``), for the rate-limit headers.
    """

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, code: str, retry_after: int, usage: object) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after
        self.usage = usage


class EnqueueFailed(JobError):
    status = 503
    code = "enqueue_failed"


class Busy(JobError):
    """Concurrent writes to the caller's quota counter kept cancelling each other."""

    status = 503
    code = "busy"


class ActionError(Exception):
    """An action could not produce a result for its input (the job may be retried)."""


class PoisonMessage(Exception):
    """A queue message that can never be processed (malformed): it ends in the DLQ."""
