"""The embedded default: the whole stack on this machine, with no AWS account.

``start()`` starts the embedded AWS backend (moto on loopback), applies the same Terraform
with ``environments/local.tfvars`` to it (the deploy task's code path), and starts the local
Lambda runtime on what was deployed. ``invoke local`` keeps it running in the foreground;
``invoke demo`` runs the smoke test through it and stops everything.

Everything listens on 127.0.0.1 only: moto's Cognito signs tokens with a key that ships
inside the moto package, so this stack must never be reachable from another machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tooling import aws_access, deploy, smoke
from tooling import console as console_mod
from tooling import environments as environments_mod
from tooling.embedded_backend import EmbeddedBackend
from tooling.environments import ENDPOINT_ENV_VAR, LOCAL_ENV, Environment
from tooling.errors import OperatorError
from tooling.local_runtime import LocalRuntime, LocalRuntimeError

Out = Callable[[str], None]
DEMO_USER = "demo@example.com"


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass
class LocalStack:
    """A running embedded stack: backend, deployed resources, local runtime."""

    env: Environment
    backend: EmbeddedBackend
    outputs: dict[str, Any]
    runtime: LocalRuntime | None = None
    users: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)  # tfvars overrides it was deployed with
    web: console_mod.ConsoleServer | None = None  # the web console, served on loopback

    @property
    def console_url(self) -> str:
        if self.web is None:
            raise OperatorError("the web console is not running", "start it with `invoke local`")
        return self.web.url

    @property
    def api_url(self) -> str:
        if self.runtime is None:
            raise OperatorError("the local runtime is not running", "start it with `invoke local`")
        return self.runtime.base_url

    @property
    def access(self) -> aws_access.AwsAccess:
        return aws_access.for_endpoint(self.backend.endpoint, self.env.region)

    def client(self, service: str) -> Any:
        return self.access.client(service)

    def create_user(self, username: str | None = None, password: str | None = None) -> tuple[str, str]:
        """A confirmed user of the stack's pool (admin API), with a permanent password."""
        username = username or f"user-{secrets.token_hex(4)}@example.com"
        password = password or smoke.throwaway_password()
        cognito = self.client("cognito-idp")
        pool = self.outputs["user_pool_id"]
        cognito.admin_create_user(
            UserPoolId=pool,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": username}, {"Name": "email_verified", "Value": "true"}],
        )
        cognito.admin_set_user_password(UserPoolId=pool, Username=username, Password=password, Permanent=True)
        self.users.append(username)
        return username, password

    def id_token(self, username: str, password: str) -> str:
        return smoke.id_token_for(self.client("cognito-idp"), self.outputs["user_pool_client_id"], username, password)

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
            self.web = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        environments_mod.clear_runtime_info(self.env)
        self.backend.stop()


def _fresh_local_state(env: Environment) -> None:
    """moto keeps everything in memory: a new backend starts empty, so does the local state."""
    from tooling.terraform import TerraformRunner

    state = TerraformRunner(env.name, work_root=env.work_root).state_file
    for path in (state, state.with_name(state.name + ".backup")):
        path.unlink(missing_ok=True)


