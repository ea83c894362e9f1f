"""A small stack built with boto3 directly on moto, and a local runtime running it.

One moto server and one runtime for the whole module set (starting them is the slow part);
every resource has an ``lr-`` name so nothing clashes with other tests on other backends.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tooling.aws_access import LOCAL_CREDENTIALS
from tooling.embedded_backend import REGION, EmbeddedBackend
from tooling.local_runtime import LocalRuntime
from tooling.packaging import code_sha256, write_deterministic_zip

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
ROLE_PERMISSIONS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::lr-ledger/*"},
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/lr-*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                "Resource": "arn:aws:sqs:us-east-1:123456789012:lr-*",
            },
        ],
    }
)
SCOPE_READ = "https://jobs.example.com/read"  # custom scopes of a resource server
SCOPE_WRITE = "https://jobs.example.com/write"
PASSWORD = "Local-runtime-1!"  # moto's default policy wants upper, lower, digit and symbol
VISIBILITY_TIMEOUT = 2

# function -> (handler, timeout, memory, extra env)
FUNCTIONS: dict[str, tuple[str, int, int, dict[str, str]]] = {
    "lr-echo": ("handlers.echo", 3, 256, {"GREETING": "hello"}),
    "lr-warm": ("handlers.echo", 3, 128, {}),
    "lr-fail": ("handlers.fail", 3, 128, {}),
    "lr-sleep": ("handlers.sleep", 1, 128, {}),
    # behind /slow: its run (5 s) outlasts the route's 300 ms integration timeout many times over
    "lr-sleep-long": ("handlers.sleep", 10, 128, {}),
    "lr-crash": ("handlers.crash", 3, 128, {}),
    "lr-bad-response": ("handlers.bad_response", 3, 128, {}),
    "lr-bad-import": ("nomodule.handler", 3, 128, {}),
    "lr-worker": ("handlers.worker", 5, 128, {"LEDGER_BUCKET": "lr-ledger"}),
}


def clients(endpoint: str) -> dict[str, Any]:
    kw = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        **LOCAL_CREDENTIALS,
    }
    return {
        name: boto3.client(name, **kw)  # type: ignore[call-overload]
        for name in ("lambda", "apigateway", "cognito-idp", "sqs", "s3", "iam", "logs", "scheduler")
    }


@dataclass
class Stack:
    endpoint: str
    aws: dict[str, Any]
    zip_dir: Path
    pool_id: str
    client_id: str
    username: str
    id_token: str
    access_token: str
    api_id: str
    stage: str
    queues: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (url, arn)
    console: list[str] = field(default_factory=list)

    def ledger(self, queue: str) -> list[dict[str, Any]]:
        """The worker's record of every invocation for ``queue``, oldest first."""
        s3 = self.aws["s3"]
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lr-ledger", Prefix=f"{queue}/").get("Contents", [])]
        entries = [json.loads(s3.get_object(Bucket="lr-ledger", Key=k)["Body"].read()) for k in keys]
        return sorted(entries, key=lambda e: e["start"])

    def queue_depth(self, queue: str) -> int:
        attrs = self.aws["sqs"].get_queue_attributes(
            QueueUrl=self.queues[queue][0],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _zip(zip_dir: Path, name: str, files: dict[str, str], scratch: Path) -> Path:
    src = scratch / name
    src.mkdir(parents=True, exist_ok=True)
    entries = {}
    for rel, text in files.items():
        (src / rel).write_text(text)
        entries[rel] = src / rel
    out = zip_dir / f"{name}.zip"
    write_deterministic_zip(entries, out)
    return out


def api_module_gateway_response_headers() -> dict[str, str]:
    """The header mappings terraform/modules/api gives every gateway response (its
    ``gateway_response_headers`` local), so the front is tested with what the stack deploys."""
    text = (ROOT / "terraform" / "modules" / "api" / "main.tf").read_text()
    block = re.search(r"^  gateway_response_headers = \{\n(.*?)^  \}", text, re.S | re.M)
    assert block, "terraform/modules/api/main.tf has no gateway_response_headers local"
    headers = dict(re.findall(r'^\s*"(gatewayresponse\.header\.[A-Za-z-]+)"\s*=\s*"(.*)"\s*$', block.group(1), re.M))
    assert headers, "gateway_response_headers maps no header"
    return headers


def _build_api(aws: dict[str, Any], pool_arn: str) -> tuple[str, str]:
    apigw = aws["apigateway"]
    api_id = apigw.create_rest_api(name="lr-api")["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    auth = apigw.create_authorizer(
        restApiId=api_id,
        name="lr-cognito",
        type="COGNITO_USER_POOLS",
        providerARNs=[pool_arn],
        identitySource="method.request.header.Authorization",
    )["id"]

    def resource(parent: str, part: str) -> str:
        return str(apigw.create_resource(restApiId=api_id, parentId=parent, pathPart=part)["id"])

    def lambda_method(
        res: str,
        verb: str,
        function: str,
        authorized: bool = True,
        timeout_ms: int = 29_000,
        scopes: tuple[str, ...] = (),
    ) -> None:
        apigw.put_method(
            restApiId=api_id,
            resourceId=res,
            httpMethod=verb,
            authorizationType="COGNITO_USER_POOLS" if authorized else "NONE",
            **({"authorizerId": auth} if authorized else {}),
            **({"authorizationScopes": list(scopes)} if scopes else {}),
        )
        apigw.put_integration(
            restApiId=api_id,
            resourceId=res,
            httpMethod=verb,
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
            f"arn:aws:lambda:{REGION}:123456789012:function:{function}/invocations",
            timeoutInMillis=timeout_ms,
        )

    def cors(res: str) -> None:
        apigw.put_method(restApiId=api_id, resourceId=res, httpMethod="OPTIONS", authorizationType="NONE")
        apigw.put_integration(
            restApiId=api_id,
            resourceId=res,
            httpMethod="OPTIONS",
            type="MOCK",
            requestTemplates={"application/json": '{"statusCode": 200}'},
        )
        headers = {
            "method.response.header.Access-Control-Allow-Origin": "'*'",
            "method.response.header.Access-Control-Allow-Methods": "'GET,POST,OPTIONS'",
            "method.response.header.Access-Control-Allow-Headers": "'Authorization,Content-Type'",
        }
        apigw.put_method_response(
            restApiId=api_id,
            resourceId=res,
            httpMethod="OPTIONS",
            statusCode="200",
            responseParameters={k: True for k in headers},
        )
        apigw.put_integration_response(
            restApiId=api_id,
            resourceId=res,
            httpMethod="OPTIONS",
            statusCode="200",
            responseParameters=headers,
            responseTemplates={"application/json": ""},
        )

    job = resource(root, "job")
    lambda_method(job, "POST", "lr-echo")
    cors(job)
    job_id = resource(job, "{id}")
    lambda_method(job_id, "GET", "lr-echo")
    jobs = resource(root, "jobs")
    lambda_method(jobs, "GET", "lr-echo")
    # methods with authorization scopes (as the api module deploys them with
    # api_authorization_scopes set): access tokens holding one of the scopes, no ID tokens
    lambda_method(resource(root, "scoped"), "GET", "lr-echo", scopes=(SCOPE_READ, "aws.cognito.signin.user.admin"))
    lambda_method(resource(root, "write-scoped"), "GET", "lr-echo", scopes=(SCOPE_WRITE,))
    lambda_method(resource(root, "boom"), "GET", "lr-fail", authorized=False)
    lambda_method(resource(root, "bad"), "GET", "lr-bad-response", authorized=False)
    lambda_method(resource(root, "public"), "ANY", "lr-echo", authorized=False)
    lambda_method(resource(root, "slow"), "GET", "lr-sleep-long", authorized=False, timeout_ms=300)
    validator = apigw.create_request_validator(
        restApiId=api_id, name="lr-params", validateRequestParameters=True, validateRequestBody=False
    )["id"]
    find = resource(root, "find")
    apigw.put_method(
        restApiId=api_id,
        resourceId=find,
        httpMethod="GET",
        authorizationType="NONE",
        requestValidatorId=validator,
        requestParameters={"method.request.querystring.job_id": True, "method.request.querystring.limit": False},
    )
    apigw.put_integration(
        restApiId=api_id,
        resourceId=find,
        httpMethod="GET",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
        f"arn:aws:lambda:{REGION}:123456789012:function:lr-echo/invocations",
    )
    apigw.put_gateway_response(
        restApiId=api_id,
        responseType="BAD_REQUEST_PARAMETERS",
        responseTemplates={
            "application/json": '{"error":"missing_job_id","message":"$context.error.validationErrorString"}'
        },
    )
    apigw.put_gateway_response(
        restApiId=api_id,
        responseType="MISSING_AUTHENTICATION_TOKEN",
        statusCode="404",
        responseTemplates={"application/json": '{"error":"route_not_found","message":"no such route"}'},
    )
    apigw.put_gateway_response(
        restApiId=api_id,
        responseType="UNAUTHORIZED",
        responseParameters=api_module_gateway_response_headers(),
        responseTemplates={"application/json": '{"message":$context.error.messageString}'},
    )
    apigw.create_deployment(restApiId=api_id, stageName="v1")
    return api_id, "v1"


def _build_queues(aws: dict[str, Any]) -> dict[str, tuple[str, str]]:
    sqs = aws["sqs"]
    lam = aws["lambda"]
    queues: dict[str, tuple[str, str]] = {}

    def create(name: str, **attributes: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT), **attributes})[
            "QueueUrl"
        ]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queues[name] = (url, arn)
        return url, arn

    _, dlq_arn = create("lr-dlq")
    create("lr-partial")
    create("lr-crash")
    create("lr-poison", RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    create("lr-concurrency")
    mappings = {
        "lr-partial": {"BatchSize": 10, "MaximumBatchingWindowInSeconds": 1},
        "lr-crash": {"BatchSize": 10, "MaximumBatchingWindowInSeconds": 1},
        "lr-poison": {"BatchSize": 1},
        "lr-concurrency": {"BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": 2}},
    }
    for name, settings in mappings.items():
        lam.create_event_source_mapping(
            EventSourceArn=queues[name][1],
            FunctionName="lr-worker",
            FunctionResponseTypes=["ReportBatchItemFailures"],
            **settings,
        )
    return queues


