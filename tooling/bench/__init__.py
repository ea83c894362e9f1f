"""``invoke bench``: measure the local stack against a raw-boto3 floor on the same backend.

Figures (issue 6): floor vs stack throughput and latency, GET /jobs with an empty vs a big
table, cold start of each handler vs ``import boto3``, zip sizes, AWS requests per job and a
$/million-jobs estimate. ``run(BenchConfig(...))`` does it all and writes
``results.json``, ``results.md`` and ``latency.png`` to the output directory.
"""

from tooling.bench.runner import DEFAULT_OUT_DIR, BenchConfig, config_from_flags, run

__all__ = ["DEFAULT_OUT_DIR", "BenchConfig", "config_from_flags", "run"]
