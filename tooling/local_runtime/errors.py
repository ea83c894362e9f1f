"""Errors of the local Lambda runtime."""

from __future__ import annotations


class LocalRuntimeError(RuntimeError):
    """The local runtime cannot start or run what was deployed; the message says why and what to do."""


class CodeNotFoundError(LocalRuntimeError):
    """No zip in the zip directory has the deployed function's CodeSha256."""
