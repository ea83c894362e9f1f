"""Emptying a versioned S3 bucket: every object version and every delete marker.

Terraform cannot delete a non-empty bucket (unless ``force_destroy``), and on a versioned
bucket "empty" means no versions and no delete markers either. ``invoke destroy`` calls
:func:`empty_bucket` first when the environment allows the results to be thrown away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tooling.errors import OperatorError

_BATCH = 1000  # DeleteObjects' limit


def empty_bucket(s3: Any, bucket: str, progress: Callable[[int], None] | None = None, max_rounds: int = 20) -> int:
    """Delete every version and delete marker in ``bucket``; returns how many were deleted.

    Pages through ``ListObjectVersions`` and deletes in batches of 1,000; repeats until a
    listing comes back empty (something may still be writing), at most ``max_rounds`` times.
    """
    deleted = 0
    for _ in range(max_rounds):
        batch: list[dict[str, str]] = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                batch.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
        if not batch:
            return deleted
        for start in range(0, len(batch), _BATCH):
            chunk = batch[start : start + _BATCH]
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                version = f" (version {first['VersionId']})" if first.get("VersionId") else ""
                raise OperatorError(
                    f"could not delete s3://{bucket}/{first.get('Key')}{version}: "
                    f"{first.get('Code')} {first.get('Message')}",
                    "check your permissions on the bucket (s3:DeleteObjectVersion) and retry",
                )
            deleted += len(chunk)
            if progress:
                progress(deleted)
    raise OperatorError(
        f"s3://{bucket} still had objects after {max_rounds} rounds of deletion",
        "stop whatever is writing to it (the worker) and retry",
    )


def bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchBucket", "NotFound"}:
            return False
        raise
    return True


def is_empty(s3: Any, bucket: str) -> bool:
    """No object versions and no delete markers."""
    page = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
    return not page.get("Versions") and not page.get("DeleteMarkers")
