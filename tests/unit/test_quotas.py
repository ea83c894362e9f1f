"""Quota rules (jobs.quotas), pure: limits and tiers, groups from claims, the token bucket."""

from __future__ import annotations

import json

import pytest

from jobs.errors import TooManyRequests
from jobs.quotas import (
    QUOTA_RETRY_AFTER_SECONDS,
    Limits,
    QuotaConfigError,
    Usage,
    admit,
    groups_from_claim,
    limits_for,
    parse_tiers,
)
from jobs.settings import Settings, SettingsError
from tests.unit.conftest import ENV

NOW = 1_750_000_000_000  # epoch ms
LIMITS = Limits(max_active_jobs=3, submit_rate_per_second=2, submit_burst=4)  # one token per 500 ms


def charge(usage: Usage, limits: Limits = LIMITS, now: int = NOW) -> Usage:
    """Admit one submission at ``now`` and return the counter as the store leaves it."""
    c = admit("u", usage, limits, now)
    assert c.interval_ms == limits.interval_ms and c.max_active_jobs == limits.max_active_jobs
    if c.idle:
        assert usage.tat_ms < now
        return Usage(usage.active_jobs + 1, now + c.interval_ms)
    assert now <= usage.tat_ms <= c.tat_limit_ms
    return Usage(usage.active_jobs + 1, usage.tat_ms + c.interval_ms)


# ---- limits and tiers ---------------------------------------------------------------------


def test_limits_derived_values() -> None:
    assert LIMITS.interval_ms == 500
    assert LIMITS.refill_seconds == 2  # 4 tokens at 2/s
    slow = Limits(10, 0.5, 3)
    assert (slow.interval_ms, slow.refill_seconds) == (2000, 6)
    fast = Limits(10, 1000, 1)
    assert (fast.interval_ms, fast.refill_seconds) == (1, 1)  # w is at least 1 s
    assert Limits(10, 3, 10).refill_seconds == 4  # 10 x 333 ms, rounded up


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_active_jobs": 0, "submit_rate_per_second": 1, "submit_burst": 1}, "max_active_jobs"),
        ({"max_active_jobs": 1.5, "submit_rate_per_second": 1, "submit_burst": 1}, "max_active_jobs"),
        ({"max_active_jobs": True, "submit_rate_per_second": 1, "submit_burst": 1}, "max_active_jobs"),
        ({"max_active_jobs": 1, "submit_rate_per_second": 0, "submit_burst": 1}, "submit_rate_per_second"),
        ({"max_active_jobs": 1, "submit_rate_per_second": -1, "submit_burst": 1}, "submit_rate_per_second"),
        ({"max_active_jobs": 1, "submit_rate_per_second": 1001, "submit_burst": 1}, "submit_rate_per_second"),
        ({"max_active_jobs": 1, "submit_rate_per_second": "1", "submit_burst": 1}, "submit_rate_per_second"),
        ({"max_active_jobs": 1, "submit_rate_per_second": float("inf"), "submit_burst": 1}, "submit_rate_per_second"),
        ({"max_active_jobs": 1, "submit_rate_per_second": 1, "submit_burst": 0}, "submit_burst"),
        ({"max_active_jobs": 1, "submit_rate_per_second": 1}, "exactly"),
        ({"max_active_jobs": 1, "submit_rate_per_second": 1, "submit_burst": 1, "x": 1}, "exactly"),
        ([1, 2, 3], "exactly"),
    ],
)
def test_bad_limits_are_refused_by_name(values: object, message: str) -> None:
    with pytest.raises(QuotaConfigError, match=message):
        Limits.parse(values, "tier 'x'")


def test_limits_accept_whole_floats_as_terraform_numbers_arrive() -> None:
    parsed = Limits.parse({"max_active_jobs": 5.0, "submit_rate_per_second": 1, "submit_burst": 2.0}, "t")
    assert parsed == Limits(5, 1.0, 2)


