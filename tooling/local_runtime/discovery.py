"""Read what was deployed from the AWS APIs of the backend, and find the deployed code.

Nothing here is a hand-kept copy of the stack: functions come from the Lambda API, the REST
API (resources, methods, integrations, authorizers, stages, gateway responses) from the API
Gateway API, event source mappings from the Lambda API. The code is the one exception:
moto's ``Code.Location`` points at real AWS, so the zip is taken from a local directory and
matched to the function by its ``CodeSha256`` (same bytes, same hash).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tooling.local_runtime.errors import CodeNotFoundError, LocalRuntimeError

DEFAULT_LOG_GROUP_PREFIX = "/aws/lambda/"
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000
_LAMBDA_URI = re.compile(r"^arn:[^:]+:apigateway:[^:]+:lambda:path/[^/]+/functions/(?P<arn>.+)/invocations$")
_HEADER_SOURCE = re.compile(r"^method\.request\.header\.(?P<name>[A-Za-z0-9_-]+)$")
_POOL_ARN = re.compile(r"^arn:[^:]+:cognito-idp:(?P<region>[^:]+):[^:]*:userpool/(?P<id>.+)$")


# --------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------


# Every client the runtime makes on the backend (its own and the ones acting as a role).
CLIENT_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},
    max_pool_connections=50,
    read_timeout=30,
    connect_timeout=5,
)


@dataclass
class Backend:
    """boto3 clients for the embedded backend (thread-safe once created)."""

    endpoint: str
    region: str
    credentials: dict[str, str]
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = boto3.session.Session().client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.endpoint,
                    region_name=self.region,
                    aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
                    config=CLIENT_CONFIG,
                )
            return self._clients[service]


# --------------------------------------------------------------------------------------
# What was deployed
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    arn: str
    runtime: str
    handler: str
    timeout: int
    memory: int
    environment: tuple[tuple[str, str], ...]
    code_sha256: str
    reserved_concurrency: int | None
    log_group: str
    architectures: tuple[str, ...] = ()
    role: str = ""  # the execution role's ARN: the function runs with its credentials

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)


@dataclass(frozen=True)
class IntegrationResponse:
    status_code: str
    selection_pattern: str | None
    headers: tuple[tuple[str, str], ...]  # method.response.header.X -> mapping expression
    templates: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MethodConfig:
    http_method: str
    authorization_type: str
    authorizer_id: str | None
    authorization_scopes: tuple[str, ...]
    integration_type: str | None
    integration_uri: str | None
    function_name: str | None  # for Lambda (AWS_PROXY) integrations
    timeout_ms: int
    request_templates: tuple[tuple[str, str], ...]
    integration_responses: tuple[IntegrationResponse, ...]
    # method.request.{querystring,header,path}.NAME declared required, when a request
    # validator with validateRequestParameters is attached (API Gateway checks them then)
    required_parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResourceConfig:
    id: str
    path: str
    methods: tuple[tuple[str, MethodConfig], ...]

    def method(self, http_method: str) -> MethodConfig | None:
        found = dict(self.methods)
        return found.get(http_method) or found.get("ANY")


@dataclass(frozen=True)
class UserPool:
    id: str
    region: str

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.id}"


@dataclass(frozen=True)
class AuthorizerConfig:
    id: str
    name: str
    type: str
    identity_header: str | None
    pools: tuple[UserPool, ...]


@dataclass(frozen=True)
class GatewayResponseConfig:
    response_type: str
    status_code: str | None
    headers: tuple[tuple[str, str], ...]  # gatewayresponse.header.X -> mapping expression
    templates: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RestApiConfig:
    id: str
    name: str
    resources: tuple[ResourceConfig, ...]
    authorizers: tuple[tuple[str, AuthorizerConfig], ...]
    stages: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # stage name -> stage variables
    gateway_responses: tuple[tuple[str, GatewayResponseConfig], ...]
    binary_media_types: tuple[str, ...]

    @property
    def stage_names(self) -> list[str]:
        return [name for name, _ in self.stages]

    def authorizer(self, authorizer_id: str | None) -> AuthorizerConfig | None:
        return dict(self.authorizers).get(authorizer_id or "")

    def function_names(self) -> set[str]:
        return {m.function_name for r in self.resources for _, m in r.methods if m.function_name}


@dataclass(frozen=True)
class EventSourceMappingConfig:
    uuid: str
    function_name: str
    queue_arn: str
    queue_url: str
    batch_size: int
    batching_window: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None
    enabled: bool


@dataclass(frozen=True)
class StreamMappingConfig:
    """A DynamoDB stream event source mapping (tooling/local_runtime/streams.py runs it)."""

    uuid: str
    function_name: str
    stream_arn: str
    batch_size: int
    batching_window: int
    starting_position: str  # TRIM_HORIZON | LATEST
    report_batch_item_failures: bool
    bisect_on_error: bool
    maximum_retry_attempts: int  # -1: until the records expire
    maximum_record_age: int  # seconds; -1: until the records expire
    on_failure_arn: str | None  # an SQS queue (or SNS topic) ARN
    enabled: bool


@dataclass(frozen=True)
class Deployment:
    functions: dict[str, FunctionConfig]
    api: RestApiConfig | None
    mappings: dict[str, EventSourceMappingConfig]
    stream_mappings: dict[str, StreamMappingConfig] = field(default_factory=dict)


def _pairs(mapping: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in (mapping or {}).items()))


def function_name_from_arn(arn: str) -> str:
    """``arn:aws:lambda:r:acct:function:name[:qualifier]`` (or a bare name) -> ``name``."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[5] == "function":
        return parts[6]
    return arn


