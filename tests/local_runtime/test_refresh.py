"""A redeploy while the runtime runs: changes are followed, an unchanged one changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from tests.local_runtime.conftest import HERE, REGION, Stack, _zip
from tooling.local_runtime import LocalRuntime


def test_redeploys_are_followed(stack: Stack, runtime: LocalRuntime, tmp_path_factory) -> None:
    lam = stack.aws["lambda"]
    assert runtime.refresh() is False  # nothing changed since start
    pools_before = {name: runtime.pool(name) for name in ("lr-echo", "lr-worker")}
    role = stack.aws["iam"].get_role(RoleName="lr-role")["Role"]["Arn"]
    code = (stack.zip_dir / "handlers.zip").read_bytes()
    lam.create_function(
        FunctionName="lr-redeploy",
        Runtime="python3.12",
        Role=role,
        Handler="handlers.echo",
        Code={"ZipFile": code},
        Environment={"Variables": {"GREETING": "v1"}},
    )
    assert runtime.refresh() is True
    first = runtime.invoke("lr-redeploy", {})
    assert first.ok and json.loads(first.payload["body"])["env"]["GREETING"] == "v1"

    # configuration change: new environments with the new variables
    lam.update_function_configuration(FunctionName="lr-redeploy", Environment={"Variables": {"GREETING": "v2"}})
    assert runtime.refresh() is True
    second = runtime.invoke("lr-redeploy", {})
    assert second.ok and second.cold and json.loads(second.payload["body"])["env"]["GREETING"] == "v2"

    # code change to a zip that is not (yet) in the zip dir: a clear error, then it runs once it is there
    scratch = tmp_path_factory.mktemp("v3")
    new_zip = _zip(scratch, "handlers-v3", {"handlers.py": (HERE / "handlers.py").read_text() + "\n# v3\n"}, scratch)
    lam.update_function_code(FunctionName="lr-redeploy", ZipFile=new_zip.read_bytes())
    assert runtime.refresh() is True
    missing = runtime.invoke("lr-redeploy", {})
    assert missing.error is not None and missing.error["errorType"] == "LocalRuntime.CodeNotFound"
    (stack.zip_dir / "handlers-v3.zip").write_bytes(new_zip.read_bytes())
    third = runtime.invoke("lr-redeploy", {})
    assert third.ok, third.error

    # a new route after a new API deployment
    apigw = stack.aws["apigateway"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=stack.api_id)["items"] if r["path"] == "/")
    extra = apigw.create_resource(restApiId=stack.api_id, parentId=root, pathPart="extra")["id"]
    apigw.put_method(restApiId=stack.api_id, resourceId=extra, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(
        restApiId=stack.api_id,
        resourceId=extra,
        httpMethod="GET",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
        f"arn:aws:lambda:{REGION}:123456789012:function:lr-redeploy/invocations",
    )
    # as on API Gateway, a route is served once the API is deployed again, not before
    assert runtime.refresh() is False
    assert requests.get(f"{runtime.base_url}/extra", timeout=30).status_code == 404
    apigw.create_deployment(restApiId=stack.api_id, stageName="v1")
    assert requests.get(f"{runtime.base_url}/extra", timeout=30).status_code == 404  # not yet known
    assert runtime.refresh() is True
    resp = requests.get(f"{runtime.base_url}/extra", timeout=30)
    assert resp.status_code == 200 and resp.json()["event"]["resource"] == "/extra"

    # an unchanged redeploy changes nothing: same pools, same pollers
    assert runtime.refresh() is False
    assert all(runtime.pool(name) is pool for name, pool in pools_before.items())
    lam.delete_function(FunctionName="lr-redeploy")
    assert runtime.refresh() is True


def test_scopes_changed_in_place_are_followed(stack: Stack, runtime: LocalRuntime) -> None:
    """Terraform changes a method's authorization scopes with UpdateMethod (moto lacks it; the
    embedded backend supplies it): after the redeploy the front takes the other token type."""
    apigw = stack.aws["apigateway"]
    jobs = next(r["id"] for r in apigw.get_resources(restApiId=stack.api_id)["items"] if r["path"] == "/jobs")

    def statuses() -> tuple[int, int]:
        """The front's answer to (an ID token, an access token) on GET /jobs."""
        url = f"{runtime.base_url}/jobs"
        id_token = requests.get(url, headers={"Authorization": stack.id_token}, timeout=30)
        access = requests.get(url, headers={"Authorization": stack.access_token}, timeout=30)
        return id_token.status_code, access.status_code

    def patch(op: str) -> None:
        path, scope = "/authorizationScopes", "aws.cognito.signin.user.admin"
        apigw.update_method(
            restApiId=stack.api_id,
            resourceId=jobs,
            httpMethod="GET",
            patchOperations=[{"op": op, "path": path, "value": scope}],
        )
        apigw.create_deployment(restApiId=stack.api_id, stageName="v1")
        assert runtime.refresh() is True

    assert statuses() == (200, 401)  # no scopes: ID tokens only
    patch("add")
    got = apigw.get_method(restApiId=stack.api_id, resourceId=jobs, httpMethod="GET")
    assert got["authorizationScopes"] == ["aws.cognito.signin.user.admin"]
    assert got["authorizationType"] == "COGNITO_USER_POOLS" and got["methodIntegration"]["type"] == "AWS_PROXY"
    assert statuses() == (401, 200)  # scopes: access tokens holding one, no ID tokens
    patch("remove")
    assert not apigw.get_method(restApiId=stack.api_id, resourceId=jobs, httpMethod="GET").get("authorizationScopes")
    assert statuses() == (200, 401)


def test_cli_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tooling.local_runtime", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "--endpoint" in out.stdout and "--rest-api" in out.stdout