def test_tiers_parse_from_json() -> None:
    raw = json.dumps({"gold": {"max_active_jobs": 9, "submit_rate_per_second": 0.25, "submit_burst": 2}})
    assert parse_tiers(raw) == {"gold": Limits(9, 0.25, 2)}
    assert parse_tiers("{}") == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        (json.dumps({"a,b": {"max_active_jobs": 1, "submit_rate_per_second": 1, "submit_burst": 1}}), "group name"),
        (json.dumps({"a b": {"max_active_jobs": 1, "submit_rate_per_second": 1, "submit_burst": 1}}), "group name"),
        (json.dumps({"": {"max_active_jobs": 1, "submit_rate_per_second": 1, "submit_burst": 1}}), "group name"),
        (json.dumps({"ok": {"max_active_jobs": 1}}), "tier 'ok'"),
    ],
)
def test_bad_tiers_are_refused(raw: str, message: str) -> None:
    with pytest.raises(QuotaConfigError, match=message):
        parse_tiers(raw)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("QUOTA_MAX_ACTIVE_JOBS", "0", "QUOTA_MAX_ACTIVE_JOBS must be >= 1"),
        ("QUOTA_MAX_ACTIVE_JOBS", "many", "QUOTA_MAX_ACTIVE_JOBS must be an integer"),
        ("QUOTA_SUBMIT_RATE_PER_SECOND", "fast", "QUOTA_SUBMIT_RATE_PER_SECOND must be a number"),
        ("QUOTA_SUBMIT_RATE_PER_SECOND", "0", "submit_rate_per_second"),
        ("QUOTA_SUBMIT_BURST", "", "QUOTA_SUBMIT_BURST is required"),
        ("QUOTA_TABLE_NAME", "", "QUOTA_TABLE_NAME is required"),
        ("QUOTA_TIERS", "{", "QUOTA_TIERS: is not JSON"),
        ("QUOTA_TIERS", '{"x": {}}', "QUOTA_TIERS: tier 'x'"),
    ],
)
def test_settings_fail_at_start_up_on_bad_quota_variables(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**ENV, name: value})


def test_settings_read_defaults_and_tiers() -> None:
    s = Settings.from_env({**ENV, "QUOTA_SUBMIT_RATE_PER_SECOND": "0.5", "QUOTA_TIERS": ""})
    assert s.quota_defaults == Limits(10000, 0.5, 10000)
    assert s.quota_tiers == {}
    assert Settings.from_env(ENV).quota_tiers["throttled"] == Limits(100, 0.5, 3)


# ---- groups and tiers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "groups"),
    [
        ("gold", ["gold"]),
        ("gold,silver", ["gold", "silver"]),  # REST API (and the local front): comma-joined
        ("gold, silver", ["gold", "silver"]),
        ("[gold silver]", ["gold", "silver"]),  # HTTP API JWT authorizer
        (["gold", "silver"], ["gold", "silver"]),  # a decoded token
        ("gold,gold", ["gold"]),
        ("", []),
        ("[]", []),
        (None, []),
        (7, []),
        ("a" * 129, []),
    ],
)
def test_groups_from_the_claim(raw: object, groups: list[str]) -> None:
    assert groups_from_claim(raw) == groups


def test_limits_for_groups() -> None:
    defaults = Limits(10, 1, 5)
    tiers = {"gold": Limits(100, 2, 50), "bulk": Limits(50, 10, 20), "trial": Limits(2, 0.1, 1)}
    assert limits_for([], defaults, tiers).limits == defaults
    assert limits_for(["staff"], defaults, tiers).tiers == ()  # a group that is no tier
    gold = limits_for(["gold", "staff"], defaults, tiers)
    assert (gold.limits, gold.tiers) == (Limits(100, 2, 50), ("gold",))
    both = limits_for(["bulk", "gold"], defaults, tiers)
    assert (both.limits, both.tiers) == (Limits(100, 10, 50), ("bulk", "gold"))  # the largest of each
    # a tier replaces the defaults, also where it is smaller
    assert limits_for(["trial"], defaults, tiers).limits == Limits(2, 0.1, 1)