def read_functions(backend: Backend) -> dict[str, FunctionConfig]:
    lam = backend.client("lambda")
    functions: dict[str, FunctionConfig] = {}
    for page in lam.get_paginator("list_functions").paginate():
        for summary in page.get("Functions", []):
            name = summary["FunctionName"]
            try:
                got = lam.get_function(FunctionName=name)
                concurrency = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
            except ClientError as exc:  # deleted between list and get
                if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                    continue
                raise
            cfg = got["Configuration"]
            log_group = (cfg.get("LoggingConfig") or {}).get("LogGroup") or f"{DEFAULT_LOG_GROUP_PREFIX}{name}"
            functions[name] = FunctionConfig(
                name=name,
                arn=cfg["FunctionArn"],
                runtime=cfg.get("Runtime", ""),
                handler=cfg.get("Handler", ""),
                timeout=int(cfg.get("Timeout") or 3),
                memory=int(cfg.get("MemorySize") or 128),
                environment=_pairs((cfg.get("Environment") or {}).get("Variables")),
                code_sha256=cfg.get("CodeSha256", ""),
                # none (or a negative "unreserved" marker) -> the runtime's default
                reserved_concurrency=None if concurrency is None or int(concurrency) < 0 else int(concurrency),
                log_group=log_group,
                architectures=tuple(cfg.get("Architectures") or ()),
                role=cfg.get("Role", ""),
            )
    return functions


def read_mappings(backend: Backend, queue_urls: dict[str, str] | None = None) -> dict[str, EventSourceMappingConfig]:
    """SQS event source mappings; ``queue_urls`` caches queue ARN -> URL between calls."""
    lam = backend.client("lambda")
    sqs = backend.client("sqs")
    cache = queue_urls if queue_urls is not None else {}
    mappings: dict[str, EventSourceMappingConfig] = {}
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        for esm in page.get("EventSourceMappings", []):
            arn = esm.get("EventSourceArn", "")
            if ":sqs:" not in arn:
                continue  # SQS mappings here; DynamoDB stream ones: read_stream_mappings
            if arn not in cache:
                _, _, _, _, account, queue_name = arn.split(":", 5)
                cache[arn] = sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            scaling = esm.get("ScalingConfig") or {}
            mappings[esm["UUID"]] = EventSourceMappingConfig(
                uuid=esm["UUID"],
                function_name=function_name_from_arn(esm["FunctionArn"]),
                queue_arn=arn,
                queue_url=cache[arn],
                batch_size=int(esm.get("BatchSize") or 10),
                batching_window=int(esm.get("MaximumBatchingWindowInSeconds") or 0),
                report_batch_item_failures="ReportBatchItemFailures" in (esm.get("FunctionResponseTypes") or []),
                maximum_concurrency=int(scaling["MaximumConcurrency"]) if scaling.get("MaximumConcurrency") else None,
                enabled=esm.get("State", "Enabled") in ("Enabled", "Enabling", "Updating", "Creating"),
            )
    return mappings


