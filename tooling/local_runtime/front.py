"""The HTTP front: API Gateway REST API semantics for the deployed REST API, on loopback.

Requests to ``/<stage>/<path>`` are routed by the deployed resources (literal segments before
``{param}`` before ``{proxy+}``) and methods (``ANY`` as a fallback); what API Gateway would
refuse is refused with its answers (403 ``Missing Authentication Token`` for an unknown
resource or method, 401 ``Unauthorized`` from a Cognito authorizer, 502 for a failed or
malformed Lambda proxy response, 504 on the integration timeout), shaped by the API's
gateway responses when it has them. ``AWS_PROXY`` integrations invoke the function with a
version 1.0 proxy event; ``MOCK`` integrations (CORS preflight) answer from their
integration response.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import fnmatch
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tooling.local_runtime.authorizer import JwksCache, Unauthorized, claims_as_strings, token_from_header, verify
from tooling.local_runtime.discovery import MethodConfig, ResourceConfig, RestApiConfig
from tooling.local_runtime.functions import InvocationResult
from tooling.local_runtime.logs import LogRouter

LOOPBACK = "127.0.0.1"
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
Invoker = Callable[[str, dict[str, Any], float], InvocationResult]

# response type -> (status, message, x-amzn-ErrorType)
GATEWAY_DEFAULTS: dict[str, tuple[int, str, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token", "MissingAuthenticationTokenException"),
    "UNAUTHORIZED": (401, "Unauthorized", "UnauthorizedException"),
    "ACCESS_DENIED": (403, "Forbidden", "AccessDeniedException"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "Internal server error", "AuthorizerConfigurationException"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long", "RequestTooLargeException"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out", "InternalServerErrorException"),
    "INTEGRATION_FAILURE": (502, "Internal server error", "InternalServerErrorException"),
    "THROTTLED": (429, "Too Many Requests", "TooManyRequestsException"),
    "BAD_REQUEST_PARAMETERS": (400, "", "BadRequestException"),
}
_PROXY_RESPONSE_KEYS = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog: bursts of clients are queued, not refused


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Router:
    """Matches request paths to the deployed resources like API Gateway does."""

    def __init__(self, api: RestApiConfig) -> None:
        self.api = api
        self._templates = [(r, [s for s in r.path.split("/") if s]) for r in api.resources]

    @staticmethod
    def _match(template: list[str], segments: list[str]) -> tuple[list[int], dict[str, str]] | None:
        score: list[int] = []
        params: dict[str, str] = {}
        for i, part in enumerate(template):
            if part.startswith("{") and part.endswith("+}"):
                if i >= len(segments):
                    return None
                params[part[1:-2]] = "/".join(segments[i:])
                return [*score, 0], params
            if i >= len(segments):
                return None
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = segments[i]
                score.append(1)
            elif part == segments[i]:
                score.append(2)
            else:
                return None
        if len(template) != len(segments):
            return None
        return score, params

    def match(self, segments: list[str]) -> tuple[ResourceConfig, dict[str, str]] | None:
        best: tuple[list[int], ResourceConfig, dict[str, str]] | None = None
        for resource, template in self._templates:
            found = self._match(template, segments)
            if found and (best is None or found[0] > best[0]):
                best = (found[0], resource, found[1])
        return (best[1], best[2]) if best else None


def _literal(expression: str, request_headers: dict[str, str]) -> str | None:
    """The value of a response parameter mapping expression ('literal' or a request header)."""
    if len(expression) >= 2 and expression.startswith("'") and expression.endswith("'"):
        return expression[1:-1]
    header = re.match(r"^method\.request\.header\.(.+)$", expression)
    if header:
        return request_headers.get(header.group(1).lower())
    return None


class Front:
    """The HTTP server. ``api`` can be swapped while running (a redeploy)."""

    def __init__(
        self,
        api: RestApiConfig,
        invoker: Invoker,
        jwks: JwksCache,
        logs: LogRouter,
        account_id: str,
        region: str,
        port: int = 0,
        access_log: bool = True,
    ) -> None:
        self._router = Router(api)
        self._invoker = invoker
        self._jwks = jwks
        self._logs = logs
        self.account_id = account_id
        self.region = region
        self._access_log = access_log
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="front-invoke")
        self._server = _Server((LOOPBACK, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def api(self) -> RestApiConfig:
        return self._router.api

    @api.setter
    def api(self, api: RestApiConfig) -> None:
        self._router = Router(api)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="local-runtime-front", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._thread = None
        self._server.server_close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- requests --------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "local-api-gateway"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _serve(self) -> None:
                started = time.monotonic()
                try:
                    reply = front.handle(self)
                except Exception as exc:  # noqa: BLE001 - a bug here must still answer like a gateway
                    front._logs.say(f"front: internal error on {self.command} {self.path}: {exc!r}")
                    reply = front._gateway_reply("DEFAULT_5XX_INTERNAL", str(uuid.uuid4()), {}, 500)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)
                if front._access_log:
                    took = (time.monotonic() - started) * 1000
                    front._logs.say(f"{self.command} {self.path} -> {reply.status} ({took:.0f} ms)", "api-gateway")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        return Handler

    def _read_body(self, req: BaseHTTPRequestHandler) -> bytes | None:
        """The request body, or None if it is over API Gateway's limit."""
        if req.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            for _ in range(1_000_000):  # bounded: at most this many chunks
                size = int(req.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    req.rfile.readline()
                    break
                total += size
                if total > MAX_REQUEST_BYTES:
                    return None
                chunks.append(req.rfile.read(size))
                req.rfile.readline()
            return b"".join(chunks)
        length = int(req.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            return None
        return req.rfile.read(length) if length > 0 else b""

    def handle(self, req: BaseHTTPRequestHandler) -> Reply:
        request_id = str(uuid.uuid4())
        headers_lower = {k.lower(): v for k, v in req.headers.items()}
        router = self._router
        api = router.api
        url = urlsplit(req.path)
        segments = [unquote(s) for s in url.path.split("/") if s]
        # Read the body first: an unread body would corrupt the next request on this connection.
        body = self._read_body(req)
        if body is None:
            req.close_connection = True
            return self._gateway_reply("REQUEST_TOO_LARGE", request_id, headers_lower)
        stages = dict(api.stages)
        if not segments or segments[0] not in stages:
            body = json.dumps({"message": "Forbidden"}).encode()
            return Reply(
                403,
                [
                    ("Content-Type", "application/json"),
                    ("x-amzn-RequestId", request_id),
                    ("x-amzn-ErrorType", "ForbiddenException"),
                ],
                body,
            )
        stage = segments[0]
        context = {"stage": stage, "requestId": request_id}
        found = router.match(segments[1:])
        method = found[0].method(req.command) if found else None
        if found is None or method is None:
            return self._gateway_reply("MISSING_AUTHENTICATION_TOKEN", request_id, headers_lower, context=context)
        resource, path_params = found
        context["resourcePath"] = resource.path

        claims: dict[str, Any] | None = None
        if method.authorization_type == "COGNITO_USER_POOLS":
            authorizer = api.authorizer(method.authorizer_id)
            if authorizer is None or authorizer.identity_header is None:
                self._logs.say(f"{req.command} {resource.path}: authorizer {method.authorizer_id} not usable")
                return self._gateway_reply("AUTHORIZER_CONFIGURATION_ERROR", request_id, headers_lower, context=context)
            try:
                token = token_from_header(headers_lower.get(authorizer.identity_header.lower()))
                claims = verify(token, authorizer, self._jwks, method.authorization_scopes)
            except Unauthorized as exc:
                self._logs.say(f"401 for {req.command} {url.path}: {exc}", "api-gateway")
                return self._gateway_reply("UNAUTHORIZED", request_id, headers_lower, context=context)
        elif method.authorization_type != "NONE":
            self._logs.say(
                f"{req.command} {resource.path}: authorization type {method.authorization_type} "
                "is not emulated by the local runtime"
            )
            return self._gateway_reply("ACCESS_DENIED", request_id, headers_lower, context=context)

        missing = self._missing_parameters(method, headers_lower, url.query)
        if missing:
            message = f"Missing required request parameters: [{', '.join(missing)}]"
            context["error.validationErrorString"] = message
            return self._gateway_reply(
                "BAD_REQUEST_PARAMETERS", request_id, headers_lower, context=context, message=message
            )

        if method.integration_type == "MOCK":
            return self._mock(method, request_id, headers_lower)
        if method.integration_type == "AWS_PROXY" and method.function_name:
            event = self._proxy_event(
                req, api, stage, resource, method, path_params, body, claims, request_id, url.query
            )
            return self._invoke(method, event, request_id, headers_lower, context)
        self._logs.say(
            f"{req.command} {resource.path}: integration {method.integration_type} "
            f"({method.integration_uri}) is not emulated by the local runtime"
        )
        return self._gateway_reply("INTEGRATION_FAILURE", request_id, headers_lower, 500, context=context)

    @staticmethod
    def _missing_parameters(method: MethodConfig, headers_lower: dict[str, str], query: str) -> list[str]:
        """Required parameters absent from the request (the request validator's check)."""
        present_query = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
        missing = []
        for declared in method.required_parameters:
            parts = declared.split(".", 3)  # method.request.<where>.<name>
            if len(parts) != 4:
                continue
            where, name = parts[2], parts[3]
            if (where == "querystring" and name not in present_query) or (
                where == "header" and name.lower() not in headers_lower
            ):
                missing.append(name)
        return missing

    # -- integrations ------------------------------------------------------------------

    def _mock(self, method: MethodConfig, request_id: str, request_headers: dict[str, str]) -> Reply:
        template = dict(method.request_templates).get("application/json") or "{}"
        try:
            wanted = str(json.loads(template).get("statusCode", 200))
        except (ValueError, AttributeError):
            wanted = "200"
        chosen = None
        for resp in method.integration_responses:
            if resp.selection_pattern and re.fullmatch(resp.selection_pattern, wanted):
                chosen = resp
                break
        if chosen is None:
            chosen = next((r for r in method.integration_responses if not r.selection_pattern), None)
        if chosen is None:
            return self._gateway_reply("INTEGRATION_FAILURE", request_id, request_headers, 500)
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)]
        for name, expression in chosen.headers:
            value = _literal(expression, request_headers)
            if name.startswith("method.response.header.") and value is not None:
                headers.append((name[len("method.response.header.") :], value))
        body = dict(chosen.templates).get("application/json") or ""
        return Reply(int(chosen.status_code), headers, body.encode())

    def _invoke(
        self,
        method: MethodConfig,
        event: dict[str, Any],
        request_id: str,
        request_headers: dict[str, str],
        context: dict[str, str],
    ) -> Reply:
        assert method.function_name is not None
        timeout = method.timeout_ms / 1000
        future = self._executor.submit(self._invoker, method.function_name, event, timeout)
        try:
            result = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            self._logs.say(
                f"{method.function_name}: no answer within the integration timeout ({timeout:.1f}s)", "api-gateway"
            )
            return self._gateway_reply("INTEGRATION_TIMEOUT", request_id, request_headers, context=context)
        if result.throttled:
            return self._gateway_reply("THROTTLED", request_id, request_headers, context=context)
        if not result.ok:
            error = result.error or {}
            self._logs.say(
                f"{method.function_name} failed: {error.get('errorType')}: {error.get('errorMessage')}", "api-gateway"
            )
            return self._gateway_reply("INTEGRATION_FAILURE", request_id, request_headers, context=context)
        try:
            return self._proxy_reply(result.payload, request_id)
        except ValueError as exc:
            self._logs.say(
                f"Execution failed due to configuration error: Malformed Lambda proxy response "
                f"from {method.function_name}: {exc}",
                "api-gateway",
            )
            return self._gateway_reply("INTEGRATION_FAILURE", request_id, request_headers, context=context)

    @staticmethod
    def _proxy_reply(payload: Any, request_id: str) -> Reply:
        if not isinstance(payload, dict):
            raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
        unexpected = set(payload) - _PROXY_RESPONSE_KEYS
        if unexpected:
            raise ValueError(f"unexpected keys {sorted(unexpected)}")
        try:
            status = int(payload.get("statusCode", 200))
        except (TypeError, ValueError):
            raise ValueError(f"statusCode {payload.get('statusCode')!r} is not a number") from None
        if not 100 <= status <= 599:
            raise ValueError(f"statusCode {status} out of range")
        body = payload.get("body")
        if body is not None and not isinstance(body, str):
            raise ValueError(f"body must be a string, got {type(body).__name__}")
        headers: list[tuple[str, str]] = []
        single = payload.get("headers") or {}
        multi = payload.get("multiValueHeaders") or {}
        if not isinstance(single, dict) or not isinstance(multi, dict):
            raise ValueError("headers and multiValueHeaders must be objects")
        for name, values in multi.items():
            for value in values if isinstance(values, list) else [values]:
                headers.append((str(name), str(value)))
        for name, value in single.items():
            if name not in multi:
                headers.append((str(name), "" if value is None else str(value)))
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        headers += [
            ("x-amzn-RequestId", request_id),
            ("x-amz-apigw-id", secrets.token_urlsafe(12)[:16]),
            ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"),
        ]
        raw = (body or "").encode()
        if payload.get("isBase64Encoded") and body:
            try:
                raw = base64.b64decode(body, validate=True)
            except ValueError:
                raise ValueError("isBase64Encoded is true but body is not base64") from None
        return Reply(status, headers, raw)

    def _proxy_event(
        self,
        req: BaseHTTPRequestHandler,
        api: RestApiConfig,
        stage: str,
        resource: ResourceConfig,
        method: MethodConfig,
        path_params: dict[str, str],
        body: bytes,
        claims: dict[str, Any] | None,
        request_id: str,
        query: str,
    ) -> dict[str, Any]:
        """A REST API (payload version 1.0) Lambda proxy event."""
        source_ip = req.client_address[0]
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in req.headers.items():
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        trace = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"
        for name, value in (
            ("X-Forwarded-For", source_ip),
            ("X-Forwarded-Port", str(self.port)),
            ("X-Forwarded-Proto", "http"),
            ("X-Amzn-Trace-Id", trace),
        ):
            if name not in headers:
                headers[name] = value
                multi_headers[name] = [value]
        pairs = parse_qsl(query, keep_blank_values=True)
        single_query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in pairs:
            single_query[name] = value
            multi_query.setdefault(name, []).append(value)
        content_type = (headers_lower_get(headers, "content-type") or "").split(";")[0].strip()
        binary = bool(content_type) and any(fnmatch.fnmatch(content_type, t) for t in api.binary_media_types)
        text: str | None
        if not body:
            text = None
        elif binary:
            text = base64.b64encode(body).decode()
        else:
            text = body.decode("utf-8", errors="replace")
        now = dt.datetime.now(dt.UTC)
        path = "/" + "/".join(unquote(s) for s in urlsplit(req.path).path.split("/")[2:] if s)
        request_context: dict[str, Any] = {
            "resourceId": resource.id,
            "resourcePath": resource.path,
            "httpMethod": req.command,
            "extendedRequestId": secrets.token_urlsafe(12)[:16],
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{path}",
            "accountId": self.account_id,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": api.id,
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": headers_lower_get(headers, "user-agent"),
                "user": None,
            },
            "domainName": headers_lower_get(headers, "host") or f"{LOOPBACK}:{self.port}",
            "apiId": api.id,
        }
        if claims is not None:
            request_context["authorizer"] = {"claims": claims_as_strings(claims)}
        stage_vars = dict(dict(api.stages).get(stage, ()))
        return {
            "resource": resource.path,
            "path": path,
            "httpMethod": req.command,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": single_query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_params or None,
            "stageVariables": stage_vars or None,
            "requestContext": request_context,
            "body": text,
            "isBase64Encoded": binary and text is not None,
        }

    # -- API Gateway's own answers -----------------------------------------------------

    def _gateway_reply(
        self,
        response_type: str,
        request_id: str,
        request_headers: dict[str, str],
        status: int | None = None,
        context: dict[str, str] | None = None,
        message: str | None = None,
    ) -> Reply:
        default_status, default_message, error_type = GATEWAY_DEFAULTS.get(
            response_type, (500, "Internal server error", "InternalServerErrorException")
        )
        message = message or default_message
        status = status or default_status
        configured = dict(self._router.api.gateway_responses)
        custom = configured.get(response_type) or configured.get("DEFAULT_4XX" if status < 500 else "DEFAULT_5XX")
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", error_type),
        ]
        body = json.dumps({"message": message}).encode()
        if custom is not None:
            if custom.status_code:
                status = int(custom.status_code)
            for name, expression in custom.headers:
                value = _literal(expression, request_headers)
                if name.startswith("gatewayresponse.header.") and value is not None:
                    headers.append((name[len("gatewayresponse.header.") :], value))
            template = dict(custom.templates).get("application/json")
            if template:
                values = {
                    "$context.error.messageString": json.dumps(message),
                    "$context.error.message": message,
                    "$context.error.responseType": response_type,
                    "$context.requestId": request_id,
                    **{f"$context.{k}": v for k, v in (context or {}).items()},
                }
                for key in sorted(values, key=len, reverse=True):
                    template = template.replace(key, values[key])
                # variables without a value here render empty, as API Gateway renders unknown ones
                body = re.sub(r"\$context\.[A-Za-z.]+", "", template).encode()
        return Reply(status, headers, body)


def headers_lower_get(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