# ---- the token bucket ----------------------------------------------------------------------


def test_a_new_user_has_a_full_bucket_and_no_active_jobs() -> None:
    fresh = Usage()
    assert fresh.tokens(LIMITS, NOW) == 4
    assert fresh.next_token_ms(LIMITS, NOW) is None
    assert fresh.free_slots(LIMITS) == 3
    assert admit("u", fresh, LIMITS, NOW).idle


def test_burst_then_refusal_then_refill() -> None:
    limits = Limits(max_active_jobs=100, submit_rate_per_second=2, submit_burst=4)
    usage = Usage()
    for left in (3, 2, 1, 0):
        usage = charge(usage, limits)
        assert usage.tokens(limits, NOW) == left
    assert usage.tat_ms == NOW + 4 * 500
    with pytest.raises(TooManyRequests) as refused:
        admit("u", usage, limits, NOW)
    assert refused.value.code == "rate_limited" and refused.value.status == 429
    assert refused.value.retry_after == 1  # the next token is 500 ms away: rounded up to 1 s
    assert usage.next_token_ms(limits, NOW) == 500
    # one token back per 500 ms, never more than the burst
    assert usage.tokens(limits, NOW + 499) == 0
    assert usage.tokens(limits, NOW + 500) == 1
    assert usage.tokens(limits, NOW + 1250) == 2
    assert usage.next_token_ms(limits, NOW + 1250) == 250
    assert usage.tokens(limits, NOW + 2000) == 4
    assert usage.tokens(limits, NOW + 60_000) == 4
    assert usage.next_token_ms(limits, NOW + 2000) is None
    # admitted again once a token is back
    after = charge(usage, limits, NOW + 500)
    assert after.tokens(limits, NOW + 500) == 0


def test_an_idle_bucket_refills_only_to_the_burst() -> None:
    usage = charge(Usage(), LIMITS, NOW)
    later = NOW + 3_600_000
    c = admit("u", usage, LIMITS, later)
    assert c.idle  # the stored tat is in the past: the write sets it from now, not from tat
    assert charge(usage, LIMITS, later).tokens(LIMITS, later) == 3


def test_steady_rate_is_admitted_forever() -> None:
    limits = Limits(max_active_jobs=10**6, submit_rate_per_second=2, submit_burst=1)
    usage = Usage()
    for i in range(50):
        usage = charge(usage, limits, NOW + i * 500)
    with pytest.raises(TooManyRequests):
        admit("u", usage, limits, NOW + 49 * 500 + 499)


def test_slow_fractional_rate_retry_after() -> None:
    limits = Limits(max_active_jobs=100, submit_rate_per_second=0.5, submit_burst=3)
    usage = Usage()
    for _ in range(3):
        usage = charge(usage, limits)
    with pytest.raises(TooManyRequests) as refused:
        admit("u", usage, limits, NOW + 100)
    assert refused.value.retry_after == 2  # 1,900 ms to the next token
    assert "0.5 per second" in refused.value.message


def test_the_active_cap_comes_first() -> None:
    full = Usage(active_jobs=3, tat_ms=NOW + 10_000)  # also out of tokens
    with pytest.raises(TooManyRequests) as refused:
        admit("u", full, LIMITS, NOW)
    assert refused.value.code == "quota_exceeded"
    assert refused.value.retry_after == QUOTA_RETRY_AFTER_SECONDS
    assert refused.value.usage == full
    assert "3 unfinished jobs" in refused.value.message
    assert full.free_slots(LIMITS) == 0
    assert Usage(active_jobs=7).free_slots(LIMITS) == 0  # never negative
    admit("u", Usage(active_jobs=2), LIMITS, NOW)
