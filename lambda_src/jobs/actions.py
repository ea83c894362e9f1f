"""The actions a job can run, registered by decorator.

An action is a pure function of the job's inputs that returns the text stored as the
job's result in S3. To add one::

    @action("shout", "Upper-cases context1 and context2")
    def shout(job: ActionInput) -> str:
        return f"{job.context1.upper()}\\n{job.context2.upper()}\\n"

Raise ``ActionError`` for input the action cannot handle: the job is retried and, on the
queue's last allowed attempt, marked FAILED with the error's message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from jobs.errors import ActionError


@dataclass(frozen=True)
class ActionInput:
    job_id: str
    name: str
    action: str
    context1: str
    context2: str
    created_at: str


ActionFn = Callable[[ActionInput], str]


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    run: ActionFn


_REGISTRY: dict[str, Action] = {}


def action(name: str, description: str) -> Callable[[ActionFn], ActionFn]:
    """Register ``fn`` as the action ``name``."""

    def register(fn: ActionFn) -> ActionFn:
        if name in _REGISTRY:
            raise ValueError(f"action {name!r} is already registered")
        _REGISTRY[name] = Action(name, description, fn)
        return fn

    return register


def known_actions() -> list[str]:
    return sorted(_REGISTRY)


def get_action(name: str) -> Action:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ActionError(f"unknown action {name!r}; known actions: {', '.join(known_actions())}") from None


def run_action(job: ActionInput) -> str:
    return get_action(job.action).run(job)


_WORD = re.compile(r"\w+", re.UNICODE)


def _stats(text: str) -> str:
    words = _WORD.findall(text)
    lines = text.count("\n") + 1 if text else 0
    return f"{len(text)} characters, {len(words)} words, {lines} lines"


@action("process-data", "A text report that combines context1 and context2, with statistics of each")
def process_data(job: ActionInput) -> str:
    combined = f"{job.context1} {job.context2}"
    return (
        f"Job report: {job.name}\n"
        f"job_id: {job.job_id}\n"
        f"created: {job.created_at}\n"
        f"\n"
        f"context1 ({_stats(job.context1)}):\n{job.context1}\n"
        f"\n"
        f"context2 ({_stats(job.context2)}):\n{job.context2}\n"
        f"\n"
        f"combined: {combined}\n"
    )


@action("demo", "Greets: joins context1 and context2 (the README's curl example)")
def demo(job: ActionInput) -> str:
    return f"{job.context1} {job.context2}\n"


@action("word-count", "Counts the words of context1 + context2 and lists the 20 most frequent")
def word_count(job: ActionInput) -> str:
    words = [w.lower() for w in _WORD.findall(f"{job.context1}\n{job.context2}")]
    counts = Counter(words)
    lines = [f"total words: {len(words)}", f"distinct words: {len(counts)}", ""]
    lines += [f"{count:>8}  {word}" for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]]
    return "\n".join(lines) + "\n"


@action("checksum", "SHA-256 of context1 and of context2 (UTF-8)")
def checksum(job: ActionInput) -> str:
    return (
        f"sha256(context1) = {hashlib.sha256(job.context1.encode()).hexdigest()}\n"
        f"sha256(context2) = {hashlib.sha256(job.context2.encode()).hexdigest()}\n"
    )


@action("json-format", "Validates context1 as JSON and pretty-prints it (sorted keys); fails on invalid JSON")
def json_format(job: ActionInput) -> str:
    try:
        document = json.loads(job.context1)
    except json.JSONDecodeError as exc:
        raise ActionError(f"context1 is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
