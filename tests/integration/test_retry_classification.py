"""Issue #10 defect 6: what a retry may fix is retried (or reported retryable), what it cannot is
remembered. Against the emulator's fault injection, counting the AssumeRole requests it recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rolechain import ChainSessions
from rolechain.actions import tag_resources
from rolechain.jobs import RoleSettings
from rolechain.planning import PlanRequest, plan_run
from rolechain.runner import Status, TargetResult, run_plan
from rolechain.sessions import DENIED_HOP_TTL
from rolechain_dev.emulator import HUB_ACCOUNT, Emulator, Seed, target_account_id

from tests.helpers import Clock
from tests.integration.support import assume_role_requests, plan_action, run_action

pytestmark = pytest.mark.integration


def role_of(seed: Seed, account: str) -> str:
    return seed.target(account).role_arn


# -- STS 5xx ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "status"), [("InternalError", 500), ("ServiceUnavailable", 503), ("Oops", 502)])
def test_an_sts_server_error_on_a_hop_is_transient_and_retryable(
    emulator: Emulator, landscape: Seed, operator_sessions: ChainSessions, no_backoff: None, code: str, status: int
) -> None:
    # Given STS answering a 5xx to every AssumeRole of one target's R2
    victim = landscape.target_account_ids[0]
    emulator.inject_fault(
        "AssumeRole",
        code,
        "try later",
        status=status,
        times=100,
        match=lambda r: r.params.get("RoleArn") == role_of(landscape, victim),
    )
    # When the run reaches it
    report = run_action(operator_sessions, landscape, "whoami", accounts=[victim])
    # Then it failed as transient (not a policy problem), and a retry is allowed
    (result,) = report.results
    assert result.status == Status.FAILED and result.error is not None
    assert result.error["likely_cause"] == "transient" and "server error" in result.error["hint"]
    assert result.retryable
    # And once STS recovers, the same sessions assume it: the failure was not remembered as a denial
    emulator.clear_faults()
    assert run_action(operator_sessions, landscape, "whoami", accounts=[victim]).results[0].status == Status.OK


# -- throttled TagResources ---------------------------------------------------------------------------
@pytest.fixture
def no_action_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The action's backoff sleeps, recorded instead of slept; botocore tries each call once."""
    slept: list[float] = []
    monkeypatch.setattr(tag_resources, "sleep", slept.append)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return slept


def tag_throttled_target(
    emulator: Emulator, seed: Seed, sessions: ChainSessions, code: str, times: int
) -> tuple[TargetResult, list[str]]:
    """Tag one target's buckets while TagResources answers ``code`` ``times`` times: its result, and the ARNs."""
    account = seed.target_account_ids[0]
    emulator.inject_fault("TagResources", code, "Rate exceeded", times=times)
    params = {"tags": {"team": "core"}, "arns": [f"arn:aws:s3:::{name}" for name in seed.target(account).buckets]}
    (result,) = run_action(sessions, seed, "tag_resources", params, accounts=[account]).results
    return result, params["arns"]


@pytest.mark.mutates
def test_a_throttled_tag_resources_batch_is_retried_with_backoff_inside_the_action(
    emulator: Emulator, landscape: Seed, operator_sessions: ChainSessions, no_action_sleep: list[float]
) -> None:
    # Given TagResources throttled twice (past botocore's own attempts), when the target is tagged
    result, arns = tag_throttled_target(emulator, landscape, operator_sessions, "ThrottlingException", times=2)
    # Then the action retried the batch after backing off, and tagged everything
    assert result.status == Status.OK, result.error
    assert result.output is not None and sorted(result.output["tagged"]) == sorted(arns)
    assert len(emulator.calls(action="TagResources")) == 3
    assert len(no_action_sleep) == 2 and all(0 <= s <= tag_resources.THROTTLE_BACKOFF * 2 for s in no_action_sleep)


@pytest.mark.mutates
def test_a_tag_resources_batch_still_throttled_fails_the_target_retryable_after_bounded_retries(
    emulator: Emulator, landscape: Seed, operator_sessions: ChainSessions, no_action_sleep: list[float]
) -> None:
    result, _ = tag_throttled_target(emulator, landscape, operator_sessions, "Throttling", times=100)
    assert result.status == Status.FAILED and result.kind == "action"
    assert result.retryable
    assert result.output is not None and {f["code"] for f in result.output["failed"].values()} == {"Throttling"}
    assert len(emulator.calls(action="TagResources")) == 1 + tag_resources.THROTTLE_RETRIES


