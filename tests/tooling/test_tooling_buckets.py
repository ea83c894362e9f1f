"""Emptying a versioned results bucket (what `invoke destroy` does before terraform destroy)."""

from __future__ import annotations

from tooling.buckets import bucket_exists, empty_bucket


def test_empty_bucket_removes_every_version_and_delete_marker(access, unique):
    s3 = access.client("s3")
    bucket = f"results-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for n in range(5):
        key = f"owner/2025-07-14/job-{n}.txt"
        s3.put_object(Bucket=bucket, Key=key, Body=b"v1")
        s3.put_object(Bucket=bucket, Key=key, Body=b"v2")
    s3.delete_object(Bucket=bucket, Key="owner/2025-07-14/job-0.txt")  # -> a delete marker
    listing = s3.list_object_versions(Bucket=bucket)
    assert len(listing["Versions"]) == 10 and len(listing["DeleteMarkers"]) == 1

    seen: list[int] = []
    assert empty_bucket(s3, bucket, progress=seen.append) == 11
    assert seen == [11]
    listing = s3.list_object_versions(Bucket=bucket)
    assert listing.get("Versions", []) == [] and listing.get("DeleteMarkers", []) == []
    s3.delete_bucket(Bucket=bucket)  # only possible when truly empty
    assert bucket_exists(s3, bucket) is False


def test_empty_bucket_pages_past_one_thousand(access, unique):
    s3 = access.client("s3")
    bucket = f"results-many-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for n in range(1005):
        s3.put_object(Bucket=bucket, Key=f"k/{n:05d}", Body=b"x")
    assert empty_bucket(s3, bucket) == 1005
    assert s3.list_object_versions(Bucket=bucket).get("Versions", []) == []


def test_empty_bucket_on_an_empty_bucket_deletes_nothing(access, unique):
    s3 = access.client("s3")
    bucket = f"results-empty-{unique}"
    s3.create_bucket(Bucket=bucket)
    assert empty_bucket(s3, bucket) == 0
    assert bucket_exists(s3, bucket) is True
