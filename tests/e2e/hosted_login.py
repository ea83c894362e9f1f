"""A stand-in for a Cognito user pool's hosted (managed) login domain, on loopback, for the
console's authorization-code + PKCE test (moto has no hosted UI).

It speaks the four endpoints the console uses, as Cognito documents them:

- ``GET /oauth2/authorize``: checks ``response_type=code``, ``client_id``, ``redirect_uri`` (the
  registered callback URL, exactly), ``code_challenge_method=S256`` and a challenge, then
  "signs in" the user the test chose (there is no login form) and redirects back with a
  one-time ``code`` and the ``state`` it was given;
- ``POST /oauth2/token`` (form-encoded): ``grant_type=authorization_code`` gives tokens only
  when base64url(SHA-256(``code_verifier``)) is the code's challenge (else ``400
  invalid_grant``), for the same client and redirect URI; ``grant_type=refresh_token`` renews
  them. The tokens are real ones of the stack's pool (InitiateAuth against the embedded
  backend), so the API accepts them;
- ``POST /oauth2/revoke`` revokes a refresh token; ``GET /logout`` redirects to ``logout_uri``.

Every request is recorded (``calls``) for the test to check what the page did.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tooling import loopback

VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 section 4.1


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    status: int


@dataclass
class FakeHostedLogin:
    """The hosted login of one app client: ``cognito`` (a boto3 cognito-idp client of the embedded
    backend) issues the tokens of ``username``/``password`` (set by the test before signing in)."""

    cognito: Any
    client_id: str
    redirect_uri: str = ""
    username: str = ""
    password: str = ""
    tamper_state: bool = False  # answer with a state the page did not send
    calls: list[Call] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake hosted login is not running"
        return loopback.base_url(self._server)

    def start(self) -> FakeHostedLogin:
        self._server = loopback.serve(_handler(self), name="fake-hosted-login")
        return self

    def stop(self) -> None:
        if self._server is not None:
            loopback.stop(self._server)
            self._server = None

    def grants(self, status: int | None = None) -> list[str]:
        """The grant types asked of the token endpoint (answered with ``status`` if given)."""
        return [
            c.params.get("grant_type", "")
            for c in self.calls
            if c.path == "/oauth2/token" and (status is None or c.status == status)
        ]

    # ---- the endpoints: (status, headers, body) ---------------------------------------

    def authorize(self, q: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        problems = [
            name
            for name, ok in (
                ("response_type", q.get("response_type") == "code"),
                ("client_id", q.get("client_id") == self.client_id),
                ("redirect_uri", bool(self.redirect_uri) and q.get("redirect_uri") == self.redirect_uri),
                ("code_challenge_method", q.get("code_challenge_method") == "S256"),
                ("code_challenge", bool(re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("code_challenge", "")))),
                ("state", bool(q.get("state"))),
            )
            if not ok
        ]
        if problems:
            return 400, {}, {"error": "invalid_request", "error_description": f"bad {', '.join(problems)}"}
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.codes[code] = {
                "challenge": q["code_challenge"],
                "client_id": q["client_id"],
                "redirect_uri": q["redirect_uri"],
            }
        state = "forged-" + q["state"] if self.tamper_state else q["state"]
        back = q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": state})
        return 302, {"Location": back}, {}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        refused = (400, {}, {"error": "invalid_grant"})
        if form.get("client_id") != self.client_id:
            return 400, {}, {"error": "invalid_client"}
        grant = form.get("grant_type")
        if grant == "authorization_code":
            with self._lock:
                issued = self.codes.pop(form.get("code", ""), None)  # one use, whatever the outcome
            verifier = form.get("code_verifier", "")
            if (
                issued is None
                or issued["redirect_uri"] != form.get("redirect_uri")
                or not VERIFIER.fullmatch(verifier)
                or not secrets.compare_digest(s256(verifier), issued["challenge"])
            ):
                return refused
            result = self.cognito.initiate_auth(
                ClientId=self.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": self.username, "PASSWORD": self.password},
            )["AuthenticationResult"]
            return 200, {}, _oauth(result)
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if not refresh or refresh in self.revoked:
                return refused
            try:
                result = self.cognito.initiate_auth(
                    ClientId=self.client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh}
                )["AuthenticationResult"]
            except self.cognito.exceptions.NotAuthorizedException:
                return refused
            return 200, {}, _oauth(result)
        return 400, {}, {"error": "unsupported_grant_type"}

    def revoke(self, form: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if form.get("client_id") != self.client_id or not form.get("token"):
            return 400, {}, {"error": "invalid_request"}
        self.revoked.add(form["token"])
        return 200, {}, {}

    def logout(self, q: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if q.get("client_id") != self.client_id or q.get("logout_uri") != self.redirect_uri:
            return 400, {}, {"error": "invalid_request", "error_description": "bad client_id or logout_uri"}
        return 302, {"Location": q["logout_uri"]}, {}


def _oauth(result: dict[str, Any]) -> dict[str, Any]:
    answer = {
        "id_token": result["IdToken"],
        "access_token": result["AccessToken"],
        "expires_in": result.get("ExpiresIn", 3600),
        "token_type": "Bearer",
    }
    if result.get("RefreshToken"):
        answer["refresh_token"] = result["RefreshToken"]
    return answer


def _handler(fake: FakeHostedLogin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            routes = {"/oauth2/authorize": fake.authorize, "/logout": fake.logout}
            self._answer("GET", parts.path, query, routes.get(parts.path))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                form = {}
            routes = {"/oauth2/token": fake.token, "/oauth2/revoke": fake.revoke}
            self._answer("POST", self.path, form, routes.get(self.path))

        def _answer(self, method: str, path: str, params: dict[str, str], route: Any) -> None:
            status, headers, body = route(params) if route else (404, {}, {"error": "not_found"})
            fake.calls.append(Call(method, path, params, status))
            data = json.dumps(body).encode() if body or status != 302 else b""
            self.send_response(status)
            # The token and revoke endpoints are called with fetch() from the console's origin.
            if self.headers.get("Origin"):
                self.send_header("Access-Control-Allow-Origin", self.headers["Origin"])
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
