"""The HTTP front: API Gateway REST routing, Cognito authorizer, proxy events, CORS."""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
from pathlib import Path
from typing import Any

import jwt
import moto
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.local_runtime.conftest import SCOPE_READ, SCOPE_WRITE, Stack
from tooling.local_runtime import InvocationResult, LocalRuntime
from tooling.local_runtime.authorizer import JwksCache
from tooling.local_runtime.discovery import MethodConfig, ResourceConfig, RestApiConfig
from tooling.local_runtime.front import Front
from tooling.local_runtime.logs import LogRouter

JAVA_DATE = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} UTC \d{4}$")


def moto_signing_key() -> Any:
    """moto's Cognito private key (public knowledge: it ships in the package)."""
    path = Path(moto.__file__).parent / "cognitoidp" / "resources" / "jwks-private.json.gz"
    return jwt.PyJWK(json.loads(gzip.decompress(path.read_bytes())), algorithm="RS256").key


def forge(stack: Stack, key: Any = None, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{stack.pool_id}",
        "sub": "forged-sub",
        "aud": stack.client_id,
        "token_use": "id",
        "iat": now,
        "auth_time": now,
        "exp": now + 600,
        "cognito:username": "mallory",
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key or moto_signing_key(), algorithm="RS256", headers={"kid": "dummy"})


def body_of(resp: requests.Response) -> Any:
    return json.loads(resp.content)


