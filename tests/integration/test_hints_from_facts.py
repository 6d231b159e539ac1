"""Hints from facts (issue #13): when a hop is denied, the caller's own policies (and the role's trust
policy in the caller's account) are read with the caller's credentials and decided by rolechain.iam, so
the hint names the condition that fails instead of guessing between two. STS's AccessDenied for
AssumeRole gives no reason, so the emulator's detailed denials are off here, as in AWS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rolechain import AssumeRoleError, Chain, ChainSessions, CredentialCache
from rolechain_dev.emulator import HUB_ACCOUNT, Emulator, Seed

from tests.helpers import Clock

pytestmark = [pytest.mark.integration, pytest.mark.mutates]

READ_OWN = ["iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies"]


def hub_iam(emulator: Emulator) -> Any:
    return emulator.admin_session(HUB_ACCOUNT).client("iam")


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def r1_reads_itself(emulator: Emulator, seed: Seed) -> None:
    allow = {"Effect": "Allow", "Action": READ_OWN, "Resource": seed.hub_role_arn}
    hub_iam(emulator).put_role_policy(RoleName="rolechain-hub", PolicyName="read-own", PolicyDocument=policy(allow))


def failure_of(sessions: ChainSessions, chain: Chain) -> Any:
    with pytest.raises(AssumeRoleError) as excinfo:
        sessions.credentials(chain)
    return excinfo.value.failure


def iam_reads(emulator: Emulator) -> list[str]:
    return [r.action for r in emulator.calls(service="iam")]


@pytest.fixture
def sessions_for(emulator: Emulator, clock: Clock, credential_cache: CredentialCache) -> Callable[..., ChainSessions]:
    def make(seed: Seed, **options: Any) -> ChainSessions:
        """Sessions as U1 against ``seed``, whose denials carry no reason (the next seeding restores them)."""
        emulator.detailed_denials = False
        base = emulator.session(seed.user_access_key_id, seed.user_secret_access_key)
        options.setdefault("cache", credential_cache)
        return ChainSessions(base, endpoint_url=seed.endpoint_url, clock=clock, **options)

    return make


def test_r1_allowed_by_its_own_policies_means_the_targets_trust_policy(
    emulator: Emulator, seed_landscape: Callable[..., Seed], sessions_for: Callable[..., ChainSessions]
) -> None:
    seed = seed_landscape()
    r1_reads_itself(emulator, seed)
    chain = Chain.build([seed.hub_role_arn, seed.targets[0].role_arn])  # no ExternalId: the trust policy refuses
    failure = failure_of(sessions_for(seed), chain)
    assert failure.hop == 2 and failure.likely_cause == "trust_policy"
    assert failure.hint.startswith("condition (2): the policies of arn:aws:iam::111111111111:role/rolechain-hub ")
    assert "(checked)" in failure.hint and "condition (1)" not in failure.hint
    # without the facts the same denial is a guess between both conditions
    guessed = failure_of(sessions_for(seed, explain_denials=False, cache=CredentialCache()), chain)
    assert guessed.likely_cause == "either" and "condition (1)" in guessed.hint


def test_r1_not_allowed_by_its_own_policies_gets_the_statement_to_add(
    emulator: Emulator, seed_landscape: Callable[..., Seed], sessions_for: Callable[..., ChainSessions]
) -> None:
    seed = seed_landscape()
    r1_reads_itself(emulator, seed)
    hub_iam(emulator).delete_role_policy(RoleName="rolechain-hub", PolicyName="assume-rolechain-targets")
    target = seed.targets[0].role_arn
    failure = failure_of(sessions_for(seed), Chain.build([seed.hub_role_arn, target], external_id=seed.external_id))
    assert (failure.hop, failure.likely_cause) == (2, "caller_permission")
    statement = json.dumps({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target}, separators=(",", ":"))
    assert failure.hint == (f"condition (1), checked: add to the identity policy of {seed.hub_role_arn}: {statement}")
    assert seed.external_id not in failure.hint + failure.message


def test_a_same_account_trust_policy_is_read_and_its_fix_named(
    emulator: Emulator, seed_landscape: Callable[..., Seed], sessions_for: Callable[..., ChainSessions]
) -> None:
    seed = seed_landscape()
    user = seed.user_arn.rsplit("/", 1)[-1]
    read = {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": [seed.user_arn, seed.hub_role_arn]}
    hub_iam(emulator).put_user_policy(UserName=user, PolicyName="read-own", PolicyDocument=policy(read))
    lambda_only = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    hub_iam(emulator).update_assume_role_policy(RoleName="rolechain-hub", PolicyDocument=policy(lambda_only))
    failure = failure_of(sessions_for(seed), Chain.build([seed.hub_role_arn]))
    assert (failure.hop, failure.likely_cause) == (1, "trust_policy")
    trust = {"Effect": "Allow", "Principal": {"AWS": seed.user_arn}, "Action": "sts:AssumeRole"}
    assert failure.hint == (
        f"condition (2), checked: add to the trust policy of {seed.hub_role_arn}: "
        + json.dumps(trust, separators=(",", ":"))
    )


def test_the_callers_policies_are_read_once_for_many_failing_targets(
    emulator: Emulator, seed_landscape: Callable[..., Seed], sessions_for: Callable[..., ChainSessions]
) -> None:
    seed = seed_landscape()
    r1_reads_itself(emulator, seed)
    sessions = sessions_for(seed)
    for target in seed.targets:
        failure = failure_of(sessions, Chain.build([seed.hub_role_arn, target.role_arn]))
        assert failure.likely_cause == "trust_policy"
    # one GetRole, one ListRolePolicies, one GetRolePolicy per inline policy, one ListAttached: for all
    reads = iam_reads(emulator)
    assert reads.count("GetRole") == 1 and reads.count("ListRolePolicies") == 1, reads


def test_unreadable_policies_leave_the_guess_and_are_tried_once(
    emulator: Emulator, seed_landscape: Callable[..., Seed], sessions_for: Callable[..., ChainSessions]
) -> None:
    seed = seed_landscape()  # R1 may not read its own role
    sessions = sessions_for(seed)
    for target in seed.targets[:3]:
        failure = failure_of(sessions, Chain.build([seed.hub_role_arn, target.role_arn]))
        assert failure.likely_cause == "either" and "(checked)" not in failure.hint
    assert iam_reads(emulator) == ["GetRole"]  # refused once, remembered


def test_explaining_can_be_turned_off(
    emulator: Emulator, seed_landscape: Callable[..., Seed], sessions_for: Callable[..., ChainSessions]
) -> None:
    seed = seed_landscape()
    r1_reads_itself(emulator, seed)
    failure_of(sessions_for(seed, explain_denials=False), Chain.build([seed.hub_role_arn, seed.targets[0].role_arn]))
    assert iam_reads(emulator) == []


def test_the_hub_role_as_template_yaml_grants_it_reads_itself(
    emulator: Emulator, seed_landscape: Callable[..., Seed], clock: Clock
) -> None:
    """In Lambda, R1 has exactly template.yaml's permissions: they let it explain a denied target."""
    import boto3

    from tests.hub_support import create_hub_resources

    seed = seed_landscape()
    creds = create_hub_resources(emulator, seed).r1_credentials
    emulator.detailed_denials = False
    base = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=seed.region,
    )
    sessions = ChainSessions(base, endpoint_url=seed.endpoint_url, clock=clock, cache=CredentialCache())
    failure = failure_of(sessions, Chain.build([seed.targets[0].role_arn]))  # R2 without the ExternalId
    assert failure.likely_cause == "trust_policy" and "(checked)" in failure.hint, failure.hint
