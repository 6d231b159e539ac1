"""S3 helpers shared by the S3 actions."""

from __future__ import annotations

from typing import Any


def buckets_in_region(s3: Any, region: str | None) -> list[dict[str, Any]]:
    """Every bucket of the account in ``region`` (``None``: in every region): paginated ListBuckets
    filtered by BucketRegion, so a run over several regions reports each bucket once. ListBuckets
    names only the caller's own buckets, so this is also how an action tells a bucket is the target's."""
    buckets: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_buckets").paginate(**({"BucketRegion": region} if region else {})):
        buckets.extend(page.get("Buckets", []))
    return buckets


def bucket_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:s3:::{name}"
