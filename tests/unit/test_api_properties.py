"""Property-based: whatever a client sends, the API answers < 500 with a JSON body of the documented shape."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.conftest import VALID_JOB, api_event, call_api, claims

pytestmark = pytest.mark.usefixtures("stack")

ROUTES = [
    ("POST", "/job"),
    ("POST", "/jobs/batch"),
    ("GET", "/job"),
    ("DELETE", "/job"),
    ("GET", "/jobs"),
    ("GET", "/quota"),
    ("GET", "/actions"),
]
FIELDS = ["name", "action", "context1", "context2", "format", "run_at", "delay_seconds", "priority"]
# Valid names of actions, formats and priorities, so that bodies reach the checks past them
# (and the writes).
NAMES = ["demo", "process-data", "word-count", "checksum", "hash-chain", "text", "json", "csv"]
ACTIONS, FORMATS = NAMES[:5], NAMES[5:]
PRIORITIES = ["high", "normal", "low"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
job_bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={f: st.one_of(st.text(max_size=150), json_values, st.sampled_from(NAMES)) for f in FIELDS},
    ),
    st.builds(
        lambda extra: {**VALID_JOB, **extra}, st.dictionaries(st.sampled_from([*FIELDS, "x"]), json_values, max_size=2)
    ),
    json_values,
)
# POST /jobs/batch: {"jobs": [...]} of valid, invalid and odd items, or odd shapes around them.
batch_bodies = st.one_of(
    st.builds(lambda jobs: json.dumps({"jobs": jobs}), st.lists(job_bodies, max_size=6)),
    st.builds(lambda n: json.dumps({"jobs": [VALID_JOB] * n}), st.integers(0, 120)),
    st.builds(
        lambda extra: json.dumps({"jobs": [VALID_JOB], **extra}),
        st.dictionaries(st.text(max_size=8), json_values, max_size=2),
    ),
)
bodies = st.one_of(
    batch_bodies,
    st.none(),
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {},
        optional={f: st.one_of(st.text(max_size=150), json_values, st.sampled_from(NAMES)) for f in FIELDS},
    ).map(json.dumps),
    st.builds(
        lambda extra: json.dumps({**VALID_JOB, **extra}),
        st.dictionaries(st.sampled_from([*FIELDS, "x"]), json_values, max_size=2),
    ),
    st.builds(
        lambda action, fmt: json.dumps({**VALID_JOB, "action": action, "format": fmt}),
        st.sampled_from(ACTIONS),
        st.one_of(st.sampled_from(FORMATS), json_values),
    ),
    st.builds(
        lambda priority, fmt: json.dumps({**VALID_JOB, "priority": priority, **fmt}),
        st.one_of(st.sampled_from(PRIORITIES), json_values, st.text(max_size=10)),
        st.one_of(st.just({}), st.builds(lambda f: {"format": f}, st.sampled_from(FORMATS))),
    ),
)
# Due times near the limits and in every shape: valid and invalid RFC 3339, offsets, numbers.
_instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([UTC, None])
)
run_ats = st.one_of(
    st.builds(
        lambda s: (datetime.now(UTC) + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        st.integers(-10, 40 * 86400),
    ),
    _instants.map(lambda d: d.isoformat()),
    st.from_regex(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,12})?([Zz]|[+-]\d{2}:\d{2})", fullmatch=True),
    json_values,
)
delays = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False), json_values)
scheduled_jobs = st.builds(
    lambda extra: {**VALID_JOB, **extra},
    st.fixed_dictionaries({}, optional={"run_at": run_ats, "delay_seconds": delays}),
)
bodies = st.one_of(
    bodies,
    scheduled_jobs.map(json.dumps),
    st.lists(scheduled_jobs, min_size=1, max_size=4).map(lambda jobs: json.dumps({"jobs": jobs})),
)
params = st.dictionaries(
    st.sampled_from(["job_id", "limit", "status", "next_token", "other"]),
    st.text(alphabet=string.printable, max_size=60),
    max_size=4,
)
headers = st.dictionaries(
    st.sampled_from(["Idempotency-Key", "Origin", "Content-Type", "X-Anything"]),
    st.text(alphabet=string.printable, max_size=140),
    max_size=3,
)
group_claims = st.one_of(
    st.sampled_from(
        ["capped", "throttled", "lifted,capped", "[lifted throttled]", "", "[]", ",", "nobody", "priority-high"]
    ),
    st.text(alphabet=string.printable, max_size=40),
)
claim_sets = st.one_of(
    st.just(claims()),
    st.just(claims("user-b")),
    st.builds(lambda g: claims("user-c", groups=g), group_claims),
    st.dictionaries(
        st.sampled_from(["sub", "aud", "client_id", "token_use", "cognito:groups"]), st.text(max_size=20), max_size=4
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(route=st.sampled_from(ROUTES), body=bodies, query=params, hdrs=headers, c=claim_sets, b64=st.booleans())
def test_no_input_gets_a_server_error(route, body, query, hdrs, c, b64) -> None:
    method, path = route
    event = api_event(
        method, path, body=body, query=query or None, headers=hdrs, claims_=c, base64_body=b64 and body is not None
    )
    resp = call_api(event)
    assert resp.status < 500, (resp.status, resp.body)
    if resp.status >= 400 and resp.body.get("error") == "invalid_batch":
        assert set(resp.body) == {"error", "message", "items"}
        assert all(set(i) == {"index", "error", "message"} for i in resp.body["items"]), resp.body
    elif resp.status >= 400:
        assert set(resp.body) == {"error", "message"}
        assert isinstance(resp.body["error"], str) and isinstance(resp.body["message"], str)
