"""The actions a job can run, registered by decorator, and the result formats each produces.

An action is a pure function of the job's inputs that computes a structured value (what
the JSON result holds); the registration says how that value is written as text (required:
``text`` is the default format) and, where a table makes sense, as CSV rows (header first).
Every action produces ``json``. To add one::

    def _shout_text(r: dict[str, str]) -> str:
        return f"{r['context1']}\\n{r['context2']}\\n"

    @action("shout", "Upper-cases context1 and context2", text=_shout_text)
    def shout(job: ActionInput) -> dict[str, str]:
        return {"context1": job.context1.upper(), "context2": job.context2.upper()}

and ``csv=`` a function of the value that returns rows (header first) to produce CSV too.
``check=`` a function of (context1, context2) that raises ``ActionError`` for inputs the action
cannot take: ``POST /job`` then refuses them (400 ``invalid_context``) instead of queueing a job
that would fail.

A long action reports progress with ``job.report(fraction, message)`` (jobs.progress): the
worker writes it to the job about once a second, and a report is where a running job is
stopped (cancelled, or out of time) by an exception the action should let through.

Raise ``ActionError`` for input the action cannot handle: the job is retried and, on the
queue's last allowed attempt, marked FAILED with the error's message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jobs.errors import ActionError, ValidationError
from jobs.formats import DEFAULT_FORMAT, ResultFormat, render_csv, render_json
from jobs.progress import ignore_progress

T = TypeVar("T")
Rows = Sequence[Sequence[Any]]


@dataclass(frozen=True)
class ActionInput:
    job_id: str
    name: str
    action: str
    context1: str
    context2: str
    created_at: str
    format: ResultFormat = DEFAULT_FORMAT
    # report(fraction 0..1, short message): the worker's jobs.progress.ProgressReporter
    report: Callable[[float, str], None] = field(default=ignore_progress, compare=False, repr=False)


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    formats: tuple[ResultFormat, ...]  # what it can produce: what a listing of the actions shows
    compute: Callable[[ActionInput], Any]
    text: Callable[[Any], str]
    csv_rows: Callable[[Any], Rows] | None = None
    check: Callable[[str, str], None] | None = None  # raises ActionError for inputs it cannot take

    def render(self, job: ActionInput) -> str:
        """The result of ``job`` in the format it asked for."""
        if job.format not in self.formats:
            raise ActionError(
                f"action {self.name!r} cannot produce {job.format.value}; it produces {', '.join(self.formats)}"
            )
        value = self.compute(job)
        if job.format is ResultFormat.JSON:
            return render_json(value)
        if job.format is ResultFormat.CSV and self.csv_rows is not None:
            return render_csv(self.csv_rows(value))
        return self.text(value)


_REGISTRY: dict[str, Action] = {}


def action(
    name: str,
    description: str,
    *,
    text: Callable[[T], str],
    csv: Callable[[T], Rows] | None = None,
    check: Callable[[str, str], None] | None = None,
) -> Callable[[Callable[[ActionInput], T]], Callable[[ActionInput], T]]:
    """Register ``fn`` as the action ``name``: it produces text and json, and csv when given ``csv``;
    ``check`` vets its inputs at submit."""

    def register(fn: Callable[[ActionInput], T]) -> Callable[[ActionInput], T]:
        if name in _REGISTRY:
            raise ValueError(f"action {name!r} is already registered")
        formats = (ResultFormat.TEXT, ResultFormat.JSON) + ((ResultFormat.CSV,) if csv is not None else ())
        _REGISTRY[name] = Action(name, description, formats, fn, text, csv, check)
        return fn

    return register


def known_actions() -> list[str]:
    return sorted(_REGISTRY)


def all_actions() -> list[Action]:
    """Every registered action, by name (name, description, formats)."""
    return [_REGISTRY[name] for name in known_actions()]


def action_formats() -> dict[str, tuple[ResultFormat, ...]]:
    """The formats each action can produce, by action name."""
    return {a.name: a.formats for a in all_actions()}


def get_action(name: str) -> Action:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ActionError(f"unknown action {name!r}; known actions: {', '.join(known_actions())}") from None


def run_action(job: ActionInput) -> str:
    return get_action(job.action).render(job)


def check_inputs(action_name: str, context1: str, context2: str) -> None:
    """Refuse (400 ``invalid_context``) inputs the action says it cannot take; an unknown
    action is left to the caller's own check."""
    registered = _REGISTRY.get(action_name)
    if registered is None or registered.check is None:
        return
    try:
        registered.check(context1, context2)
    except ActionError as exc:
        raise ValidationError(f"action {action_name!r}: {exc}", "invalid_context") from None


