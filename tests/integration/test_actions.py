"""Issue #3, the actions: each built-in action through U1 -> R1 -> R2 in the emulated target accounts.

What an action changed is checked with admin credentials in the account itself; how it talked to AWS
(batching, dry runs, session policies) is counted at the HTTP layer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import BaseModel
from rolechain import ChainSessions
from rolechain.actions import REGISTRY, Action, ActionContext, Params
from rolechain.actions.block_s3_public_access import BLOCK_ALL
from rolechain.runner import Status
from rolechain_dev.emulator import Emulator, Seed

from tests.integration.support import assume_role_requests, changing_calls, run_action

pytestmark = pytest.mark.integration

OWNER_TAGS = {"owner": "platform-team", "cost-center": "1234"}


def arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchTagSet"
        return {}


def put_bucket_tags(s3: Any, bucket: str, tags: dict[str, str]) -> None:
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


def public_access_block(s3: Any, bucket: str) -> dict[str, bool] | None:
    try:
        return dict(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"])
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
        return None


# -- list_buckets -------------------------------------------------------------------------------------
def test_list_buckets_reports_each_accounts_buckets_without_reading_tags(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator
) -> None:
    report = run_action(operator_sessions, landscape, "list_buckets")

    assert [r.status for r in report.results] == [Status.OK] * len(landscape.targets)
    for result, target in zip(report.results, landscape.targets, strict=True):
        assert result.account == target.account_id
        assert result.output is not None
        assert result.output["count"] == 3
        assert [b["name"] for b in result.output["buckets"]] == list(target.buckets)
        assert all(b["region"] == "us-east-1" and "tags" not in b for b in result.output["buckets"])
        assert all(re.match(r"\d{4}-\d\d-\d\dT", b["created"]) for b in result.output["buckets"])
    assert emulator.calls(action="GetBucketTagging") == []


@pytest.mark.mutates
def test_list_buckets_with_tags(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, admin_s3: Callable[[str], Any]
) -> None:
    # Given one tagged bucket among three
    target = landscape.targets[0]
    put_bucket_tags(admin_s3(target.account_id), target.buckets[0], {"owner": "alice"})

    report = run_action(operator_sessions, landscape, "list_buckets", {"with_tags": True}, accounts=[target.account_id])

    (result,) = report.results
    assert result.output is not None
    assert [b["tags"] for b in result.output["buckets"]] == [{"owner": "alice"}, {}, {}]
    assert len(emulator.calls(action="GetBucketTagging", account=target.account_id)) == 3


# -- tag_resources ------------------------------------------------------------------------------------
@pytest.mark.mutates
def test_tag_resources_by_arns_tags_exactly_those(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, admin_s3: Callable[[str], Any]
) -> None:
    target = landscape.targets[1]
    chosen = [arn(b) for b in target.buckets[:2]]

    report = run_action(
        operator_sessions,
        landscape,
        "tag_resources",
        {"arns": chosen, "tags": OWNER_TAGS},
        accounts=[target.account_id],
    )

    (result,) = report.results
    assert result.status == Status.OK, result.error
    assert result.output == {"tagged": chosen, "already_tagged": [], "tags": OWNER_TAGS}
    assert [bucket_tags(admin_s3(target.account_id), b) for b in target.buckets] == [OWNER_TAGS, OWNER_TAGS, {}]
    (call,) = emulator.calls(action="TagResources")
    assert call.body == {"ResourceARNList": chosen, "Tags": OWNER_TAGS}


@pytest.mark.mutates
def test_tag_resources_by_type_with_missing_only_skips_fully_tagged(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, admin_s3: Callable[[str], Any]
) -> None:
    # Given a bucket with both tags, one whose owner someone else set, and an untagged one
    target = landscape.targets[2]
    first, second, third = target.buckets
    put_bucket_tags(admin_s3(target.account_id), first, OWNER_TAGS)
    put_bucket_tags(admin_s3(target.account_id), second, {"owner": "alice"})

    report = run_action(
        operator_sessions,
        landscape,
        "tag_resources",
        {"resource_types": ["s3"], "tags": OWNER_TAGS, "missing_only": True},
        accounts=[target.account_id],
    )

    # Then only the missing keys are added: alice stays the owner of the second bucket
    (result,) = report.results
    assert result.status == Status.OK, result.error
    assert result.output is not None
    assert sorted(result.output["tagged"]) == [arn(second), arn(third)]
    assert result.output["already_tagged"] == [arn(first)]
    assert [bucket_tags(admin_s3(target.account_id), b) for b in target.buckets] == [
        OWNER_TAGS,
        {"owner": "alice", "cost-center": "1234"},
        OWNER_TAGS,
    ]
    # one call per distinct tag map
    calls = sorted((c.body["ResourceARNList"], c.body["Tags"]) for c in emulator.calls(action="TagResources"))
    assert calls == [([arn(second)], {"cost-center": "1234"}), ([arn(third)], OWNER_TAGS)]


def test_tag_resources_sends_at_most_20_arns_per_call(
    seed_landscape: Callable[..., Seed],
    operator_sessions_for: Callable[[Seed], ChainSessions],
    emulator: Emulator,
    admin_s3: Callable[[str], Any],
) -> None:
    # Given 45 buckets in one account
    seed = seed_landscape(targets=1, buckets_per_account=45)
    target = seed.targets[0]

    report = run_action(
        operator_sessions_for(seed), seed, "tag_resources", {"resource_types": ["s3"], "tags": OWNER_TAGS}
    )

    # Then exactly three TagResources calls carried 20, 20 and 5 ARNs, every bucket once
    calls = emulator.calls(action="TagResources")
    assert [len(c.body["ResourceARNList"]) for c in calls] == [20, 20, 5]
    sent = [a for c in calls for a in c.body["ResourceARNList"]]
    assert sorted(sent) == sorted(arn(b) for b in target.buckets)
    (result,) = report.results
    assert result.status == Status.OK
    assert result.output is not None and len(result.output["tagged"]) == 45
    assert bucket_tags(admin_s3(target.account_id), target.buckets[44]) == OWNER_TAGS


def test_tag_resources_reports_a_failed_batch_and_what_succeeded(
    seed_landscape: Callable[..., Seed], operator_sessions_for: Callable[[Seed], ChainSessions], emulator: Emulator
) -> None:
    # Given 45 buckets and a first TagResources call that fails (not a retryable error)
    seed = seed_landscape(targets=1, buckets_per_account=45)
    emulator.inject_fault("TagResources", "InvalidParameterException", "nope", times=1)

    report = run_action(
        operator_sessions_for(seed), seed, "tag_resources", {"resource_types": ["s3"], "tags": OWNER_TAGS}
    )

    # Then the target failed, naming how many, with the 25 tagged ARNs still reported
    (result,) = report.results
    assert result.status == Status.FAILED
    assert result.error == {"type": "action", "message": "20 of 45 resource(s) failed to tag"}
    assert result.output is not None
    failed_arns = emulator.calls(action="TagResources")[0].body["ResourceARNList"]
    assert sorted(result.output["failed"]) == sorted(failed_arns)
    assert {f["code"] for f in result.output["failed"].values()} == {"InvalidParameterException"}
    assert len(result.output["tagged"]) == 25 and not set(result.output["tagged"]) & set(failed_arns)
    assert report.exit_code == 1


# -- block_s3_public_access ---------------------------------------------------------------------------
@pytest.mark.mutates
def test_block_public_access_on_one_bucket(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, admin_s3: Callable[[str], Any]
) -> None:
    target = landscape.targets[0]
    bucket = target.buckets[1]

    report = run_action(
        operator_sessions, landscape, "block_s3_public_access", {"bucket": bucket}, accounts=[target.account_id]
    )

    (result,) = report.results
    assert result.status == Status.OK, result.error
    assert result.output == {
        "changed": [{"bucket": bucket, "before": {}, "after": BLOCK_ALL}],
        "already_compliant": [],
    }
    assert [public_access_block(admin_s3(target.account_id), b) for b in target.buckets] == [None, BLOCK_ALL, None]
    assert [c.path for c in emulator.calls(action="PutPublicAccessBlock")] == [f"/{bucket}"]


@pytest.mark.mutates
def test_block_public_access_account_wide_reports_already_compliant(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, admin_s3: Callable[[str], Any]
) -> None:
    # Given a compliant bucket, a partly blocked one and an open one
    target = landscape.targets[3]
    compliant, partial, open_ = target.buckets
    s3 = admin_s3(target.account_id)
    s3.put_public_access_block(Bucket=compliant, PublicAccessBlockConfiguration=BLOCK_ALL)
    s3.put_public_access_block(Bucket=partial, PublicAccessBlockConfiguration={"BlockPublicAcls": True})

    report = run_action(operator_sessions, landscape, "block_s3_public_access", accounts=[target.account_id])

    (result,) = report.results
    assert result.status == Status.OK, result.error
    assert result.output is not None
    assert result.output["already_compliant"] == [compliant]
    assert [c["bucket"] for c in result.output["changed"]] == [partial, open_]
    assert result.output["changed"][0]["before"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": False,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }
    assert all(public_access_block(admin_s3(target.account_id), b) == BLOCK_ALL for b in target.buckets)
    assert [c.path for c in emulator.calls(action="PutPublicAccessBlock")] == [f"/{partial}", f"/{open_}"]


# -- whoami -------------------------------------------------------------------------------------------
def test_whoami_action_is_the_target_role_session_of_the_run(operator_sessions: ChainSessions, landscape: Seed) -> None:
    report = run_action(operator_sessions, landscape, "whoami")

    for result, target in zip(report.results, landscape.targets, strict=True):
        assert result.status == Status.OK
        assert result.output is not None
        assert result.output["account"] == target.account_id
        assert result.output["arn"] == (
            f"arn:aws:sts::{target.account_id}:assumed-role/rolechain-target/rolechain.whoami.{report.run_id}"
        )


# -- dry runs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "params", "key"),
    [
        ("tag_resources", {"resource_types": ["s3"], "tags": OWNER_TAGS}, "would_tag"),
        ("tag_resources", {"resource_types": ["s3"], "tags": OWNER_TAGS, "missing_only": True}, "would_tag"),
        ("block_s3_public_access", {}, "would_change"),
    ],
)
def test_dry_run_sends_no_changing_call_and_reports_each_resource(
    operator_sessions: ChainSessions,
    landscape: Seed,
    emulator: Emulator,
    admin_s3: Callable[[str], Any],
    action: str,
    params: dict[str, Any],
    key: str,
) -> None:
    report = run_action(operator_sessions, landscape, action, params, dry_run=True)

    # Then nothing that changes anything reached AWS
    assert changing_calls(emulator) == []
    # and every target reports, per resource, what a real run would change
    assert report.summary["dry_run"] == len(landscape.targets)
    for result, target in zip(report.results, landscape.targets, strict=True):
        assert result.status == Status.DRY_RUN, result.error
        assert result.output is not None
        if key == "would_tag":
            assert sorted(result.output["would_tag"]) == [arn(b) for b in target.buckets]
            assert result.output["tags"] == OWNER_TAGS
        else:
            assert result.output["would_change"] == [
                {"bucket": b, "before": {}, "after": BLOCK_ALL} for b in target.buckets
            ]
        assert all(bucket_tags(admin_s3(target.account_id), b) == {} for b in target.buckets)
        assert all(public_access_block(admin_s3(target.account_id), b) is None for b in target.buckets)
    assert report.exit_code == 0


class _CarelessParams(Params):
    pass


def _careless(ctx: ActionContext, params: BaseModel) -> dict[str, Any]:
    """Ignores ctx.dry_run: the dry-run client must stop it."""
    ctx.client("s3").put_bucket_tagging(Bucket="rc-200000000001-01", Tagging={"TagSet": []})
    return {}


def test_dry_run_refuses_a_changing_call_an_action_forgot_to_skip(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    careless = Action("careless", "test", _CarelessParams, ("s3:PutBucketTagging",), True, _careless)
    monkeypatch.setitem(REGISTRY, "careless", careless)

    report = run_action(operator_sessions, landscape, "careless", dry_run=True, accounts=["200000000001"])

    (result,) = report.results
    assert result.status == Status.FAILED
    assert result.error == {"type": "dry_run_violation", "message": "dry run: refused changing call put_bucket_tagging"}
    assert emulator.calls(service="s3") == []


# -- session policies ---------------------------------------------------------------------------------
ACTION_PARAMS: dict[str, dict[str, Any]] = {
    "list_buckets": {"with_tags": True},
    "tag_resources": {"resource_types": ["s3"], "tags": OWNER_TAGS},
    "block_s3_public_access": {},
    "whoami": {},
}


@pytest.mark.parametrize("name", sorted(ACTION_PARAMS))
def test_last_hop_carries_exactly_the_actions_declared_permissions(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, name: str
) -> None:
    action = REGISTRY[name]
    target = landscape.targets[0]

    report = run_action(
        operator_sessions, landscape, name, ACTION_PARAMS[name], dry_run=True, accounts=[target.account_id]
    )

    assert report.results[0].status == Status.DRY_RUN, report.results[0].error
    hub_hop, target_hop = assume_role_requests(emulator)
    assert hub_hop.params["RoleArn"] == landscape.hub_role_arn and "Policy" not in hub_hop.params
    assert target_hop.params["RoleArn"] == target.role_arn
    assert json.loads(target_hop.params["Policy"]) == action.session_policy()
    assert json.loads(target_hop.params["Policy"])["Statement"][0]["Action"] == sorted(action.iam_actions)


def test_every_registered_action_is_covered_here() -> None:
    assert set(ACTION_PARAMS) == set(REGISTRY)
