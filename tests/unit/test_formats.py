"""Result formats (issue 14): each action in each format it declares, the format's validation,
the key and Content-Type the worker writes, the download's headers, and records without a format."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from jobs import actions
from jobs.formats import ResultFormat
from jobs.model import NewJob
from tests.unit.conftest import (
    BUCKET,
    TABLE,
    VALID_JOB,
    Stack,
    api_event,
    call_api,
    call_worker,
    sqs_record,
)

CREATED = "2025-07-14T12:00:00.000Z"
SHA_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def run(action: str, fmt: str, context1: str, context2: str) -> str:
    job = actions.ActionInput("job-1", "report", action, context1, context2, CREATED, ResultFormat(fmt))
    return actions.run_action(job)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# ---- the registry: what each action declares ----------------------------------------------


def test_each_action_declares_its_formats() -> None:
    declared = {a.name: [f.value for f in a.formats] for a in actions.all_actions()}
    assert declared == {
        "checksum": ["text", "json", "csv"],
        "demo": ["text", "json"],
        "hash-chain": ["text", "json", "csv"],
        "json-format": ["text", "json"],
        "process-data": ["text", "json"],
        "word-count": ["text", "json", "csv"],
    }
    assert actions.action_formats() == {a.name: a.formats for a in actions.all_actions()}


def test_an_action_registered_with_rows_produces_csv() -> None:
    try:
        actions.action("shout-test", "upper-cases", text=lambda r: r["t"], csv=lambda r: [("t",), (r["t"],)])(
            lambda job: {"t": job.context1.upper()}
        )
        assert actions.get_action("shout-test").formats == (ResultFormat.TEXT, ResultFormat.JSON, ResultFormat.CSV)
        assert run("shout-test", "csv", "a,b", "-") == 't\r\n"A,B"\r\n'
    finally:
        actions._REGISTRY.pop("shout-test", None)


def test_a_format_the_action_lacks_is_an_action_error_at_run_time() -> None:
    with pytest.raises(actions.ActionError, match="cannot produce csv; it produces text, json"):
        run("demo", "csv", "a", "b")


# ---- each action in each format it declares -----------------------------------------------


def test_demo_json() -> None:
    assert json.loads(run("demo", "json", "hello", "world")) == {"text": "hello world"}


def test_process_data_json() -> None:
    out = json.loads(run("process-data", "json", "left side", "two\nlines"))
    assert out == {
        "name": "report",
        "job_id": "job-1",
        "created_at": CREATED,
        "context1": {"text": "left side", "characters": 9, "words": 2, "lines": 1},
        "context2": {"text": "two\nlines", "characters": 9, "words": 2, "lines": 2},
        "combined": "left side two\nlines",
    }


def test_process_data_text_is_the_report_it_always_was() -> None:
    assert run("process-data", "text", "ab", "c d") == (
        "Job report: report\njob_id: job-1\ncreated: 2025-07-14T12:00:00.000Z\n\n"
        "context1 (2 characters, 1 words, 1 lines):\nab\n\n"
        "context2 (3 characters, 2 words, 1 lines):\nc d\n\n"
        "combined: ab c d\n"
    )


def test_word_count_in_every_format() -> None:
    text = run("word-count", "text", "the cat the", "Dog wörd")
    assert text == "total words: 5\ndistinct words: 4\n\n       2  the\n       1  cat\n       1  dog\n       1  wörd\n"
    assert json.loads(run("word-count", "json", "the cat the", "Dog wörd")) == {
        "total_words": 5,
        "distinct_words": 4,
        "top_words": [
            {"word": "the", "count": 2},
            {"word": "cat", "count": 1},
            {"word": "dog", "count": 1},
            {"word": "wörd", "count": 1},
        ],
    }
    assert csv_rows(run("word-count", "csv", "the cat the", "Dog wörd")) == [
        ["word", "count"],
        ["the", "2"],
        ["cat", "1"],
        ["dog", "1"],
        ["wörd", "1"],
    ]


def test_word_count_lists_the_20_most_frequent_in_json_and_csv() -> None:
    many = " ".join(f"w{i:02d} " * (30 - i) for i in range(25))
    top = json.loads(run("word-count", "json", many, "-"))["top_words"]
    assert [w["word"] for w in top] == [f"w{i:02d}" for i in range(20)]
    rows = csv_rows(run("word-count", "csv", many, "-"))
    assert len(rows) == 21 and rows[1] == ["w00", "30"] and rows[-1] == ["w19", "11"]


def test_checksum_in_every_format() -> None:
    sha_def = hashlib.sha256(b"def").hexdigest()
    assert run("checksum", "text", "abc", "def") == f"sha256(context1) = {SHA_ABC}\nsha256(context2) = {sha_def}\n"
    assert json.loads(run("checksum", "json", "abc", "def")) == {
        "algorithm": "sha256",
        "context1": SHA_ABC,
        "context2": sha_def,
    }
    assert csv_rows(run("checksum", "csv", "abc", "def")) == [
        ["input", "sha256"],
        ["context1", SHA_ABC],
        ["context2", sha_def],
    ]


def test_json_format_json_is_the_document_with_sorted_keys() -> None:
    raw = '{"b": 1, "a": [1, {"z": true, "y": null}], "é": "ü"}'
    out = run("json-format", "json", raw, "-")
    assert json.loads(out) == json.loads(raw)
    assert list(json.loads(out)) == ["a", "b", "é"] and out.index('"z"') > out.index('"y"')
    assert '"ü"' in out  # UTF-8 as is, not \u escapes
    assert run("json-format", "text", raw, "-") == out  # the same document, stored as .txt
    with pytest.raises(actions.ActionError, match="context1 is not valid JSON"):
        run("json-format", "json", "{not json", "-")


@pytest.mark.parametrize(
    ("action", "fmt"), [(a.name, f.value) for a in actions.all_actions() for f in a.formats if f.value != "text"]
)
def test_every_declared_structured_format_parses(action: str, fmt: str) -> None:
    context1 = '{"k": "v, with a comma"}' if action == "json-format" else 'a "quoted", b\nnew line'
    context2 = "1000" if action == "hash-chain" else "second, part"  # hash-chain: the number of rounds
    out = run(action, fmt, context1, context2)
    if fmt == "json":
        assert isinstance(json.loads(out), dict)
    else:
        rows = csv_rows(out)
        assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows)


# ---- validation: the format of POST /job -----------------------------------------------------


def test_the_format_is_optional_and_defaults_to_text() -> None:
    parsed = NewJob.from_body(json.dumps(VALID_JOB), actions.action_formats())
    assert parsed.format is ResultFormat.TEXT


def test_the_fingerprint_of_a_text_job_is_unchanged_and_the_format_tells_requests_apart() -> None:
    known = actions.action_formats()
    plain = NewJob.from_body(json.dumps(VALID_JOB), known)
    named = NewJob.from_body(json.dumps({**VALID_JOB, "format": "text"}), known)
    as_json = NewJob.from_body(json.dumps({**VALID_JOB, "format": "json"}), known)
    before_formats = hashlib.sha256(json.dumps(["test", "demo", "hello", "world"]).encode()).hexdigest()
    assert plain.fingerprint() == named.fingerprint() == before_formats
    assert as_json.fingerprint() != plain.fingerprint()


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({**VALID_JOB, "format": "xml"}, "invalid_format", "use one of text, json, csv"),
        ({**VALID_JOB, "format": "JSON"}, "invalid_format", "use one of text, json, csv"),
        ({**VALID_JOB, "format": ""}, "invalid_format", "use one of text, json, csv"),
        ({**VALID_JOB, "format": 3}, "invalid_field", "field format must be a string"),
        ({**VALID_JOB, "format": None}, "invalid_field", "field format must be a string"),
        ({**VALID_JOB, "format": ["json"]}, "invalid_field", "field format must be a string"),
        ({**VALID_JOB, "format": "csv"}, "unsupported_format", "'demo' cannot produce csv; it produces text, json"),
        (
            {**VALID_JOB, "action": "process-data", "format": "csv"},
            "unsupported_format",
            "'process-data' cannot produce csv; it produces text, json",
        ),
        ({**VALID_JOB, "action": "nope", "format": "csv"}, "unknown_action", "known actions"),
    ],
)
def test_a_bad_format_is_400_and_writes_nothing(stack: Stack, body: dict[str, Any], code: str, says: str) -> None:
    resp = call_api(api_event("POST", "/job", body=body))
    assert resp.status == 400, resp.body
    assert resp.body == {"error": code, "message": resp.body["message"]}
    assert says in resp.body["message"]
    assert stack.items() == [] and stack.messages() == [] and stack.objects() == []


def test_an_idempotency_key_reused_with_another_format_is_422(stack: Stack) -> None:
    headers = {"Idempotency-Key": "fmt-1"}
    first = call_api(api_event("POST", "/job", body={**VALID_JOB, "action": "checksum"}, headers=headers))
    again = call_api(
        api_event("POST", "/job", body={**VALID_JOB, "action": "checksum", "format": "text"}, headers=headers)
    )
    other = call_api(
        api_event("POST", "/job", body={**VALID_JOB, "action": "checksum", "format": "csv"}, headers=headers)
    )
    assert first.status == 202 and again.status == 202 and again.body["job_id"] == first.body["job_id"]
    assert other.status == 422 and other.body["error"] == "idempotency_key_reused"
    assert len(stack.messages()) == 1


# ---- the worker: key, Content-Type; the API: format, download headers ---------------------


def submit_and_run(stack: Stack, action: str, fmt: str | None, context1: str = "abc", context2: str = "def") -> str:
    body = {**VALID_JOB, "action": action, "context1": context1, "context2": context2}
    if fmt is not None:
        body["format"] = fmt
    resp = call_api(api_event("POST", "/job", body=body))
    assert resp.status == 202, resp.body
    job_id = resp.body["job_id"]
    [msg] = [m for m in stack.messages() if json.loads(m["Body"])["job_id"] == job_id]
    assert call_worker(sqs_record(msg["Body"])) == []
    return str(job_id)


def get_job(job_id: str) -> dict[str, Any]:
    resp = call_api(api_event("GET", "/job", query={"job_id": job_id}))
    assert resp.status == 200, resp.body
    return dict(resp.body)


@pytest.mark.parametrize(
    ("action", "fmt", "ext", "content_type"),
    [
        ("checksum", None, "txt", "text/plain; charset=utf-8"),
        ("checksum", "text", "txt", "text/plain; charset=utf-8"),
        ("checksum", "json", "json", "application/json; charset=utf-8"),
        ("checksum", "csv", "csv", "text/csv; charset=utf-8"),
        ("word-count", "csv", "csv", "text/csv; charset=utf-8"),
        ("process-data", "json", "json", "application/json; charset=utf-8"),
    ],
)
def test_the_worker_writes_the_format_under_its_extension_and_content_type(
    stack: Stack, action: str, fmt: str | None, ext: str, content_type: str
) -> None:
    job_id = submit_and_run(stack, action, fmt)
    job = get_job(job_id)
    assert job["status"] == "COMPLETE" and job["format"] == (fmt or "text")
    key = f"user-a/{job['createdAt'][:10]}/{job_id}.{ext}"
    assert job["S3FileKey"] == key and stack.objects() == [key]
    obj = stack.s3.get_object(Bucket=BUCKET, Key=key)
    assert obj["ContentType"] == content_type
    body = obj["Body"].read().decode("utf-8")
    if ext == "json":
        assert json.loads(body)["job_id" if action == "process-data" else "context1"]
    elif ext == "csv":
        assert csv_rows(body)[0] in (["input", "sha256"], ["word", "count"])
    query = parse_qs(urlparse(job["result_url"]).query)
    assert query["response-content-disposition"] == [f'attachment; filename="{job_id}.{ext}"']
    assert query["response-content-type"] == [content_type]
    assert "X-Amz-Signature" in query and f"{job_id}.{ext}" in urlparse(job["result_url"]).path


def test_the_record_and_the_listing_show_the_format(stack: Stack) -> None:
    csv_job = call_api(api_event("POST", "/job", body={**VALID_JOB, "action": "word-count", "format": "csv"}))
    text_job = call_api(api_event("POST", "/job", body=VALID_JOB))
    [csv_item] = [i for i in stack.items() if i["job_id"]["S"] == csv_job.body["job_id"]]
    assert csv_item["format"] == {"S": "csv"}
    assert get_job(csv_job.body["job_id"])["format"] == "csv"
    listed = call_api(api_event("GET", "/jobs")).body
    assert [(j["job_id"], j["format"]) for j in listed] == [
        (text_job.body["job_id"], "text"),
        (csv_job.body["job_id"], "csv"),
    ]
    by_status = call_api(api_event("GET", "/jobs", query={"status": "PENDING"})).body
    assert [j["format"] for j in by_status] == ["text", "csv"]


def test_a_record_written_before_formats_reads_and_runs_as_text(stack: Stack) -> None:
    """Records from before issue 14 have no ``format`` attribute: text, .txt, text/plain."""
    body = {**VALID_JOB, "action": "checksum", "context1": "abc"}
    job_id = call_api(api_event("POST", "/job", body=body)).body["job_id"]
    stack.ddb.update_item(
        TableName=TABLE,
        Key={"owner_id": {"S": "user-a"}, "job_id": {"S": job_id}},
        UpdateExpression="REMOVE #f",
        ExpressionAttributeNames={"#f": "format"},
    )
    [old] = stack.items()
    assert "format" not in old
    assert get_job(job_id)["format"] == "text"
    assert [j["format"] for j in call_api(api_event("GET", "/jobs")).body] == ["text"]
    [msg] = stack.messages()
    assert call_worker(sqs_record(msg["Body"])) == []
    job = get_job(job_id)
    assert job["status"] == "COMPLETE" and job["format"] == "text"
    assert job["S3FileKey"] == f"user-a/{job['createdAt'][:10]}/{job_id}.txt"
    obj = stack.s3.get_object(Bucket=BUCKET, Key=job["S3FileKey"])
    assert obj["ContentType"] == "text/plain; charset=utf-8"
    assert obj["Body"].read().decode().startswith(f"sha256(context1) = {SHA_ABC}\n")
    assert "format" not in stack.items()[0]  # completing it did not rewrite the record's inputs
