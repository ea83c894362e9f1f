"""Running a deployed function: one worker process per execution environment.

A ``FunctionPool`` is one function's set of execution environments, like Lambda's: the first
invocation starts a process (cold start: the handler module is imported once), later ones
reuse an idle process (warm), at most ``limit`` run at once (the reserved concurrency if the
function has one). The configured timeout is enforced from outside: a timed-out invocation
is an error and its process is killed, so the next invocation starts a fresh one; a process
that dies mid-invocation is reported the same way and replaced.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tooling.local_runtime.credentials import ExecutionRoles
from tooling.local_runtime.discovery import FunctionConfig
from tooling.local_runtime.errors import CodeNotFoundError, LocalRuntimeError
from tooling.local_runtime.logs import LogRouter

BOOTSTRAP = Path(__file__).with_name("_bootstrap.py")
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response payload limit
INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit for the init phase of an on-demand environment
# An environment is used only while its role credentials outlive the invocation by this much.
CREDENTIALS_MARGIN_SECONDS = 60.0


@dataclass
class InvocationResult:
    """The outcome of one invocation, as Lambda's Invoke API would report it."""

    function_name: str
    request_id: str
    payload: Any = None  # the handler's return value (decoded JSON) when ok
    error: dict[str, Any] | None = None  # Lambda's error object: errorMessage, errorType, ...
    cold: bool = False
    duration_ms: float = 0.0
    init_ms: float | None = None
    environment_id: str = ""
    throttled: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def function_error(self) -> str | None:
        """``Unhandled`` for a failed invocation (the X-Amz-Function-Error header), else None."""
        return None if self.error is None or self.throttled else "Unhandled"


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def _max_memory_mb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return math.ceil(int(line.split()[1]) / 1024)
    except (OSError, ValueError):
        return None
    return None


class ExecutionEnvironment:
    """One worker process running one function's handler, one invocation at a time."""

    def __init__(
        self,
        function: FunctionConfig,
        code_dir: Path,
        env: dict[str, str],
        logs: LogRouter,
        python: str,
    ) -> None:
        self.function = function
        self.id = uuid.uuid4().hex
        self.log_stream = time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{self.id}"
        self._code_dir = code_dir
        self._env = {**env, "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream}
        self._logs = logs
        self._python = python
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._requests: IO[str] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.dead = False
        self.invocations = 0
        self.credentials_expire = float("inf")  # when the role credentials it was given expire

    def log(self, message: str) -> None:
        self._logs.emit(self.function.name, self.function.log_group, self.log_stream, message)

    def start(self, timeout: float) -> dict[str, Any]:
        """Start the process and run the init phase; the bootstrap's first message (ready/init_error)."""
        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    self._python,
                    "-I",
                    "-u",
                    str(BOOTSTRAP),
                    str(request_r),
                    str(answer_w),
                    str(self._code_dir),
                    self.function.handler,
                ],
                pass_fds=(request_r, answer_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env,
                cwd=self._code_dir,
                start_new_session=True,  # Ctrl-C reaches the runtime, which stops environments itself
            )
        finally:
            os.close(request_r)
            os.close(answer_w)
        self._requests = os.fdopen(request_w, "w", encoding="utf-8")
        answers = os.fdopen(answer_r, "r", encoding="utf-8")
        assert self.process.stdout is not None and self.process.stderr is not None
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(
                target=self._pump_log, args=(stream,), daemon=True, name=f"log-{self.function.name}-{self.id[:8]}"
            ).start()
        threading.Thread(
            target=self._pump_answers, args=(answers,), daemon=True, name=f"answers-{self.function.name}-{self.id[:8]}"
        ).start()
        message = self._next(timeout)
        if message is None:
            return {"type": "init_error", "error": self._exit_error("")}
        return message

    def _pump_log(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in stream:  # ends at EOF, when the process exits
                self.log(raw.decode("utf-8", errors="replace").rstrip("\n"))

    def _pump_answers(self, answers: IO[str]) -> None:
        with answers:
            for line in answers:  # ends at EOF, when the process exits
                try:
                    self._messages.put(json.loads(line))
                except ValueError:
                    continue
        self._messages.put(None)

    def _next(self, timeout: float) -> dict[str, Any] | None:
        """The next message from the process; None if it died; TimeoutError after ``timeout``."""
        try:
            return self._messages.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            raise TimeoutError from None

    def _exit_error(self, request_id: str) -> dict[str, Any]:
        code: int | None = None
        if self.process is not None:
            try:
                code = self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        self.dead = True
        status = f"signal: {-code}" if code is not None and code < 0 else f"exit status {code}"
        return {
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {status}",
            "errorType": "Runtime.ExitError",
        }

    def invoke(self, request_id: str, event: Any, timeout: float) -> tuple[Any, dict[str, Any] | None]:
        """Run one invocation: (payload, None) on success, (None, error) otherwise."""
        assert self._requests is not None
        self.invocations += 1
        deadline_ms = int(time.time() * 1000 + timeout * 1000)
        request = {
            "request_id": request_id,
            "event": event,
            "deadline_ms": deadline_ms,
            "invoked_function_arn": self.function.arn,
            "trace_id": _trace_id(),
        }
        try:
            self._requests.write(json.dumps(request) + "\n")
            self._requests.flush()
        except (BrokenPipeError, OSError, ValueError):
            return None, self._exit_error(request_id)
        try:
            message = self._next(timeout)
        except TimeoutError:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
            text = f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds"
            self.log(text)
            self.kill()
            return None, {"errorMessage": text, "errorType": "Sandbox.Timedout"}
        if message is None:
            error = self._exit_error(request_id)
            self.log(error["errorMessage"])
            return None, error
        if message.get("type") == "error":
            return None, message["error"]
        payload_text = str(message.get("payload", "null"))
        if len(payload_text.encode()) > MAX_RESPONSE_BYTES:
            return None, {
                "errorMessage": f"Response payload size ({len(payload_text.encode())} bytes) exceeded maximum "
                f"allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                "errorType": "Function.ResponseSizeTooLarge",
            }
        return json.loads(payload_text), None

    def max_memory_mb(self) -> int | None:
        return _max_memory_mb(self.process.pid) if self.process else None

    def kill(self) -> None:
        self.dead = True
        if self._requests is not None:
            with contextlib.suppress(OSError):
                self._requests.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)


