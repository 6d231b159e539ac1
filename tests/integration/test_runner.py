"""Issue #3, the runner: one action over many targets, each ending in exactly one result, however
the others fare (a missing role, a throttled API, the time budget running out)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from rolechain import ChainSessions, CredentialCache
from rolechain.planning import Target
from rolechain.runner import Status, TargetResult, run_plan
from rolechain_dev.emulator import Emulator, Seed

from tests.integration.support import assume_role_requests, assumed_roles, plan_action, run_action

pytestmark = pytest.mark.integration


class Budget:
    """``remaining_seconds`` of a run: the given values, one per call, then the last one forever."""

    def __init__(self, *values: float) -> None:
        self._values = list(values)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._values.pop(0) if len(self._values) > 1 else self._values[0]


def test_a_missing_target_role_fails_that_target_at_hop_2_only(
    seed_landscape: Callable[..., Seed], operator_sessions_for: Callable[[Seed], ChainSessions]
) -> None:
    # Given R2 missing in one of five accounts
    missing = "200000000003"
    seed = seed_landscape(missing_role_accounts=[missing])

    report = run_action(operator_sessions_for(seed), seed, "list_buckets")

    # Then that target failed at hop 2 with the diagnosis, and every other one is ok
    by_account = {r.account: r for r in report.results}
    failed = by_account.pop(missing)
    assert failed.status == Status.FAILED and failed.output is None
    assert failed.error is not None
    assert (failed.error["type"], failed.error["hop"], failed.error["code"]) == ("assume_role", 2, "AccessDenied")
    assert failed.error["role_arn"] == seed.target(missing).role_arn
    assert failed.error["caller_arn"].startswith("arn:aws:sts::111111111111:assumed-role/rolechain-hub/")
    assert "or the role does not exist" in failed.error["hint"]
    for account, result in by_account.items():
        assert result.status == Status.OK, result.error
        assert result.output is not None
        assert [b["name"] for b in result.output["buckets"]] == list(seed.target(account).buckets)
    assert report.summary == {"ok": 4, "failed": 1, "skipped": 0, "dry_run": 0}
    assert report.exit_code == 1


# Two values in one process: the attempts follow AWS_MAX_ATTEMPTS each time, never frozen by an earlier client.
@pytest.mark.parametrize("attempts", [2, 4])
def test_a_throttled_account_fails_alone_once_retries_are_exhausted(
    operator_sessions: ChainSessions,
    landscape: Seed,
    emulator: Emulator,
    no_backoff: None,
    monkeypatch: pytest.MonkeyPatch,
    attempts: int,
) -> None:
    # Given clients that try a call `attempts` times, and ListBuckets throttled in one account more often
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", str(attempts))
    victim = landscape.targets[1].account_id
    emulator.inject_fault("ListBuckets", "Throttling", "Rate exceeded", times=100, match=lambda r: r.account == victim)

    report = run_action(operator_sessions, landscape, "list_buckets")

    # Then only that target failed, with the AWS error and operation, after every retry was spent
    statuses = {r.account: r.status for r in report.results}
    assert statuses == {t.account_id: Status.FAILED if t.account_id == victim else Status.OK for t in landscape.targets}
    (failed,) = [r for r in report.results if r.status == Status.FAILED]
    assert failed.error == {"type": "aws", "code": "Throttling", "message": "Rate exceeded", "operation": "ListBuckets"}
    sent = emulator.calls(action="ListBuckets", account=victim)
    assert [(r.status, r.emulator_error) for r in sent] == [(400, "Throttling")] * attempts

    # And once the throttling stops, the same target works again with the cached chain
    emulator.clear_faults()
    again = run_action(operator_sessions, landscape, "list_buckets", accounts=[victim])
    assert again.results[0].status == Status.OK


def test_targets_not_started_before_the_budget_ends_are_skipped(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator
) -> None:
    # Given a time budget that falls below the 10 s reserve after two targets have started
    plan = plan_action(operator_sessions, landscape, "list_buckets", concurrency=1)
    budget = Budget(120.0, 60.0, 9.5)

    report = run_plan(operator_sessions, plan, remaining_seconds=budget, reserve_seconds=10.0)

    # Then the first two ran, the other three are skipped as out of time, and all five are reported
    assert [(r.account, r.status) for r in report.results] == [
        (t.account_id, Status.OK if i < 2 else Status.SKIPPED) for i, t in enumerate(landscape.targets)
    ]
    for skipped in report.results[2:]:
        assert skipped.error is not None and skipped.output is None
        assert skipped.error["type"] == "skipped"
        assert "out of time" in skipped.error["message"]
    assert report.summary == {"ok": 2, "failed": 0, "skipped": 3, "dry_run": 0}
    assert report.exit_code == 1
    # No chain was even started for a skipped target
    started = {t.role_arn for t in landscape.targets[:2]}
    assert set(assumed_roles(emulator)) == {landscape.hub_role_arn, *started}


def test_every_target_ends_in_exactly_one_result(
    seed_landscape: Callable[..., Seed], operator_sessions_for: Callable[[Seed], ChainSessions], emulator: Emulator
) -> None:
    # Given five accounts x two regions, one account without R2, one account whose S3 refuses in one region
    no_role, refused = "200000000005", "200000000002"
    seed = seed_landscape(missing_role_accounts=[no_role])
    emulator.inject_fault(
        "ListBuckets",
        "AccessDenied",
        "Access Denied",
        status=403,
        times=100,
        match=lambda r: r.account == refused and r.region == "eu-west-1",
    )
    sessions = operator_sessions_for(seed)
    plan = plan_action(sessions, seed, "list_buckets", regions=["us-east-1", "eu-west-1"], concurrency=4)
    progress: list[tuple[TargetResult, int, int]] = []

    report = run_plan(sessions, plan, on_result=lambda result, done, total: progress.append((result, done, total)))

    # Then one result per planned target, in plan order, and nothing else
    planned = [(t.account, t.region) for t in plan.targets]
    assert len(planned) == 10 and len(set(planned)) == 10
    assert [(r.account, r.region) for r in report.results] == planned
    expected_failed = {(no_role, "us-east-1"), (no_role, "eu-west-1"), (refused, "eu-west-1")}
    assert {(r.account, r.region) for r in report.results if r.status == Status.FAILED} == expected_failed
    assert report.summary == {"ok": 7, "failed": 3, "skipped": 0, "dry_run": 0}
    assert sum(report.summary.values()) == len(planned)
    # Each region reports only its own buckets (all were created in us-east-1)
    for result in report.results:
        if result.status == Status.OK:
            assert result.output is not None
            assert result.output["count"] == (3 if result.region == "us-east-1" else 0)
    # The progress callback saw every target once, counting up to the total
    assert sorted(done for _, done, _ in progress) == list(range(1, 11))
    assert {total for _, _, total in progress} == {10}
    assert sorted((r.account, r.region) for r, _, _ in progress) == sorted(planned)


def test_a_run_assumes_the_hub_once_and_a_second_run_assumes_nothing(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator, credential_cache: CredentialCache
) -> None:
    # Given slow STS answers and five targets in flight at once
    emulator.latency = 0.02

    first = run_action(operator_sessions, landscape, "list_buckets", concurrency=5)

    # Then R1 was assumed once for all five targets, and each R2 once
    assert first.summary["ok"] == 5
    assert Counter(assumed_roles(emulator)) == {landscape.hub_role_arn: 1, **{t.role_arn: 1 for t in landscape.targets}}

    # When the same action runs again in this process with the same sessions
    emulator.clear_requests()
    second = run_action(operator_sessions, landscape, "list_buckets", concurrency=5)

    # Then no AssumeRole at all was sent, and the run still reached every account
    assert second.run_id != first.run_id
    assert second.summary["ok"] == 5
    assert assume_role_requests(emulator) == []
    assert len(emulator.calls(action="ListBuckets")) == 5
    assert credential_cache.assume_role_calls == 6


def test_another_action_reuses_the_hub_but_narrows_the_target_session_anew(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator
) -> None:
    run_action(operator_sessions, landscape, "list_buckets")
    emulator.clear_requests()

    report = run_action(operator_sessions, landscape, "whoami")

    # A session policy is part of the hop: R2 is assumed again with whoami's, R1 is not
    assert report.summary["ok"] == 5
    assert sorted(assumed_roles(emulator)) == sorted(t.role_arn for t in landscape.targets)
    assert all("sts:GetCallerIdentity" in r.params["Policy"] for r in assume_role_requests(emulator))


def test_session_name_names_the_job_and_run(
    operator_sessions: ChainSessions, landscape: Seed, emulator: Emulator
) -> None:
    plan = plan_action(operator_sessions, landscape, "whoami", accounts=["200000000001"], job="nightly-audit")

    report = run_plan(operator_sessions, plan, run_id="run42")

    assert report.run_id == "run42"
    names = {r.params["RoleSessionName"] for r in assume_role_requests(emulator)}
    assert names == {"rolechain.nightly-audit.run42"}
    output: dict[str, Any] = report.results[0].output or {}
    assert output["arn"].endswith("/rolechain.nightly-audit.run42")


def test_targets_are_unique_per_account_and_region(operator_sessions: ChainSessions, landscape: Seed) -> None:
    account = landscape.targets[0].account_id
    plan = plan_action(operator_sessions, landscape, "whoami", accounts=[account, account], regions=["us-east-1"])
    assert list(plan.targets) == [Target(account, "us-east-1")]
