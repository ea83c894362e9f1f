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

Raise ``ActionError`` for input the action cannot handle: the job is retried and, on the
queue's last allowed attempt, marked FAILED with the error's message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from jobs.errors import ActionError
from jobs.formats import DEFAULT_FORMAT, ResultFormat, render_csv, render_json

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


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    formats: tuple[ResultFormat, ...]  # what it can produce: what a listing of the actions shows
    compute: Callable[[ActionInput], Any]
    text: Callable[[Any], str]
    csv_rows: Callable[[Any], Rows] | None = None

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
    name: str, description: str, *, text: Callable[[T], str], csv: Callable[[T], Rows] | None = None
) -> Callable[[Callable[[ActionInput], T]], Callable[[ActionInput], T]]:
    """Register ``fn`` as the action ``name``: it produces text and json, and csv when given ``csv``."""

    def register(fn: Callable[[ActionInput], T]) -> Callable[[ActionInput], T]:
        if name in _REGISTRY:
            raise ValueError(f"action {name!r} is already registered")
        formats = (ResultFormat.TEXT, ResultFormat.JSON) + ((ResultFormat.CSV,) if csv is not None else ())
        _REGISTRY[name] = Action(name, description, formats, fn, text, csv)
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