_WORD = re.compile(r"\w+", re.UNICODE)


def _stats(text: str) -> dict[str, Any]:
    return {
        "text": text,
        "characters": len(text),
        "words": len(_WORD.findall(text)),
        "lines": text.count("\n") + 1 if text else 0,
    }


def _stats_line(stats: dict[str, Any]) -> str:
    return f"{stats['characters']} characters, {stats['words']} words, {stats['lines']} lines"


def _process_data_text(r: dict[str, Any]) -> str:
    c1, c2 = r["context1"], r["context2"]
    return (
        f"Job report: {r['name']}\n"
        f"job_id: {r['job_id']}\n"
        f"created: {r['created_at']}\n"
        f"\n"
        f"context1 ({_stats_line(c1)}):\n{c1['text']}\n"
        f"\n"
        f"context2 ({_stats_line(c2)}):\n{c2['text']}\n"
        f"\n"
        f"combined: {r['combined']}\n"
    )


@action(
    "process-data",
    "A report that combines context1 and context2, with statistics of each",
    text=_process_data_text,
)
def process_data(job: ActionInput) -> dict[str, Any]:
    return {
        "name": job.name,
        "job_id": job.job_id,
        "created_at": job.created_at,
        "context1": _stats(job.context1),
        "context2": _stats(job.context2),
        "combined": f"{job.context1} {job.context2}",
    }


def _demo_text(r: dict[str, str]) -> str:
    return f"{r['text']}\n"


@action("demo", "Greets: joins context1 and context2 (the README's curl example)", text=_demo_text)
def demo(job: ActionInput) -> dict[str, str]:
    return {"text": f"{job.context1} {job.context2}"}


TOP_WORDS = 20


def _word_count_text(r: dict[str, Any]) -> str:
    lines = [f"total words: {r['total_words']}", f"distinct words: {r['distinct_words']}", ""]
    lines += [f"{w['count']:>8}  {w['word']}" for w in r["top_words"]]
    return "\n".join(lines) + "\n"


def _word_count_rows(r: dict[str, Any]) -> Rows:
    return [("word", "count"), *((w["word"], w["count"]) for w in r["top_words"])]


@action(
    "word-count",
    f"Counts the words of context1 + context2 and lists the {TOP_WORDS} most frequent",
    text=_word_count_text,
    csv=_word_count_rows,
)
def word_count(job: ActionInput) -> dict[str, Any]:
    words = [w.lower() for w in _WORD.findall(f"{job.context1}\n{job.context2}")]
    counts = Counter(words)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_WORDS]
    return {
        "total_words": len(words),
        "distinct_words": len(counts),
        "top_words": [{"word": word, "count": count} for word, count in top],
    }


_CHECKED = ("context1", "context2")


def _checksum_text(r: dict[str, str]) -> str:
    return "".join(f"sha256({field}) = {r[field]}\n" for field in _CHECKED)


def _checksum_rows(r: dict[str, str]) -> Rows:
    return [("input", "sha256"), *((field, r[field]) for field in _CHECKED)]


@action("checksum", "SHA-256 of context1 and of context2 (UTF-8)", text=_checksum_text, csv=_checksum_rows)
def checksum(job: ActionInput) -> dict[str, str]:
    return {
        "algorithm": "sha256",
        "context1": hashlib.sha256(job.context1.encode()).hexdigest(),
        "context2": hashlib.sha256(job.context2.encode()).hexdigest(),
    }


