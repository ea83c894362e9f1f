"""The web console (``web/``): its ``config.json``, its security headers, a loopback server for
the embedded default, and the upload to the console bucket on AWS.

The console is static files with no build step; what differs between stacks is only
``config.json`` (API URL, region, user pool, app client, Cognito endpoint, which token the API
takes), written here from the stack's outputs, never built into the code.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tooling import loopback

ROOT = Path(__file__).resolve().parent.parent
WEB_ROOT = ROOT / "web"
CONFIG_NAME = "config.json"
# Cognito's user-pool API (InitiateAuth, GlobalSignOut) on AWS.
COGNITO_ENDPOINT = "https://cognito-idp.{region}.amazonaws.com/"
# The scope every access token of a user sign-in carries (see README, The API).
SIGNIN_SCOPE = "aws.cognito.signin.user.admin"
# What the hosted login's authorization-code flow asks for unless the stack says otherwise.
DEFAULT_OAUTH_SCOPES = ("openid", "email", "profile")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}


def token_use(scopes: list[str] | None) -> str:
    """Which Cognito token the API's methods take: the ID token without scopes, else the
    access token (the console signs in with a password, whose access token carries only
    ``aws.cognito.signin.user.admin``)."""
    return "access" if scopes else "id"


def console_config(
    outputs: dict[str, Any], *, api_url: str | None = None, cognito_endpoint: str | None = None
) -> dict[str, Any]:
    """``config.json`` for a deployed stack, from its Terraform outputs.

    ``api_url`` and ``cognito_endpoint`` override the outputs' for the embedded default (the
    local runtime's front and the embedded backend)."""
    region = str(outputs["region"])
    issuer = str(outputs.get("issuer_url") or "")
    # Cognito's endpoint is the pool's region's, which the issuer URL names (the stack's by default).
    default_endpoint = origin_of(issuer) + "/" if issuer.startswith("https://cognito-idp.") else None
    return {
        "api_url": api_url or str(outputs["api_url"]),
        "region": region,
        "user_pool_id": str(outputs["user_pool_id"]),
        "client_id": str(outputs["user_pool_client_id"]),
        "cognito_endpoint": cognito_endpoint or default_endpoint or COGNITO_ENDPOINT.format(region=region),
        "token_use": token_use(list(outputs.get("api_authorization_scopes") or [])),
        "env": str(outputs.get("name_prefix") or ""),
        **hosted_login(outputs),
    }


def hosted_login(outputs: dict[str, Any]) -> dict[str, Any]:
    """The hosted (managed) login of the pool, when it has one: ``oauth_domain`` (the https base
    URL of its login domain) and ``oauth_scopes``; nothing otherwise (the password form only)."""
    domain = str(outputs.get("cognito_oauth_domain") or "").rstrip("/")
    if not domain:
        return {}
    return {"oauth_domain": domain, "oauth_scopes": list(outputs.get("cognito_oauth_scopes") or DEFAULT_OAUTH_SCOPES)}


def origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(connect: list[str]) -> str:
    """The console's CSP: its own files only, and fetch() to exactly the given origins (the
    API, Cognito, and where result URLs point). The same policy CloudFront sends on AWS
    (terraform/modules/web)."""
    connect_src = " ".join(["'self'", *sorted(dict.fromkeys(connect))])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect_src}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def security_headers(connect: list[str]) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(connect),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