@pytest.fixture(scope="package")
def backend() -> Iterator[EmbeddedBackend]:
    with EmbeddedBackend() as running:
        yield running


@pytest.fixture(scope="package")
def stack(backend: EmbeddedBackend, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    aws = clients(backend.endpoint)
    zip_dir = tmp_path_factory.mktemp("zips")
    scratch = tmp_path_factory.mktemp("src")
    handlers = (HERE / "handlers.py").read_text()
    main_zip = _zip(zip_dir, "handlers", {"handlers.py": handlers}, scratch)
    # A zip that is not in zip_dir: deployed code the runtime cannot find.
    stray = _zip(scratch, "stray", {"handlers.py": handlers + "\n# another build\n"}, scratch)

    role = aws["iam"].create_role(RoleName="lr-role", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
    # What the test functions need, and no more: the local runtime runs them as this role.
    aws["iam"].put_role_policy(RoleName="lr-role", PolicyName="lr-functions", PolicyDocument=ROLE_PERMISSIONS)
    aws["s3"].create_bucket(Bucket="lr-ledger")
    for name, (handler, timeout, memory, env) in FUNCTIONS.items():
        aws["lambda"].create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler=handler,
            Code={"ZipFile": main_zip.read_bytes()},
            Timeout=timeout,
            MemorySize=memory,
            Environment={"Variables": env},
        )
    aws["lambda"].create_function(
        FunctionName="lr-stray",
        Runtime="python3.12",
        Role=role,
        Handler="handlers.echo",
        Code={"ZipFile": stray.read_bytes()},
    )
    assert aws["lambda"].get_function(FunctionName="lr-echo")["Configuration"]["CodeSha256"] == code_sha256(main_zip)

    cognito = aws["cognito-idp"]
    pool = cognito.create_user_pool(PoolName="lr-users")["UserPool"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="lr-client", ExplicitAuthFlows=["ADMIN_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(
        UserPoolId=pool["Id"],
        Username="alice",
        UserAttributes=[{"Name": "email", "Value": "alice@example.com"}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(UserPoolId=pool["Id"], Username="alice", Password=PASSWORD, Permanent=True)
    auth = cognito.admin_initiate_auth(
        UserPoolId=pool["Id"],
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]

    api_id, stage = _build_api(aws, pool["Arn"])
    queues = _build_queues(aws)
    return Stack(
        endpoint=backend.endpoint,
        aws=aws,
        zip_dir=zip_dir,
        pool_id=pool["Id"],
        client_id=client_id,
        username="alice",
        id_token=auth["IdToken"],
        access_token=auth["AccessToken"],
        api_id=api_id,
        stage=stage,
        queues=queues,
    )


@pytest.fixture(scope="package")
def runtime(stack: Stack) -> Iterator[LocalRuntime]:
    lock = threading.Lock()

    def console(line: str) -> None:
        with lock:  # kept for assertions (printing from runtime threads would bypass pytest's capture)
            stack.console.append(line)

    with LocalRuntime(
        stack.endpoint,
        zip_dir=stack.zip_dir,
        rest_api="lr-api",
        refresh_interval=None,
        console=console,
        poll_wait_seconds=1,
    ) as running:
        yield running
