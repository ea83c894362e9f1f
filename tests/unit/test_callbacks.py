"""Callback URLs (README "Webhooks"): where a webhook may go, checked at submit and at delivery.

Names resolve through a stub resolver (no DNS): each test says what a name resolves to.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobs.callbacks import CALLBACK_URL_MAX_CHARS, check_callback_url
from jobs.errors import ValidationError
from jobs.model import NewJob
from tests.unit.conftest import VALID_JOB, Stack, api_event, call_api, claims

PUBLIC_V4, PUBLIC_V6 = "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
NAMES: dict[str, list[str]] = {
    "hooks.example.com": [PUBLIC_V4, PUBLIC_V6],
    "localhost.example.com": ["127.0.0.1"],  # a public name that resolves to loopback
    "internal.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "half.example.com": [PUBLIC_V4, "192.168.0.10"],  # one bad answer is enough
    "mapped.example.com": ["::ffff:169.254.169.254"],
    "local6.example.com": ["::1"],
    "2130706433": ["127.0.0.1"],  # what getaddrinfo makes of a decimal IPv4 literal
}


def stub_resolver(host: str, port: int) -> list[str]:
    if host not in NAMES:
        raise OSError(f"[Errno -2] Name or service not known: {host}")
    return NAMES[host]


def refused(url: Any, allow_loopback: bool = False) -> str:
    with pytest.raises(ValidationError) as caught:
        check_callback_url(url, allow_loopback, stub_resolver)
    assert caught.value.code == "invalid_callback_url"
    return caught.value.message


def test_a_public_https_url_is_accepted_with_the_addresses_it_was_checked_at():
    target = check_callback_url("https://hooks.example.com:8443/in/jobs?token=abc", False, stub_resolver)
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        8443,
        "/in/jobs?token=abc",
    )
    assert target.addresses == (PUBLIC_V4, PUBLIC_V6)  # delivery connects to these, not to a new answer


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://169.254.170.2/v2/credentials",  # ECS task credentials
        "https://[fd00:ec2::254]/latest/meta-data/",  # EC2 metadata over IPv6
        "https://metadata.example.com/",
        "https://127.0.0.1/",
        "https://127.9.9.9/",
        "https://[::1]/",
        "https://localhost.example.com/",  # a name resolving to 127.0.0.1, on AWS
        "https://local6.example.com/",
        "https://2130706433/",
        "https://10.0.0.1/",
        "https://172.16.5.4/",
        "https://192.168.1.1/",
        "https://internal.example.com/",
        "https://half.example.com/",
        "https://100.64.0.1/",  # CGNAT
        "https://0.0.0.0/",
        "https://224.0.0.1/",  # multicast
        "https://240.0.0.1/",  # reserved
        "https://[fe80::1]/",  # link-local
        "https://[fc00::1]/",  # unique-local
        "https://[ff02::1]/",  # multicast
        "https://[::]/",
        "https://[::ffff:10.0.0.1]/",  # IPv4-mapped
        "https://[::ffff:169.254.169.254]/",
        "https://mapped.example.com/",
        "https://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "https://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
    ],
)
def test_urls_that_lead_to_internal_addresses_are_refused(url):
    assert "public address" in refused(url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://hooks.example.com/", "https"),
        ("ftp://hooks.example.com/", "absolute https"),
        ("/relative/path", "absolute https"),
        ("hooks.example.com/x", "absolute https"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("https://user@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://hooks.example.com:99999/", "valid URL"),
        ("https://hooks .example.com/", "without spaces"),
        ("https://nowhere.example.com/", "does not resolve"),
        ("https:///path", "absolute https"),
        ("https://hooks.example.com/" + "a" * CALLBACK_URL_MAX_CHARS, "at most"),
        (42, "must be a string"),
    ],
)
def test_malformed_or_plain_http_urls_are_refused_with_the_reason(url, says):
    assert says in refused(url)


def test_plain_http_is_refused_even_where_loopback_is_allowed_unless_it_is_loopback():
    assert "https" in refused("http://hooks.example.com/", allow_loopback=True)
    target = check_callback_url("http://127.0.0.1:8080/hook", True, stub_resolver)
    assert (target.scheme, target.addresses) == ("http", ("127.0.0.1",))
    assert check_callback_url("https://local6.example.com/", True, stub_resolver).addresses == ("::1",)


def test_allowing_loopback_allows_nothing_else():
    for url in (
        "http://10.0.0.1/",
        "https://169.254.169.254/",
        "http://[::ffff:169.254.169.254]/",
        "https://[fe80::1]/",
    ):
        assert "public address" in refused(url, allow_loopback=True)


def test_the_callback_url_is_part_of_the_idempotency_fingerprint():
    base = NewJob.from_data(dict(VALID_JOB), {"demo": ["text"]})  # type: ignore[dict-item]
    with_url = NewJob.from_data({**VALID_JOB, "callback_url": "https://a.example/x"}, {"demo": ["text"]})  # type: ignore[dict-item]
    other = NewJob.from_data({**VALID_JOB, "callback_url": "https://b.example/x"}, {"demo": ["text"]})  # type: ignore[dict-item]
    assert len({base.fingerprint(), with_url.fingerprint(), other.fingerprint()}) == 3


# ---------------------------------------------------------------------------- through the API


def post(body: dict[str, Any], headers: dict[str, str] | None = None):
    return call_api(api_event("POST", "/job", body=body, claims_=claims("user-a"), headers=headers))


def test_a_job_records_its_callback_url_and_shows_it(stack: Stack):
    url = f"https://{PUBLIC_V4}/hooks/jobs"
    created = post({**VALID_JOB, "callback_url": url})
    assert created.status == 202, created.body
    [item] = stack.items()
    assert item["callbackUrl"] == {"S": url}
    shown = call_api(api_event("GET", "/job", query={"job_id": created.body["job_id"]}, claims_=claims("user-a")))
    assert shown.body["callback_url"] == url and "webhook" not in shown.body


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "https://[::ffff:127.0.0.1]/", "https://10.0.0.8/"]
)
def test_a_callback_url_to_an_internal_address_is_a_400_and_nothing_is_written(stack: Stack, url: str):
    answer = post({**VALID_JOB, "callback_url": url})
    assert answer.status == 400
    assert answer.body["error"] == "invalid_callback_url"
    assert "169.254.169.254" in answer.body["message"] or "public address" in answer.body["message"]
    batch = call_api(
        api_event(
            "POST",
            "/jobs/batch",
            body={"jobs": [VALID_JOB, {**VALID_JOB, "callback_url": url}]},
            claims_=claims("user-a"),
        )
    )
    assert batch.status == 400 and batch.body["error"] == "invalid_batch"
    assert [(i["index"], i["error"]) for i in batch.body["items"]] == [(1, "invalid_callback_url")]
    assert stack.items() == [] and stack.messages() == []


def test_the_same_key_with_another_callback_url_is_another_request(stack: Stack):
    key = {"Idempotency-Key": "hook-1"}
    first = post({**VALID_JOB, "callback_url": f"https://{PUBLIC_V4}/a"}, key)
    again = post({**VALID_JOB, "callback_url": f"https://{PUBLIC_V4}/a"}, key)
    other = post({**VALID_JOB, "callback_url": f"https://{PUBLIC_V4}/b"}, key)
    assert (first.status, again.status, other.status) == (202, 202, 422)
    assert again.body["job_id"] == first.body["job_id"]