def web_files(root: Path = WEB_ROOT) -> Iterator[tuple[str, Path]]:
    """(key, path) of every file of the console, ``config.json`` excepted (the deployment's)."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != CONFIG_NAME and not path.name.startswith("."):
            yield path.relative_to(root).as_posix(), path


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


# --------------------------------------------------------------------------------------
# The embedded default: a loopback server next to the local runtime
# --------------------------------------------------------------------------------------


@dataclass
class ConsoleServer:
    """Serves ``web/`` and a generated ``config.json`` on loopback, with the CSP of AWS."""

    config: dict[str, Any]
    connect: list[str]
    root: Path = WEB_ROOT
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the console server is not running")
        return f"{loopback.base_url(self._server)}/"

    @property
    def connect_origins(self) -> list[str]:
        """``connect`` and, when the config names a hosted login domain, exactly its origin (the
        token and revoke endpoints the page calls with fetch())."""
        domain = str(self.config.get("oauth_domain") or "")
        return [*self.connect, origin_of(domain)] if domain else list(self.connect)

    def start(self) -> ConsoleServer:
        handler = _handler(
            self.root.resolve(), json.dumps(self.config, indent=2).encode(), security_headers(self.connect_origins)
        )
        self._server = loopback.serve(handler, port=self.port, name="console-server")
        return self

    def stop(self) -> None:
        if self._server is not None:
            loopback.stop(self._server)
            self._server = None


def _handler(root: Path, config: bytes, headers: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "jobs-console"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the runtime's console is for functions
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            if path.endswith("/"):
                path += "index.html"
            if path == f"/{CONFIG_NAME}":
                data, ctype = config, CONTENT_TYPES[".json"]
            else:
                target = (root / path.lstrip("/")).resolve()
                if not target.is_relative_to(root) or not target.is_file():
                    self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain; charset=utf-8", body)
                    return
                data, ctype = target.read_bytes(), content_type(target)
            self._send(HTTPStatus.OK, data, ctype, body)

        def _send(self, status: HTTPStatus, data: bytes, ctype: str, body: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if body:
                self.wfile.write(data)

    return Handler


def serve_local(outputs: dict[str, Any], api_url: str, backend_endpoint: str, port: int = 0) -> ConsoleServer:
    """The console of the embedded default: the local runtime's API, moto's Cognito, and the
    backend's S3 (result URLs) allowed in ``connect-src``."""
    config = console_config(outputs, api_url=api_url, cognito_endpoint=backend_endpoint.rstrip("/") + "/")
    return ConsoleServer(config, connect=[origin_of(api_url), origin_of(backend_endpoint)], port=port).start()


# --------------------------------------------------------------------------------------
# AWS: upload to the console bucket behind CloudFront
# --------------------------------------------------------------------------------------

Out = Callable[[str], None]


def upload(s3: Any, cloudfront: Any, outputs: dict[str, Any], out: Out, root: Path = WEB_ROOT) -> int:
    """Bring the console bucket in line with ``web/`` and this stack's ``config.json``: put what
    differs (by MD5, the ETag of a single-part put), delete what is no longer part of the
    console, and invalidate CloudFront's cache when anything changed. Returns the changes made
    (0 on an unchanged redeploy, which then changes nothing)."""
    bucket = str(outputs["console_bucket_name"])
    wanted: dict[str, tuple[bytes, str]] = {
        key: (path.read_bytes(), content_type(path)) for key, path in web_files(root)
    }
    wanted[CONFIG_NAME] = (json.dumps(console_config(outputs), indent=2).encode() + b"\n", CONTENT_TYPES[".json"])
    present = {
        obj["Key"]: str(obj.get("ETag", "")).strip('"')
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
    }
    put = [
        key
        for key, (data, _) in wanted.items()
        if present.get(key) != hashlib.md5(data, usedforsecurity=False).hexdigest()
    ]
    for key in put:
        data, ctype = wanted[key]
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=ctype, CacheControl="no-cache")
    stale = sorted(set(present) - set(wanted))
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]]})
    distribution = outputs.get("console_distribution_id")
    if (put or stale) and distribution:
        cloudfront.create_invalidation(
            DistributionId=distribution,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/*"]},
                "CallerReference": f"deploy-{time.time_ns()}",
            },
        )
    changed = len(put) + len(stale)
    if changed:
        out(
            f"console: {len(put)} file(s) uploaded to s3://{bucket}, {len(stale)} removed; CloudFront cache invalidated"
        )
    else:
        out(f"console: s3://{bucket} is up to date")
    return changed
