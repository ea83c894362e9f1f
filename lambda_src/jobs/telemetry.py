"""Logger, Tracer and Metrics: one of each per process (module singletons).

The Tracer patches botocore only (the one library the functions call through), instead of
every module X-Ray knows: that keeps the cold start short.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()