def test_routes_to_the_function_with_a_proxy_event(stack: Stack, runtime: LocalRuntime) -> None:
    assert runtime.base_url == f"{runtime.front_url}/v1"
    assert runtime.front_url.startswith("http://127.0.0.1:")
    resp = requests.get(
        f"{runtime.base_url}/job/abc%20123",
        params=[("x", "1"), ("x", "2"), ("y", "z")],
        headers={"Authorization": stack.id_token, "X-Multi": "one"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Echo"] == "yes"
    assert resp.headers["Content-Type"] == "application/json"
    assert "a=1" in resp.headers["Set-Cookie"] and "b=2" in resp.headers["Set-Cookie"]
    event = body_of(resp)["event"]
    assert event["resource"] == "/job/{id}"
    assert event["path"] == "/job/abc 123"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "abc 123"}
    assert event["queryStringParameters"] == {"x": "2", "y": "z"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["z"]}
    assert event["headers"]["X-Multi"] == "one"
    assert event["multiValueHeaders"]["X-Multi"] == ["one"]
    assert event["body"] is None and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["stage"] == "v1"
    assert ctx["resourcePath"] == "/job/{id}"
    assert ctx["httpMethod"] == "GET"
    assert ctx["path"] == "/v1/job/abc 123"
    assert ctx["apiId"] == stack.api_id
    assert ctx["accountId"] == "123456789012"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["requestId"] == resp.headers["x-amzn-RequestId"]


def test_post_body_and_list_route(stack: Stack, runtime: LocalRuntime) -> None:
    payload = {"action": "count", "context1": "a b"}
    resp = requests.post(f"{runtime.base_url}/job", json=payload, headers={"Authorization": stack.id_token}, timeout=30)
    assert resp.status_code == 200
    event = body_of(resp)["event"]
    assert event["resource"] == "/job" and event["httpMethod"] == "POST"
    assert json.loads(event["body"]) == payload
    assert event["queryStringParameters"] is None and event["pathParameters"] is None

    resp = requests.get(
        f"{runtime.base_url}/jobs?status=COMPLETE", headers={"Authorization": stack.id_token}, timeout=30
    )
    assert resp.status_code == 200
    assert body_of(resp)["event"]["queryStringParameters"] == {"status": "COMPLETE"}


def test_unknown_routes_get_api_gateways_answer(stack: Stack, runtime: LocalRuntime) -> None:
    auth = {"Authorization": stack.id_token}
    for method, path in [("GET", "/nope"), ("DELETE", "/job"), ("GET", "/job"), ("PUT", "/jobs"), ("GET", "/job/1/x")]:
        resp = requests.request(method, f"{runtime.base_url}{path}", headers=auth, timeout=30)
        # the API's MISSING_AUTHENTICATION_TOKEN gateway response turns API Gateway's 403 into a 404
        assert resp.status_code == 404, (method, path)
        assert body_of(resp) == {"error": "route_not_found", "message": "no such route"}
        assert resp.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    resp = requests.get(f"{runtime.front_url}/prod/jobs", headers=auth, timeout=30)
    assert resp.status_code == 403 and body_of(resp) == {"message": "Forbidden"}


def test_any_method_and_no_authorizer(runtime: LocalRuntime) -> None:
    resp = requests.patch(f"{runtime.base_url}/public", data=b"raw", timeout=30)
    assert resp.status_code == 200
    event = body_of(resp)["event"]
    assert event["httpMethod"] == "PATCH" and event["resource"] == "/public" and event["body"] == "raw"
    assert "authorizer" not in event["requestContext"]


def test_claims_are_passed_as_strings(stack: Stack, runtime: LocalRuntime) -> None:
    resp = requests.get(f"{runtime.base_url}/jobs", headers={"Authorization": f"Bearer {stack.id_token}"}, timeout=30)
    assert resp.status_code == 200
    claims = body_of(resp)["event"]["requestContext"]["authorizer"]["claims"]
    expected = jwt.decode(stack.id_token, options={"verify_signature": False})
    assert claims["sub"] == expected["sub"]
    assert claims["cognito:username"] == "alice"
    assert claims["aud"] == stack.client_id
    assert claims["token_use"] == "id"
    assert claims["iss"] == f"https://cognito-idp.us-east-1.amazonaws.com/{stack.pool_id}"
    assert all(isinstance(v, str) for v in claims.values())
    assert JAVA_DATE.match(claims["exp"]) and JAVA_DATE.match(claims["iat"])
    assert claims["auth_time"] == str(expected["auth_time"])


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "garbage",
        "expired",
        "tampered",
        "wrong_issuer",
        "other_pool",
        "access_token",
        "foreign_key",
        "no_exp",
        "hs256",
    ],
)
def test_bad_tokens_are_unauthorized(stack: Stack, runtime: LocalRuntime, case: str) -> None:
    token: str | None
    if case == "missing":
        token = None
    elif case == "empty":
        token = ""
    elif case == "garbage":
        token = "not-a-jwt"
    elif case == "expired":
        token = forge(stack, exp=int(time.time()) - 5, iat=int(time.time()) - 3600)
    elif case == "tampered":
        header, payload, signature = stack.id_token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["sub"] = "someone-else"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        token = f"{header}.{forged}.{signature}"
    elif case == "wrong_issuer":
        token = forge(stack, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_someoneelse")
    elif case == "other_pool":
        token = forge(stack, iss=f"https://evil.example.com/{stack.pool_id}")
    elif case == "access_token":
        token = stack.access_token
    elif case == "foreign_key":
        token = forge(stack, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif case == "no_exp":
        token = forge(stack, exp=None)
    else:
        token = jwt.encode(
            {
                "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{stack.pool_id}",
                "token_use": "id",
                "exp": int(time.time()) + 60,
            },
            "secret-secret-secret-secret-32b!",
            algorithm="HS256",
        )
    headers = {} if token is None else {"Authorization": token}
    resp = requests.get(f"{runtime.base_url}/jobs", headers=headers, timeout=30)
    assert resp.status_code == 401
    assert body_of(resp) == {"message": "Unauthorized"}
    # the deployed UNAUTHORIZED gateway response adds its header
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def readable_by(origin: str, resp: requests.Response) -> bool:
    """Whether a page at ``origin`` may read ``resp`` of its fetch() (credentials mode not
    "include"): the Fetch standard's CORS check of Access-Control-Allow-Origin."""
    allowed = resp.headers.get("Access-Control-Allow-Origin")
    return allowed == "*" or allowed == origin


@pytest.mark.parametrize("origin", ["https://app.example.com", "https://admin.example.com"])
def test_every_origin_can_read_api_gateways_401(stack: Stack, runtime: LocalRuntime, origin: str) -> None:
    """The api module's gateway responses carry "*": a second allowed origin reads the 401 too."""
    for headers in ({}, {"Authorization": stack.access_token}):
        resp = requests.get(f"{runtime.base_url}/jobs", headers={"Origin": origin, **headers}, timeout=30)
        assert resp.status_code == 401
        assert readable_by(origin, resp), resp.headers
        assert resp.headers["Access-Control-Allow-Headers"] == "Authorization,Content-Type,Idempotency-Key"


def access_token(stack: Stack, scope: str | None) -> str:
    """A Cognito access token (as moto signs them) with the given ``scope`` claim."""
    return forge(stack, token_use="access", aud=None, client_id=stack.client_id, scope=scope)


@pytest.mark.parametrize(
    ("path", "token", "status"),
    [
        # a method with scopes takes access tokens holding at least one of them ...
        ("/scoped", "signed_in_access", 200),  # moto's, like InitiateAuth's: aws.cognito.signin.user.admin
        ("/scoped", SCOPE_READ, 200),
        ("/scoped", f"openid {SCOPE_WRITE} {SCOPE_READ}", 200),
        ("/write-scoped", SCOPE_WRITE, 200),
        # ... and nothing else: no ID token, no access token without one of the scopes
        ("/scoped", "id", 401),
        ("/scoped", "forged_id", 401),
        ("/scoped", f"openid {SCOPE_WRITE}", 401),
        ("/scoped", "", 401),
        ("/scoped", None, 401),
        ("/write-scoped", "signed_in_access", 401),
        ("/write-scoped", "id", 401),
        # a method without scopes takes ID tokens only
        ("/jobs", "id", 200),
        ("/jobs", "signed_in_access", 401),
        ("/jobs", SCOPE_READ, 401),
    ],
)
def test_authorization_scopes_choose_the_token_type(
    stack: Stack, runtime: LocalRuntime, path: str, token: str | None, status: int
) -> None:
    if token == "id":
        sent = stack.id_token
    elif token == "forged_id":
        sent = forge(stack, scope=SCOPE_READ)  # an ID token, even one claiming a scope
    elif token == "signed_in_access":
        sent = stack.access_token
    else:
        sent = access_token(stack, token)
    resp = requests.get(f"{runtime.base_url}{path}", headers={"Authorization": sent}, timeout=30)
    assert resp.status_code == status, (resp.status_code, resp.text)
    if status == 200:
        claims = body_of(resp)["event"]["requestContext"]["authorizer"]["claims"]
        assert claims["token_use"] == ("id" if path == "/jobs" else "access")
    else:
        assert body_of(resp) == {"message": "Unauthorized"}


def test_discovery_reads_the_methods_scopes(runtime: LocalRuntime) -> None:
    api = runtime.deployment.api
    assert api is not None
    scopes = {r.path: m.authorization_scopes for r in api.resources for verb, m in r.methods if verb == "GET"}
    assert scopes["/scoped"] == (SCOPE_READ, "aws.cognito.signin.user.admin")
    assert scopes["/write-scoped"] == (SCOPE_WRITE,)
    assert scopes["/jobs"] == ()


def test_a_forged_but_valid_token_is_accepted(stack: Stack, runtime: LocalRuntime) -> None:
    """Why the front stays on loopback: moto's signing key is public, so this works."""
    resp = requests.get(f"{runtime.base_url}/jobs", headers={"Authorization": forge(stack)}, timeout=30)
    assert resp.status_code == 200
    assert body_of(resp)["event"]["requestContext"]["authorizer"]["claims"]["sub"] == "forged-sub"


def test_cors_preflight_from_the_mock_integration(runtime: LocalRuntime) -> None:
    resp = requests.options(
        f"{runtime.base_url}/job",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Access-Control-Allow-Methods"] == "GET,POST,OPTIONS"
    assert resp.headers["Access-Control-Allow-Headers"] == "Authorization,Content-Type"
    assert resp.content == b""
    # no OPTIONS method on /jobs: API Gateway's answer (as the API's gateway response shapes it)
    assert requests.options(f"{runtime.base_url}/jobs", timeout=30).status_code == 404


def test_function_errors_are_502(runtime: LocalRuntime) -> None:
    for path in ("/boom", "/bad"):
        resp = requests.get(f"{runtime.base_url}{path}", timeout=30)
        assert resp.status_code == 502, path
        assert body_of(resp) == {"message": "Internal server error"}


def test_integration_timeout_is_504(runtime: LocalRuntime) -> None:
    started = time.monotonic()
    resp = requests.get(f"{runtime.base_url}/slow", timeout=30)
    assert resp.status_code == 504
    assert body_of(resp) == {"message": "Endpoint request timed out"}
    # the integration's 300 ms, not the function's run (it sleeps 5 s): a bound with room for a
    # loaded machine, which still tells the two apart
    assert time.monotonic() - started < 4.0


def test_required_parameters_are_validated(runtime: LocalRuntime) -> None:
    resp = requests.get(f"{runtime.base_url}/find?limit=3", timeout=30)
    assert resp.status_code == 400
    assert body_of(resp) == {"error": "missing_job_id", "message": "Missing required request parameters: [job_id]"}
    resp = requests.get(f"{runtime.base_url}/find?job_id=j1", timeout=30)
    assert resp.status_code == 200
    assert body_of(resp)["event"]["queryStringParameters"] == {"job_id": "j1"}


def test_api_gateways_own_answers_without_gateway_responses() -> None:
    """With no gateway responses deployed, the defaults API Gateway gives."""
    method = MethodConfig(
        http_method="GET",
        authorization_type="NONE",
        authorizer_id=None,
        authorization_scopes=(),
        integration_type="AWS_PROXY",
        integration_uri="arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
        "arn:aws:lambda:us-east-1:123456789012:function:f/invocations",
        function_name="f",
        timeout_ms=29_000,
        request_templates=(),
        integration_responses=(),
    )
    api = RestApiConfig(
        id="abc",
        name="plain",
        resources=(ResourceConfig(id="r1", path="/items/{id}", methods=(("GET", method),)),),
        authorizers=(),
        stages=(("dev", ()),),
        gateway_responses=(),
        binary_media_types=(),
    )
    calls: list[dict[str, Any]] = []

    def invoker(name: str, event: dict[str, Any], wait: float) -> InvocationResult:
        calls.append(event)
        return InvocationResult(name, "rid", payload={"statusCode": 204})

    front = Front(api, invoker, JwksCache("http://127.0.0.1:9"), LogRouter(None, None), "123456789012", "us-east-1")
    front.start()
    try:
        for path in ("/dev/items", "/dev/items/1/2", "/dev/other"):
            resp = requests.get(f"{front.url}{path}", timeout=30)
            assert resp.status_code == 403, path
            assert body_of(resp) == {"message": "Missing Authentication Token"}
        resp = requests.post(f"{front.url}/dev/items/1", timeout=30)
        assert resp.status_code == 403 and body_of(resp) == {"message": "Missing Authentication Token"}
        resp = requests.get(f"{front.url}/dev/items/1", timeout=30)
        assert resp.status_code == 204 and resp.content == b""
        assert calls[0]["pathParameters"] == {"id": "1"} and calls[0]["stageVariables"] is None
    finally:
        front.stop()
