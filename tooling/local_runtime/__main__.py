"""``python -m tooling.local_runtime``: run the local runtime in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from tooling.embedded_backend import REGION
from tooling.local_runtime.errors import LocalRuntimeError
from tooling.local_runtime.runtime import DEFAULT_ZIP_DIR, LocalRuntime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tooling.local_runtime",
        description="Run the Lambda functions, REST API and SQS event source mappings deployed to the "
        "embedded AWS backend (moto), without Docker.",
    )
    parser.add_argument(
        "--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="the backend's URL (default: $AWS_ENDPOINT_URL)"
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", REGION), help="AWS region")
    parser.add_argument("--zip-dir", default=str(DEFAULT_ZIP_DIR), help="directory of the deployed zips")
    parser.add_argument("--rest-api", default=None, help="REST API id or name (default: the only one)")
    parser.add_argument("--stage", default=None, help="stage for the printed URL (default: the first)")
    parser.add_argument("--port", type=int, default=0, help="front port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="environments per function without reserved concurrency"
    )
    parser.add_argument(
        "--refresh-interval", type=float, default=2.0, help="seconds between re-reads of the deployment (0: never)"
    )
    args = parser.parse_args(argv)
    if not args.endpoint:
        parser.error("no backend: pass --endpoint or set AWS_ENDPOINT_URL")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime = LocalRuntime(
        args.endpoint,
        region=args.region,
        zip_dir=args.zip_dir,
        rest_api=args.rest_api,
        stage=args.stage,
        port=args.port,
        default_concurrency=args.concurrency,
        refresh_interval=args.refresh_interval or None,
    )
    try:
        runtime.start()
    except LocalRuntimeError as exc:
        print(f"local runtime: {exc}", file=sys.stderr)
        return 1
    try:
        runtime.logs.say("running; Ctrl-C stops")
        while not stop.wait(1.0):
            pass
    finally:
        runtime.logs.say("stopping")
        runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
