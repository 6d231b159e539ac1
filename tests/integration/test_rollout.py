"""Guardrails for changing jobs (issue #12): waves (rollout: {first, then}) and max_failures (a count or
a percentage); a failing wave stops the run and the targets not started end skipped with the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rolechain_dev.emulator import Seed

from tests.integration.support import CliResult, run_cli

pytestmark = pytest.mark.integration

BROKEN = "200000000002"  # no target role there: its AssumeRole fails


@pytest.fixture
def seed(seed_landscape: Callable[..., Seed], as_operator: Callable[[Seed], Seed]) -> Seed:
    return as_operator(seed_landscape(targets=5, buckets_per_account=1, missing_role_accounts=[BROKEN]))


def job(tmp_path: Path, seed: Seed, guard: str) -> str:
    accounts = ", ".join(f"'{t.account_id}'" for t in seed.targets)
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "version: 1\n"
        f"defaults: {{external_id: {seed.external_id}, via: ['{seed.hub_role_arn}'], concurrency: 1}}\n"
        "jobs:\n"
        "  guarded:\n"
        "    action: list_buckets\n"
        f"    targets: {{accounts: [{accounts}]}}\n"
        f"{guard}"
    )
    return str(path)


def run(config: str, *extra: str) -> CliResult:
    return run_cli(["run", "guarded", "--config", config, "--json", *extra])


def statuses(result: CliResult) -> list[str]:
    return [r["status"] for r in result.json["results"]]


def test_a_failing_wave_stops_the_run_and_the_rest_is_skipped_with_the_reason(seed: Seed, tmp_path: Path) -> None:
    result = run(job(tmp_path, seed, "    rollout: {first: 1, then: 2}\n"))
    assert result.code == 1
    assert statuses(result) == ["ok", "failed", "ok", "skipped", "skipped"]
    reason = "not started: wave 2 ended with 1 failure(s), over max_failures 0"
    assert result.json["stopped"] == reason
    assert [r["error"]["message"] for r in result.json["results"][3:]] == [reason, reason]
    assert result.json["waves"] == [{"wave": 1, "targets": 1, "failed": 0}, {"wave": 2, "targets": 2, "failed": 1}]


def test_a_tolerated_failure_rate_lets_every_wave_run(seed: Seed, tmp_path: Path) -> None:
    result = run(job(tmp_path, seed, "    rollout: {first: 1, then: '40%'}\n    max_failures: '20%'\n"))
    assert statuses(result) == ["ok", "failed", "ok", "ok", "ok"] and "stopped" not in result.json
    assert [w["targets"] for w in result.json["waves"]] == [1, 2, 2]


def test_max_failures_without_waves_stops_as_results_come_in(seed: Seed, tmp_path: Path) -> None:
    result = run(job(tmp_path, seed, "    max_failures: 0\n"))
    assert statuses(result) == ["ok", "failed", "skipped", "skipped", "skipped"]
    assert result.json["stopped"] == "not started: 1 failure(s), over max_failures 0"


def test_a_dry_run_reports_the_waves_it_would_run(seed: Seed, tmp_path: Path) -> None:
    config = job(tmp_path, seed, "    rollout: {first: 2, then: 3}\n")
    table = run_cli(["run", "guarded", "--config", config, "--dry-run", "--accounts", "200000000001,200000000003"])
    assert "waves: 1: 2 target(s), 0 failed" in table.out and table.code == 0


@pytest.mark.parametrize(
    ("guard", "message"),
    [
        ("    rollout: {first: 0}\n", "first must be at least 1 target"),
        ("    rollout: {then: '150%'}\n", "'150%' must be a count like 5 or a percentage like '25%'"),
        ("    max_failures: -1\n", "must not be negative"),
        ("    rollout: {first: 1, every: 2}\n", "every"),
    ],
)
def test_bad_guardrails_are_named(seed: Seed, tmp_path: Path, guard: str, message: str) -> None:
    result = run_cli(["validate", job(tmp_path, seed, guard)])
    assert result.code == 2 and "jobs.guarded" in result.err and message in result.err, result.err
