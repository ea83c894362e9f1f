"""Test Lambda handlers, zipped into the functions the local runtime tests deploy to moto.

Not imported by the tests: this file is the content of the test zips.
"""

import json
import os
import sys
import time

import boto3

STATE = {"invocations": 0, "pid": os.getpid(), "loaded_at": time.time()}
ENV_KEYS = (
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY_ID",
    "GREETING",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "_X_AMZN_TRACE_ID",
)


def _caller_arn():
    """Who the function's credentials say it is (STS answers whatever the role allows)."""
    return boto3.client("sts").get_caller_identity()["Arn"]


def echo(event, context):
    STATE["invocations"] += 1
    print(f"echo says hello from {context.function_name} ({context.aws_request_id})")
    print("echo writes to stderr too", file=sys.stderr)
    body = {
        "event": event,
        "pid": os.getpid(),
        "invocations": STATE["invocations"],
        "cwd": os.getcwd(),
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
        "caller": _caller_arn(),
        "context": {
            "function_name": context.function_name,
            "aws_request_id": context.aws_request_id,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
        },
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Echo": "yes"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps(body),
    }


def fail(event, context):
    raise ValueError("boom from the handler")


def sleep(event, context):
    print(f"sleeping in {os.getpid()}")
    time.sleep(float((event or {}).get("seconds", 5)))
    return {"slept": True, "pid": os.getpid()}


def crash(event, context):
    print("about to crash")
    os._exit(3)


def bad_response(event, context):
    return {"statusCode": 200, "body": {"not": "a string"}}


def worker(event, context):
    """SQS worker: records the batch in the ledger bucket, then fails/crashes as the bodies say."""
    started = time.time()
    records = event["Records"]
    actions = [json.loads(r["body"]).get("action", "ok") for r in records]
    if "sleep" in actions:
        time.sleep(0.6)
    queue = records[0]["eventSourceARN"].rsplit(":", 1)[-1]
    entry = {
        "start": started,
        "end": time.time(),
        "request_id": context.aws_request_id,
        "pid": os.getpid(),
        "records": [
            {"messageId": r["messageId"], "action": a, "receiveCount": int(r["attributes"]["ApproximateReceiveCount"])}
            for r, a in zip(records, actions, strict=True)
        ],
        "sample": records[0],
    }
    boto3.client("s3").put_object(
        Bucket=os.environ["LEDGER_BUCKET"], Key=f"{queue}/{context.aws_request_id}.json", Body=json.dumps(entry)
    )
    failures = []
    for record, action in zip(records, actions, strict=True):
        count = int(record["attributes"]["ApproximateReceiveCount"])
        if action == "crash_once" and count == 1:
            print("worker crashing mid-batch")
            os._exit(7)
        if (action == "fail_once" and count == 1) or action == "poison":
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
