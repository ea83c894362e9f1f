"""boto3 clients for an environment: AWS's credential chain, or the embedded backend for local."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from tooling.embedded_backend import ADMIN_CREDENTIALS
from tooling.environments import Environment
from tooling.errors import OperatorError

# The embedded backend's administrator: the local env always uses these, never a real key.
LOCAL_CREDENTIALS = {
    "aws_access_key_id": ADMIN_CREDENTIALS["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": ADMIN_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
}
_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)


@dataclass
class AwsAccess:
    """A session plus the endpoint override (None on AWS)."""

    session: boto3.Session
    endpoint_url: str | None = None

    @property
    def region(self) -> str:
        return self.session.region_name or "us-east-1"

    def client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"config": _CONFIG}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return self.session.client(service, **kwargs)  # type: ignore[call-overload]


def for_endpoint(endpoint_url: str, region: str = "us-east-1") -> AwsAccess:
    """Access to an embedded backend at ``endpoint_url`` with the test credentials."""
    return AwsAccess(
        boto3.Session(
            aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
            region_name=region,
        ),
        endpoint_url,
    )


def for_environment(env: Environment) -> AwsAccess:
    endpoint = env.endpoint_url()
    if env.is_local and endpoint:
        return for_endpoint(endpoint, env.region)
    return AwsAccess(boto3.Session(region_name=env.region), endpoint)


def check_credentials(access: AwsAccess) -> str:
    """The caller's ARN; raises a translated error when credentials are missing or expired."""
    from tooling.errors import translate

    try:
        identity = access.client("sts").get_caller_identity()
    except Exception as exc:
        error = translate(exc)
        if error is not None:
            raise error from None
        raise
    arn = identity.get("Arn")
    if not isinstance(arn, str):
        raise OperatorError("AWS STS returned no caller identity", "check your credentials")
    return arn
