"""``LocalRuntime``: discovery, function pools, the HTTP front and the SQS pollers together."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from tooling.embedded_backend import REGION, SCHEDULER_SERVICE_CREDENTIALS, TEST_CREDENTIALS
from tooling.local_runtime.authorizer import JwksCache
from tooling.local_runtime.credentials import ExecutionRoles
from tooling.local_runtime.discovery import (
    Backend,
    CodeStore,
    Deployment,
    EventSourceMappingConfig,
    discover,
    fingerprint,
)
from tooling.local_runtime.errors import LocalRuntimeError
from tooling.local_runtime.front import Front
from tooling.local_runtime.functions import FunctionPool, InvocationResult, PoolSettings
from tooling.local_runtime.logs import Console, LogRouter, print_console
from tooling.local_runtime.pollers import QueuePoller
from tooling.local_runtime.scheduler import ScheduleFirer
from tooling.local_runtime.streams import StreamPoller
from tooling.packaging import BUILD_DIR

T = TypeVar("T")

DEFAULT_ZIP_DIR = BUILD_DIR
LOOPBACK_NOTE = (
    "loopback only: moto signs Cognito tokens with a private key that ships inside the moto "
    "package, so anyone who could reach this port could forge a valid token"
)


class LocalRuntime:
    """Runs what was deployed to the embedded backend. See the package docstring."""

    def __init__(
        self,
        endpoint: str,
        *,
        region: str = REGION,
        zip_dir: Path | str = DEFAULT_ZIP_DIR,
        rest_api: str | None = None,
        stage: str | None = None,
        port: int = 0,
        default_concurrency: int = 8,
        refresh_interval: float | None = 2.0,
        console: Console | None = print_console,
        access_log: bool = True,
        cache_dir: Path | str | None = None,
        python: str = sys.executable,
        poll_wait_seconds: int = 2,
        init_timeout: float = 10.0,
        credentials: dict[str, str] | None = None,
        fire_schedules: bool = True,
        schedule_interval: float = 1.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self.zip_dir = Path(zip_dir)
        self._rest_api = rest_api
        self._stage = stage
        self._port = port
        self._refresh_interval = refresh_interval
        self._access_log = access_log
        self._poll_wait = poll_wait_seconds
        creds = dict(credentials or TEST_CREDENTIALS)
        # The runtime's own reads (discovery, log shipping) act as the control plane; each
        # function and its event source mapping act as the function's execution role.
        self._backend = Backend(self.endpoint, region, creds)
        self.roles = ExecutionRoles(self.endpoint, region)
        self.logs = LogRouter(self._backend, console, writer=self._log_writer)
        # EventBridge Scheduler's part: fire the backend's one-time schedules at their time.
        self.schedules: ScheduleFirer | None = None
        if fire_schedules:
            scheduler_roles = ExecutionRoles(self.endpoint, region, service_credentials=SCHEDULER_SERVICE_CREDENTIALS)
            self.schedules = ScheduleFirer(self._backend, scheduler_roles, self.logs, interval=schedule_interval)
        self._code = CodeStore(self.zip_dir, Path(cache_dir) if cache_dir else self.zip_dir / ".local-runtime")
        self._settings = PoolSettings(
            endpoint=self.endpoint,
            region=region,
            credentials=creds,
            python=python,
            default_concurrency=default_concurrency,
            init_timeout=init_timeout,
            roles=self.roles,
        )
        self._lock = threading.RLock()
        self._pools: dict[str, FunctionPool] = {}
        self._pollers: dict[str, QueuePoller] = {}
        # DynamoDB stream mappings: their pollers, and each mapping's shard positions, which
        # outlive a poller re-created by a refresh
        self._stream_pollers: dict[str, StreamPoller] = {}
        self._stream_checkpoints: dict[str, dict[str, str]] = {}
        self._queue_urls: dict[str, str] = {}
        self._log_clients: dict[tuple[str, str], Any] = {}
        self._deployment: Deployment | None = None
        self._fingerprint = ""  # of the deployment last read in full (see refresh)
        self._front: Front | None = None
        self._stopping = threading.Event()
        self._refresher: threading.Thread | None = None
        self._last_refresh_error = ""
        self.started = False

    # -- public API --------------------------------------------------------------------

    @property
    def front_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no stage); LocalRuntimeError if no REST API is fronted."""
        if self._front is None:
            raise LocalRuntimeError("no REST API is fronted (none deployed, or the runtime is not started)")
        return self._front.url

    @property
    def stage(self) -> str:
        deployment = self._deployment
        if deployment is None or deployment.api is None:
            raise LocalRuntimeError("no REST API is fronted (none deployed, or the runtime is not started)")
        names = deployment.api.stage_names
        if self._stage:
            if self._stage not in names:
                raise LocalRuntimeError(f"the REST API has no stage {self._stage!r} (stages: {names})")
            return self._stage
        if not names:
            raise LocalRuntimeError("the REST API has no stage: deploy it (aws_api_gateway_stage) first")
        return names[0]

    @property
    def base_url(self) -> str:
        """The API's invoke URL on the front: ``http://127.0.0.1:PORT/<stage>``."""
        return f"{self.front_url}/{self.stage}"

    @property
    def deployment(self) -> Deployment:
        if self._deployment is None:
            raise LocalRuntimeError("the runtime is not started")
        return self._deployment

    def invoke(self, function_name: str, event: Any, wait: float | None = None) -> InvocationResult:
        """Invoke a deployed function synchronously (like Lambda's Invoke with RequestResponse)."""
        pool = self._pools.get(function_name)  # no lock: a refresh holding it may wait on invocations
        if pool is None:
            return InvocationResult(
                function_name,
                "",
                error={
                    "errorType": "ResourceNotFoundException",
                    "errorMessage": f"Function not found: {function_name}",
                },
            )
        return pool.invoke(event, wait=wait)

    def pool(self, function_name: str) -> FunctionPool:
        """The current execution environments of a function (for inspection and tests)."""
        return self._pools[function_name]

    def pollers(self) -> list[QueuePoller]:
        return list(self._pollers.values())

    def stream_pollers(self) -> list[StreamPoller]:
        return list(self._stream_pollers.values())

    def start(self) -> LocalRuntime:
        if self.started:
            return self
        self.logs.start()
        try:
            seen = self._read(fingerprint, self._backend, self._rest_api)
            deployment = self._discover()
            self._check_code(deployment)
            self._apply(deployment, initial=True)
            self._fingerprint = seen
            if self.schedules is not None:
                self.schedules.start()
                self.logs.say(
                    f"firing EventBridge Scheduler one-time schedules at their time (re-listed every "
                    f"{self.schedules.interval:g} s)"
                )
            if self._refresh_interval:
                self._refresher = threading.Thread(target=self._refresh_loop, name="local-runtime-refresh", daemon=True)
                self._refresher.start()
        except BaseException:
            self.stop()
            raise
        self.started = True
        return self

    def stop(self) -> None:
        """Stop everything this runtime started (pollers, front, worker processes, log shipping)."""
        self._stopping.set()
        if self.schedules is not None:
            self.schedules.stop()
        if self._refresher is not None:
            self._refresher.join(30)
            self._refresher = None
        with self._lock:
            pollers = list(self._pollers.values())
            stream_pollers = list(self._stream_pollers.values())
            pools = list(self._pools.values())
            self._pollers.clear()
            self._stream_pollers.clear()
            self._pools.clear()
        for poller in pollers:
            poller.request_stop()
        for stream_poller in stream_pollers:
            stream_poller.request_stop()
        if self._front is not None:
            self._front.stop()
            self._front = None
        for pool in pools:
            pool.retire(kill_busy=True)
        for poller in pollers:
            poller.stop()
        for stream_poller in stream_pollers:
            stream_poller.stop()
        self.logs.flush(5)
        self.logs.stop()
        self.started = False

    def refresh(self) -> bool:
        """Re-read the deployment now; returns True if anything changed (and was applied).

        A few list calls tell whether anything was redeployed since the last full read
        (``discovery.fingerprint``); only then is the whole deployment read again.
        """
        seen = self._read(fingerprint, self._backend, self._rest_api)
        if seen == self._fingerprint:
            return False
        deployment = self._discover()
        with self._lock:
            if self._stopping.is_set():
                return False
            changed = self._apply(deployment, initial=False)
            self._fingerprint = seen
            return changed

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------

    def _discover(self) -> Deployment:
        return self._read(discover, self._backend, self._rest_api, self._queue_urls)

    def _read(self, read: Callable[..., T], *args: Any) -> T:
        try:
            return read(*args)
        except EndpointConnectionError as exc:
            raise LocalRuntimeError(
                f"cannot reach the AWS backend at {self.endpoint} ({exc}): is it running? (`invoke local` starts it)"
            ) from exc
        except (ClientError, BotoCoreError) as exc:
            raise LocalRuntimeError(f"could not read the deployment from {self.endpoint}: {exc}") from exc

    def _check_code(self, deployment: Deployment) -> None:
        """Every function the front or a poller uses must exist and have its zip here."""
        needed: dict[str, str] = {}
        if deployment.api is not None:
            for resource in deployment.api.resources:
                for verb, method in resource.methods:
                    if method.function_name:
                        needed.setdefault(method.function_name, f"the REST API's {verb} {resource.path}")
        for mapping in deployment.mappings.values():
            if mapping.enabled:
                needed.setdefault(mapping.function_name, f"the event source mapping of {mapping.queue_arn}")
        for stream_mapping in deployment.stream_mappings.values():
            if stream_mapping.enabled:
                needed.setdefault(
                    stream_mapping.function_name, f"the event source mapping of {stream_mapping.stream_arn}"
                )
        for name, user in sorted(needed.items()):
            function = deployment.functions.get(name)
            if function is None:
                raise LocalRuntimeError(f"{user} invokes function {name}, which is not deployed")
            self._code.code_dir(function)

    def _mapping_concurrency(self, mapping: EventSourceMappingConfig) -> int:
        pool = self._pools.get(mapping.function_name)
        limit = pool.limit if pool is not None else self._settings.default_concurrency
        return mapping.maximum_concurrency or max(limit, 1)

    def _poller_invoke(self, function_name: str, event: dict[str, Any], wait: float | None) -> InvocationResult:
        return self.invoke(function_name, event, wait)

    def _front_invoke(self, function_name: str, event: dict[str, Any], wait: float) -> InvocationResult:
        return self.invoke(function_name, event, wait)

    def _apply(self, new: Deployment, initial: bool) -> bool:
        """Bring pools, routes and pollers in line with ``new``; True if anything changed."""
        old = self._deployment
        changed = False
        say = self.logs.say
        # functions
        for name, function in sorted(new.functions.items()):
            current = self._pools.get(name)
            if current is not None and current.function == function:
                continue
            if current is not None:
                what = "code" if current.function.code_sha256 != function.code_sha256 else "configuration"
                say(f"function {name}: new {what} deployed; new environments from the next invocation")
                try:
                    self._code.code_dir(function)
                except LocalRuntimeError as exc:
                    say(str(exc))
                current.retire()
            self._pools[name] = FunctionPool(function, self._code.code_dir, self.logs, self._settings)
            changed = True
        for name in sorted(set(self._pools) - set(new.functions)):
            say(f"function {name}: deleted")
            self._pools.pop(name).retire()
            changed = True
        # the REST API
        if new.api is not None and (old is None or old.api != new.api):
            if self._front is None:
                self._deployment = new  # the stage is read from it
                self._front = Front(
                    new.api,
                    self._front_invoke,
                    JwksCache(self.endpoint),
                    self.logs,
                    self._account_id(new),
                    self.region,
                    self._port,
                    self._access_log,
                )
                self._front.start()
                say(f"REST API {new.api.name} ({new.api.id}) at {self.base_url} ({LOOPBACK_NOTE})")
                for resource in new.api.resources:
                    for verb, method in resource.methods:
                        target = method.function_name or method.integration_type
                        say(
                            f"  {verb:<7} /{self.stage}{resource.path if resource.path != '/' else ''}"
                            f"  -> {target}  (auth: {method.authorization_type})"
                        )
            else:
                self._front.api = new.api
                say(f"REST API {new.api.name}: routes reloaded")
            changed = True
        elif new.api is None and initial:
            say("no REST API is deployed: no HTTP front (functions and pollers only)")
        elif new.api is None and old is not None and old.api is not None:
            say("the REST API is gone from the backend; the front keeps its last routes")
            new = replace(new, api=old.api)
        # event source mappings
        for uuid, mapping in sorted(new.mappings.items()):
            poller = self._pollers.get(uuid)
            consumer = new.functions.get(mapping.function_name)
            role = consumer.role if consumer is not None else ""
            if poller is not None and poller.mapping == mapping and poller.role == role:
                continue
            if poller is not None:
                poller.stop()
                del self._pollers[uuid]
                changed = True
                if not mapping.enabled:
                    say(f"event source mapping {uuid}: disabled, {mapping.queue_url} is no longer polled")
            if mapping.enabled:
                poller = QueuePoller(
                    mapping,
                    self._poller_invoke,
                    self.roles.client(role, mapping.function_name, "sqs"),
                    self.logs,
                    self._mapping_concurrency(mapping),
                    self._poll_wait,
                )
                poller.role = role
                self._pollers[uuid] = poller
                poller.start()
                say(
                    f"polling {mapping.queue_url} -> {mapping.function_name} (batch {mapping.batch_size}, "
                    f"window {mapping.batching_window}s, concurrency {poller.concurrency}, "
                    f"partial failures {'on' if mapping.report_batch_item_failures else 'off'})"
                )
                changed = True
        for uuid in sorted(set(self._pollers) - set(new.mappings)):
            say(f"event source mapping {uuid}: deleted")
            self._pollers.pop(uuid).stop()
            changed = True
        changed = self._apply_stream_mappings(new) or changed
        self._deployment = new
        return changed

    def _apply_stream_mappings(self, new: Deployment) -> bool:
        """One StreamPoller per enabled DynamoDB stream mapping (tooling/local_runtime/streams.py)."""
        changed = False
        say = self.logs.say
        for uuid, mapping in sorted(new.stream_mappings.items()):
            poller = self._stream_pollers.get(uuid)
            consumer = new.functions.get(mapping.function_name)
            role = consumer.role if consumer is not None else ""
            if poller is not None and poller.mapping == mapping and poller.role == role:
                continue
            if poller is not None:
                poller.stop()
                del self._stream_pollers[uuid]
                changed = True
                if not mapping.enabled:
                    say(f"event source mapping {uuid}: disabled, {mapping.stream_arn} is no longer read")
            if mapping.enabled and consumer is not None:
                poller = StreamPoller(
                    mapping,
                    self._poller_invoke,
                    self.roles.client(role, mapping.function_name, "dynamodbstreams"),
                    self.roles.client(role, mapping.function_name, "sqs"),
                    self.logs,
                    consumer.arn,
                    self._stream_checkpoints.setdefault(uuid, {}),
                )
                poller.role = role
                self._stream_pollers[uuid] = poller
                poller.start()
                say(
                    f"reading {mapping.stream_arn} -> {mapping.function_name} (batch {mapping.batch_size}, "
                    f"window {mapping.batching_window}s, from {mapping.starting_position}, partial failures "
                    f"{'on' if mapping.report_batch_item_failures else 'off'}, bisect "
                    f"{'on' if mapping.bisect_on_error else 'off'}, retries {mapping.maximum_retry_attempts}, "
                    f"on failure -> {mapping.on_failure_arn or 'nothing'})"
                )
                changed = True
        for uuid in sorted(set(self._stream_pollers) - set(new.stream_mappings)):
            say(f"event source mapping {uuid}: deleted")
            self._stream_pollers.pop(uuid).stop()
            self._stream_checkpoints.pop(uuid, None)
            changed = True
        return changed

    def _log_writer(self, function_name: str) -> Any:
        """The logs client of a function's lines: as its execution role, as Lambda writes them."""
        pool = self._pools.get(function_name)
        role = pool.function.role if pool is not None else ""
        key = (function_name, role)
        client = self._log_clients.get(key)
        if client is None:
            client = self._log_clients[key] = self.roles.client(role, function_name, "logs")
        return client

    def _account_id(self, deployment: Deployment) -> str:
        for function in deployment.functions.values():
            parts = function.arn.split(":")
            if len(parts) > 4 and parts[4]:
                return parts[4]
        try:
            return str(self._backend.client("sts").get_caller_identity()["Account"])
        except (ClientError, BotoCoreError):
            return "123456789012"

    def _refresh_loop(self) -> None:
        assert self._refresh_interval
        while not self._stopping.wait(self._refresh_interval):
            try:
                self.refresh()
                self._last_refresh_error = ""
            except LocalRuntimeError as exc:
                if str(exc) != self._last_refresh_error:
                    self._last_refresh_error = str(exc)
                    self.logs.say(f"refresh failed, keeping the last deployment: {exc}")
