"""API Gateway's COGNITO_USER_POOLS authorizer, verified against the embedded backend.

As on AWS: the token comes from the authorizer's identity source header (normally
``Authorization``, the raw token; a ``Bearer`` prefix is tolerated here), must be an RS256
JWT signed by one of the authorizer's user pools, unexpired, issued by that pool (``iss`` is
the real AWS URL ``https://cognito-idp.<region>.amazonaws.com/<pool_id>``) and an ID token
(or, for a method with authorization scopes, an access token holding one of them). The app
client (``aud``) is not checked, as API Gateway does not. The keys are read from the backend
(moto serves them at ``<endpoint>/<pool_id>/.well-known/jwks.json``), not from AWS.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import jwt

from tooling.local_runtime.discovery import AuthorizerConfig, UserPool

_JWKS_TTL_SECONDS = 300.0
_JWKS_MIN_REFETCH_SECONDS = 5.0


class Unauthorized(Exception):
    """The request is not authorized; API Gateway answers 401 {"message":"Unauthorized"}."""


class JwksCache:
    """Each pool's JSON Web Key Set, fetched from the backend and cached."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, dict[str, Any]]] = {}

    def _fetch(self, pool: UserPool) -> dict[str, Any]:
        url = f"{self._endpoint}/{pool.id}/.well-known/jwks.json"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - the loopback backend
                data = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise Unauthorized(f"could not read the JWKS of {pool.id} from {url}: {exc}") from exc
        return {key["kid"]: key for key in data.get("keys", []) if "kid" in key}

    def key(self, pool: UserPool, kid: str) -> Any:
        with self._lock:
            fetched, keys = self._keys.get(pool.id, (0.0, {}))
            age = time.monotonic() - fetched
            if age > _JWKS_TTL_SECONDS or (kid not in keys and age > _JWKS_MIN_REFETCH_SECONDS):
                keys = self._fetch(pool)
                self._keys[pool.id] = (time.monotonic(), keys)
        if kid not in keys:
            raise Unauthorized(f"no key {kid!r} in the JWKS of {pool.id}")
        return jwt.PyJWK(keys[kid], algorithm="RS256").key


def token_from_header(value: str | None) -> str:
    if not value or not value.strip():
        raise Unauthorized("no token in the identity source header")
    token = value.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


def verify(token: str, authorizer: AuthorizerConfig, jwks: JwksCache, scopes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The verified claims of ``token``, or Unauthorized (with the reason, for the console)."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"not a JWT: {exc}") from exc
    if header.get("alg") != "RS256":
        raise Unauthorized(f"algorithm {header.get('alg')!r} is not RS256")
    issuer = unverified.get("iss")
    pool = next((p for p in authorizer.pools if p.issuer == issuer), None)
    if pool is None:
        raise Unauthorized(f"issuer {issuer!r} is none of the authorizer's user pools")
    key = jwks.key(pool, str(header.get("kid")))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            issuer=pool.issuer,
            options={"require": ["exp", "iss", "token_use"], "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"token rejected: {exc}") from exc
    kind = claims.get("token_use")
    if scopes:
        granted = set(str(claims.get("scope", "")).split())
        if kind != "access" or not granted & set(scopes):
            raise Unauthorized(f"an access token with one of the scopes {list(scopes)} is required")
    elif kind != "id":
        raise Unauthorized(f"token_use is {kind!r}: this method takes an ID token")
    return claims


def _java_date(epoch: Any) -> str:
    when = dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
    return when.strftime("%a %b %d %H:%M:%S UTC %Y")


def claims_as_strings(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as API Gateway (REST) passes them in requestContext.authorizer.claims: all strings.

    ``exp`` and ``iat`` become dates like ``Thu Jan 10 17:46:05 UTC 2019``, booleans ``true`` /
    ``false``, lists are joined with commas, other values ``str()``-ed.
    """
    out: dict[str, str] = {}
    for name, value in claims.items():
        if name in ("exp", "iat") and isinstance(value, int | float):
            out[name] = _java_date(value)
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, list):
            out[name] = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            out[name] = json.dumps(value, separators=(",", ":"))
        else:
            out[name] = str(value)
    return out
