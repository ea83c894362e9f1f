"""Cold start: importing each handler module as deployed, in a fresh process, vs ``import boto3``.

Each measurement is a new ``python -I`` process whose working directory and first
``sys.path`` entry is the unpacked zip (as Lambda's runtime does), with a Lambda-like
environment: the function's deployed variables plus ``AWS_LAMBDA_FUNCTION_NAME``,
``LAMBDA_TASK_ROOT`` (without it the X-Ray SDK builds a sampling client at import, ~110 ms),
``_X_AMZN_TRACE_ID``, ``AWS_EXECUTION_ENV`` and friends. The figure is the time of the import
alone (``time.perf_counter`` around ``importlib.import_module``), which includes the
module-level setup (settings, Logger/Tracer/Metrics, the resolver). Variants are interleaved
run by run after one untimed pass (file cache warm, as on a reused Lambda host), and the
median is reported.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tooling.bench.stats import median, ratio

_PROBE = """
import importlib, json, sys, time
root, module = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
t0 = time.perf_counter()
importlib.import_module(module)
t1 = time.perf_counter()
print(json.dumps({"ms": (t1 - t0) * 1000.0, "modules": len(sys.modules)}))
"""


def lambda_environment(function: dict[str, Any], task_root: Path, region: str, endpoint: str) -> dict[str, str]:
    """The environment a Lambda execution environment would have (no variable of this shell)."""
    name = function["FunctionName"]
    memory = str(function.get("MemorySize", 128))
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        **(function.get("Environment") or {}).get("Variables", {}),
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d") + f"/[$LATEST]{secrets.token_hex(16)}",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "_HANDLER": function["Handler"],
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_X_AMZN_TRACE_ID": f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
        f"Parent={secrets.token_hex(8)};Sampled=0",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_SESSION_TOKEN": "test",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    return env


def _probe(task_root: Path, module: str, env: dict[str, str]) -> float:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE, str(task_root), module],
        cwd=task_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"importing {module} from {task_root} failed: {' | '.join(tail)}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["ms"])


def measure(
    zips: dict[str, Path],
    functions: dict[str, dict[str, Any]],
    region: str,
    endpoint: str,
    runs: int = 7,
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Median import times (ms) per function, tracing on and off, and ``import boto3``; zip sizes.

    ``zips`` and ``functions`` are keyed by label (api, worker); ``functions`` holds each
    deployed function's configuration (GetFunctionConfiguration).
    """
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        variants: list[tuple[str, Path, str, dict[str, str]]] = []
        for label, zip_path in zips.items():
            root = Path(tmp) / label
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(root)
            config = functions[label]
            module = config["Handler"].rsplit(".", 1)[0]
            traced = lambda_environment(config, root, region, endpoint)
            traced.pop("POWERTOOLS_TRACE_DISABLED", None)
            untraced = {**traced, "POWERTOOLS_TRACE_DISABLED": "true"}
            variants.append((f"{label}_traced", root, module, traced))
            variants.append((f"{label}_untraced", root, module, untraced))
            if label == next(iter(zips)):
                variants.insert(0, ("boto3", root, "boto3", traced))
        samples: dict[str, list[float]] = {name: [] for name, *_ in variants}
        for _name, root, module, env in variants:  # one untimed pass: page cache and .pyc-less reads warm
            _probe(root, module, env)
        for run in range(runs):
            for name, root, module, env in variants:
                samples[name].append(_probe(root, module, env))
            out(f"  cold start run {run + 1}/{runs}: " + ", ".join(f"{n} {s[-1]:.0f} ms" for n, s in samples.items()))
    medians = {name: round(median(values), 1) for name, values in samples.items()}
    result: dict[str, Any] = {"runs": runs, "median_ms": medians, "samples_ms": samples, "functions": {}}
    for label, zip_path in zips.items():
        result["functions"][label] = {
            "zip_bytes": zip_path.stat().st_size,
            "import_traced_ms": medians[f"{label}_traced"],
            "import_untraced_ms": medians[f"{label}_untraced"],
            "ratio_traced_vs_boto3": ratio(medians[f"{label}_traced"], medians["boto3"]),
            "ratio_untraced_vs_boto3": ratio(medians[f"{label}_untraced"], medians["boto3"]),
        }
    result["import_boto3_ms"] = medians["boto3"]
    return result


def environment_note() -> str:
    return (
        "fresh `python -I` per sample, cwd and sys.path[0] = unpacked zip, Lambda-like environment "
        "(LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, _X_AMZN_TRACE_ID, deployed variables); "
        f"python {sys.version.split()[0]} on {os.cpu_count()} cores"
    )
