"""Issue #2, the library: chained credentials U1 -> R1 -> R2 over HTTP against the emulated accounts.

The emulator records every request, so AssumeRole counts and parameters are asserted where they are
sent, not from rolechain's own bookkeeping.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from rolechain import AssumeRoleError, Chain, ChainSessions, ConfigError, CredentialCache, Hop, default_session_name
from rolechain.actions import get_action
from rolechain.chain import new_run_id
from rolechain.sessions import DENIED_HOP_TTL
from rolechain_dev.emulator import HUB_ACCOUNT, Emulator, Seed

from tests.helpers import Clock
from tests.integration.support import allow_operator, assume_role_requests, assumed_roles, seed_jump_chain

pytestmark = pytest.mark.integration


def chain_to(seed: Seed, index: int = 0, **options: Any) -> Chain:
    """U1 -> R1 -> R2 of the ``index``-th target, with the seeded ExternalId on the last hop."""
    return Chain.build([seed.hub_role_arn, seed.targets[index].role_arn], external_id=seed.external_id, **options)


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released at the same instant; re-raise the first error."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_identity_at_every_hop_base_first(operator_sessions: ChainSessions, landscape: Seed) -> None:
    target = landscape.targets[0]
    chain = chain_to(landscape, session_name="rolechain.test.run1")

    identities = operator_sessions.identities(chain)

    assert [(i.account, i.arn) for i in identities] == [
        (HUB_ACCOUNT, landscape.user_arn),
        (HUB_ACCOUNT, f"arn:aws:sts::{HUB_ACCOUNT}:assumed-role/rolechain-hub/rolechain.test.run1"),
        (target.account_id, f"arn:aws:sts::{target.account_id}:assumed-role/rolechain-target/rolechain.test.run1"),
    ]
    assert identities[1].user_id.endswith(":rolechain.test.run1")
    assert identities[2].user_id.endswith(":rolechain.test.run1")


def test_each_target_sees_only_its_own_account(operator_sessions: ChainSessions, landscape: Seed) -> None:
    # Given five target accounts with three buckets each
    listed: dict[str, set[str]] = {}
    for index, target in enumerate(landscape.targets):
        chain = chain_to(landscape, index)
        # When each target's chain lists buckets and asks who it is
        listed[target.account_id] = {b["Name"] for b in operator_sessions.client(chain, "s3").list_buckets()["Buckets"]}
        assert operator_sessions.identity(chain).account == target.account_id

    # Then every account lists exactly its own buckets, none of another's
    assert listed == {t.account_id: set(t.buckets) for t in landscape.targets}
    assert len(set().union(*listed.values())) == len(landscape.targets) * 3


def test_refresh_walks_the_chain_again_inside_the_window(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, clock: Clock
) -> None:
    chain = chain_to(landscape)
    hub, target = landscape.hub_role_arn, landscape.targets[0].role_arn
    s3 = operator_sessions.client(chain, "s3")
    s3.list_buckets()
    first = operator_sessions.credentials(chain).get_frozen_credentials()
    assert assumed_roles(emulator) == [hub, target]

    # When the clock is still outside the 5-minute refresh window (both hops last 3600 s)
    clock.advance(3600 - 400)
    s3.list_buckets()
    # Then nothing is assumed again
    assert assumed_roles(emulator) == [hub, target]

    # When it moves inside the window
    clock.advance(200)
    s3.list_buckets()
    # Then both hops are assumed again, the hub first (the target's refresh signs with renewed R1 credentials)
    assert assumed_roles(emulator) == [hub, target, hub, target]
    # The emulator dates new credentials from the real time: back at it, they are reused as they are.
    clock.now = datetime.now(UTC)
    renewed = operator_sessions.credentials(chain).get_frozen_credentials()
    assert renewed.access_key != first.access_key
    s3.list_buckets()
    listings = emulator.calls(service="s3", action="ListBuckets")
    assert [r.access_key for r in listings] == [
        first.access_key,
        first.access_key,
        renewed.access_key,
        renewed.access_key,
    ]
    first_hop2, renewed_hop2 = assume_role_requests(emulator, target)
    assert renewed_hop2.access_key != first_hop2.access_key  # signed by the new R1 session
    assert renewed_hop2.params["ExternalId"] == landscape.external_id
    assert len(assume_role_requests(emulator)) == 4


def test_32_threads_at_once_cost_one_assume_role_per_hop(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, credential_cache: CredentialCache
) -> None:
    # Given slow STS answers, so that concurrent callers really overlap
    emulator.latency = 0.05
    chain = chain_to(landscape)

    # When 32 threads ask for the same chain at the same instant
    listings = in_threads(32, lambda _: operator_sessions.client(chain, "s3").list_buckets()["Buckets"])

    # Then one AssumeRole per hop reached STS, and every thread got the target's buckets
    assert assumed_roles(emulator) == [landscape.hub_role_arn, landscape.targets[0].role_arn]
    assert credential_cache.assume_role_calls == 2
    assert all(sorted(b["Name"] for b in buckets) == list(landscape.targets[0].buckets) for buckets in listings)
    assert len(emulator.calls(service="s3", action="ListBuckets")) == 32


@pytest.mark.mutates
def test_chains_sharing_a_prefix_assume_the_shared_hops_once(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator
) -> None:
    # Given hub -> jump -> A and hub -> jump -> B
    a, b = landscape.targets[0].account_id, landscape.targets[1].account_id
    jump = seed_jump_chain(emulator, landscape, [a, b], "rolechain-jumped")
    emulator.clear_requests()
    emulator.latency = 0.05
    chains = [
        Chain.build([landscape.hub_role_arn, jump, f"arn:aws:iam::{account}:role/rolechain-jumped"])
        for account in (a, b)
    ]

    # When both are used at once
    accounts = in_threads(2, lambda i: operator_sessions.identity(chains[i]).account)

    # Then the hub and the jump role were assumed once each, and each target once
    assert accounts == [a, b]
    assert Counter(assumed_roles(emulator)) == {
        landscape.hub_role_arn: 1,
        jump: 1,
        f"arn:aws:iam::{a}:role/rolechain-jumped": 1,
        f"arn:aws:iam::{b}:role/rolechain-jumped": 1,
    }
    # and both last hops were signed by the same jump session
    last_hops = [r for r in assume_role_requests(emulator) if r.params["RoleArn"].endswith(":role/rolechain-jumped")]
    assert len({r.access_key for r in last_hops}) == 1
    assert {r.account for r in last_hops} == {HUB_ACCOUNT}


@pytest.mark.mutates
def test_assume_role_requests_carry_what_rolechain_must_send(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator
) -> None:
    # Given U1 may tag its session and set a source identity (R1 and R2 trust both)
    allow_operator(emulator, landscape, ["sts:TagSession", "sts:SetSourceIdentity"])
    run_id = new_run_id()
    action = get_action("list_buckets")
    chain = chain_to(
        landscape,
        session_name=default_session_name("audit", run_id),
        source_identity="alice",
        tags={"team": "platform"},
        session_policy=action.session_policy(),
    )

    # When the chain is used
    operator_sessions.client(chain, "s3").list_buckets()

    # Then each hop sent exactly the options it must, and the last hop alone the ExternalId and policy
    hop1, hop2 = assume_role_requests(emulator)
    assert (hop1.params["RoleArn"], hop2.params["RoleArn"]) == (landscape.hub_role_arn, landscape.targets[0].role_arn)
    assert hop1.access_key == landscape.user_access_key_id
    assert "ExternalId" not in hop1.params and "Policy" not in hop1.params
    assert hop2.params["ExternalId"] == landscape.external_id
    assert json.loads(hop2.params["Policy"]) == action.session_policy()
    for hop in (hop1, hop2):
        assert int(hop.params["DurationSeconds"]) <= 3600
        assert re.fullmatch(rf"rolechain\.audit\.{run_id}", hop.params["RoleSessionName"])
        assert hop.params["SourceIdentity"] == "alice"
        assert (hop.params["Tags.member.1.Key"], hop.params["Tags.member.1.Value"]) == ("team", "platform")
        assert hop.status == 200


def test_no_source_identity_or_tags_are_sent_unless_set(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator
) -> None:
    operator_sessions.credentials(chain_to(landscape))
    for hop in assume_role_requests(emulator):
        assert not any(key.startswith(("Tags.", "SourceIdentity", "TransitiveTagKeys", "Policy")) for key in hop.params)
        assert hop.params["RoleSessionName"] == "rolechain"  # Chain.build's default session name


def test_missing_external_id_fails_hop_2_on_the_trust_policy_without_falling_back(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, clock: Clock
) -> None:
    chain = Chain.build([landscape.hub_role_arn, landscape.targets[0].role_arn])  # no ExternalId

    with pytest.raises(AssumeRoleError) as excinfo:
        operator_sessions.client(chain, "s3").list_buckets()

    failure = excinfo.value.failure
    assert (failure.hop, failure.role_arn, failure.code) == (2, landscape.targets[0].role_arn, "AccessDenied")
    assert failure.caller_arn == f"arn:aws:sts::{HUB_ACCOUNT}:assumed-role/rolechain-hub/rolechain"
    assert failure.likely_cause == "trust_policy"
    assert "condition (2)" in failure.hint and "none was sent" in failure.hint
    assert landscape.hub_role_arn in failure.hint  # the principal the trust policy must name
    # Never falls back to the caller's credentials: nothing but STS was called, besides the reads of
    # R1's own role that explain the denial (rolechain.doctor.explain; R1 may not read them here)
    assert {r.service for r in emulator.calls()} == {"sts", "iam"}
    iam_calls = [r for r in emulator.calls() if r.service == "iam"]
    assert [(r.action, r.params.get("RoleName")) for r in iam_calls] == [("GetRole", "rolechain-hub")]
    # A second attempt soon after is refused from memory (issue #10: a denied hop costs one AssumeRole a run)
    with pytest.raises(AssumeRoleError) as again:
        operator_sessions.credentials(chain)
    assert again.value.failure == failure
    assert assumed_roles(emulator) == [landscape.hub_role_arn, landscape.targets[0].role_arn]
    # Once that memory expired, it asks STS again for the failed hop only (the hub's credentials are cached)
    clock.advance(DENIED_HOP_TTL + 1)
    with pytest.raises(AssumeRoleError):
        operator_sessions.credentials(chain)
    assert assumed_roles(emulator) == [landscape.hub_role_arn, *[landscape.targets[0].role_arn] * 2]


def test_operator_straight_to_a_target_fails_hop_1_on_its_own_permissions(
    operator_sessions: ChainSessions, landscape: Seed
) -> None:
    chain = Chain.build([landscape.targets[0].role_arn], external_id=landscape.external_id)

    with pytest.raises(AssumeRoleError) as excinfo:
        operator_sessions.credentials(chain)

    failure = excinfo.value.failure
    assert (failure.hop, failure.caller_arn) == (1, landscape.user_arn)
    assert failure.likely_cause == "caller_permission"
    assert "condition (1)" in failure.hint and "condition (2)" not in failure.hint


def test_denied_session_tags_are_explained_as_the_missing_tag_session_permission(
    operator_sessions: ChainSessions, landscape: Seed
) -> None:
    # Given U1 may assume R1 but not tag the session (the seeded policy allows sts:AssumeRole only)
    chain = chain_to(landscape, tags={"team": "platform"})

    with pytest.raises(AssumeRoleError) as excinfo:
        operator_sessions.credentials(chain)

    failure = excinfo.value.failure
    assert (failure.hop, failure.likely_cause) == (1, "caller_permission")
    assert "sts:TagSession" in failure.message
    assert f"Allow sts:TagSession on {landscape.hub_role_arn}" in failure.hint


def test_durations_are_checked_before_sending_and_max_session_duration_is_explained(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator
) -> None:
    # A chained hop over one hour is refused before any request
    with pytest.raises(ConfigError, match=r"hops\[1\]\.duration_seconds"):
        chain_to(landscape, duration_seconds=7200)
    assert emulator.calls() == []

    # A first hop may ask for more, but R1's MaxSessionDuration is 3600: STS refuses and rolechain says why
    chain = Chain(hops=(Hop(role_arn=landscape.hub_role_arn, duration_seconds=7200),))
    with pytest.raises(AssumeRoleError) as excinfo:
        operator_sessions.credentials(chain)
    failure = excinfo.value.failure
    assert (failure.hop, failure.code, failure.likely_cause) == (1, "ValidationError", "request")
    assert "DurationSeconds 7200" in failure.hint


# -- targets' clients: clones of one prototype per service and region, each signing with its own keys ---
def test_concurrent_targets_clients_sign_with_their_own_credentials(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator
) -> None:
    # Given every target's S3 and STS clients, clones of one prototype each (one endpoint, one signer)
    chains = [chain_to(landscape, i) for i in range(len(landscape.targets))]
    s3 = [operator_sessions.client(chain, "s3") for chain in chains]
    assert len({id(client) for client in s3}) == len(chains)
    assert len({id(client._endpoint) for client in s3}) == 1
    assert len({id(client._request_signer) for client in s3}) == 1
    keys = {
        operator_sessions.credentials(chain).access_key: t.account_id
        for chain, t in zip(chains, landscape.targets, strict=True)
    }
    emulator.latency = 0.01  # requests of different targets overlap in the shared client

    # When 20 threads at once, four per target, each list buckets and ask who they are, five times
    def work(i: int) -> list[tuple[str, set[str], str]]:
        index = i % len(chains)
        return [
            (
                landscape.targets[index].account_id,
                {b["Name"] for b in s3[index].list_buckets()["Buckets"]},
                operator_sessions.client(chains[index], "sts").get_caller_identity()["Account"],
            )
            for _ in range(5)
        ]

    results = [row for rows in in_threads(20, work) for row in rows]

    # Then each request answered from its own target's account: its own buckets, its own identity
    buckets = {t.account_id: set(t.buckets) for t in landscape.targets}
    assert len(results) == 100
    assert all(listed == buckets[account] and identity == account for account, listed, identity in results)
    # And the emulator saw every request signed with the key of the target that made it, in that account
    requests = [r for r in emulator.requests if not r.admin and r.action in ("ListBuckets", "GetCallerIdentity")]
    assert len(requests) == 200
    assert all(keys.get(r.access_key) == r.account for r in requests)
    assert Counter(keys[r.access_key] for r in requests) == dict.fromkeys(buckets, 40)


@pytest.mark.mutates
def test_a_targets_paginator_pages_through_its_own_account(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, admin_s3: Callable[[str], Any]
) -> None:
    # Given two targets whose buckets are tagged (the tagging API lists tagged resources only)
    for target in landscape.targets[:2]:
        for bucket in target.buckets:
            admin_s3(target.account_id).put_bucket_tagging(
                Bucket=bucket, Tagging={"TagSet": [{"Key": "owner", "Value": "x"}]}
            )
    # And their tagging clients, of one prototype, paginating their resources one per page, interleaved
    first, second = (operator_sessions.client(chain_to(landscape, i), "resourcegroupstaggingapi") for i in (0, 1))
    pages = zip(
        first.get_paginator("get_resources").paginate(ResourceTypeFilters=["s3"], ResourcesPerPage=1),
        second.get_paginator("get_resources").paginate(ResourceTypeFilters=["s3"], ResourcesPerPage=1),
        strict=True,
    )
    # Then every page of each comes from its own account, and the pages add up to its buckets
    names: tuple[list[str], list[str]] = ([], [])
    for page_of_first, page_of_second in pages:
        for page, seen in ((page_of_first, names[0]), (page_of_second, names[1])):
            assert len(page["ResourceTagMappingList"]) <= 1
            seen.extend(m["ResourceARN"].rsplit(":", 1)[-1] for m in page["ResourceTagMappingList"])
    # (moto 5.2.2, the lowest allowed, repeats resources across one-per-page pages: compared as sets)
    assert (sorted(set(names[0])), sorted(set(names[1]))) == (
        list(landscape.targets[0].buckets),
        list(landscape.targets[1].buckets),
    )
    # one request per page (a bucket each), and the last page's
    assert len(emulator.calls(action="GetResources")) >= 2 * len(landscape.targets[0].buckets)


def test_a_throttled_target_retries_on_its_own_retry_quota(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, no_backoff: None
) -> None:
    # Given one target's ListBuckets throttled twice, the other's not
    throttled, other = landscape.targets[0], landscape.targets[1]
    first, second = (operator_sessions.client(chain_to(landscape, i), "s3") for i in (0, 1))
    emulator.inject_fault(
        "ListBuckets", "SlowDown", "slow down", status=503, times=2, match=lambda r: r.account == throttled.account_id
    )

    # When both list their buckets
    assert {b["Name"] for b in first.list_buckets()["Buckets"]} == set(throttled.buckets)
    assert {b["Name"] for b in second.list_buckets()["Buckets"]} == set(other.buckets)

    # Then botocore retried the throttled one (three attempts), the other went once
    attempts = Counter(r.account for r in emulator.calls(service="s3", action="ListBuckets"))
    assert attempts == {throttled.account_id: 3, other.account_id: 1}

    # And only the throttled target's retry quota paid for those retries (a client of its own would)
    def capacity(client: Any) -> int:
        available: int = client.rolechain_retry[0].__self__._retry_quota._quota.available_capacity
        return available

    assert capacity(first) < capacity(second) == 500
