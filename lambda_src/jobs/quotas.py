"""Per-user quotas: a cap on unfinished jobs and a submission token bucket (pure: no I/O).

Each user (the token's ``sub``) has one counter item (``jobs.store``): ``active_jobs``,
the number of jobs that hold a slot (taken when a job is created, whatever unfinished status
it starts in: PENDING, or SCHEDULED for a job due later; freed when it becomes COMPLETE, FAILED or
CANCELLED), and ``tat_ms``, the token bucket kept as the GCRA "theoretical arrival time" in
epoch milliseconds. A bucket of ``burst`` tokens refilled at ``rate`` per second, with
emission interval ``T = 1000 / rate`` ms (whole milliseconds), holds at time ``now``::

    tokens(now) = min(burst, floor((now + burst * T - max(tat, now)) / T))

so it is full whenever ``tat <= now``, a submission is allowed iff ``tat <= now + (burst -
1) * T``, and it moves ``tat`` to ``max(tat, now) + T``. DynamoDB update expressions have
no ``max``: a charge is written in one of two forms, chosen from the last read of the item
and guarded by a condition, so a stale read fails the condition instead of miscounting
(:class:`Charge`).

Limits are the environment's defaults, or a tier that a Cognito group lifts the user to
(tiers in tfvars, ``QUOTA_TIERS``): with several matching groups, each limit is the largest
among their tiers; a matching tier replaces the defaults.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from jobs.errors import TooManyRequests

# A refused submission over the active-jobs cap: when to try again. The API cannot know when
# one of the user's jobs will finish; jobs here take seconds.
QUOTA_RETRY_AFTER_SECONDS = 5

# Tier (group) names: Cognito's group name rules, minus what would make the claim ambiguous
# (API Gateway joins a user's groups with commas; HTTP APIs write them as "[a b]").
_GROUP = re.compile(r"[^\s,\[\]]{1,128}")
_LIMIT_FIELDS = ("max_active_jobs", "submit_rate_per_second", "submit_burst")
MAX_RATE_PER_SECOND = 1000.0  # the emission interval is kept in whole milliseconds
MAX_COUNT = 1_000_000


class QuotaConfigError(ValueError):
    """Malformed limits or tiers (the settings turn this into a start-up failure)."""


@dataclass(frozen=True)
class Limits:
    max_active_jobs: int
    submit_rate_per_second: float
    submit_burst: int

    @classmethod
    def parse(cls, values: Any, where: str) -> Limits:
        if not isinstance(values, dict) or set(values) != set(_LIMIT_FIELDS):
            raise QuotaConfigError(f"{where} must be an object with exactly {', '.join(_LIMIT_FIELDS)}")
        active, rate, burst = (values[f] for f in _LIMIT_FIELDS)
        for name, value in (("max_active_jobs", active), ("submit_burst", burst)):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_COUNT:
                raise QuotaConfigError(f"{where}.{name} must be a whole number from 1 to {MAX_COUNT}, got {value!r}")
        rate_ok = isinstance(rate, int | float) and not isinstance(rate, bool) and math.isfinite(rate)
        if not rate_ok or not 0 < rate <= MAX_RATE_PER_SECOND:
            raise QuotaConfigError(
                f"{where}.submit_rate_per_second must be a number above 0 and at most {MAX_RATE_PER_SECOND:g}, "
                f"got {rate!r}"
            )
        return cls(int(active), float(rate), int(burst))

    @property
    def interval_ms(self) -> int:
        """GCRA's emission interval: one token comes back every this many milliseconds."""
        return max(1, round(1000 / self.submit_rate_per_second))

    @property
    def refill_seconds(self) -> int:
        """How long an empty bucket takes to fill (the ``w`` of the advertised policy)."""
        return max(1, math.ceil(self.submit_burst * self.interval_ms / 1000))

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_active_jobs": self.max_active_jobs,
            "submit_rate_per_second": self.submit_rate_per_second,
            "submit_burst": self.submit_burst,
        }

    def most_generous(self, other: Limits) -> Limits:
        return Limits(
            max(self.max_active_jobs, other.max_active_jobs),
            max(self.submit_rate_per_second, other.submit_rate_per_second),
            max(self.submit_burst, other.submit_burst),
        )


