"""The embedded AWS backend: moto's server on a loopback port, with the patches this stack needs.

Started as a child process (``python -m tooling.embedded_backend --port N``) so that the
patches below apply inside the server and nowhere else. It listens on 127.0.0.1 only:
moto's Cognito signs tokens with a private key that ships inside the moto package, so
anything reachable through this server must never be exposed beyond this machine.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import heapq
import inspect
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
# The administrator of the embedded backend: Terraform, the tooling and the tests sign with
# these (an IAM user allowed everything, created before the server takes requests). Any other
# key is refused, as AWS refuses it, and every request is checked against its caller's policies.
ADMIN_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAEMBEDDEDADMIN001",
    "AWS_SECRET_ACCESS_KEY": "embedded-backend-administrator",
}
TEST_CREDENTIALS = ADMIN_CREDENTIALS  # the name the tooling has used for them
ADMIN_USER = "embedded-admin"
# The identity the local runtime acts as when it does what the Lambda service does on AWS:
# assume a function's execution role (its trust policy names the `lambda.amazonaws.com`
# service principal). Allowed sts:AssumeRole and nothing else.
LAMBDA_SERVICE_PRINCIPAL = "lambda.amazonaws.com"
LAMBDA_SERVICE_USER = "embedded-lambda-service"
LAMBDA_SERVICE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAEMBEDDEDLAMBDA01",
    "AWS_SECRET_ACCESS_KEY": "embedded-backend-lambda-service",
}
# The identity the local runtime acts as when it fires a due schedule, as EventBridge Scheduler
# does on AWS: assume the schedule's role (trusted by `scheduler.amazonaws.com`), then send
# the target's input as that role. Allowed sts:AssumeRole and nothing else.
SCHEDULER_SERVICE_PRINCIPAL = "scheduler.amazonaws.com"
SCHEDULER_SERVICE_USER = "embedded-scheduler-service"
SCHEDULER_SERVICE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAEMBEDDEDSCHED001",
    "AWS_SECRET_ACCESS_KEY": "embedded-backend-scheduler-service",
}
# Service principal -> the IAM user that stands for that service on the embedded backend.
SERVICE_USERS = {
    LAMBDA_SERVICE_PRINCIPAL: LAMBDA_SERVICE_USER,
    SCHEDULER_SERVICE_PRINCIPAL: SCHEDULER_SERVICE_USER,
}


# --------------------------------------------------------------------------------------
# Patches applied inside the server process only
# --------------------------------------------------------------------------------------

# Set (to anything) to have the backend log one line per request, as moto's server does.
ACCESS_LOG_ENV_VAR = "JOBSTACK_BACKEND_ACCESS_LOG"


def patch_server_overhead() -> None:
    """Two costs moto's server pays on every request that are bookkeeping, not AWS behaviour.
    Under load they were a quarter of the backend's CPU (py-spy, 300 jobs):

    - finding the service of a request lists moto's package folder (``os.listdir`` and an
      ``isdir`` per service) every time: the list is read once here;
    - a colourised access-log line per request: off unless ``JOBSTACK_BACKEND_ACCESS_LOG`` is
      set (warnings, errors and tracebacks are still written to the backend's log).
    """
    import logging

    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    if not os.environ.get(ACCESS_LOG_ENV_VAR):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)


def patch_lambda_esm() -> None:
    """Stop moto from consuming queues that have an SQS event source mapping.

    Given a mapping, moto "invokes" the function inside SendMessage and deletes the message;
    without Docker the job would be silently swallowed. The mapping stays registered in the
    Lambda API (the local runtime reads it from there); the queue just never learns of it,
    so the local runtime's pollers receive the messages.
    """
    from moto.sqs import models as sqs_models

    class _DetachedMappings(dict[str, Any]):
        def __setitem__(self, key: Any, value: Any) -> None:
            return None

    original_init = sqs_models.Queue.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.lambda_event_source_mappings = _DetachedMappings()

    sqs_models.Queue.__init__ = __init__  # type: ignore[method-assign]


def patch_dynamodb_stream_esm() -> None:
    """Stop moto from "invoking" a function on a write to a table whose stream has a mapping.

    Given a DynamoDB stream event source mapping, moto calls the Lambda backend's
    ``send_dynamodb_items`` inside the write (PutItem, UpdateItem, a transaction), which tries
    Docker, and then empties the shard it keeps, renumbering later records. Here the table never
    learns of its mappings: the mapping stays registered in the Lambda API, the stream keeps
    every record, and the local runtime's stream poller (``tooling/local_runtime/streams.py``)
    reads it with the DynamoDB Streams API and invokes the function, as Lambda does.
    """
    from moto.dynamodb.models import table as table_models

    class _DetachedMappings(dict[str, Any]):
        def __setitem__(self, key: Any, value: Any) -> None:
            return None

    table_cls: Any = table_models.Table
    original_init = table_cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.lambda_event_source_mappings = _DetachedMappings()

    table_cls.__init__ = __init__


def patch_dynamodb_stream_iterators() -> None:
    """Forget old DynamoDB Streams shard iterators, as AWS expires them after 15 minutes.

    moto keeps every shard iterator it ever handed out (each GetRecords hands out the next one),
    so a stream poller reading four times a second grew the server by megabytes an hour. Here
    only the latest ``MAX_SHARD_ITERATORS`` are kept; an older one is refused as expired.
    """
    from moto.dynamodbstreams import models as streams_models

    class _Bounded(collections.OrderedDict[str, Any]):
        def __setitem__(self, key: str, value: Any) -> None:
            super().__setitem__(key, value)
            while len(self) > MAX_SHARD_ITERATORS:
                self.popitem(last=False)

    backend_cls: Any = streams_models.DynamoDBStreamsBackend
    original_init = backend_cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.shard_iterators = _Bounded()

    backend_cls.__init__ = __init__


MAX_SHARD_ITERATORS = 10_000


def patch_events_sns_targets() -> None:
    """Deliver EventBridge rule targets that are SNS topics, which moto does not.

    moto's ``Rule.send_to_targets`` delivers to SQS queues, log groups, archives and other
    buses, and raises NotImplementedError for any other target, inside PutEvents: a rule with
    an SNS target (the operators' topic, module events) made every matching PutEvents fail.
    Here a matching event is published to the topic as EventBridge does: the message is the
    event as JSON (after the target's InputTransformer, if any), with no message attributes
    (EventBridge sets none; subscribers filter on the body). Other targets are left to moto.
    """
    import copy

    from moto.events import models as events_models
    from moto.sns.models import sns_backends

    rule_cls: Any = events_models.Rule
    original = rule_cls.send_to_targets

    def is_sns(target: dict[str, Any]) -> bool:
        return str(target.get("Arn", "")).startswith("arn:aws:sns:")

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        topics = [t for t in self.targets if is_sns(t)]
        if not topics:
            return original(self, original_event, transform_input)
        if self.event_pattern.matches_event(original_event):
            for target in topics:
                transformer = target.get("InputTransformer", {}) if transform_input else {}
                parser: Any = events_models.EventTemplateParser
                event = parser.parse(
                    input_template=transformer.get("InputTemplate"),
                    input_paths_map=transformer.get("InputPathsMap", {}),
                    event=original_event,
                )
                if isinstance(event, dict) and isinstance(event.get("time"), (int, float)):
                    event = {
                        **event,
                        "time": datetime.datetime.fromtimestamp(event["time"], datetime.UTC).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        ),
                    }
                _, _, _, region, account, _ = str(target["Arn"]).split(":", 5)
                message = event if isinstance(event, str) else json.dumps(event)
                sns_backends[account][region].publish(message, arn=target["Arn"])
        others = copy.copy(self)
        others.targets = [t for t in self.targets if not is_sns(t)]
        return original(others, original_event, transform_input)

    rule_cls.send_to_targets = send_to_targets


def patch_sqs_queue_scans() -> None:
    """Keep moto's SQS fast on deep queues, as SQS is.

    moto computes each approximate count in its own pass over every message, reading the
    clock once per message, and, for every message ReceiveMessage hands out, rebuilds all of
    the queue's attributes (counts included) three times just to read its retention period:
    ReceiveMessage(10) took 2.1 s at depth 2,200 and SendMessage 130 ms, so under load a
    worker's batch spent its whole timeout waiting on the queue. Here the retention period is
    read directly and each count is one pass with one clock read; what is returned is
    unchanged, except that a standard queue's visible messages come in fair-queue order
    (``fair_order``), as SQS serves them when their messages carry a ``MessageGroupId``.
    """
    from moto.sqs import models as sqs_models

    queue_cls: Any = sqs_models.Queue
    backend_cls: Any = sqs_models.SQSBackend
    now_ms = sqs_models.unix_time_millis

    def visible_now(self: Any) -> list[Any]:
        now = now_ms()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delayed(self: Any) -> int:
        now = now_ms()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def not_visible(self: Any) -> int:
        now = now_ms()
        return sum(1 for m in self._messages if not now > m.visible_at)

    def retention_ok(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > sqs_models.unix_time())

    queue_cls.messages = property(lambda self: fair_order(self, visible_now(self), now_ms()))
    queue_cls.approximate_number_of_messages = property(lambda self: len(visible_now(self)))  # no ordering to count
    queue_cls.approximate_number_of_messages_delayed = property(delayed)
    queue_cls.approximate_number_of_messages_not_visible = property(not_visible)
    backend_cls.is_message_valid_based_on_retention_period = retention_ok


def patch_sqs_delayed_wakeup() -> None:
    """Wake a long poll when a delayed (or invisible) message becomes visible, as SQS does.

    moto's ReceiveMessage long poll waits on a condition that only a new message notifies,
    re-checking once a second: a message sent with ``DelaySeconds`` (a scheduled job due
    within 15 minutes) was returned up to a second after it became visible. Here the wait
    ends when the next delayed or in-flight message of the queue is due, if that is sooner.
    """
    from moto.sqs import models as sqs_models

    queue_cls: Any = sqs_models.Queue
    now_ms = sqs_models.unix_time_millis

    def wait_for_messages(self: Any, timeout: int) -> None:
        with self._messages_lock:
            now = now_ms()
            due = [t for m in self._messages for t in (m.delayed_until, m.visible_at) if t and t > now]
            wait = min(float(timeout), (min(due) - now) / 1000.0 + 0.001) if due else float(timeout)
            self._messages_lock.wait_for(lambda: self.messages, timeout=max(wait, 0.0))

    queue_cls.wait_for_messages = wait_for_messages


def fair_order(queue: Any, visible: list[Any], now: float) -> list[Any]:
    """The visible messages of ``queue`` in the order a fair queue hands them out.

    SQS fair queues (a standard queue whose messages carry a ``MessageGroupId``, the tenant):
    when one tenant holds a disproportionate share of the in-flight messages, SQS returns the
    other tenants' messages first. moto stores the group id but serves in arrival order, so
    this orders moto's visible messages (ReceiveMessage takes them from the front) by water
    filling: the next message comes from the tenant with the fewest messages in flight
    counting those already placed ahead (ties: the tenant whose first waiting message is
    oldest), arrival order within a tenant. A message without a group is a tenant of its own
    (as on AWS). A FIFO queue, or one with no grouped message, keeps arrival order.
    O(messages x log tenants): one pass to count in flight, one to bucket, a heap to merge.
    """
    if queue.fifo_queue or not any(m.group_id for m in visible):
        return visible
    in_flight: dict[str, int] = {}
    for m in queue._messages:
        if m.group_id and not now > m.visible_at:
            in_flight[m.group_id] = in_flight.get(m.group_id, 0) + 1
    waiting: dict[Any, collections.deque[Any]] = {}
    for m in visible:
        waiting.setdefault(m.group_id or id(m), collections.deque()).append(m)
    heap = [(in_flight.get(g, 0) if isinstance(g, str) else 0, i, g) for i, g in enumerate(waiting)]
    heapq.heapify(heap)
    ordered: list[Any] = []
    while heap:
        load, first, group = heapq.heappop(heap)
        messages = waiting[group]
        ordered.append(messages.popleft())
        if messages:
            heapq.heappush(heap, (load + 1, first, group))
    return ordered


def patch_sqs_redrive_policy() -> None:
    """Return an SQS RedrivePolicy in the compact JSON form it was written in.

    moto re-serialises it with spaces, which the AWS provider reads as drift on every plan.
    """
    from moto.sqs import models as sqs_models

    original = sqs_models.Queue.attributes

    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = original.fget(self)  # type: ignore[attr-defined]
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    sqs_models.Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]


def patch_sqs_redrive_allow_policy() -> None:
    """Return an SQS queue's RedriveAllowPolicy, which moto stores but never reports.

    The AWS provider's ``aws_sqs_queue_redrive_allow_policy`` waits until GetQueueAttributes
    shows the policy it set; without this it waits forever. The value is returned as written.
    """
    from moto.sqs import models as sqs_models

    queue_cls: Any = sqs_models.Queue
    if "RedriveAllowPolicy" not in queue_cls.BASE_ATTRIBUTES:
        queue_cls.BASE_ATTRIBUTES = [*queue_cls.BASE_ATTRIBUTES, "RedriveAllowPolicy"]
    queue_cls.redrive_allow_policy = None  # default until SetQueueAttributes sets it
    original = queue_cls.attributes

    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = original.fget(self)
        if not result.get("RedriveAllowPolicy"):
            result.pop("RedriveAllowPolicy", None)
        return result

    queue_cls.attributes = property(attributes)


def patch_lambda_logging_config() -> None:
    """Keep and report a Lambda function's LoggingConfig, which moto drops.

    Without it the AWS provider sees ``logging_config`` (JSON log format, log group) missing
    after every apply and plans an update each time. Like AWS, a function created without
    one reports the default (Text format, ``/aws/lambda/<name>``).
    """
    from moto.awslambda import models as lambda_models

    function_cls: Any = lambda_models.LambdaFunction
    original_init = function_cls.__init__
    original_get = function_cls.get_configuration
    original_update = function_cls.update_configuration

    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_init(self, account_id, spec, *args, **kwargs)
        self.logging_config = spec.get("LoggingConfig")

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config: dict[str, Any] = original_get(self, *args, **kwargs)
        default = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{self.function_name}"}
        config["LoggingConfig"] = {**default, **(getattr(self, "logging_config", None) or {})}
        return config

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if config_updates.get("LoggingConfig") is not None:
            self.logging_config = config_updates["LoggingConfig"]
        result: dict[str, Any] = original_update(self, config_updates)
        return result

    function_cls.__init__ = __init__
    function_cls.get_configuration = get_configuration
    function_cls.update_configuration = update_configuration


# The request context a bucket policy's conditions are evaluated against. Clients reach AWS
# over TLS (the AWS SDKs and the provider always use HTTPS); the embedded backend's plain
# HTTP on loopback stands in for that connection, so it counts as secure transport.
S3_POLICY_CONTEXT = {"aws:securetransport": "true"}


def _conditions_hold(conditions: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """Whether every condition of a policy statement holds; an unknown key or operator never does."""
    for operator, pairs in conditions.items():
        base = operator.removesuffix("IfExists")
        for key, expected in pairs.items():
            actual = context.get(key.lower())
            if actual is None:
                return False
            values = expected if isinstance(expected, list) else [expected]
            wanted = [str(v).lower() if base == "Bool" else str(v) for v in values]
            if base in ("Bool", "StringEquals"):
                holds = actual in wanted
            elif base == "StringNotEquals":
                holds = actual not in wanted
            else:
                return False
            if not holds:
                return False
    return True


def patch_s3_policy_conditions() -> None:
    """Evaluate a bucket policy's conditions instead of ignoring them.

    moto skips condition operators it does not know (``Bool`` among them), so the stack's
    TLS-only statement (Deny when ``aws:SecureTransport`` is false) denied every request.
    Here a statement applies only when its conditions hold for ``S3_POLICY_CONTEXT``; a
    statement whose conditions cannot be evaluated does not apply.
    """
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult
    from moto.s3 import models as s3_models

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        statements = json.loads(self.policy.decode())["Statement"]
        permitted = False
        for statement in statements if isinstance(statements, list) else [statements]:
            if "Condition" in statement and not _conditions_hold(statement["Condition"], S3_POLICY_CONTEXT):
                continue
            unconditional = {k: v for k, v in statement.items() if k != "Condition"}
            result = IAMPolicyStatement(unconditional).is_action_permitted(action, resource)
            if result == PermissionResult.DENIED:
                return result
            permitted = permitted or result == PermissionResult.PERMITTED
        return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL

    s3_models.FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


# Opt-in request counting (for `invoke bench`): set this variable to 1 in the environment the
# server starts with; GET REQUEST_COUNTS_PATH then answers the counts (``?reset=1`` also
# zeroes them). Off by default: nothing is counted or served.
COUNT_REQUESTS_ENV = "EMBEDDED_BACKEND_COUNT_REQUESTS"
REQUEST_COUNTS_PATH = "/moto-api/request-counts"
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_APP_ID = re.compile(r"(?:^|\s)app/(\S+)")
_S3_KEY_OPERATIONS = {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}


def request_identity(
    method: str, path: str, query: str, headers: dict[str, str], body: bytes = b""
) -> tuple[str, str, str]:
    """(caller, service, operation) of one request to the backend; ``headers`` keys lower-case.

    The caller is read from the User-Agent: ``function`` for code running with a Lambda
    execution environment (botocore adds ``exec-env/AWS_Lambda_...``), the ``app/<id>`` a
    client configured with ``user_agent_appid``, else ``other`` (the local runtime's pollers
    and log shipping, terraform, tools). The service is the SigV4 credential scope's; the
    operation comes from ``X-Amz-Target``, an ``Action`` parameter, or the method and path
    (S3 object operations by name, other REST calls as ``METHOD /first/segments``).
    """
    agent = headers.get("user-agent", "")
    app = _APP_ID.search(agent)
    caller = "function" if "exec-env/AWS_Lambda" in agent else (app.group(1) if app else "other")
    scope = _CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
    service = scope.group(1) if scope else "unsigned"
    target = headers.get("x-amz-target")
    if target:
        return caller, service, target.rsplit(".", 1)[-1]
    params = urllib.parse.parse_qs(query)
    if not params.get("Action") and body:
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    if params.get("Action"):
        return caller, service, params["Action"][0]
    parts = [p for p in path.split("/") if p]
    if service == "s3":
        if len(parts) >= 2:
            if method == "PUT" and "x-amz-copy-source" in headers:
                return caller, service, "CopyObject"
            if "partNumber" in params or "uploadId" in params:
                return caller, service, f"{method} multipart"
            return caller, service, _S3_KEY_OPERATIONS.get(method, f"{method} object")
        if method == "GET" and "list-type" in params:
            return caller, service, "ListObjectsV2"
        sub = sorted(k for k in params if k not in ("prefix", "delimiter", "max-keys", "encoding-type"))
        return caller, service, f"{method} bucket" + (f"?{sub[0]}" if sub else "")
    return caller, service, f"{method} /" + "/".join(parts[:2])


def patch_request_counts() -> None:
    """Count requests by caller, service and operation, when ``COUNT_REQUESTS_ENV`` is 1.

    A WSGI wrapper around moto's dispatcher: it sees every request whoever sends it (the
    Lambda code runs in other processes, where a botocore hook of the caller cannot see it).
    """
    if os.environ.get(COUNT_REQUESTS_ENV) != "1":
        return
    from moto.moto_server import werkzeug_app

    dispatcher: Any = werkzeug_app.DomainDispatcherApplication
    original_call = dispatcher.__call__
    counts: dict[tuple[str, str, str], int] = {}
    lock = threading.Lock()
    started = [time.time()]

    def answer(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        reset = "reset=1" in environ.get("QUERY_STRING", "")
        with lock:
            rows = [{"caller": c, "service": s, "operation": o, "count": n} for (c, s, o), n in sorted(counts.items())]
            since = started[0]
            if reset:
                counts.clear()
                started[0] = time.time()
        body = json.dumps({"since": since, "until": time.time(), "counts": rows}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == REQUEST_COUNTS_PATH:
            return answer(environ, start_response)
        if not path.startswith("/moto-api/"):
            headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
            body = b""
            if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
                length = int(environ.get("CONTENT_LENGTH") or 0)
                if 0 < length <= 1024 * 1024:
                    body = environ["wsgi.input"].read(length)
                    environ["wsgi.input"] = io.BytesIO(body)
            key = request_identity(
                environ.get("REQUEST_METHOD", "GET"), path, environ.get("QUERY_STRING", ""), headers, body
            )
            with lock:
                counts[key] = counts.get(key, 0) + 1
        return original_call(self, environ, start_response)

    dispatcher.__call__ = __call__


def patch_dynamodb_partitioned_query() -> None:
    """Make a base-table Query read only its partition, as DynamoDB does.

    moto answers every Query by sorting all the table's items and filtering them, so its cost
    grows with other partitions' data: a listing of 50 jobs took 13x longer beside 100,000
    other users' jobs. DynamoDB reads only the queried partition; here the query sees the
    partition's items (moto keeps them grouped by hash key already) and nothing else. Index
    queries and scans are unchanged.
    """
    from moto.dynamodb.models import table as table_models

    table_cls: Any = table_models.Table
    scope = threading.local()
    original_all_items = table_cls.all_items
    original_query = table_cls.query

    def all_items(self: Any) -> list[Any]:
        partition = getattr(scope, "partition", None)
        if partition is not None and partition[0] is self:
            items = self.items.get(partition[1])  # .get: items is a defaultdict
            return sorted(items.values(), key=lambda item: item.range_key) if items else []
        return list(original_all_items(self))

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or not self.range_key_attr:
            return original_query(self, hash_key, *args, **kwargs)
        scope.partition = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            scope.partition = None

    table_cls.all_items = all_items
    table_cls.query = query


def patch_dynamodb_atomic_requests() -> None:
    """Make each DynamoDB request atomic, as DynamoDB's conditional writes are.

    moto's server handles requests on concurrent threads and checks a ConditionExpression,
    then applies the update, with nothing held in between: under load two conditional
    updates of one item can both pass (seen here: two workers both claimed PENDING ->
    PROCESSING, so one job ran twice). One lock around each DynamoDB operation restores the
    all-or-nothing semantics the stack relies on (claims, leases, completion).

    The lock covers the operation and a copy of its result, not the serialising of the
    response: moto's serializer is slow (a Query of 500 items held the lock for most of a
    second, stalling every worker's claim and completion behind it), and the copy is what no
    later request can change.
    """
    import copy
    import functools

    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    lock = threading.RLock()

    def locked(operation: Any) -> Any:
        @functools.wraps(operation)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                result = operation(self, *args, **kwargs)
                if isinstance(result, ActionResult):
                    return ActionResult(copy.deepcopy(result.result))
                return result

        return run

    for name, member in list(vars(DynamoHandler).items()):
        if not name.startswith("_") and inspect.isfunction(member) and name != "call_action":
            setattr(DynamoHandler, name, locked(member))
    # The stream is read under the same lock: a cancelled transaction appends its records to the
    # stream and removes them again while it holds the lock, so a reader in between would see
    # records that never happened (and the sequence numbers they took are given out again).
    for name, member in list(vars(DynamoDBStreamsHandler).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(DynamoDBStreamsHandler, name, locked(member))


def patch_scheduler_atomic_requests() -> None:
    """Serialise EventBridge Scheduler requests, as the service's own consistency does.

    moto keeps a group's schedules in a dict that ListSchedules iterates while another thread's
    CreateSchedule or DeleteSchedule may change it ("dictionary changed size during
    iteration"); the local runtime lists every second while the api creates and deletes.
    """
    import functools

    from moto.scheduler.responses import EventBridgeSchedulerResponse

    lock = threading.RLock()

    def locked(operation: Any) -> Any:
        @functools.wraps(operation)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return operation(self, *args, **kwargs)

        return run

    for name, member in list(vars(EventBridgeSchedulerResponse).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(EventBridgeSchedulerResponse, name, locked(member))


class _NoTableCopies(dict[str, Any]):
    """``self.tables`` as moto's transact_write_items sees it: no table is "in" it, so moto takes
    no copy of whole tables to roll back with (``patch_dynamodb_item_level_transactions``)."""

    def __contains__(self, key: object) -> bool:
        return False


def patch_dynamodb_item_level_transactions() -> None:
    """Roll a cancelled TransactWriteItems back item by item, not by copying whole tables.

    moto deep-copies every table a transaction touches before applying it, to put the copy
    back if it is cancelled: the cost of each transaction grows with the table (0.5 s per
    TransactWriteItems beside 3,000 jobs here), and every job's creation and completion is a
    transaction (the per-user quota counter is charged and freed with the job record). Here
    only the items the transaction names are copied, and restored if it raises; records moto
    added to a table's stream for them are dropped. Runs under the DynamoDB lock
    (``patch_dynamodb_atomic_requests``), like every DynamoDB request.
    """
    import copy

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType

    backend_cls: Any = DynamoDBBackend
    original = backend_cls.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any, int | None]] = []
        for entry in transact_items:
            try:
                kind, op = next(iter(entry.items()))
                table = self.get_table(op["TableName"])
                keys = op["Item"] if kind == "Put" else op["Key"]
                hash_key = DynamoType(keys[table.hash_key_attr])
                range_key = DynamoType(keys[table.range_key_attr]) if table.range_key_attr else None
                current = table.get_item(hash_key, range_key)
            except Exception:  # noqa: BLE001,S112 - moto itself reports what is wrong with this item
                continue
            stream = len(table.stream_shard.items) if table.stream_shard is not None else None
            saved.append((table, hash_key, range_key, copy.deepcopy(current), stream))
        tables = self.tables
        self.tables = _NoTableCopies(tables)
        try:
            original(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, item, stream in reversed(saved):
                if range_key is None:
                    if item is None:
                        table.items.pop(hash_key, None)
                    else:
                        table.items[hash_key] = item
                elif item is None:
                    table.items[hash_key].pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = item
                if stream is not None:
                    del table.stream_shard.items[stream:]
            raise
        finally:
            self.tables = tables

    backend_cls.transact_write_items = transact_write_items


def _policy(action: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})


def bootstrap_identities() -> None:
    """Create the administrator and the Lambda-service identity with their fixed keys.

    Done inside the server process before it takes its first request, so enforcement can be
    on from the very first request (moto's own bootstrap, a count of unauthenticated first
    requests, would let whoever comes first in unchecked).
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for user, policy, credentials in (
        (ADMIN_USER, _policy("*"), ADMIN_CREDENTIALS),
        (LAMBDA_SERVICE_USER, _policy("sts:AssumeRole"), LAMBDA_SERVICE_CREDENTIALS),
        (SCHEDULER_SERVICE_USER, _policy("sts:AssumeRole"), SCHEDULER_SERVICE_CREDENTIALS),
    ):
        iam.create_user(REGION, user)
        iam.put_user_policy(user, "embedded-backend", policy)
        key = iam.create_access_key(user)
        iam.access_keys.pop(key.physical_resource_id)
        key.access_key_id = credentials["AWS_ACCESS_KEY_ID"]
        key.secret_access_key = credentials["AWS_SECRET_ACCESS_KEY"]
        iam.access_keys[key.physical_resource_id] = key


def patch_iam_enforcement() -> None:
    """Enforce IAM on every request, as AWS does, where moto falls short of it.

    - moto checks identity policies once ``INITIAL_NO_AUTH_ACTION_COUNT`` requests have
      passed: here from the first one (see ``bootstrap_identities``). An unknown access key,
      or a role session's key with the wrong token, is refused; signatures are not verified.
    - A trust policy naming a ``Service`` principal crashed moto's check (it only knows
      ``AWS`` principals): a service principal is matched by the IAM user that stands for
      that service here (``SERVICE_USERS``), so only the local runtime, acting as Lambda,
      can assume an execution role, as only Lambda can on AWS.
    - SQS batch requests are authorized as their single-message actions, as on AWS.
    - moto authorizes DynamoDB, CloudWatch Logs and EventBridge Scheduler requests against
      ``*``, so a policy naming the table, the log group or the schedule group denied what AWS
      allows: here each request is checked against the ARNs AWS checks (table, index, every
      table of a batch or transaction with the per-item action; log group / log stream;
      schedule ``schedule/<group>/<name>`` or schedule group). The same for DynamoDB Streams
      (the stream; GetRecords: its shard iterator's stream), EventBridge PutEvents (the
      bus of each entry) and SSM parameter reads (``parameter/<name>``), which moto also
      checked against ``*``.
    - moto's CreateSchedule/UpdateSchedule never check ``iam:PassRole`` of the target's role,
      which AWS requires of the caller: here they do (against the role's ARN).
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import AccessDeniedError, JsonRESTError
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam import access_control
    from moto.iam.access_control import IAMRequest, S3IAMRequest
    from moto.s3.exceptions import S3AccessDeniedError, S3ClientError

    class MissingAuthenticationToken(AccessDeniedError):
        def __init__(self) -> None:
            super(AccessDeniedError, self).__init__(
                "MissingAuthenticationTokenException", "Missing Authentication Token"
            )

    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.events.responses import EventsHandler
    from moto.logs.responses import LogsResponse
    from moto.scheduler.responses import EventBridgeSchedulerResponse

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0

    statement_cls: Any = access_control.IAMPolicyStatement
    original_check_principal = statement_cls._check_principal

    def _check_principal(self: Any, principal: str) -> bool:
        expected = self._statement.get("Principal")
        if isinstance(expected, dict) and "AWS" not in expected and "Service" in expected:
            services = expected["Service"]
            services = [services] if isinstance(services, str) else list(services)
            users = {SERVICE_USERS[s] for s in services if s in SERVICE_USERS}
            return any(principal.endswith(f":user/{user}") for user in users)
        return bool(original_check_principal(self, principal))

    statement_cls._check_principal = _check_principal

    def request_for(action: str) -> type:
        class _Request(IAMRequest):
            def __init__(self, **kwargs: Any) -> None:
                kwargs["action"] = action
                super().__init__(**kwargs)

        return _Request

    def dynamodb_authorize(self: Any, resource: str = "*") -> None:
        body = self.body if isinstance(self.body, dict) else {}
        for action, arn in dynamodb_resources(self._get_action(), body, self.region, self.current_account):
            self._authenticate_and_authorize_action(request_for(action), arn)

    def streams_authorize(self: Any, resource: str = "*") -> None:
        action = self._get_action()
        arn = stream_resource(action, self._get_param, self.region, self.current_account)
        self._authenticate_and_authorize_action(request_for(action), arn)

    events_original = EventsHandler._authenticate_and_authorize_normal_action

    def events_authorize(self: Any, resource: str = "*") -> None:
        if self._get_action() != "PutEvents":
            return events_original(self, resource)
        entries = self._get_param("Entries") or []
        buses = sorted({bus_arn(e.get("EventBusName"), self.region, self.current_account) for e in entries})
        for arn in buses or ["*"]:
            self._authenticate_and_authorize_action(request_for("PutEvents"), arn)
        return None

    def logs_resource(self: Any) -> str:
        group = self._get_param("logGroupName")
        if not group:
            return "*"
        arn = f"arn:aws:logs:{self.region}:{self.current_account}:log-group:{group}"
        stream = self._get_param("logStreamName")
        return f"{arn}:log-stream:{stream}" if stream else f"{arn}:*"

    class PassRoleRequest(IAMRequest):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._action = "iam:PassRole"

    def scheduler_resource(self: Any) -> str:
        action = self._get_action()
        path = urllib.parse.unquote(self.uri.split("?")[0])
        if action in ("CreateSchedule", "UpdateSchedule"):
            role = (self._get_param("Target") or {}).get("RoleArn")
            if role:
                self._authenticate_and_authorize_action(PassRoleRequest, role)
        arn, resource = scheduler_arn(action, path, self._get_param, self.region, self.current_account)
        return arn if resource else "*"

    request_cls: Any = IAMRequest
    original_check = request_cls.check_action_permitted

    def check_action_permitted(self: Any, resource: str) -> None:
        self._checked_resource = resource
        self._action = _AUTHORIZED_AS.get(self._action, self._action)
        original_check(self, resource)

    def raise_access_denied(self: Any) -> None:
        message = f"User: {self._access_key.arn} is not authorized to perform: {self._action}"
        if getattr(self, "_checked_resource", "*") != "*":
            message += f" on resource: {self._checked_resource}"
        if not _speaks_json(self):
            raise AccessDeniedError(user_arn=self._access_key.arn, action=self._action)
        # A JSON-protocol service answers in JSON, as AWS does (botocore reads the code there).
        code = "AccessDenied" if self._service == "sqs" else "AccessDeniedException"
        raise JsonRESTError(code, message)

    def raise_s3_access_denied(self: Any) -> None:
        # S3 names the caller, action and resource too (same-account requests, since 2023).
        message = (
            f"User: {self._access_key.arn} is not authorized to perform: {self._action} on resource: "
            f'"{getattr(self, "_checked_resource", "*")}" because no identity-based policy allows the '
            f"{self._action} action"
        )
        raise S3ClientError("AccessDenied", message)

    original_invalid_key = request_cls._raise_invalid_access_key

    def raise_invalid_access_key(self: Any, reason: str) -> None:
        if _speaks_json(self):
            code = "InvalidClientTokenId" if self._service == "sqs" else "UnrecognizedClientException"
            raise JsonRESTError(code, "The security token included in the request is invalid.")
        original_invalid_key(self, reason)

    request_cls.check_action_permitted = check_action_permitted
    request_cls._raise_access_denied = raise_access_denied
    request_cls._raise_invalid_access_key = raise_invalid_access_key
    s3_request_cls: Any = S3IAMRequest
    s3_request_cls.check_action_permitted = check_action_permitted
    s3_request_cls._raise_access_denied = raise_s3_access_denied
    # The caller is identified by its access key id (and, for a role session, its session
    # token); the signature is not verified: moto's recomputation disagrees with botocore
    # on some REST paths (Lambda's GET /2015-03-31/functions/ is refused), and what this
    # backend emulates is authorization, not cryptography.
    base: Any = access_control.IAMRequestBase
    base.check_signature = lambda self: None

    mixin: Any = ActionAuthenticatorMixin
    original_authenticate = mixin._authenticate_and_authorize_action

    def authenticate(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if self.headers.get("Authorization"):
            return original_authenticate(self, iam_request_cls, resource)
        if str(self.headers.get("X-Amz-Target", "")).startswith("AWSCognitoIdentityProviderService."):
            return None  # the user-pool calls boto3 sends unsigned are authorized by the user's tokens
        query = {k: v[0] if isinstance(v, list) else v for k, v in (self.querystring or {}).items()}
        if issubclass(iam_request_cls, S3IAMRequest) and (query.get("X-Amz-Credential") or query.get("AWSAccessKeyId")):
            return authorize_presigned(self, iam_request_cls, resource, query)
        if issubclass(iam_request_cls, S3IAMRequest):
            raise S3AccessDeniedError()  # anonymous: the stack's buckets are private
        raise MissingAuthenticationToken()

    def authorize_presigned(self: Any, iam_request_cls: type, resource: str, query: dict[str, str]) -> None:
        """A presigned S3 URL: refused once expired; its signer's policies decide, as on AWS."""
        if query.get("X-Amz-Credential"):  # SigV4
            signed = datetime.datetime.strptime(query.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ")
            expires = signed.replace(tzinfo=datetime.UTC).timestamp() + int(query.get("X-Amz-Expires", 0))
            credential = query["X-Amz-Credential"]
        else:  # SigV2
            expires = float(query.get("Expires", 0))
            credential = f"{query['AWSAccessKeyId']}/{signed_day()}/{self.region}/s3/aws4_request"
        if time.time() > expires:
            raise S3AccessDeniedError()
        headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, Signature=-"}
        token = query.get("X-Amz-Security-Token") or query.get("x-amz-security-token")
        if token:
            headers["X-Amz-Security-Token"] = token
        request = iam_request_cls(
            account_id=self.current_account,
            method=self.method,
            path=self.raw_path,
            data=self.data,
            body=self.raw_body,
            headers=headers,
            action=self._get_action(),
        )
        request.check_action_permitted(resource)  # the signature itself is not verified here

    def signed_day() -> str:
        return datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")

    mixin._authenticate_and_authorize_action = authenticate

    handler: Any = DynamoHandler
    handler._authenticate_and_authorize_normal_action = dynamodb_authorize
    streams: Any = DynamoDBStreamsHandler
    streams._authenticate_and_authorize_normal_action = streams_authorize
    events: Any = EventsHandler
    events._authenticate_and_authorize_normal_action = events_authorize
    logs: Any = LogsResponse
    logs._determine_resource = logs_resource
    # SSM parameters (the webhooks' signing secret): checked against the parameter's ARN.
    from moto.ssm.responses import SimpleSystemManagerResponse

    def ssm_resource(self: Any) -> str:
        names = [self._get_param("Name")] if self._get_param("Name") else list(self._get_param("Names") or [])
        if len(names) != 1 or not isinstance(names[0], str):
            return "*"
        return ssm_parameter_arn(names[0], self.region, self.current_account)

    ssm: Any = SimpleSystemManagerResponse
    ssm._determine_resource = ssm_resource
    scheduler: Any = EventBridgeSchedulerResponse
    scheduler._determine_resource = scheduler_resource


def stream_resource(action: str, param: Any, region: str, account: str) -> str:
    """The ARN AWS authorizes a DynamoDB Streams request against: the stream (GetRecords: the
    stream its shard iterator belongs to; moto's iterators start with the stream ARN), or the
    table's streams for ListStreams."""
    if param("StreamArn"):
        return str(param("StreamArn"))
    if action == "GetRecords" and param("ShardIterator"):
        return str(param("ShardIterator")).split("|", 1)[0]
    if action == "ListStreams" and param("TableName"):
        return f"arn:aws:dynamodb:{region}:{account}:table/{param('TableName')}/stream/*"
    return "*"


def bus_arn(name: str | None, region: str, account: str) -> str:
    """The event bus a PutEvents entry goes to (its name or ARN; none: the default bus)."""
    if name and name.startswith("arn:"):
        return name
    return f"arn:aws:events:{region}:{account}:event-bus/{name or 'default'}"


def ssm_parameter_arn(name: str, region: str, account: str) -> str:
    """The ARN AWS authorizes a request on parameter ``name`` against (a name may be an ARN)."""
    if name.startswith("arn:"):
        return name
    return f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def scheduler_arn(action: str, path: str, param: Any, region: str, account: str) -> tuple[str, bool]:
    """(ARN, whether the action has a resource) that AWS authorizes an EventBridge Scheduler
    request against; ``path`` is the unquoted request path, ``param`` reads a parameter."""
    base = f"arn:aws:scheduler:{region}:{account}"
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if action in ("CreateSchedule", "UpdateSchedule"):
        return f"{base}:schedule/{param('GroupName') or 'default'}/{last}", True
    if action in ("GetSchedule", "DeleteSchedule"):
        return f"{base}:schedule/{param('groupName') or 'default'}/{last}", True
    if action in ("CreateScheduleGroup", "GetScheduleGroup", "DeleteScheduleGroup"):
        return f"{base}:schedule-group/{last}", True
    if "/tags/" in path:
        return path.split("/tags/", 1)[1], True
    return "*", False  # ListSchedules, ListScheduleGroups


# REST services whose errors are JSON even on a request without a JSON body (a GET).
_REST_JSON_SERVICES = {"lambda", "apigateway", "cognito-idp", "events", "scheduler", "xray"}


def _speaks_json(request: Any) -> bool:
    """Whether the service of an IAM-checked request answers errors in JSON (botocore reads them there)."""
    content_type = str(request._headers.get("Content-Type", ""))
    return "json" in content_type or request._service in _REST_JSON_SERVICES


# SQS authorizes a batch request as the single-message action (there is no
# sqs:DeleteMessageBatch permission); moto checked the request's own name.
_AUTHORIZED_AS = {
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sqs:SendMessageBatch": "sqs:SendMessage",
}
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def dynamodb_resources(operation: str, body: dict[str, Any], region: str, account: str) -> list[tuple[str, str]]:
    """(IAM action, resource ARN) pairs AWS authorizes a DynamoDB request against."""

    def table(name: str) -> str:
        return name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{name}"

    if operation in ("TransactWriteItems", "TransactGetItems"):
        pairs = []
        for item in body.get("TransactItems", []):
            for kind, spec in item.items():
                pairs.append((_TRANSACT_ACTIONS.get(kind, operation), table(spec["TableName"])))
        return pairs or [(operation, "*")]
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [(operation, table(name)) for name in body.get("RequestItems", {})] or [(operation, "*")]
    if "TableName" in body:
        arn = table(body["TableName"])
        if body.get("IndexName") and operation in ("Query", "Scan"):
            arn = f"{arn}/index/{body['IndexName']}"
        return [(operation, arn)]
    if "ResourceArn" in body:
        return [(operation, body["ResourceArn"])]
    return [(operation, "*")]


def patch_apigateway_update_method() -> None:
    """Implement API Gateway's UpdateMethod, which moto lacks (it raises NotImplementedError).

    The AWS provider changes an ``aws_api_gateway_method`` in place with it: without this,
    changing a deployed method (e.g. its ``authorization_scopes``) fails on the embedded
    backend. It applies the patch operations the provider sends for a method, as AWS does.
    """
    from moto.apigateway import responses as apigw_responses
    from moto.apigateway.exceptions import BadRequestException

    fields = {
        "/authorizationType": "authorization_type",
        "/authorizerId": "authorizer_id",
        "/requestValidatorId": "request_validator_id",
        "/operationName": "operation_name",
    }
    maps = {"/requestParameters/": "request_parameters", "/requestModels/": "request_models"}

    def apply(method: Any, op: str, path: str, value: Any) -> None:
        if op not in ("add", "remove", "replace"):
            raise BadRequestException(f"Invalid patch operation {op!r}")
        if path == "/authorizationScopes":
            scopes = [s for s in (method.authorization_scopes or []) if s != value]
            if op == "add":
                scopes.append(value)
            elif op == "replace":
                scopes = [value]
            method.authorization_scopes = scopes or None
        elif path in fields:
            setattr(method, fields[path], None if op == "remove" else value)
        elif path == "/apiKeyRequired":
            method.api_key_required = op != "remove" and str(value).lower() == "true"
        elif prefix := next((p for p in maps if path.startswith(p)), None):
            key = path[len(prefix) :].replace("~1", "/").replace("~0", "~")  # a JSON pointer token
            entries = dict(getattr(method, maps[prefix]) or {})
            if op == "remove":
                entries.pop(key, None)
            else:
                entries[key] = str(value).lower() == "true" if prefix == "/requestParameters/" else value
            setattr(method, maps[prefix], entries or None)
        else:
            raise BadRequestException(f"Invalid patch path {path!r}")

    def update_method(self: Any) -> str:
        parts = self.path.split("/")  # /restapis/<api>/resources/<resource>/methods/<verb>
        method = self.backend.get_method(parts[2], parts[4], parts[6])
        for operation in self._get_param("patchOperations") or []:
            apply(method, operation.get("op", ""), operation.get("path", ""), operation.get("value"))
        return json.dumps(method.to_json())

    apigw_responses.APIGatewayResponse.update_method = update_method  # type: ignore[attr-defined]


def is_json_protocol_preflight(method: str, headers: dict[str, str]) -> bool:
    """A browser's CORS preflight for a call of an AWS JSON-protocol API (``X-Amz-Target``),
    such as the web console's unsigned Cognito ``InitiateAuth``; ``headers`` keys lower-case."""
    requested = {h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",")}
    return method == "OPTIONS" and bool(headers.get("access-control-request-method")) and "x-amz-target" in requested


def preflight_headers(headers: dict[str, str]) -> list[tuple[str, str]]:
    """The answer Cognito's endpoint gives a preflight: any origin, POST, the headers asked for."""
    return [
        ("Access-Control-Allow-Origin", headers.get("origin") or "*"),
        ("Access-Control-Allow-Methods", "POST"),
        ("Access-Control-Allow-Headers", headers.get("access-control-request-headers", "")),
        ("Access-Control-Max-Age", "600"),
        ("Vary", "Origin"),
        ("Content-Length", "0"),
    ]


def patch_cors_preflight() -> None:
    """Answer a browser's CORS preflight for the Cognito user-pool API with 200, as AWS does.

    A browser calls ``cognito-idp`` (``InitiateAuth``, ``GlobalSignOut``) with ``fetch()`` and
    the header ``X-Amz-Target``, so it first sends an ``OPTIONS`` preflight that carries no
    target and no signature: moto's dispatcher takes it for S3, whose anonymous access is
    refused (403), and a browser gives up on a preflight that is not a 2xx. moto's own CORS
    layer (flask-cors) already adds ``Access-Control-Allow-Origin`` to the real call.
    """
    from moto.moto_server import werkzeug_app

    dispatcher: Any = werkzeug_app.DomainDispatcherApplication
    original_call = dispatcher.__call__

    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if is_json_protocol_preflight(environ.get("REQUEST_METHOD", ""), headers):
            start_response("200 OK", preflight_headers(headers))
            return [b""]
        return original_call(self, environ, start_response)

    dispatcher.__call__ = __call__


PATCHES = (
    patch_server_overhead,
    patch_iam_enforcement,
    patch_cors_preflight,
    patch_lambda_esm,
    patch_dynamodb_stream_esm,
    patch_dynamodb_stream_iterators,
    patch_events_sns_targets,
    patch_dynamodb_atomic_requests,
    patch_dynamodb_item_level_transactions,
    patch_sqs_queue_scans,
    patch_sqs_delayed_wakeup,
    patch_sqs_redrive_policy,
    patch_sqs_redrive_allow_policy,
    patch_lambda_logging_config,
    patch_s3_policy_conditions,
    patch_request_counts,
    patch_dynamodb_partitioned_query,
    patch_apigateway_update_method,
    patch_scheduler_atomic_requests,
)


def apply_patches() -> None:
    for patch in PATCHES:
        patch()


def serve(port: int) -> None:
    """Run moto's server in this process until SIGTERM/SIGINT."""
    apply_patches()
    bootstrap_identities()
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"embedded AWS backend (moto) listening on http://{LOOPBACK}:{port} (loopback only)", flush=True)
    stop.wait()
    server.stop()


# --------------------------------------------------------------------------------------
# Controlling the server from the outside
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def is_up(endpoint: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=timeout):  # noqa: S310
            return True
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class EmbeddedBackend:
    """A moto server child process on a loopback port."""

    port: int = 0
    log_path: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment that points boto3 (and terraform's variables) at this backend."""
        return {
            **TEST_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def start(self, timeout: float = 30.0) -> EmbeddedBackend:
        if not self.port:
            self.port = free_port()
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, **TEST_CREDENTIALS}
        env.pop("AWS_ENDPOINT_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tooling.embedded_backend", "--port", str(self.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the embedded AWS backend exited at start (code {self.process.returncode}); "
                    f"is port {self.port} free?"
                )
            if is_up(self.endpoint):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the embedded AWS backend did not answer on {self.endpoint} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    args = parser.parse_args(argv)
    serve(args.port)


if __name__ == "__main__":
    main()