def _sorted_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(sorted(dict(pairs).items()))  # a repeated key keeps its last value, as json.loads does


@action(
    "json-format",
    "Validates context1 as JSON and pretty-prints it (sorted keys); fails on invalid JSON",
    text=render_json,
)
def json_format(job: ActionInput) -> Any:
    try:
        return json.loads(job.context1, object_pairs_hook=_sorted_object)
    except json.JSONDecodeError as exc:
        raise ActionError(f"context1 is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


# ---- a long action that reports progress ---------------------------------------------------

# hash-chain's work: at most this many rounds (about 10 s at 1 M rounds/s on a 2025 laptop core;
# a 512 MB Lambda is slower, see the README). The worker stops it anyway when its invocation is
# nearly over (jobs.progress.OutOfTime), so a deployment with a short worker timeout gets a
# failed attempt with a reason, never a timed-out batch.
HASH_CHAIN_MAX_ROUNDS = 10_000_000
HASH_CHAIN_STEP = 20_000  # rounds between two progress reports (a few tens of milliseconds)
HASH_CHAIN_CHECKPOINTS = 10  # digests kept along the chain (every tenth of it)


def _hash_chain_rounds(context1: str, context2: str) -> int:
    raw = context2.strip().replace("_", "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise ActionError(f"context2 must be the number of rounds, a whole number from 1 to {HASH_CHAIN_MAX_ROUNDS:,}")
    rounds = int(raw)
    if not 1 <= rounds <= HASH_CHAIN_MAX_ROUNDS:
        raise ActionError(f"context2 asks for {rounds:,} rounds; from 1 to {HASH_CHAIN_MAX_ROUNDS:,} are allowed")
    return rounds


def _check_hash_chain(context1: str, context2: str) -> None:
    _hash_chain_rounds(context1, context2)


def _hash_chain_text(r: dict[str, Any]) -> str:
    lines = [f"sha256^{r['rounds']}(context1) = {r['digest']}", ""]
    lines += [f"{c['round']:>12}  {c['digest']}" for c in r["checkpoints"]]
    return "\n".join(lines) + "\n"


def _hash_chain_rows(r: dict[str, Any]) -> Rows:
    return [("round", "sha256"), *((c["round"], c["digest"]) for c in r["checkpoints"])]


@action(
    "hash-chain",
    "Iterated SHA-256 of context1, context2 times (1 to 10,000,000 rounds), with checkpoints; reports progress",
    text=_hash_chain_text,
    csv=_hash_chain_rows,
    check=_check_hash_chain,
)
def hash_chain(job: ActionInput) -> dict[str, Any]:
    """Round 1 is SHA-256 of context1 (UTF-8), each next round SHA-256 of the previous digest.

    Sequential work (no round can start before the one before it), so its progress is simply
    rounds done / rounds asked; a digest every tenth of the chain lets anyone check a part of it
    without redoing the rest.
    """
    rounds = _hash_chain_rounds(job.context1, job.context2)
    every = -(-rounds // HASH_CHAIN_CHECKPOINTS)  # at most HASH_CHAIN_CHECKPOINTS, the last one at the end
    sha256 = hashlib.sha256
    digest = sha256(job.context1.encode()).digest()
    checkpoints: list[dict[str, Any]] = []
    done = 1
    job.report(done / rounds, f"{done:,} of {rounds:,} rounds")
    while done < rounds:
        stop = min(rounds, (done // HASH_CHAIN_STEP + 1) * HASH_CHAIN_STEP, (done // every + 1) * every)
        for _ in range(stop - done):
            digest = sha256(digest).digest()
        done = stop
        if done % every == 0 and done < rounds:
            checkpoints.append({"round": done, "digest": digest.hex()})
        if done % HASH_CHAIN_STEP == 0 or done == rounds:
            job.report(done / rounds, f"{done:,} of {rounds:,} rounds")
    checkpoints.append({"round": rounds, "digest": digest.hex()})
    return {"algorithm": "sha256", "rounds": rounds, "digest": digest.hex(), "checkpoints": checkpoints}