def read_stream_mappings(backend: Backend) -> dict[str, StreamMappingConfig]:
    """DynamoDB stream event source mappings, as the Lambda API describes them."""
    lam = backend.client("lambda")
    found: dict[str, StreamMappingConfig] = {}
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        for esm in page.get("EventSourceMappings", []):
            arn = esm.get("EventSourceArn", "")
            if ":dynamodb:" not in arn or "/stream/" not in arn:
                continue
            destination = ((esm.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            retries = esm.get("MaximumRetryAttempts")
            age = esm.get("MaximumRecordAgeInSeconds")
            found[esm["UUID"]] = StreamMappingConfig(
                uuid=esm["UUID"],
                function_name=function_name_from_arn(esm["FunctionArn"]),
                stream_arn=arn,
                batch_size=int(esm.get("BatchSize") or 100),
                batching_window=int(esm.get("MaximumBatchingWindowInSeconds") or 0),
                starting_position=str(esm.get("StartingPosition") or "TRIM_HORIZON"),
                report_batch_item_failures="ReportBatchItemFailures" in (esm.get("FunctionResponseTypes") or []),
                bisect_on_error=bool(esm.get("BisectBatchOnFunctionError")),
                maximum_retry_attempts=-1 if retries is None else int(retries),
                maximum_record_age=-1 if age is None else int(age),
                on_failure_arn=destination or None,
                enabled=esm.get("State", "Enabled") in ("Enabled", "Enabling", "Updating", "Creating"),
            )
    return found


def find_rest_api(backend: Backend, rest_api: str | None) -> tuple[str, str] | None:
    """Resolve a REST API by id or name; ``None`` picks the only one (or none if there is none)."""
    apigw = backend.client("apigateway")
    apis = [
        (a["id"], a.get("name", ""))
        for page in apigw.get_paginator("get_rest_apis").paginate()
        for a in page.get("items", [])
    ]
    if rest_api is None:
        if len(apis) > 1:
            listing = ", ".join(f"{name} ({api_id})" for api_id, name in apis)
            raise LocalRuntimeError(f"several REST APIs are deployed ({listing}): say which one to front")
        return apis[0] if apis else None
    matches = [a for a in apis if rest_api in a]
    if len(matches) != 1:
        listing = ", ".join(f"{name} ({api_id})" for api_id, name in apis) or "none"
        how = "no" if not matches else "more than one"
        raise LocalRuntimeError(f"{how} REST API has the id or name {rest_api!r} (deployed: {listing}); deploy first")
    return matches[0]


def _method_config(http_method: str, method: dict[str, Any], validators: dict[str, bool]) -> MethodConfig:
    integration = method.get("methodIntegration") or {}
    uri = integration.get("uri")
    function_name = None
    if uri and integration.get("type") in ("AWS_PROXY", "AWS"):
        match = _LAMBDA_URI.match(uri)
        if match:
            function_name = function_name_from_arn(match.group("arn"))
    responses = tuple(
        IntegrationResponse(
            status_code=str(resp.get("statusCode", "200")),
            selection_pattern=resp.get("selectionPattern"),
            headers=_pairs(resp.get("responseParameters")),
            templates=_pairs(resp.get("responseTemplates")),
        )
        for _, resp in sorted((integration.get("integrationResponses") or {}).items())
    )
    required: tuple[str, ...] = ()
    if validators.get(method.get("requestValidatorId") or ""):
        required = tuple(sorted(k for k, v in (method.get("requestParameters") or {}).items() if v))
    return MethodConfig(
        http_method=http_method,
        authorization_type=method.get("authorizationType") or "NONE",
        authorizer_id=method.get("authorizerId"),
        authorization_scopes=tuple(method.get("authorizationScopes") or ()),
        integration_type=integration.get("type"),
        integration_uri=uri,
        function_name=function_name,
        timeout_ms=int(integration.get("timeoutInMillis") or DEFAULT_INTEGRATION_TIMEOUT_MS),
        request_templates=_pairs(integration.get("requestTemplates")),
        integration_responses=responses,
        required_parameters=required,
    )


def read_rest_api(backend: Backend, api_id: str, api_name: str) -> RestApiConfig:
    apigw = backend.client("apigateway")
    rest = apigw.get_rest_api(restApiId=api_id)
    validators = {
        v["id"]: bool(v.get("validateRequestParameters"))
        for v in apigw.get_request_validators(restApiId=api_id, limit=500).get("items", [])
    }
    resources: list[ResourceConfig] = []
    for page in apigw.get_paginator("get_resources").paginate(restApiId=api_id, embed=["methods"]):
        for res in page.get("items", []):
            methods = res.get("resourceMethods") or {}
            if methods and any("methodIntegration" not in m for m in methods.values()):
                # embed not honoured: read each method
                methods = {
                    verb: apigw.get_method(restApiId=api_id, resourceId=res["id"], httpMethod=verb) for verb in methods
                }
            resources.append(
                ResourceConfig(
                    id=res["id"],
                    path=res["path"],
                    methods=tuple(sorted((verb, _method_config(verb, m, validators)) for verb, m in methods.items())),
                )
            )
    authorizers: list[tuple[str, AuthorizerConfig]] = []
    for page in apigw.get_paginator("get_authorizers").paginate(restApiId=api_id):
        for auth in page.get("items", []):
            header = _HEADER_SOURCE.match(auth.get("identitySource") or "")
            pools = []
            for arn in auth.get("providerARNs") or []:
                match = _POOL_ARN.match(arn)
                if match:
                    pools.append(UserPool(id=match.group("id"), region=match.group("region")))
            authorizers.append(
                (
                    auth["id"],
                    AuthorizerConfig(
                        id=auth["id"],
                        name=auth.get("name", ""),
                        type=auth.get("type", ""),
                        identity_header=header.group("name") if header else None,
                        pools=tuple(pools),
                    ),
                )
            )
    stages = tuple(
        sorted(
            (stage["stageName"], _pairs(stage.get("variables")))
            for stage in apigw.get_stages(restApiId=api_id).get("item", [])
        )
    )
    gateway_responses = []
    for page in apigw.get_paginator("get_gateway_responses").paginate(restApiId=api_id):
        for resp in page.get("items", []):
            gateway_responses.append(
                (
                    resp["responseType"],
                    GatewayResponseConfig(
                        response_type=resp["responseType"],
                        status_code=resp.get("statusCode"),
                        headers=_pairs(resp.get("responseParameters")),
                        templates=_pairs(resp.get("responseTemplates")),
                    ),
                )
            )
    return RestApiConfig(
        id=api_id,
        name=api_name,
        resources=tuple(sorted(resources, key=lambda r: r.path)),
        authorizers=tuple(sorted(authorizers)),
        stages=stages,
        gateway_responses=tuple(sorted(gateway_responses, key=lambda g: g[0])),
        binary_media_types=tuple(rest.get("binaryMediaTypes") or ()),
    )


def fingerprint(backend: Backend, rest_api: str | None) -> str:
    """A digest of what a redeploy changes, read in a few list calls instead of ``discover``'s
    forty or so: the functions (code hash, configuration, revision), their reserved concurrency,
    the event source mappings, and the REST API's deployments and stages.

    API Gateway serves a change to a route, an authorizer or a gateway response only after a new
    deployment of the API, which the deployments list shows; so an unchanged digest means an
    unchanged deployment, and the runtime's periodic refresh skips the full read.
    """
    lam = backend.client("lambda")
    parts: list[Any] = []
    for page in lam.get_paginator("list_functions").paginate():
        for function in page.get("Functions", []):
            concurrency = lam.get_function_concurrency(FunctionName=function["FunctionName"])
            parts.append([function, concurrency.get("ReservedConcurrentExecutions")])
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        parts.append(page.get("EventSourceMappings", []))
    found = find_rest_api(backend, rest_api)
    if found is not None:
        apigw = backend.client("apigateway")
        api_id = found[0]
        parts.append(found)
        deployments = apigw.get_paginator("get_deployments").paginate(restApiId=api_id)
        parts.append([d for page in deployments for d in page.get("items", [])])
        parts.append(apigw.get_stages(restApiId=api_id).get("item", []))
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def discover(backend: Backend, rest_api: str | None, queue_urls: dict[str, str] | None = None) -> Deployment:
    found = find_rest_api(backend, rest_api)
    api = read_rest_api(backend, *found) if found else None
    return Deployment(
        functions=read_functions(backend),
        api=api,
        mappings=read_mappings(backend, queue_urls),
        stream_mappings=read_stream_mappings(backend),
    )


# --------------------------------------------------------------------------------------
# The deployed code
# --------------------------------------------------------------------------------------


def code_sha256(path: Path) -> str:
    """The base64 sha256 Lambda reports as ``CodeSha256`` (same as tooling.packaging.code_sha256)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


class CodeStore:
    """Zips in ``zip_dir`` indexed by ``CodeSha256``; each unpacked once into ``cache_dir/<hash>``."""

    def __init__(self, zip_dir: Path, cache_dir: Path) -> None:
        self.zip_dir = Path(zip_dir).resolve()
        self.cache_dir = Path(cache_dir).resolve()
        self._lock = threading.Lock()
        self._hashes: dict[Path, tuple[float, int, str]] = {}

    def _index(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        if not self.zip_dir.is_dir():
            return found
        for path in sorted(self.zip_dir.glob("*.zip")):
            stat = path.stat()
            known = self._hashes.get(path)
            if known is None or known[:2] != (stat.st_mtime, stat.st_size):
                known = (stat.st_mtime, stat.st_size, code_sha256(path))
                self._hashes[path] = known
            found.setdefault(known[2], path)
        return found

    def code_dir(self, function: FunctionConfig) -> Path:
        """The unpacked code of ``function``, or CodeNotFoundError saying what to run."""
        with self._lock:
            index = self._index()
            path = index.get(function.code_sha256)
            if path is None:
                have = ", ".join(f"{p.name} (CodeSha256 {h})" for h, p in sorted(index.items(), key=lambda i: i[1]))
                raise CodeNotFoundError(
                    f"function {function.name} is deployed with CodeSha256 {function.code_sha256}, but no zip in "
                    f"{self.zip_dir} has that hash (found: {have or 'no zips'}). The deployed code and the local "
                    "zips differ: run `invoke package` then `invoke deploy` (or point the runtime at the "
                    "directory holding the deployed zips)."
                )
            target = self.cache_dir / base64.b64decode(function.code_sha256).hex()
            if not (target / ".unpacked").exists():
                tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                with zipfile.ZipFile(path) as zf:
                    zf.extractall(tmp)  # zipfile strips absolute paths and '..'
                (tmp / ".unpacked").write_text(f"{path.name}\n")
                try:
                    tmp.rename(target)
                except OSError:  # another runtime unpacked the same hash first
                    shutil.rmtree(tmp, ignore_errors=True)
                    if not (target / ".unpacked").exists():
                        raise
            return target