@dataclass
class PoolSettings:
    """What every environment of every function shares."""

    endpoint: str
    region: str
    credentials: dict[str, str]  # used only when there is no ``roles`` (a bare pool in tests)
    python: str = sys.executable
    default_concurrency: int = 8
    init_timeout: float = INIT_TIMEOUT_SECONDS
    extra_env: dict[str, str] = field(default_factory=dict)
    # Each function runs with its execution role's credentials, assumed as Lambda does.
    roles: ExecutionRoles | None = None


class FunctionPool:
    """The execution environments of one function (one deployed configuration of it)."""

    def __init__(
        self,
        function: FunctionConfig,
        code_dir: Callable[[FunctionConfig], Path],
        logs: LogRouter,
        settings: PoolSettings,
    ) -> None:
        self.function = function
        self._code_dir = code_dir
        self._logs = logs
        self._settings = settings
        reserved = function.reserved_concurrency
        self.limit = settings.default_concurrency if reserved is None else reserved
        self._slots = threading.BoundedSemaphore(max(self.limit, 1))
        self._lock = threading.Lock()
        self._idle: list[ExecutionEnvironment] = []
        self._all: set[ExecutionEnvironment] = set()
        self.retired = False
        self.cold_starts = 0

    def _credentials_needed(self) -> float:
        """Seconds an environment's credentials must still be valid to take an invocation."""
        return float(self.function.timeout) + CREDENTIALS_MARGIN_SECONDS

    def _credentials(self) -> tuple[dict[str, str], float]:
        """The role credentials a new environment gets (env vars) and when they expire."""
        s = self._settings
        if s.roles is None:
            return dict(s.credentials), float("inf")
        creds = s.roles.credentials(self.function.role, self.function.name, self._credentials_needed())
        return creds.env(), creds.expiration

    def _environment(self, code_dir: Path, credentials: dict[str, str]) -> dict[str, str]:
        fn = self.function
        s = self._settings
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
            "_HANDLER": fn.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.log_group,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            **s.extra_env,
            **fn.env,
            # Last, so that nothing deployed can point the function at real AWS or at a profile.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": s.endpoint,
            "AWS_REGION": s.region,
            "AWS_DEFAULT_REGION": s.region,
            **credentials,
        }

    def _fail(self, request_id: str, error_type: str, message: str, throttled: bool = False) -> InvocationResult:
        self._logs.say(f"{self.function.name}: {message}")
        return InvocationResult(
            self.function.name,
            request_id,
            error={"errorMessage": message, "errorType": error_type},
            throttled=throttled,
        )

    def invoke(self, event: Any, *, wait: float | None = None, request_id: str | None = None) -> InvocationResult:
        """Invoke synchronously; waits up to ``wait`` seconds (None: forever) for a free environment."""
        request_id = request_id or str(uuid.uuid4())
        if self.limit <= 0:
            return self._fail(
                request_id,
                "TooManyRequestsException",
                "Rate Exceeded. (reserved concurrency is 0: the function is throttled)",
                True,
            )
        if not self._slots.acquire(timeout=wait):
            return self._fail(
                request_id,
                "TooManyRequestsException",
                f"Rate Exceeded. (all {self.limit} environments busy for {wait}s)",
                True,
            )
        try:
            return self._invoke(event, request_id)
        finally:
            self._slots.release()

    def _checkout(self) -> ExecutionEnvironment | None:
        """An idle live environment whose credentials outlive the invocation; others go."""
        stale: list[ExecutionEnvironment] = []
        found = None
        deadline = time.time() + self._credentials_needed()
        with self._lock:
            while self._idle:
                env = self._idle.pop()
                if env.dead or env.process is None or env.process.poll() is not None:
                    self._all.discard(env)
                elif env.credentials_expire <= deadline:
                    self._all.discard(env)
                    stale.append(env)
                else:
                    found = env
                    break
        for env in stale:
            env.kill()  # Lambda recycles environments long before their credentials run out
        return found

    def _checkin(self, env: ExecutionEnvironment) -> None:
        with self._lock:
            if env.dead or self.retired:
                self._all.discard(env)
                discard = True
            else:
                self._idle.append(env)
                discard = False
        if discard:
            env.kill()

    def _invoke(self, event: Any, request_id: str) -> InvocationResult:
        fn = self.function
        env = self._checkout()
        cold = env is None
        init_ms: float | None = None
        if env is None:
            try:
                code_dir = self._code_dir(fn)
            except CodeNotFoundError as exc:
                return self._fail(request_id, "LocalRuntime.CodeNotFound", str(exc))
            try:
                credentials, expires = self._credentials()
            except LocalRuntimeError as exc:
                return self._fail(request_id, "LocalRuntime.AssumeRoleFailed", str(exc))
            env = ExecutionEnvironment(
                fn, code_dir, self._environment(code_dir, credentials), self._logs, self._settings.python
            )
            env.credentials_expire = expires
            with self._lock:
                self._all.add(env)
            self.cold_starts += 1
            started = time.monotonic()
            try:
                ready = env.start(self._settings.init_timeout)
            except TimeoutError:
                ready = {
                    "type": "init_error",
                    "error": {
                        "errorMessage": f"INIT phase did not finish within {self._settings.init_timeout:.0f} seconds",
                        "errorType": "Sandbox.Timedout",
                    },
                }
            init_ms = (time.monotonic() - started) * 1000
            if ready.get("type") != "ready":
                error = ready.get("error") or {"errorMessage": "init failed", "errorType": "Runtime.Unknown"}
                env.log(
                    f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: error\t"
                    f"Error Type: {error.get('errorType')}"
                )
                env.kill()
                self._checkin(env)
                return InvocationResult(
                    fn.name, request_id, error=error, cold=True, init_ms=init_ms, environment_id=env.id
                )
            init_ms = float(ready.get("init_ms", init_ms))
        env.log(f"START RequestId: {request_id} Version: $LATEST")
        started = time.monotonic()
        payload, error = env.invoke(request_id, event, float(fn.timeout))
        duration = (time.monotonic() - started) * 1000
        env.log(f"END RequestId: {request_id}")
        memory = env.max_memory_mb()
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration)} ms\tMemory Size: {fn.memory} MB"
        )
        if memory is not None:
            report += f"\tMax Memory Used: {memory} MB"
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        if error is not None and error.get("errorType") == "Sandbox.Timedout":
            report += "\tStatus: timeout"
        env.log(report)
        self._checkin(env)
        return InvocationResult(
            fn.name,
            request_id,
            payload=payload,
            error=error,
            cold=cold,
            duration_ms=duration,
            init_ms=init_ms,
            environment_id=env.id,
        )

    def retire(self, kill_busy: bool = False) -> None:
        """No new invocations here: idle environments stop now, busy ones when they finish (or now)."""
        with self._lock:
            self.retired = True
            idle, self._idle = self._idle, []
            busy = [env for env in self._all if env not in idle] if kill_busy else []
            for env in idle:
                self._all.discard(env)
        for env in [*idle, *busy]:
            env.kill()

    @property
    def environments(self) -> int:
        with self._lock:
            return len(self._all)
