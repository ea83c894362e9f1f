"""Result formats: what a job's result can be stored as, and how each is written (pure: no I/O).

A job asks for one format (``text`` unless it says otherwise); its action declares the
formats it can produce (``jobs.actions``). The format decides the result object's extension
and Content-Type; the key keeps its layout (``<owner>/<YYYY-MM-DD>/<job_id>.<extension>``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any


class ResultFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    CSV = "csv"

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self]

    @property
    def content_type(self) -> str:
        """The stored object's Content-Type (every result is UTF-8)."""
        return _MEDIA_TYPES[self] + "; charset=utf-8"


DEFAULT_FORMAT = ResultFormat.TEXT

_EXTENSIONS = {ResultFormat.TEXT: "txt", ResultFormat.JSON: "json", ResultFormat.CSV: "csv"}
_MEDIA_TYPES = {ResultFormat.TEXT: "text/plain", ResultFormat.JSON: "application/json", ResultFormat.CSV: "text/csv"}


def render_json(document: Any) -> str:
    """A JSON document, indented, UTF-8 as is (no \\u escapes), with a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_csv(rows: Sequence[Sequence[Any]]) -> str:
    """RFC 4180 CSV (CRLF line ends, quoting where needed); the first row is the header."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()