def start(
    out: Out = _print, port: int = 0, console: Out | None = None, variables: dict[str, Any] | None = None
) -> LocalStack:
    """Backend up, ``local.tfvars`` applied to it, runtime started. Caller must ``stop()``.

    ``variables`` override values of ``local.tfvars`` (e.g. ``{"worker_timeout_seconds": 5}``);
    a redeploy must pass the same ones (``LocalStack.variables``) to change nothing.
    """
    env = environments_mod.resolve(LOCAL_ENV)
    log_dir = env.work_root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    backend = EmbeddedBackend(port=port, log_path=str(log_dir / "embedded-backend.log"))
    started = time.monotonic()
    out("starting the embedded AWS backend (moto) on loopback ...")
    backend.start()
    previous_endpoint = os.environ.get(ENDPOINT_ENV_VAR)
    os.environ[ENDPOINT_ENV_VAR] = backend.endpoint
    stack = LocalStack(env, backend, outputs={}, variables=dict(variables or {}))
    try:
        out(f"embedded backend: {backend.endpoint} ({time.monotonic() - started:.1f}s)")
        _fresh_local_state(env)
        tf = deploy.terraform_for(env, variables=stack.variables) if stack.variables else None
        deploy.deploy(env, yes=True, out=out, tf=tf)
        stack.outputs = deploy.stack_outputs(env, tf)
        out("starting the local Lambda runtime ...")
        runtime_kwargs: dict[str, Any] = {
            "region": env.region,
            "rest_api": stack.outputs.get("rest_api_id"),
            "stage": stack.outputs.get("stage_name"),
        }
        if console is not None:
            runtime_kwargs["console"] = console
        stack.runtime = LocalRuntime(backend.endpoint, **runtime_kwargs).start()
        stack.web = console_mod.serve_local(stack.outputs, stack.runtime.base_url, backend.endpoint)
        environments_mod.write_runtime_info(
            env,
            endpoint_url=backend.endpoint,
            api_url=stack.runtime.base_url,
            console_url=stack.web.url,
            pid=os.getpid(),
        )
        out(f"local stack ready in {time.monotonic() - started:.1f}s")
        return stack
    except LocalRuntimeError as exc:
        stack.stop()
        raise OperatorError(f"the local runtime could not start: {exc}", "run `invoke package`, then retry") from exc
    except BaseException:
        stack.stop()
        raise
    finally:
        if previous_endpoint is None:
            os.environ.pop(ENDPOINT_ENV_VAR, None)
        else:
            os.environ[ENDPOINT_ENV_VAR] = previous_endpoint


@contextmanager
def running(out: Out = _print, port: int = 0, console: Out | None = None) -> Iterator[LocalStack]:
    stack = start(out, port=port, console=console)
    try:
        yield stack
    finally:
        stack.stop()


def curl_line(api_url: str, token: str) -> str:
    body = json.dumps({"name": "test", "action": "demo", "context1": "hello", "context2": "world"})
    return (
        f"curl -X POST {api_url}/job \\\n"
        f"  -H {shlex.quote('Authorization: ' + token)} \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )


def run_local(out: Out = _print, port: int = 0, until: threading.Event | None = None) -> None:
    """``invoke local``: start everything, print how to use it, run until Ctrl-C (or ``until``)."""
    stop = until or threading.Event()
    with running(out, port=port) as stack:
        username, password = stack.create_user(DEMO_USER)
        token = stack.id_token(username, password)
        out("")
        out(f"API URL        {stack.api_url}")
        out(f"web console    {stack.console_url}  (sign in as the demo user)")
        out(f"demo user      {username}")
        out(f"demo password  {password}")
        out(f"ID token       {token}")
        out("")
        out("Submit a job (the token is valid for an hour; get a new one by restarting):")
        out(curl_line(stack.api_url, token))
        out("")
        out("In another terminal:")
        out("  invoke smoke --env local --create-user")
        out(f"  SMOKE_USERNAME={username} SMOKE_PASSWORD={shlex.quote(password)} invoke smoke --env local")
        out("  invoke logs --env local --function worker --follow")
        out("Listening on 127.0.0.1 only (moto's token signing key is public). Ctrl-C stops everything.")
        if until is None:
            previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            out("")
        finally:
            if until is None:
                signal.signal(signal.SIGTERM, previous)
        out("stopping the local runtime and the embedded backend ...")


def run_demo(out: Out = _print, timeout: float = 120.0) -> smoke.SmokeResult:
    """``invoke demo``: start everything, run the smoke test through it, show the job, stop."""
    began = time.monotonic()
    function_logs: deque[str] = deque(maxlen=40)  # shown only if the smoke test fails
    with running(out, console=function_logs.append) as stack:
        out(f"API URL        {stack.api_url}")
        out(f"web console    {stack.console_url}  (serves until the demo ends; `invoke local` keeps it)")
        os.environ[ENDPOINT_ENV_VAR] = stack.backend.endpoint
        try:
            result = deploy.smoke(stack.env, timeout=timeout, create_user=True, api_url=stack.api_url, out=out)
        except OperatorError:
            out("The functions' last log lines:")
            for line in function_logs:
                out(f"  {line}")
            raise
        finally:
            os.environ.pop(ENDPOINT_ENV_VAR, None)
        out("")
        out("The finished job record (GET /job):")
        out(json.dumps(result.job, indent=2))
        out("")
        out("Its result (downloaded through result_url):")
        out((result.result_text or "").rstrip("\n"))
        out("")
    out(f"demo finished in {time.monotonic() - began:.1f}s: {result.verdict}")
    return result