def parse_tiers(raw: str) -> dict[str, Limits]:
    """``QUOTA_TIERS``: a JSON object, group name -> limits (``{}`` for none)."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise QuotaConfigError(f"is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise QuotaConfigError("must be a JSON object of group name -> limits")
    tiers = {}
    for group, values in data.items():
        if not _GROUP.fullmatch(group):
            raise QuotaConfigError(f"group name {group[:140]!r} must be 1-128 characters without spaces, commas or []")
        tiers[group] = Limits.parse(values, f"tier {group!r}")
    return tiers


def is_group_name(name: str) -> bool:
    """Whether ``name`` can be read back from a ``cognito:groups`` claim (``groups_from_claim``)."""
    return bool(_GROUP.fullmatch(name))


def groups_from_claim(raw: Any) -> list[str]:
    """The user's groups from the ``cognito:groups`` claim, whatever shape the front gave it.

    A REST API's Cognito authorizer passes every claim as a string and joins a list with
    commas (``"a,b"``); an HTTP API's JWT authorizer writes ``"[a b]"``; a decoded token
    holds a JSON list. Group names with spaces, commas or brackets are not tier names.
    """
    if isinstance(raw, list):
        items = [str(g) for g in raw]
    elif isinstance(raw, str):
        text = raw.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        items = re.split(r"[,\s]+", text)
    else:
        return []
    return [g for g in dict.fromkeys(i.strip() for i in items) if _GROUP.fullmatch(g)]


@dataclass(frozen=True)
class Plan:
    """Who the caller is for quotas: their limits and the tiers that gave them."""

    limits: Limits
    tiers: tuple[str, ...]  # () = the defaults


def limits_for(groups: list[str], defaults: Limits, tiers: dict[str, Limits]) -> Plan:
    matched = tuple(sorted(g for g in set(groups) if g in tiers))
    if not matched:
        return Plan(defaults, ())
    limits = tiers[matched[0]]
    for group in matched[1:]:
        limits = limits.most_generous(tiers[group])
    return Plan(limits, matched)


@dataclass(frozen=True)
class Usage:
    """A user's counter item as read: slots held, and the bucket's theoretical arrival time."""

    active_jobs: int = 0
    tat_ms: int = 0

    def tokens(self, limits: Limits, now_ms: int) -> int:
        """Whole tokens in the bucket at ``now_ms``."""
        t = limits.interval_ms
        return max(0, min(limits.submit_burst, (now_ms + limits.submit_burst * t - max(self.tat_ms, now_ms)) // t))

    def next_token_ms(self, limits: Limits, now_ms: int) -> int | None:
        """Milliseconds until the bucket gains a token; None when it is full."""
        tokens = self.tokens(limits, now_ms)
        if tokens >= limits.submit_burst:
            return None
        t = limits.interval_ms
        return max(1, self.tat_ms - (limits.submit_burst - tokens - 1) * t - now_ms)

    def free_slots(self, limits: Limits) -> int:
        return max(0, limits.max_active_jobs - self.active_jobs)

    def after_charge(self, limits: Limits, now_ms: int, count: int = 1) -> Usage:
        return Usage(self.active_jobs + count, max(self.tat_ms, now_ms) + count * limits.interval_ms)


@dataclass(frozen=True)
class Charge:
    """``count`` admitted submissions (1, or a batch's jobs), as the store writes them with the
    job (in one transaction) or ahead of a batch's records.

    ``idle`` (the bucket was full when read: ``tat < now``): ``tat := now + count * T``, on
    condition that it is still full. Otherwise ``tat := tat + count * T`` on condition ``now <=
    tat <= tat_limit_ms`` (= ``now + (burst - count) * T``: ``count`` tokens are left). Both
    forms also need ``active <= max_active_jobs - count`` and add ``count`` to it. A read that
    went stale fails the condition; the store then reports the item as it is now and the
    caller decides again.
    """

    owner_id: str
    now_ms: int
    interval_ms: int
    idle: bool
    tat_limit_ms: int
    max_active_jobs: int
    count: int = 1

    @property
    def most_active_before(self) -> int:
        """The most unfinished jobs the owner may hold for this charge to fit."""
        return self.max_active_jobs - self.count


def largest_batch(limits: Limits) -> int:
    """The most jobs one request can ever hold under ``limits`` (with an empty counter)."""
    return min(limits.max_active_jobs, limits.submit_burst)


def admit(owner_id: str, usage: Usage, limits: Limits, now_ms: int, count: int = 1) -> Charge:
    """The charge for ``count`` more jobs, or TooManyRequests (the active-jobs cap first:
    waiting for tokens would not help a user who is at the cap).

    ``count`` must be at most :func:`largest_batch` (the caller refuses bigger batches: no
    wait would let them in)."""
    if count < 1 or count > largest_batch(limits):
        raise ValueError(f"count must be from 1 to {largest_batch(limits)}, got {count}")
    if usage.active_jobs + count > limits.max_active_jobs:
        wanted = "" if count == 1 else f" and this request holds {count}"
        raise TooManyRequests(
            f"you have {usage.active_jobs} unfinished jobs{wanted}, the most allowed at once is "
            f"{limits.max_active_jobs}; submit more once some have finished (or cancel pending ones)",
            "quota_exceeded",
            QUOTA_RETRY_AFTER_SECONDS,
            usage,
        )
    t = limits.interval_ms
    limit = now_ms + (limits.submit_burst - count) * t
    if usage.tat_ms > limit:
        wait_ms = usage.tat_ms - limit
        raise TooManyRequests(
            f"too many submissions: at most {limits.submit_burst} at once, then "
            f"{limits.submit_rate_per_second:g} per second; retry in {math.ceil(wait_ms / 1000)} s",
            "rate_limited",
            max(1, math.ceil(wait_ms / 1000)),
            usage,
        )
    return Charge(owner_id, now_ms, t, usage.tat_ms < now_ms, limit, limits.max_active_jobs, count)
