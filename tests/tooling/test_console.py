"""tooling/console.py: the console's config.json, its loopback server and its upload to S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tooling import console
from tooling.aws_access import AwsAccess

OUTPUTS = {
    "api_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/dev",
    "region": "eu-west-1",
    "user_pool_id": "eu-central-1_Pool",
    "user_pool_client_id": "client123",
    "issuer_url": "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Pool",
    "api_authorization_scopes": [],
    "name_prefix": "jobs-dev",
}


def test_config_names_the_api_the_pool_and_the_pools_cognito_endpoint() -> None:
    config = console.console_config(OUTPUTS)
    assert config == {
        "api_url": OUTPUTS["api_url"],
        "region": "eu-west-1",
        "user_pool_id": "eu-central-1_Pool",
        "client_id": "client123",
        "cognito_endpoint": "https://cognito-idp.eu-central-1.amazonaws.com/",  # the pool's region
        "token_use": "id",
        "env": "jobs-dev",
    }
    scoped = console.console_config({**OUTPUTS, "api_authorization_scopes": ["aws.cognito.signin.user.admin"]})
    assert scoped["token_use"] == "access"  # methods with scopes take access tokens only
    local = console.console_config(OUTPUTS, api_url="http://127.0.0.1:1/local", cognito_endpoint="http://127.0.0.1:2/")
    assert (local["api_url"], local["cognito_endpoint"]) == ("http://127.0.0.1:1/local", "http://127.0.0.1:2/")


def test_config_names_the_hosted_login_only_when_the_stack_has_one() -> None:
    assert "oauth_domain" not in console.console_config({**OUTPUTS, "cognito_oauth_domain": None})
    hosted = console.console_config(
        {
            **OUTPUTS,
            "cognito_oauth_domain": "https://jobs-dev.auth.eu-central-1.amazoncognito.com/",
            "cognito_oauth_scopes": ["openid", "email"],
        }
    )
    assert hosted["oauth_domain"] == "https://jobs-dev.auth.eu-central-1.amazoncognito.com"  # a base URL
    assert hosted["oauth_scopes"] == ["openid", "email"]
    # an existing pool's domain given without scopes: the console asks for the usual three
    assert console.console_config({**OUTPUTS, "cognito_oauth_domain": "https://auth.example.com"})["oauth_scopes"] == [
        "openid",
        "email",
        "profile",
    ]


def test_the_csp_lets_the_page_fetch_from_exactly_the_hosted_login_domain(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    plain = console.ConsoleServer(
        {"api_url": "http://127.0.0.1:9/local"}, connect=["http://127.0.0.1:9"], root=tmp_path
    )
    assert plain.connect_origins == ["http://127.0.0.1:9"]
    server = console.ConsoleServer(
        {"api_url": "http://127.0.0.1:9/local", "oauth_domain": "https://login.example.com"},
        connect=["http://127.0.0.1:9"],
        root=tmp_path,
    ).start()
    try:
        csp = requests.get(server.url, timeout=5).headers["Content-Security-Policy"]
        assert "connect-src 'self' http://127.0.0.1:9 https://login.example.com;" in csp
    finally:
        server.stop()


def test_loopback_server_serves_the_files_the_config_and_the_csp(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "main.js").write_text("export {};")
    (tmp_path / "config.json").write_text('{"api_url": "baked in"}')  # never served: the stack's is
    server = console.ConsoleServer(
        {"api_url": "http://127.0.0.1:9/local"}, connect=["http://127.0.0.1:9", "http://127.0.0.1:8"], root=tmp_path
    ).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        index = requests.get(server.url, timeout=5)
        assert index.status_code == 200 and index.headers["Content-Type"].startswith("text/html")
        csp = index.headers["Content-Security-Policy"]
        assert "connect-src 'self' http://127.0.0.1:8 http://127.0.0.1:9;" in csp
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert index.headers["X-Content-Type-Options"] == "nosniff"
        script = requests.get(server.url + "js/main.js", timeout=5)
        assert script.headers["Content-Type"].startswith("text/javascript")  # modules need a JS type
        assert requests.get(server.url + "config.json", timeout=5).json() == {"api_url": "http://127.0.0.1:9/local"}
        assert requests.get(server.url + "../pyproject.toml", timeout=5).status_code == 404
        assert requests.get(server.url + "%2e%2e/pyproject.toml", timeout=5).status_code == 404
        assert requests.get(server.url + "missing.js", timeout=5).status_code == 404
    finally:
        server.stop()


class RecordingCloudFront:
    def __init__(self) -> None:
        self.invalidations: list[dict] = []

    def create_invalidation(self, **kwargs: object) -> None:
        self.invalidations.append(kwargs)


@pytest.mark.usefixtures("backend")
def test_upload_puts_what_differs_removes_what_is_gone_and_invalidates_only_on_change(
    access: AwsAccess, unique: str, tmp_path: Path
) -> None:
    s3 = access.client("s3")
    bucket = f"console-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="old.js", Body=b"gone")
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "console.css").write_text("body {}")
    outputs = {**OUTPUTS, "console_bucket_name": bucket, "console_distribution_id": "E123"}
    cloudfront = RecordingCloudFront()
    lines: list[str] = []

    assert console.upload(s3, cloudfront, outputs, lines.append, root=tmp_path) == 4  # 3 put, 1 removed
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["config.json", "css/console.css", "index.html"]
    head = s3.head_object(Bucket=bucket, Key="css/console.css")
    assert (head["ContentType"], head["CacheControl"]) == ("text/css; charset=utf-8", "no-cache")
    config = json.loads(s3.get_object(Bucket=bucket, Key="config.json")["Body"].read())
    assert config["api_url"] == OUTPUTS["api_url"] and config["client_id"] == "client123"
    assert [i["DistributionId"] for i in cloudfront.invalidations] == ["E123"]

    # an unchanged redeploy changes nothing
    assert console.upload(s3, cloudfront, outputs, lines.append, root=tmp_path) == 0
    assert len(cloudfront.invalidations) == 1
    # one file changed: only it is put
    (tmp_path / "index.html").write_text("<!doctype html><title>v2</title>")
    assert console.upload(s3, cloudfront, outputs, lines.append, root=tmp_path) == 1
    assert len(cloudfront.invalidations) == 2
    assert "is up to date" in lines[1]