# -- expired credentials ------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"])
def test_credentials_aws_rejects_on_a_target_call_are_dropped_and_assumed_afresh(
    emulator: Emulator, landscape: Seed, operator_sessions: ChainSessions, code: str
) -> None:
    # Given a target whose cached R2 credentials AWS rejects once, as if revoked or expired early
    victim, other = landscape.target_account_ids[:2]
    emulator.inject_fault(
        "ListBuckets", code, "The security token is expired", status=403, match=lambda r: r.account == victim
    )
    plan = plan_action(operator_sessions, landscape, "list_buckets", accounts=[victim, other])
    first = run_plan(operator_sessions, plan, run_id="retried")
    assert [r.status for r in first.results] == [Status.FAILED, Status.OK]
    assert first.results[0].retryable
    emulator.clear_requests()
    # When the target is retried (within the same run, as the worker does; the next run does the same)
    again = run_plan(operator_sessions, plan, run_id="retried")
    # Then its chain is assumed again and it works; the other target's R2 is still cached
    assert [r.status for r in again.results] == [Status.OK, Status.OK]
    assert [r.params["RoleArn"] for r in assume_role_requests(emulator)] == [
        landscape.hub_role_arn,
        role_of(landscape, victim),
    ]


def test_a_hop_whose_callers_credentials_are_rejected_drops_them_and_is_retryable(
    emulator: Emulator, landscape: Seed, operator_sessions: ChainSessions
) -> None:
    # Given STS rejecting R1's cached credentials once, when they are used to assume R2
    victim = landscape.target_account_ids[0]
    run_action(operator_sessions, landscape, "whoami", accounts=[victim])  # R1 and R2 cached
    emulator.clear_requests()
    emulator.inject_fault(
        "AssumeRole",
        "ExpiredToken",
        "expired",
        status=400,
        match=lambda r: r.params.get("RoleArn") == role_of(landscape, landscape.target_account_ids[1]),
    )
    (failed,) = run_action(operator_sessions, landscape, "whoami", accounts=[landscape.target_account_ids[1]]).results
    assert failed.status == Status.FAILED and failed.retryable
    assert (
        failed.error is not None and failed.error["hop"] == 2 and failed.error["likely_cause"] == "caller_credentials"
    )
    # When retried, R1 is assumed again before R2
    emulator.clear_requests()
    (retried,) = run_action(operator_sessions, landscape, "whoami", accounts=[landscape.target_account_ids[1]]).results
    assert retried.status == Status.OK
    assert [r.params["RoleArn"] for r in assume_role_requests(emulator)] == [
        landscape.hub_role_arn,
        role_of(landscape, landscape.target_account_ids[1]),
    ]


# -- denied hops --------------------------------------------------------------------------------------
BROKEN_R1 = f"arn:aws:iam::{HUB_ACCOUNT}:role/rolechain-hub-missing"


def run_behind_broken_hub(sessions: ChainSessions, accounts: list[str]) -> Any:
    settings = RoleSettings(via=[BROKEN_R1])
    return run_plan(
        sessions, plan_run(sessions, settings, PlanRequest(action="whoami", accounts=accounts, concurrency=10))
    )


def test_a_denied_hop_is_remembered_so_forty_targets_behind_it_cost_one_assume_role(
    emulator: Emulator, landscape: Seed, operator_sessions_for: Callable[[Seed], ChainSessions], clock: Clock
) -> None:
    # Given forty targets behind a hub role the operator may not assume
    sessions = operator_sessions_for(landscape)
    accounts = [target_account_id(i) for i in range(1, 41)]
    # When they run, ten at once
    report = run_behind_broken_hub(sessions, accounts)
    # Then R1 was tried once, and every target failed at hop 1 with the same cause
    assert len(assume_role_requests(emulator, BROKEN_R1)) == 1
    assert len(assume_role_requests(emulator)) == 1
    assert {r.status for r in report.results} == {Status.FAILED}
    causes = {
        (r.error["hop"], r.error["code"], r.error["likely_cause"], r.error["hint"]) for r in report.results if r.error
    }
    assert len(causes) == 1 and next(iter(causes))[:2] == (1, "AccessDenied")
    assert not any(r.retryable for r in report.results)
    # And only for a short time: after the TTL the hop is tried again
    clock.advance(DENIED_HOP_TTL + 1)
    run_behind_broken_hub(sessions, accounts[:2])
    assert len(assume_role_requests(emulator, BROKEN_R1)) == 2
