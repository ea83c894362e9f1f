"""One error type for the operator's tasks, and the helper that turns failures into one line.

A task that fails for a reason the user can act on (no credentials, terraform missing, an
unknown environment, a smoke job that FAILED...) prints exactly one line to stderr::

    error: <what is wrong>; <what to do next>

and exits non-zero, without a traceback. Anything not recognised is re-raised untouched, so
real bugs still show their traceback. Set ``JOBSTACK_DEBUG=1`` to get the traceback of a
recognised failure too.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

DEBUG_ENV_VAR = "JOBSTACK_DEBUG"

P = ParamSpec("P")
R = TypeVar("R")


class OperatorError(Exception):
    """A failure the operator can act on: what is wrong, and what to do next."""

    def __init__(self, what: str, todo: str | None = None, exit_code: int = 1) -> None:
        super().__init__(what)
        self.what = what
        self.todo = todo
        self.exit_code = exit_code

    def line(self) -> str:
        text = f"error: {self.what}"
        if self.todo:
            text += f"; {self.todo}"
        return " ".join(text.split())  # always one line


# Codes AWS answers with when the credentials exist but are no longer (or never were) valid.
_EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_INVALID_CODES = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}

# terraform's own words for the failures we recognise (stderr / output text).
_TERRAFORM_PATTERNS: list[tuple[re.Pattern[str], OperatorError]] = [
    (
        re.compile(
            r"S3 bucket \"?[^\s\"]*\"? does not exist|NoSuchBucket.*(state|backend)|"
            r"Failed to get existing workspaces: S3 bucket",
            re.I | re.S,
        ),
        OperatorError(
            "the Terraform state bucket of this environment does not exist",
            "create it (see the README's Infrastructure section) or fix the bucket in environments/<env>.backend.hcl",
        ),
    ),
    (
        re.compile(
            r"Failed to query available provider packages|could not connect to registry|"
            r"Failed to install provider|provider registry\.terraform\.io/hashicorp/aws.*"
            r"(not available|no available releases|cannot be found)",
            re.I | re.S,
        ),
        OperatorError(
            "the hashicorp/aws provider is not available (offline, no provider mirror found)",
            "set TF_PROVIDER_MIRROR (or a filesystem_mirror in your terraform CLI config) to the "
            "folder holding registry.terraform.io, or connect to the internet",
        ),
    ),
    (
        re.compile(
            r"No valid credential sources found|failed to refresh cached credentials|"
            r"NoCredentialProviders",
            re.I | re.S,
        ),
        OperatorError(
            "no AWS credentials found",
            "configure them (aws configure, AWS_PROFILE, or aws sso login), or use --env local",
        ),
    ),
    (
        re.compile(
            r"ExpiredToken|security token included in the request is expired|"
            r"token has expired",
            re.I | re.S,
        ),
        OperatorError(
            "your AWS credentials have expired",
            "refresh them (for example aws sso login, or new session credentials) and retry",
        ),
    ),
]


def classify_terraform_output(text: str) -> OperatorError | None:
    """Recognise a known failure in terraform's output, or None."""
    for pattern, error in _TERRAFORM_PATTERNS:
        if pattern.search(text):
            return OperatorError(error.what, error.todo, error.exit_code)
    return None


def _translate_botocore(exc: BaseException) -> OperatorError | None:
    try:
        from botocore import exceptions as bce
    except ImportError:  # pragma: no cover - botocore is a dependency
        return None
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return OperatorError(
            "no AWS credentials found",
            "configure them (aws configure, AWS_PROFILE, or aws sso login), or use --env local",
        )
    sso_expired = tuple(
        getattr(bce, name)
        for name in ("TokenRetrievalError", "SSOTokenLoadError", "UnauthorizedSSOTokenError")
        if hasattr(bce, name)
    )
    if sso_expired and isinstance(exc, sso_expired):
        return OperatorError("your AWS SSO session has expired", "run aws sso login and retry")
    if isinstance(exc, bce.ProfileNotFound):
        return OperatorError(str(exc), "check AWS_PROFILE or ~/.aws/config")
    if isinstance(exc, bce.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _EXPIRED_CODES:
            return OperatorError(
                "your AWS credentials have expired",
                "refresh them (for example aws sso login, or new session credentials) and retry",
            )
        if code in _INVALID_CODES:
            return OperatorError(
                f"AWS rejected your credentials ({code})",
                "check AWS_PROFILE / AWS_ACCESS_KEY_ID, or refresh them",
            )
        if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
            op = exc.operation_name
            return OperatorError(
                f"AWS denied {op}: {exc.response.get('Error', {}).get('Message', code)}",
                "use a role with permission for this operation",
            )
        return None
    if isinstance(exc, bce.EndpointConnectionError):
        return OperatorError(
            f"cannot reach the AWS endpoint ({exc.kwargs.get('endpoint_url', '?')})",
            "check your network; for --env local, start the embedded backend first (invoke local)",
        )
    return None


def translate(exc: BaseException) -> OperatorError | None:
    """The OperatorError for a known failure, or None for anything else."""
    if isinstance(exc, OperatorError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return OperatorError("interrupted", None, exit_code=130)
    found = _translate_botocore(exc)
    if found is not None:
        return found
    # Errors of sibling tooling modules that already carry a user-facing message.
    name = type(exc).__name__
    if name in {"PackagingError", "TerraformError", "LocalRuntimeError"}:
        # The module's own one-line message, unless terraform's full output (``details``)
        # shows a failure we can explain better (state bucket, credentials).
        details = getattr(exc, "details", "") or ""
        return classify_terraform_output(f"{exc}\n{details}") or OperatorError(str(exc))
    if isinstance(exc, FileNotFoundError) and exc.filename and os.path.basename(str(exc.filename)) == "terraform":
        return terraform_missing()
    return None


def terraform_missing() -> OperatorError:
    return OperatorError(
        "terraform is not installed or not on PATH",
        "install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install) and retry",
        exit_code=127,
    )


def report(error: OperatorError) -> None:
    print(error.line(), file=sys.stderr, flush=True)


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator: known failures -> one line on stderr + SystemExit(code), no traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (Exception, KeyboardInterrupt) as exc:
            error = translate(exc)
            if error is None or os.environ.get(DEBUG_ENV_VAR):
                raise
            report(error)
            raise SystemExit(error.exit_code) from None

    return wrapper
