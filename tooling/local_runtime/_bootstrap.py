"""The inside of a local Lambda execution environment (runs in the worker process, stdlib only).

Started by ``functions.ExecutionEnvironment`` as
``python -I -u _bootstrap.py IN_FD OUT_FD TASK_ROOT HANDLER``. Like the Lambda Python
runtime it puts the unpacked code first on ``sys.path``, works in the task root, imports the
handler once (the init phase), then serves invocations one at a time: requests arrive as JSON
lines on ``IN_FD``, answers leave as JSON lines on ``OUT_FD``. stdout and stderr are the
function's log (the parent ships them to the console and CloudWatch Logs).
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any

_request_id = ""


class LambdaContext:
    """The context object of the Lambda Python runtime (same attributes, same types)."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        # A string, as in the real runtime (it comes from AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = None
        self.identity = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg: str) -> None:
        sys.stdout.write(msg)
        sys.stdout.flush()


class _LambdaLogHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """The runtime's root handler: one line per record, newlines as \\r (one CloudWatch event)."""

    def format(self, record: logging.LogRecord) -> str:
        record.aws_request_id = _request_id
        return super().format(record).replace("\n", "\r")


def _install_logging() -> None:
    handler = _LambdaLogHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _user_frames(exc: BaseException) -> traceback.StackSummary:
    """The traceback without this bootstrap's and importlib's frames (as Lambda shows it)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return traceback.StackSummary.from_list(
        [f for f in frames if f.filename != __file__ and "importlib" not in f.filename]
    )


def _error(exc: BaseException, error_type: str | None = None, message: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": _request_id,
        "stackTrace": traceback.format_list(_user_frames(exc)),
    }


def _log_error(err: dict[str, Any], exc: BaseException) -> None:
    text = f"[ERROR] {err['errorType']}: {err['errorMessage']}\n" + "".join(traceback.format_exception(exc)).rstrip(
        "\n"
    )
    sys.stdout.write(text.replace("\n", "\r") + "\n")
    sys.stdout.flush()


def _load_handler(name: str) -> Any:
    module_name, _, function_name = name.rpartition(".")
    if not module_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{name}': not enough values to unpack")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    handler = getattr(module, function_name, None)
    if handler is None:
        raise _InitError("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def main(argv: list[str]) -> int:
    global _request_id
    in_fd, out_fd, task_root, handler_name = int(argv[0]), int(argv[1]), argv[2], argv[3]
    requests = os.fdopen(in_fd, "r", encoding="utf-8")
    answers = os.fdopen(out_fd, "w", encoding="utf-8")

    def send(message: dict[str, Any]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    sys.path.insert(0, task_root)
    os.chdir(task_root)
    _install_logging()
    started = time.monotonic()
    try:
        handler = _load_handler(handler_name)
    except Exception as exc:  # noqa: BLE001 - any init failure is the function's error
        err = _error(exc, getattr(exc, "error_type", None))
        _log_error(err, exc)
        send({"type": "init_error", "error": err})
        return 1
    send({"type": "ready", "init_ms": (time.monotonic() - started) * 1000})

    for line in requests:  # ends when the parent closes the pipe
        request = json.loads(line)
        _request_id = request["request_id"]
        os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
        context = LambdaContext(_request_id, request["deadline_ms"], request["invoked_function_arn"])
        try:
            result = handler(request["event"], context)
        except Exception as exc:  # noqa: BLE001 - any handler failure is the invocation's error
            exc.__traceback__ = exc.__traceback__.tb_next if exc.__traceback__ else None  # drop this frame
            err = _error(exc)
            _log_error(err, exc)
            send({"type": "error", "error": err})
            continue
        try:
            payload = json.dumps(result, default=_default)
        except (TypeError, ValueError) as exc:
            err = _error(exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}")
            _log_error(err, exc)
            send({"type": "error", "error": err})
            continue
        send({"type": "result", "payload": payload})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
