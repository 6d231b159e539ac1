"""block_s3_public_access never weakens a bucket: R2's policy cannot say so (IAM has no condition keys for
the four public access block flags, see target-role.yaml), so the action itself must hold the line."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rolechain.actions import ActionContext, ActionFailed, get_action
from rolechain.actions.block_s3_public_access import BLOCK_ALL, BlockPublicAccessParams

FLAGS = tuple(BLOCK_ALL)
BUCKET = "rc-200000000001-01"


class RecordingS3:
    """An S3 client with one bucket whose public access block is ``current`` (None: none set)."""

    def __init__(self, current: dict[str, bool] | None) -> None:
        self.current = current
        self.puts: list[dict[str, Any]] = []

    def get_public_access_block(self, Bucket: str, ExpectedBucketOwner: str) -> dict[str, Any]:
        assert ExpectedBucketOwner == "200000000001"  # never another account's bucket
        if self.current is None:
            error = {"Error": {"Code": "NoSuchPublicAccessBlockConfiguration", "Message": "none"}}
            raise ClientError(error, "GetPublicAccessBlock")  # type: ignore[arg-type]
        return {"PublicAccessBlockConfiguration": dict(self.current)}

    def put_public_access_block(
        self, Bucket: str, PublicAccessBlockConfiguration: dict[str, bool], ExpectedBucketOwner: str
    ) -> None:
        assert ExpectedBucketOwner == "200000000001"
        self.puts.append(dict(PublicAccessBlockConfiguration))


def run(s3: RecordingS3) -> dict[str, Any]:
    context = ActionContext(
        account="200000000001", region="us-east-1", dry_run=False, run_id="run", client_factory=lambda _: s3
    )
    output: dict[str, Any] = get_action("block_s3_public_access").run(context, BlockPublicAccessParams(bucket=BUCKET))
    return output


# Every configuration a bucket can have: none, or each of the 16 combinations of the four flags, plus
# S3 answers that leave a flag out (treated as off).
CONFIGURATIONS: list[dict[str, bool] | None] = [
    None,
    *(dict(zip(FLAGS, values, strict=True)) for values in itertools.product([False, True], repeat=len(FLAGS))),
    {"BlockPublicAcls": True},
    {},
]


@pytest.mark.parametrize("current", CONFIGURATIONS, ids=repr)
def test_only_ever_sends_all_four_flags_on_and_nothing_to_a_bucket_that_blocks_everything(
    current: dict[str, bool] | None,
) -> None:
    s3 = RecordingS3(current)
    output = run(s3)
    blocks_everything = current is not None and all(current.get(flag) is True for flag in FLAGS)
    if blocks_everything:
        # Then a bucket already as strong as BLOCK_ALL gets no Put at all
        assert s3.puts == [] and output["already_compliant"] == [BUCKET]
    else:
        # Then the one Put carries every flag, each True: never a weaker configuration than before
        assert s3.puts == [dict.fromkeys(FLAGS, True)]
        assert output["changed"][0]["after"] == dict.fromkeys(FLAGS, True)


def test_a_caller_changing_the_reported_configuration_does_not_change_what_is_sent() -> None:
    # Given a first run whose report a caller then edits (the output is returned to API callers)
    first = run(RecordingS3(None))
    first["changed"][0]["after"]["BlockPublicPolicy"] = False
    # When another bucket is blocked, then it still gets all four flags on
    s3 = RecordingS3(None)
    run(s3)
    assert s3.puts == [dict.fromkeys(FLAGS, True)]


class TwoBuckets(RecordingS3):
    """Two buckets with no block; putting one of them fails (throttled)."""

    def put_public_access_block(
        self, Bucket: str, PublicAccessBlockConfiguration: dict[str, bool], ExpectedBucketOwner: str
    ) -> None:
        if Bucket == "refusing":
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "slow"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
                "PutPublicAccessBlock",
            )
        super().put_public_access_block(Bucket, PublicAccessBlockConfiguration, ExpectedBucketOwner)

    def get_paginator(self, name: str) -> Any:
        assert name == "list_buckets"
        buckets = [{"Name": "refusing", "BucketRegion": "us-east-1"}, {"Name": BUCKET, "BucketRegion": "us-east-1"}]

        class Pages:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                return [{"Buckets": buckets}]

        return Pages()


def test_one_failing_bucket_keeps_the_record_of_the_others() -> None:
    # Given every bucket of the region, one of which refuses the Put
    s3 = TwoBuckets(None)
    context = ActionContext(
        account="200000000001", region="us-east-1", dry_run=False, run_id="run", client_factory=lambda _: s3
    )
    # Then the target fails, retryable (SlowDown), and still says what it changed
    with pytest.raises(ActionFailed) as raised:
        get_action("block_s3_public_access").run(context, BlockPublicAccessParams())
    assert raised.value.retryable
    assert [c["bucket"] for c in raised.value.output["changed"]] == [BUCKET]
    assert raised.value.output["failed"]["refusing"]["code"] == "SlowDown"
    assert s3.puts == [
        dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
    ]
