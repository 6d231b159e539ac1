"""regions: all (issue #12): a target account's enabled regions, found through its own chain
(ec2:DescribeRegions, declared in R2's policy and in the run's session policy), minus exclude_regions;
one result per account and region, each exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from rolechain.actions import target_role_policy
from rolechain_dev.emulator import Emulator, Seed

from tests.integration.support import CliResult, assume_role_requests

pytestmark = pytest.mark.integration

Rolechain = Callable[..., CliResult]


@pytest.fixture
def seed(seed_landscape: Callable[..., Seed], as_operator: Callable[[Seed], Seed]) -> Seed:
    return as_operator(seed_landscape(targets=2, buckets_per_account=1, target_policy=target_role_policy()))


def regions_by_status(emulator: Emulator, seed: Seed) -> dict[str, list[str]]:
    """What the emulated EC2 says of each region: enabled ones, and opt-in ones not opted in."""
    ec2 = emulator.admin_session(seed.targets[0].account_id).client("ec2")
    listed: dict[str, list[str]] = {}
    for region in ec2.describe_regions(AllRegions=False)["Regions"]:
        listed.setdefault(region["OptInStatus"], []).append(region["RegionName"])
    return listed


def adhoc(seed: Seed, *extra: str) -> list[str]:
    accounts = ",".join(t.account_id for t in seed.targets)
    return ["run", "--action", "list_buckets", "--accounts", accounts, "--via", seed.hub_role_arn,
            "--external-id", seed.external_id, "--json", *extra]  # fmt: skip


def test_region_all_runs_once_in_every_enabled_region_of_each_account(emulator: Emulator, seed: Seed) -> None:
    from tests.integration.support import run_cli

    listed = regions_by_status(emulator, seed)
    regions = sorted(listed["opt-in-not-required"] + listed.get("opted-in", []))
    assert len(regions) > 10 and listed["not-opted-in"]  # the ones not opted in are not targets
    result = run_cli(adhoc(seed, "--region", "all", "--exclude-region", "us-west-2"))
    assert result.code == 0, result.err
    pairs = [(r["account"], r["region"]) for r in result.json["results"]]
    expected = [(t.account_id, r) for t in seed.targets for r in regions if r != "us-west-2"]
    assert sorted(pairs) == sorted(expected) and len(pairs) == len(set(pairs))
    assert {r["status"] for r in result.json["results"]} == {"ok"}
    # one AssumeRole per role (R1 once, R2 once per account): discovery and every region share the chain
    assert Counter(r.params["RoleArn"] for r in assume_role_requests(emulator)) == Counter(
        {seed.hub_role_arn: 1, **{t.role_arn: 1 for t in seed.targets}}
    )
    # the region list comes from each account, through its own session, narrowed to what the run needs
    described = emulator.calls(service="ec2", action="DescribeRegions")
    assert {r.account for r in described} == {t.account_id for t in seed.targets}


def test_an_account_whose_regions_cannot_be_listed_ends_once_as_failed(
    emulator: Emulator, seed_landscape: Callable[..., Seed], as_operator: Callable[[Seed], Seed]
) -> None:
    from tests.integration.support import run_cli

    no_regions = target_role_policy()
    no_regions["Statement"][0]["Action"].remove("ec2:DescribeRegions")
    seed = as_operator(seed_landscape(targets=2, buckets_per_account=1, target_policy=no_regions))
    result = run_cli(adhoc(seed, "--region", "all"))
    assert result.code == 1
    results = result.json["results"]
    assert [(r["account"], r["region"], r["status"]) for r in results] == [
        (t.account_id, "all", "failed") for t in seed.targets
    ]
    assert all("cannot list the account's enabled regions" in r["error"]["message"] for r in results)
    assert all("ec2:DescribeRegions" in r["error"]["message"] for r in results)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--region", "all", "--region", "us-east-1"], "regions: give all, or a list of regions, not both"),
        (["--region", "us-east-1", "--exclude-region", "us-east-1"], "exclude_regions removes every region"),
        (["--region", "all", "--exclude-region", "us-esat-1"], "did you mean 'us-east-1'?"),
    ],
)
def test_bad_region_choices_exit_2(seed: Seed, extra: list[str], message: str) -> None:
    from tests.integration.support import run_cli

    result = run_cli(adhoc(seed, *extra))
    assert result.code == 2 and message in result.err, result.err


def test_a_job_file_says_regions_all(rolechain_offline: Rolechain, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "version: 1\njobs:\n  j1:\n    action: list_buckets\n    regions: all\n    exclude_regions: [ap-east-1]\n"
        "    targets: {accounts: ['200000000001']}\n"
    )
    assert rolechain_offline("validate", str(path)).code == 0
    path.write_text(
        "version: 1\njobs:\n  j1:\n    action: list_buckets\n    regions: [all, us-east-1]\n"
        "    targets: {accounts: ['200000000001']}\n"
    )
    result = rolechain_offline("validate", str(path))
    assert result.code == 2 and "regions: give all, or a list of regions, not both" in result.err


def test_an_account_whose_regions_cannot_be_listed_counts_against_max_failures(
    emulator: Emulator, seed_landscape: Callable[..., Seed], as_operator: Callable[[Seed], Seed], tmp_path: Path
) -> None:
    from tests.integration.support import run_cli

    no_regions = target_role_policy()
    no_regions["Statement"][0]["Action"].remove("ec2:DescribeRegions")
    seed = as_operator(seed_landscape(targets=3, buckets_per_account=1, target_policy=no_regions))
    accounts = ", ".join(f"'{t.account_id}'" for t in seed.targets)
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "version: 1\n"
        f"defaults: {{external_id: {seed.external_id}, via: ['{seed.hub_role_arn}'], concurrency: 1}}\n"
        "jobs:\n"
        "  guarded: {action: list_buckets, regions: all, rollout: {first: 1},\n"
        f"            targets: {{accounts: [{accounts}]}}}}\n"
    )
    result = run_cli(["run", "guarded", "--config", str(path), "--json"])
    assert [r["status"] for r in result.json["results"]] == ["failed", "skipped", "skipped"]
    assert result.json["waves"] == [{"wave": 1, "targets": 1, "failed": 1}]
    assert emulator.calls(service="ec2", action="DescribeRegions", account=seed.targets[1].account_id) == []
