"""tag_resources: apply tags through the Resource Groups Tagging API, 20 ARNs a call."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field, model_validator

from rolechain.actions import ActionContext, ActionFailed, Params, register
from rolechain.actions.s3util import bucket_arn, buckets_in_region
from rolechain.errors import THROTTLING_ERROR_CODES, is_transient_error

TAG_BATCH = 20  # TagResources accepts at most 20 ARNs per call
# Resources one target may tag in a run: its result lists each ARN, and a run's response must stay far
# below Lambda's 6 MB (1,000 ARNs are ~100 KB); more is a job for several runs.
MAX_ARNS = 1000
# A batch still throttled after botocore's own retries is tried again this many times, after a backoff
# doubling from THROTTLE_BACKOFF seconds (full jitter): bounded, so a target fails retryable in seconds.
THROTTLE_RETRIES = 3
THROTTLE_BACKOFF = 0.5
sleep = time.sleep  # tests replace it


class TagResourcesParams(Params):
    tags: dict[str, str] = Field(min_length=1, max_length=50)
    arns: list[str] | None = Field(default=None, min_length=1)
    resource_types: list[str] | None = Field(default=None, min_length=1)
    missing_only: bool = False

    @model_validator(mode="after")
    def _one_selector(self) -> TagResourcesParams:
        if (self.arns is None) == (self.resource_types is None):
            raise ValueError("give exactly one of arns or resource_types")
        for key, value in self.tags.items():
            if not 1 <= len(key) <= 128 or len(value) > 256 or key.lower().startswith("aws:"):
                raise ValueError(f"tag {key!r}: keys are 1-128 characters not starting with aws:, values <= 256")
        if self.arns is not None and len(self.arns) > MAX_ARNS:
            raise ValueError(f"arns: {len(self.arns)} ARNs given; at most {MAX_ARNS} per target (split the run)")
        for arn in self.arns or []:
            if not arn.startswith("arn:"):
                raise ValueError(f"arns: {arn!r} is not an ARN")
        return self


def _summary(out: dict[str, Any]) -> str:
    key = "would_tag" if "would_tag" in out else "tagged"
    return f"{key} {len(out[key])}, already {len(out['already_tagged'])}"


@register(
    "tag_resources",
    params=TagResourcesParams,
    # TagResources also needs each service's own tagging permission.
    iam_actions=[
        "tag:GetResources",
        "tag:TagResources",
        "s3:ListAllMyBuckets",
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "ec2:CreateTags",
    ],
    changes=True,
    summary=_summary,
)
def tag_resources(ctx: ActionContext, params: TagResourcesParams) -> dict[str, Any]:
    """Apply ``tags`` to the given ``arns`` or to the resources of ``resource_types`` (e.g. ``s3``,
    ``ec2:instance``); with ``missing_only``, only the tags a resource lacks (values already set are
    kept). Resources
    are found with paginated GetResources (plus ListBuckets for ``s3``, since GetResources never
    returns a bucket that was never tagged). At most 20 ARNs per TagResources call; per-ARN failures
    are reported."""
    tagging = ctx.client("resourcegroupstaggingapi")
    refused = _foreign_arns(ctx, params.arns or [])
    current = {arn: tags for arn, tags in _current_tags(ctx, tagging, params, refused).items() if arn not in refused}
    # What each resource gets: every tag, or with missing_only just the keys it lacks, so a value
    # someone already set is never overwritten.
    plans = {
        arn: {k: v for k, v in params.tags.items() if not params.missing_only or k not in tags}
        for arn, tags in current.items()
    }
    selected = [arn for arn, tags in plans.items() if tags]
    skipped = [arn for arn, tags in plans.items() if not tags]
    if len(selected) > MAX_ARNS:
        raise ActionFailed(
            f"{len(selected)} resources of {params.resource_types} to tag; at most {MAX_ARNS} per target "
            "(narrow resource_types, or give arns in several runs)",
            {"tagged": [], "selected": len(selected), "tags": params.tags},
        )
    if ctx.dry_run:
        dry = {
            "would_tag": selected,
            "already_tagged": skipped,
            "tags": params.tags,
            "changes": {arn: plans[arn] for arn in selected},
        }
        if refused:
            raise ActionFailed(f"{len(refused)} resource(s) refused", {**dry, "failed": refused})
        return dry
    # One TagResources call takes one tag map: group resources by what they get, then 20 ARNs a call.
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for arn in selected:
        groups.setdefault(tuple(sorted(plans[arn].items())), []).append(arn)
    tagged: list[str] = []
    failed: dict[str, dict[str, Any]] = dict(refused)  # never sent, never reported tagged
    for tag_items, arns in groups.items():
        for start in range(0, len(arns), TAG_BATCH):
            batch = arns[start : start + TAG_BATCH]
            try:
                response = _tag_batch(tagging, batch, dict(tag_items))
            except ClientError as exc:  # the whole call failed: every ARN of the batch failed with it
                error = exc.response.get("Error", {})
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                reason = {"code": error.get("Code"), "message": error.get("Message"), "status": status}
                failed.update({arn: dict(reason) for arn in batch})
                continue
            batch_failed = response.get("FailedResourcesMap", {})
            failed.update(
                {
                    arn: {
                        "code": info.get("ErrorCode"),
                        "message": info.get("ErrorMessage"),
                        "status": info.get("StatusCode"),
                    }
                    for arn, info in batch_failed.items()
                }
            )
            tagged.extend(arn for arn in batch if arn not in batch_failed)
    if failed:
        # A partial failure is a failure of the target, with what succeeded still reported.
        # Tagging is idempotent, so a retry of the target may tag what was throttled or met a 5xx.
        retryable = any(is_transient_error(str(f.get("code")), _status(f.get("status"))) for f in failed.values())
        raise ActionFailed(
            f"{len(failed)} of {len(selected) + len(refused)} resource(s) failed to tag",
            {"tagged": tagged, "failed": failed, "already_tagged": skipped, "tags": params.tags},
            retryable=retryable,
        )
    return {"tagged": tagged, "already_tagged": skipped, "tags": params.tags}


def _foreign_arns(ctx: ActionContext, arns: list[str]) -> dict[str, dict[str, Any]]:
    """The ``arns`` that are not the target account's, each with why: an ARN naming another account,
    or an S3 bucket ARN (which names no account) of a bucket the account does not own."""
    refused: dict[str, dict[str, Any]] = {}
    owned: set[str] | None = None
    for arn in arns:
        parts = arn.split(":", 5)
        if len(parts) < 6:
            refused[arn] = {"code": "InvalidArn", "message": "not a resource ARN"}
        elif parts[2] == "s3" and not parts[4]:
            if owned is None:
                owned = {b["Name"] for b in buckets_in_region(ctx.client("s3"), None)}
            if parts[5].split("/", 1)[0] not in owned:
                refused[arn] = {"code": "ForeignResource", "message": f"bucket not owned by account {ctx.account}"}
        elif parts[4] != ctx.account:
            refused[arn] = {"code": "ForeignResource", "message": f"not a resource of account {ctx.account}"}
    return refused


def _tag_batch(tagging: Any, arns: list[str], tags: dict[str, str]) -> Any:
    """One TagResources call, tried again (at most THROTTLE_RETRIES times, with backoff) while throttled.

    Raises:
        ClientError: the call failed otherwise, or was still throttled after the last retry.
    """
    for attempt in range(THROTTLE_RETRIES + 1):
        try:
            return tagging.tag_resources(ResourceARNList=arns, Tags=tags)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in THROTTLING_ERROR_CODES or attempt == THROTTLE_RETRIES:
                raise
            sleep(random.uniform(0, THROTTLE_BACKOFF * 2**attempt))
    raise AssertionError("unreachable")


def _status(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _current_tags(
    ctx: ActionContext, tagging: Any, params: TagResourcesParams, refused: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """ARN -> current tags of the resources the params select (``refused`` ARNs are not looked up)."""
    found: dict[str, dict[str, str]] = {}
    queries: list[dict[str, Any]] = []
    if params.arns is not None:
        arns = [arn for arn in params.arns if arn not in refused]
        found = {arn: {} for arn in arns}
        # GetResources takes at most 100 ARNs a call
        queries = [{"ResourceARNList": arns[i : i + 100]} for i in range(0, len(arns), 100)]
    else:
        queries = [{"ResourceTypeFilters": params.resource_types}]
        if "s3" in (params.resource_types or []):
            for bucket in buckets_in_region(ctx.client("s3"), ctx.region):
                found[bucket_arn(ctx.partition, bucket["Name"])] = {}
    for query in queries:
        for page in tagging.get_paginator("get_resources").paginate(**query):
            for mapping in page.get("ResourceTagMappingList", []):
                found[mapping["ResourceARN"]] = {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
    return found
