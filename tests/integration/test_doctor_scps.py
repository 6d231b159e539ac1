"""``rolechain doctor`` and service control policies: the hub account is a member of an organisation
managed elsewhere; an SCP over it can deny a hop that every IAM policy allows. The emulator enforces
SCPs on the members' requests; the doctor reads them through --org-via and names the one to change."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rolechain_dev.emulator import HUB_ACCOUNT, Emulator, Seed

from tests.integration.support import CliResult
from tests.integration.test_doctor import callers_may_read_their_own_policies, doctor, hops, hub_iam, policy

pytestmark = [pytest.mark.integration, pytest.mark.mutates]

Rolechain = Callable[..., CliResult]
MANAGEMENT = "300000000001"
READER = f"arn:aws:iam::{MANAGEMENT}:role/rolechain-org-reader"
__all__ = ["callers_may_read_their_own_policies"]  # the fixture, autouse here too


@pytest.fixture
def organization(operator_env: Seed, emulator: Emulator) -> dict[str, str]:
    """The hub in OU workloads of an organisation managed by MANAGEMENT, where U1 may assume a role
    that reads Organizations."""
    ids = emulator.create_organization(MANAGEMENT, {HUB_ACCOUNT: ["workloads"]})
    assert emulator.organization_reader(MANAGEMENT, operator_env) == READER
    return ids


def scp(emulator: Emulator, target: str, *statements: dict[str, Any]) -> tuple[str, str]:
    """An SCP of ``statements`` attached to ``target``: (policy id, policy ARN)."""
    orgs = emulator.admin_session(MANAGEMENT).client("organizations")
    made = orgs.create_policy(
        Name="rolechain-test", Description="test", Type="SERVICE_CONTROL_POLICY", Content=policy(*statements)
    )["Policy"]["PolicySummary"]
    orgs.attach_policy(PolicyId=made["Id"], TargetId=target)
    return str(made["Id"]), str(made["Arn"])


def test_an_scp_deny_on_the_hubs_ou_is_named_with_the_statement_to_remove(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, organization: dict[str, str]
) -> None:
    target = operator_env.targets[0].role_arn
    deny = {"Sid": "NoMembers", "Effect": "Deny", "Action": "sts:AssumeRole", "Resource": target}
    policy_id, policy_arn = scp(emulator, organization["workloads"], deny)
    code, report = doctor(rolechain, *hops(operator_env), "--org-via", READER)
    first, second = report["hops"]
    assert code == 1 and first["assumed"] is True  # the SCP denies only the target roles
    assert (second["identity_policy_allows"], second["assumed"]) == (False, False)
    fix = second["fix"]
    assert (fix["kind"], fix["layer"], fix["policy_of"], fix["remove"]) == (
        "identity", "service control policy", policy_arn, deny
    )  # fmt: skip
    # the fix applied: the SCP without the Deny
    orgs = emulator.admin_session(MANAGEMENT).client("organizations")
    orgs.update_policy(PolicyId=policy_id, Content=policy({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    assert doctor(rolechain, *hops(operator_env), "--org-via", READER)[1]["ok"] is True


def test_without_access_to_organizations_it_says_so_and_aws_names_the_scp(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, organization: dict[str, str]
) -> None:
    target = operator_env.targets[0].role_arn
    scp(emulator, organization["workloads"], {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": target})
    code, report = doctor(rolechain, *hops(operator_env))  # U1 may not read Organizations itself
    second = report["hops"][1]
    assert code == 1
    assert any("SCPs over account 111111111111 not read" in n and "--org-via" in n for n in second["notes"])
    assert (second["identity_policy_allows"], second["fix"]["layer"]) == (False, "service control policy")
    assert "AWS says a service control policy of account 111111111111 denies" in second["fix"]["say"]


def test_an_ou_no_scp_allows_gets_the_allow_to_attach(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, organization: dict[str, str]
) -> None:
    orgs = emulator.admin_session(MANAGEMENT).client("organizations")
    ou = organization["workloads"]
    s3_only = {"Effect": "Allow", "Action": ["s3:*", "iam:*", "organizations:*"], "Resource": "*"}
    reader = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": READER}  # the doctor's own way in
    scp(emulator, ou, s3_only, reader)
    orgs.detach_policy(PolicyId="p-FullAWSAccess", TargetId=ou)
    code, report = doctor(rolechain, *hops(operator_env), "--org-via", READER)
    first = report["hops"][0]  # U1 -> R1 is refused already: U1 is in the hub account too
    assert (code, first["identity_policy_allows"], first["assumed"]) == (1, False, False)
    fix = first["fix"]
    assert (fix["layer"], fix["policy_of"]) == ("service control policy", ou)
    assert fix["statement"] == {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": operator_env.hub_role_arn}
    orgs.attach_policy(PolicyId="p-FullAWSAccess", TargetId=ou)
    assert doctor(rolechain, *hops(operator_env), "--org-via", READER)[1]["ok"] is True


def test_the_management_account_is_not_restricted_by_scps(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator
) -> None:
    emulator.create_organization(HUB_ACCOUNT, {})
    orgs = emulator.admin_session(HUB_ACCOUNT).client("organizations")
    root = orgs.list_roots()["Roots"][0]["Id"]
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    made = orgs.create_policy(Name="all", Description="d", Type="SERVICE_CONTROL_POLICY", Content=policy(deny))
    orgs.attach_policy(PolicyId=made["Policy"]["PolicySummary"]["Id"], TargetId=root)
    read = {"Effect": "Allow", "Action": ["organizations:Describe*", "organizations:List*"], "Resource": "*"}
    hub_iam(emulator).put_user_policy(
        UserName=operator_env.user_arn.rsplit("/", 1)[-1], PolicyName="org", PolicyDocument=policy(read)
    )
    code, report = doctor(rolechain, *hops(operator_env))
    assert code == 0, json.dumps(report)
    assert any("management account: no SCP applies" in n for n in report["hops"][0]["notes"])
