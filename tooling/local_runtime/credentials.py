"""Each function's execution-role credentials, obtained the way the Lambda service obtains them.

On AWS, Lambda assumes a function's execution role and gives its execution environments the
role's temporary credentials; the event source mapping reads the queue with them too. Here
the runtime does the same on the embedded backend, which enforces IAM: it calls STS
AssumeRole as the identity that stands for the `lambda.amazonaws.com` service principal
(``LAMBDA_SERVICE_CREDENTIALS``), so a function can do exactly what its role allows and a
role whose trust policy does not name Lambda cannot be used at all.

Credentials are cached per (role, function) and assumed again before they expire: an
execution environment is started only with credentials that outlive its next invocation
(``FunctionPool`` retires environments whose credentials would not), and the pollers' clients
refresh theirs through botocore's ``RefreshableCredentials``.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from tooling.embedded_backend import LAMBDA_SERVICE_CREDENTIALS
from tooling.local_runtime.discovery import CLIENT_CONFIG
from tooling.local_runtime.errors import LocalRuntimeError

# Lambda's own role sessions last hours; an hour here exercises the refresh in a long session.
DEFAULT_DURATION_SECONDS = 3600


@dataclass(frozen=True)
class RoleCredentials:
    """Temporary credentials of one role session."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float  # epoch seconds

    def remaining(self, now: float | None = None) -> float:
        return self.expiration - (time.time() if now is None else now)

    def env(self) -> dict[str, str]:
        """As Lambda sets them in an execution environment."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


class ExecutionRoles:
    """Assumes functions' execution roles on the backend at ``endpoint``; caches and refreshes."""

    def __init__(
        self,
        endpoint: str,
        region: str,
        *,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        service_credentials: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        creds = service_credentials or LAMBDA_SERVICE_CREDENTIALS
        self.endpoint = endpoint
        self.region = region
        self.duration_seconds = duration_seconds
        self._clock = clock
        self._sts = boto3.session.Session().client(
            "sts",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            config=CLIENT_CONFIG,
        )
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], RoleCredentials] = {}
        self.assumed = 0  # how many AssumeRole calls were made (for tests and diagnostics)

    def credentials(self, role_arn: str, session_name: str, min_remaining: float = 0.0) -> RoleCredentials:
        """Credentials of ``role_arn`` valid for at least ``min_remaining`` more seconds."""
        if not role_arn:
            raise LocalRuntimeError(f"function {session_name} has no execution role")
        key = (role_arn, session_name)
        with self._lock:
            cached = self._cache.get(key)
            # Renewed once a quarter of their life has passed, or when they would not last.
            margin = max(min_remaining, self.duration_seconds * 0.75)
            if cached is not None and cached.remaining(self._clock()) > margin:
                return cached
            try:
                answer = self._sts.assume_role(
                    RoleArn=role_arn,
                    RoleSessionName=session_name[:64],
                    DurationSeconds=self.duration_seconds,
                )["Credentials"]
            except (ClientError, BotoCoreError) as exc:
                raise LocalRuntimeError(
                    f"could not assume the execution role {role_arn} of {session_name} as Lambda would: {exc}"
                ) from exc
            self.assumed += 1
            expires = answer["Expiration"].timestamp()  # botocore parses it to a datetime
            fresh = RoleCredentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"], expires)
            self._cache[key] = fresh
            return fresh

    def client(self, role_arn: str, session_name: str, service: str) -> Any:
        """A boto3 client acting as the role; its credentials refresh before they expire."""

        def refresh() -> dict[str, str]:
            creds = self.credentials(role_arn, session_name)
            return {
                "access_key": creds.access_key_id,
                "secret_key": creds.secret_access_key,
                "token": creds.session_token,
                "expiry_time": datetime.datetime.fromtimestamp(creds.expiration, datetime.UTC).isoformat(),
            }

        session = botocore.session.get_session()
        session._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
            metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
        )
        return boto3.session.Session(botocore_session=session).client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=self.region,
            config=CLIENT_CONFIG,
        )
