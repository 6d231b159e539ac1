"""``rolechain doctor``: each of the chain's four conditions broken in turn, named with its fix, then
fixed and green (U1 -> R1 -> R2 on the emulator; the policies are moto's, decided by rolechain.iam)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rolechain_dev.emulator import HUB_ACCOUNT, Emulator, Seed

from tests.integration.support import CliResult

pytestmark = [pytest.mark.integration, pytest.mark.mutates]

Rolechain = Callable[..., CliResult]
AUDIT = "rolechain-audit"


READ_OWN_IAM = ["iam:Get*", "iam:List*"]


@pytest.fixture(autouse=True)
def callers_may_read_their_own_policies(operator_env: Seed, emulator: Emulator) -> None:
    """U1 and R1 may read their own IAM (the emulator enforces IAM: the doctor needs this to decide
    condition (1) and (3), and says so when it is missing)."""
    user = {"Effect": "Allow", "Action": READ_OWN_IAM, "Resource": [operator_env.user_arn, operator_env.hub_role_arn]}
    hub_iam(emulator).put_user_policy(
        UserName=user_name(operator_env), PolicyName="read-own", PolicyDocument=policy(user)
    )
    role = {"Effect": "Allow", "Action": READ_OWN_IAM, "Resource": operator_env.hub_role_arn}
    name = role_name(operator_env.hub_role_arn)
    hub_iam(emulator).put_role_policy(RoleName=name, PolicyName="read-own", PolicyDocument=policy(role))


def hops(seed: Seed, *, external_id: str | None = "seeded") -> list[str]:
    args = ["--via", seed.hub_role_arn, "--via", seed.targets[0].role_arn]
    if external_id is not None:
        args += ["--external-id", seed.external_id if external_id == "seeded" else external_id]
    return args


def doctor(rolechain: Rolechain, *args: str) -> tuple[int, dict[str, Any]]:
    result = rolechain("doctor", *args, "--json")
    assert result.err == "", result.err
    return result.code, json.loads(result.out)


def audit_role(emulator: Emulator, seed: Seed) -> str:
    """A role in the first target account that U1 may assume and that may read IAM there."""
    account = seed.targets[0].account_id
    trust = {"Effect": "Allow", "Principal": {"AWS": seed.user_arn}, "Action": "sts:AssumeRole"}
    target_iam = emulator.admin_session(account).client("iam")
    arn = target_iam.create_role(RoleName=AUDIT, AssumeRolePolicyDocument=policy(trust))["Role"]["Arn"]
    read = {"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}
    target_iam.put_role_policy(RoleName=AUDIT, PolicyName="read", PolicyDocument=policy(read))
    allow = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": str(arn)}
    hub_iam(emulator).put_user_policy(UserName=user_name(seed), PolicyName="audit", PolicyDocument=policy(allow))
    return str(arn)


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def hub_iam(emulator: Emulator) -> Any:
    return emulator.admin_session(HUB_ACCOUNT).client("iam")


def user_name(seed: Seed) -> str:
    return seed.user_arn.rsplit("/", 1)[-1]


def role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def test_a_healthy_chain_is_ok(rolechain: Rolechain, operator_env: Seed) -> None:
    code, report = doctor(rolechain, *hops(operator_env))
    assert code == 0 and report["ok"] is True
    first, second = report["hops"]
    assert (first["identity_policy_allows"], first["trust_policy_allows"], first["assumed"]) == (True, True, True)
    assert first["caller_arn"] == operator_env.user_arn and first["fix"] is None
    # R2's trust policy lives in another account: unknown without an audit role, and it says so
    assert (second["identity_policy_allows"], second["trust_policy_allows"], second["assumed"]) == (True, None, True)
    assert any("--inspect-via" in note for note in second["notes"])


def test_condition_1_caller_may_not_assume_r1(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    hub_iam(emulator).delete_user_policy(UserName=user_name(operator_env), PolicyName="assume-rolechain-hub")
    code, report = doctor(rolechain, *hops(operator_env))
    first, second = report["hops"]
    assert code == 1 and report["ok"] is False
    assert (first["identity_policy_allows"], first["trust_policy_allows"], first["assumed"]) == (False, True, False)
    assert first["fix"]["kind"] == "identity" and first["fix"]["policy_of"] == operator_env.user_arn
    assert first["fix"]["statement"] == {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": operator_env.hub_role_arn,
    }
    assert second["notes"] == ["not reached: an earlier hop failed"]
    # With the fix applied, the doctor is green
    fix = first["fix"]["statement"]
    hub_iam(emulator).put_user_policy(UserName=user_name(operator_env), PolicyName="fix", PolicyDocument=policy(fix))
    assert doctor(rolechain, *hops(operator_env))[1]["ok"] is True


def test_condition_2_r1_does_not_trust_the_caller(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    lambda_only = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    name = role_name(operator_env.hub_role_arn)
    hub_iam(emulator).update_assume_role_policy(RoleName=name, PolicyDocument=policy(lambda_only))
    code, report = doctor(rolechain, *hops(operator_env))
    first = report["hops"][0]
    assert code == 1
    assert (first["identity_policy_allows"], first["trust_policy_allows"], first["assumed"]) == (True, False, False)
    assert first["fix"] == {
        "policy_of": operator_env.hub_role_arn,
        "kind": "trust",
        "statement": {"Effect": "Allow", "Principal": {"AWS": operator_env.user_arn}, "Action": "sts:AssumeRole"},
        "say": f"add to the trust policy of {operator_env.hub_role_arn}",
    }
    fixed = policy(lambda_only, first["fix"]["statement"])
    hub_iam(emulator).update_assume_role_policy(RoleName=name, PolicyDocument=fixed)
    assert doctor(rolechain, *hops(operator_env))[1]["ok"] is True


def test_condition_3_r1_may_not_assume_r2(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    name = role_name(operator_env.hub_role_arn)
    hub_iam(emulator).delete_role_policy(RoleName=name, PolicyName="assume-rolechain-targets")
    code, report = doctor(rolechain, *hops(operator_env))
    first, second = report["hops"]
    assert code == 1 and first["assumed"] is True
    assert second["caller_arn"].startswith(f"arn:aws:sts::{HUB_ACCOUNT}:assumed-role/rolechain-hub/")
    assert (second["identity_policy_allows"], second["assumed"]) == (False, False)
    target = operator_env.targets[0].role_arn
    assert second["fix"]["kind"] == "identity" and second["fix"]["policy_of"] == operator_env.hub_role_arn
    assert second["fix"]["statement"] == {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target}
    hub_iam(emulator).put_role_policy(
        RoleName=name, PolicyName="fix", PolicyDocument=policy(second["fix"]["statement"])
    )
    assert doctor(rolechain, *hops(operator_env))[1]["ok"] is True


def test_condition_4_r2_does_not_trust_r1(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    audit = audit_role(emulator, operator_env)
    target = operator_env.targets[0]
    other = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:role/someone-else"},
        "Action": "sts:AssumeRole",
    }
    target_iam = emulator.admin_session(target.account_id).client("iam")
    target_iam.update_assume_role_policy(RoleName=role_name(target.role_arn), PolicyDocument=policy(other))
    code, report = doctor(rolechain, *hops(operator_env), "--inspect-via", audit)
    second = report["hops"][1]
    assert code == 1
    assert (second["identity_policy_allows"], second["trust_policy_allows"], second["assumed"]) == (True, False, False)
    assert second["fix"]["kind"] == "trust" and second["fix"]["policy_of"] == target.role_arn
    statement = second["fix"]["statement"]
    assert statement["Principal"] == {"AWS": operator_env.hub_role_arn}
    # the ExternalId is a placeholder in the fix, never the value
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "<the ExternalId you pass>"}}
    fixed = {**statement, "Condition": {"StringEquals": {"sts:ExternalId": operator_env.external_id}}}
    target_iam.update_assume_role_policy(RoleName=role_name(target.role_arn), PolicyDocument=policy(fixed))
    assert doctor(rolechain, *hops(operator_env), "--inspect-via", audit)[1]["ok"] is True


@pytest.mark.parametrize("external_id", [None, "not-the-right-one"])
def test_missing_or_wrong_external_id(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, external_id: str | None
) -> None:
    audit = audit_role(emulator, operator_env)
    args = (*hops(operator_env, external_id=external_id), "--inspect-via", audit)
    result = rolechain("doctor", *args)
    assert result.code == 1
    assert "DENIES" in result.out
    expected = "none was given" if external_id is None else "the one given does not match"
    assert f"the trust policy requires an ExternalId and {expected}" in result.out
    assert operator_env.external_id not in result.out + result.err  # never the secret itself
    # the fix is to pass the right ExternalId, never to weaken the trust policy
    second = doctor(rolechain, *args)[1]["hops"][1]
    assert (second["trust_policy_allows"], second["fix"]["kind"], second["fix"]["statement"]) == (False, "chain", None)
    assert "--external-id" in second["fix"]["say"]


def test_a_redundant_hop_is_named_with_the_fix_to_drop_it(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a profile that already is R1 (its session credentials), and --via R1 again
    user = emulator.session(operator_env.user_access_key_id, operator_env.user_secret_access_key)
    r1 = user.client("sts", endpoint_url=operator_env.endpoint_url).assume_role(
        RoleArn=operator_env.hub_role_arn, RoleSessionName="already-r1"
    )["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", r1["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", r1["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", r1["SessionToken"])
    code, report = doctor(rolechain, *hops(operator_env))
    first = report["hops"][0]
    assert first["fix"]["kind"] == "chain" and first["fix"]["statement"] is None
    assert "drop this hop" in first["fix"]["say"]
    # it never advises R1 to add sts:AssumeRole on itself
    assert first["caller_arn"].endswith(":assumed-role/rolechain-hub/already-r1")
    assert (code, first["identity_policy_allows"], first["assumed"]) == (1, False, False)
    assert all(h["fix"] is None or h["fix"]["kind"] != "identity" for h in report["hops"])


def test_without_read_access_the_doctor_says_which_it_needs(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator
) -> None:
    hub_iam(emulator).delete_user_policy(UserName=user_name(operator_env), PolicyName="read-own")
    code, report = doctor(rolechain, *hops(operator_env))
    first = report["hops"][0]
    assert first["identity_policy_allows"] is None and first["assumed"] is True and code == 0
    assert any("cannot read" in n and "iam:ListUserPolicies" in n for n in first["notes"]), first["notes"]


def test_bad_input_exits_2(rolechain: Rolechain, operator_env: Seed) -> None:
    assert rolechain("doctor").code == 2
    result = rolechain("doctor", "--via", "arn:aws:iam::12:role/x")
    assert result.code == 2 and "hops[0].role_arn: must be an IAM role ARN" in result.err
