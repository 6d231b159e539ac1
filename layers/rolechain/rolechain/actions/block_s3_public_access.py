"""block_s3_public_access: turn on all four bucket-level public access block settings."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field

from rolechain.actions import ActionContext, ActionFailed, Params, register
from rolechain.actions.s3util import buckets_in_region
from rolechain.errors import is_transient_error

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


class BlockPublicAccessParams(Params):
    bucket: str | None = Field(default=None, min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")


def _summary(out: dict[str, Any]) -> str:
    key = "would_change" if "would_change" in out else "changed"
    return f"{key} {len(out[key])}, already {len(out['already_compliant'])}"


@register(
    "block_s3_public_access",
    params=BlockPublicAccessParams,
    iam_actions=["s3:ListAllMyBuckets", "s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock"],
    changes=True,
    summary=_summary,
)
def block_s3_public_access(ctx: ActionContext, params: BlockPublicAccessParams) -> dict[str, Any]:
    """Put a bucket-level public access block (all four settings on) on ``bucket``, or on every
    bucket of the target region when none is named; reports what was already compliant. Every bucket
    call names the target account as ExpectedBucketOwner: another account's bucket is never touched."""
    s3 = ctx.client("s3")
    names = [params.bucket] if params.bucket else [b["Name"] for b in buckets_in_region(s3, ctx.region)]
    compliant: list[str] = []
    changed: list[dict[str, Any]] = []
    failed: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            current = _current_block(s3, name, ctx.account)
            if current == BLOCK_ALL:  # every flag already on: nothing can be stronger, so nothing is sent
                compliant.append(name)
                continue
            # R2 may also turn blocks off (IAM cannot tell the directions apart), so only ever all four on is
            # sent, and as a copy: a caller editing the returned report must not change what the next run sends.
            if not ctx.dry_run:
                s3.put_public_access_block(
                    Bucket=name, PublicAccessBlockConfiguration=dict(BLOCK_ALL), ExpectedBucketOwner=ctx.account
                )
        except ClientError as exc:  # one bucket's failure must not hide what was done to the others
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            failed[name] = {"code": error.get("Code"), "message": error.get("Message"), "status": status}
            continue
        changed.append({"bucket": name, "before": current, "after": dict(BLOCK_ALL)})
    key = "would_change" if ctx.dry_run else "changed"
    if failed:
        retryable = any(is_transient_error(str(f["code"]), f["status"]) for f in failed.values())
        raise ActionFailed(
            f"{len(failed)} of {len(names)} bucket(s) failed",
            {key: changed, "already_compliant": compliant, "failed": failed},
            retryable=retryable,
        )
    return {key: changed, "already_compliant": compliant}


def _current_block(s3: Any, name: str, owner: str) -> dict[str, bool]:
    try:
        response = s3.get_public_access_block(Bucket=name, ExpectedBucketOwner=owner)
        config: dict[str, bool] = response["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchPublicAccessBlockConfiguration":
            return {}
        raise
    return {k: bool(config.get(k, False)) for k in BLOCK_ALL}
