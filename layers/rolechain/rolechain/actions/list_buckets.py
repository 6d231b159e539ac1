"""list_buckets: S3 inventory of a target account."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from rolechain.actions import ActionContext, Params, register
from rolechain.actions.s3util import buckets_in_region


class ListBucketsParams(Params):
    with_tags: bool = False


def _summary(out: dict[str, Any]) -> str:
    names = ", ".join(b["name"] for b in out["buckets"])
    tags = sorted({f"{k}={v}" for b in out["buckets"] for k, v in (b.get("tags") or {}).items()})
    return f"{out['count']} bucket(s): {names}" + (f"; tags {' '.join(tags)}" if tags else "")


@register(
    "list_buckets",
    params=ListBucketsParams,
    iam_actions=["s3:ListAllMyBuckets", "s3:GetBucketTagging"],
    changes=False,
    summary=_summary,
)
def list_buckets(ctx: ActionContext, params: ListBucketsParams) -> dict[str, Any]:
    """S3 inventory of the target account in the target region: name, region and creation date of
    every bucket (paginated ListBuckets), with its tags when ``with_tags`` is true."""
    s3 = ctx.client("s3")
    buckets = []
    for bucket in buckets_in_region(s3, ctx.region):
        item: dict[str, Any] = {
            "name": bucket["Name"],
            "region": bucket.get("BucketRegion", ctx.region),
            "created": bucket["CreationDate"].isoformat(),
        }
        if params.with_tags:
            item["tags"] = _bucket_tags(s3, bucket["Name"])
        buckets.append(item)
    return {"count": len(buckets), "buckets": buckets}


def _bucket_tags(s3: Any, name: str) -> dict[str, str]:
    try:
        tag_set = s3.get_bucket_tagging(Bucket=name)["TagSet"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchTagSet":
            return {}
        raise
    return {t["Key"]: t["Value"] for t in tag_set}
