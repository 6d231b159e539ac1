"""Targets resolved live from AWS Organizations (issue #12): root or OUs (and every OU below), account
tags, exclusions, ACTIVE accounts only, the hub account only when listed; `rolechain targets` shows the
plan; runs use it; Organizations is read through a role, paged and retried on throttling."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rolechain import ChainSessions, CredentialCache
from rolechain.jobs import OrganizationTargets, Targets
from rolechain.targets import OrganizationReader, resolve
from rolechain_dev.emulator import HUB_ACCOUNT, Emulator, Seed

from tests.integration.support import CliResult

pytestmark = [pytest.mark.integration, pytest.mark.mutates]

Rolechain = Callable[..., CliResult]
MANAGEMENT = "300000000001"
READER = f"arn:aws:iam::{MANAGEMENT}:role/rolechain-org-reader"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def org(operator_env: Seed, emulator: Emulator) -> dict[str, str]:
    """Targets 1-2 in prod, 3 in dev, 4 in dev/sandbox, 5 at the root; the hub in platform. U1 may
    assume READER in the management account, which may read Organizations."""
    t = [target.account_id for target in operator_env.targets]
    ids = emulator.create_organization(
        MANAGEMENT,
        {t[0]: ["prod"], t[1]: ["prod"], t[2]: ["dev"], t[3]: ["dev", "sandbox"], t[4]: [], HUB_ACCOUNT: ["platform"]},
    )
    assert emulator.organization_reader(MANAGEMENT, operator_env) == READER
    return ids


def job_file(tmp_path: Path, seed: Seed, targets: str, name: str = "jobs.yaml") -> str:
    path = tmp_path / name
    path.write_text(
        "version: 1\n"
        "defaults:\n"
        f"  external_id: {seed.external_id}\n"
        f"  via: ['{seed.hub_role_arn}']\n"
        "jobs:\n"
        "  inventory:\n"
        "    action: list_buckets\n"
        f"    targets: {targets}\n"
    )
    return str(path)


def targets_json(rolechain: Rolechain, config: str, *extra: str) -> dict[str, Any]:
    result = rolechain("targets", "inventory", "--config", config, "--json", *extra)
    assert result.code == 0, result.err
    return dict(result.json)


def test_the_whole_organisation_is_every_active_member_but_the_hub(
    rolechain: Rolechain, operator_env: Seed, org: dict[str, str], tmp_path: Path
) -> None:
    config = job_file(tmp_path, operator_env, f"{{organization: {{root: true, role: '{READER}'}}}}")
    body = targets_json(rolechain, config)
    expected = sorted([t.account_id for t in operator_env.targets] + [MANAGEMENT])
    assert [t["account"] for t in body["targets"]] == expected
    assert {t["region"] for t in body["targets"]} == {"us-east-1"}
    ou_of = {t["account"]: t["ou"] for t in body["targets"]}
    assert ou_of[operator_env.targets[0].account_id] == org["prod"]
    assert ou_of[operator_env.targets[3].account_id] == org["dev/sandbox"]
    assert ou_of[operator_env.targets[4].account_id] == org["root"]
    assert body["excluded"] == [
        {"account": HUB_ACCOUNT, "why": "the hub account: list it in targets.accounts to target it"}
    ]
    table = rolechain("targets", "inventory", "--config", config)
    assert table.code == 0 and f"{len(expected)} account(s) x 1 region(s) = {len(expected)} target(s)" in table.out
    assert org["prod"] in table.out and "left out:" in table.out


def test_an_ou_means_it_and_every_ou_below_it_and_exclusions_apply(
    rolechain: Rolechain, operator_env: Seed, org: dict[str, str], tmp_path: Path
) -> None:
    t = [target.account_id for target in operator_env.targets]
    config = job_file(tmp_path, operator_env, f"{{organization: {{ous: [{org['dev']}], role: '{READER}'}}}}")
    assert [x["account"] for x in targets_json(rolechain, config)["targets"]] == [t[2], t[3]]
    narrowed = job_file(
        tmp_path,
        operator_env,
        f"{{organization: {{root: true, role: '{READER}'}}, exclude_ous: [{org['dev/sandbox']}], "
        f"exclude_accounts: ['{t[0]}'], accounts: ['{HUB_ACCOUNT}']}}",
        name="narrowed.yaml",
    )
    body = targets_json(rolechain, narrowed, "--exclude", t[4])
    assert [x["account"] for x in body["targets"]] == [HUB_ACCOUNT, t[1], t[2], MANAGEMENT]  # the hub: listed
    why = {e["account"]: e["why"] for e in body["excluded"]}
    assert why == {
        t[3]: f"in {org['dev/sandbox']}, listed in exclude_ous",
        t[0]: "listed in exclude_accounts",
        t[4]: "left out with --exclude",
    }


def test_account_tags_filter_and_suspended_accounts_are_left_out(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, org: dict[str, str], tmp_path: Path
) -> None:
    t = [target.account_id for target in operator_env.targets]
    orgs = emulator.admin_session(MANAGEMENT).client("organizations")
    for account in t[:3]:
        orgs.tag_resource(ResourceId=account, Tags=[{"Key": "env", "Value": "prod"}])
    orgs.close_account(AccountId=t[1])
    config = job_file(
        tmp_path, operator_env, f"{{organization: {{root: true, tags: {{env: prod}}, role: '{READER}'}}}}"
    )
    body = targets_json(rolechain, config)
    assert [x["account"] for x in body["targets"]] == [t[0], t[2]]
    why = {e["account"]: e["why"] for e in body["excluded"]}
    assert why[t[1]] == "not ACTIVE (SUSPENDED)"
    assert why[t[3]] == why[t[4]] == "tags do not match: env=prod"


def test_a_job_runs_in_its_organisation_targets(
    rolechain: Rolechain, operator_env: Seed, org: dict[str, str], tmp_path: Path
) -> None:
    t = [target.account_id for target in operator_env.targets]
    config = job_file(tmp_path, operator_env, f"{{organization: {{ous: [{org['prod']}], role: '{READER}'}}}}")
    result = rolechain("run", "inventory", "--config", config, "--json")
    assert result.code == 0, result.err
    assert [(r["account"], r["status"]) for r in result.json["results"]] == [(t[0], "ok"), (t[1], "ok")]
    excluded = rolechain("run", "inventory", "--config", config, "--exclude", t[0], "--json")
    assert [r["account"] for r in excluded.json["results"]] == [t[1]]
    outside = rolechain("run", "inventory", "--config", config, "--accounts", t[2])
    assert outside.code == 2 and "not among the targets of job 'inventory'" in outside.err


def test_an_adhoc_run_over_an_ou(rolechain: Rolechain, operator_env: Seed, org: dict[str, str]) -> None:
    t = [target.account_id for target in operator_env.targets]
    result = rolechain(
        "run", "--action", "list_buckets", "--ou", org["dev"], "--org-role", READER,
        "--via", operator_env.hub_role_arn, "--external-id", operator_env.external_id, "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert [r["account"] for r in result.json["results"]] == [t[2], t[3]]


def test_unreadable_organizations_names_the_field_and_the_permissions(
    rolechain: Rolechain, operator_env: Seed, org: dict[str, str], tmp_path: Path
) -> None:
    config = job_file(tmp_path, operator_env, "{organization: {root: true}}")  # U1 may not read Organizations
    result = rolechain("targets", "inventory", "--config", config)
    assert result.code == 1
    assert "jobs.inventory.targets.organization: cannot read AWS Organizations with the base credentials" in result.err
    assert "organizations:ListRoots" in result.err


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ("{organization: {}}", "give root: true (every account) or ous: [ou-...]"),
        ("{organization: {root: true, ous: [ou-ab12-cdef3456]}}", "give root or ous, not both"),
        ("{organization: {ous: [ou-nope]}}", "organization.ous[0]: 'ou-nope' is not an OU id like ou-ab12-cdef3456"),
        ("{accounts: ['200000000001'], exclude_ous: [ou-ab12-cdef3456]}", "exclude_ous applies to organization"),
        ("{}", "give accounts: [...] and/or organization"),
        ("{organization: {root: true, role: 'arn:aws:iam::1:role/x'}}", "is not an IAM role ARN"),
    ],
)
def test_bad_organization_targets_are_named(
    rolechain_offline: Rolechain, operator_env: Seed, tmp_path: Path, targets: str, message: str
) -> None:
    result = rolechain_offline("validate", job_file(tmp_path, operator_env, targets))
    assert result.code == 2 and "jobs.inventory.targets" in result.err and message in result.err, result.err


def test_throttled_organizations_calls_are_retried_with_backoff(
    operator_env: Seed, emulator: Emulator, org: dict[str, str]
) -> None:
    base = emulator.session(operator_env.user_access_key_id, operator_env.user_secret_access_key)
    sessions = ChainSessions(base, endpoint_url=operator_env.endpoint_url, cache=CredentialCache())
    slept: list[float] = []
    reader = OrganizationReader(sessions, sleep=slept.append)
    # botocore's own retries take 3 attempts; beyond them the reader backs off and tries again
    emulator.inject_fault("ListAccountsForParent", "TooManyRequestsException", "Rate exceeded", times=7)
    targets = Targets(organization=OrganizationTargets(root=True, role=READER))
    resolved = resolve(targets, reader, hub_account=HUB_ACCOUNT)
    assert len(resolved.accounts) == len(operator_env.targets) + 1
    assert len(slept) >= 2 and all(s >= 0 for s in slept)
    # cached for the reader's life: resolving again sends nothing
    sent = reader.calls
    assert resolve(targets, reader, hub_account=HUB_ACCOUNT) == resolved and reader.calls == sent
