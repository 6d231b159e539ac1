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
        "layer": None,
        "remove": None,
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


# -- the rest of the landscape: MFA, a boundary, SourceIdentity, a session policy -----------------

MFA_DEVICE = f"arn:aws:iam::{HUB_ACCOUNT}:mfa/rolechain-operator"


def test_mfa_required_by_r1_is_named_and_mfa_makes_it_green(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator
) -> None:
    name = role_name(operator_env.hub_role_arn)
    trust = {
        "Effect": "Allow",
        "Principal": {"AWS": operator_env.user_arn},
        "Action": "sts:AssumeRole",
        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
    }
    hub_iam(emulator).update_assume_role_policy(RoleName=name, PolicyDocument=policy(trust))
    code, report = doctor(rolechain, *hops(operator_env))
    first = report["hops"][0]
    assert code == 1
    assert (first["identity_policy_allows"], first["trust_policy_allows"], first["assumed"]) == (True, False, False)
    assert first["fix"]["kind"] == "chain" and "--mfa-serial" in first["fix"]["say"]
    assert "the trust policy requires MFA and the request carried none" in first["notes"]
    # the fix: assume R1 with the MFA device and its code
    code, report = doctor(rolechain, *hops(operator_env), "--mfa-serial", MFA_DEVICE, "--mfa-code", "123456")
    assert (code, report["ok"], report["hops"][0]["trust_policy_allows"]) == (0, True, True)


def test_an_mfa_code_is_checked_and_never_echoed(rolechain: Rolechain, operator_env: Seed) -> None:
    result = rolechain("doctor", *hops(operator_env), "--mfa-serial", MFA_DEVICE, "--mfa-code", "12x4567")
    assert result.code == 2 and "--mfa-code: must be the 6 digits" in result.err
    assert "12x4567" not in result.err + result.out
    result = rolechain("doctor", *hops(operator_env), "--mfa-code", "123456")
    assert result.code == 2 and "--mfa-code: goes with --mfa-serial" in result.err
    result = rolechain("whoami", "--mfa-serial", MFA_DEVICE, "--mfa-code", "123456")
    assert result.code == 2 and "--mfa-serial: applies to the first --via hop" in result.err


def put_boundary(emulator: Emulator, seed: Seed, *statements: dict[str, Any]) -> str:
    """R1 gets a permissions boundary made of ``statements``; R1 may read it (the doctor needs to)."""
    client = hub_iam(emulator)
    arn = str(
        client.create_policy(PolicyName="rolechain-boundary", PolicyDocument=policy(*statements))["Policy"]["Arn"]
    )
    client.put_role_permissions_boundary(RoleName=role_name(seed.hub_role_arn), PermissionsBoundary=arn)
    read = {"Effect": "Allow", "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"], "Resource": arn}
    client.put_role_policy(
        RoleName=role_name(seed.hub_role_arn), PolicyName="read-boundary", PolicyDocument=policy(read)
    )
    return arn


def test_a_deny_in_r1s_boundary_is_named_with_the_statement_to_remove(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator
) -> None:
    target = operator_env.targets[0].role_arn
    deny = {"Sid": "NoTargets", "Effect": "Deny", "Action": "sts:AssumeRole", "Resource": target}
    everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    boundary = put_boundary(emulator, operator_env, everything, deny)
    code, report = doctor(rolechain, *hops(operator_env))
    second = report["hops"][1]
    assert code == 1
    assert (second["identity_policy_allows"], second["assumed"]) == (False, False)
    fix = second["fix"]
    assert (fix["kind"], fix["layer"], fix["policy_of"], fix["statement"]) == (
        "identity", "permissions boundary", boundary, None
    )  # fmt: skip
    assert fix["remove"] == deny and "remove or narrow this Deny" in fix["say"]
    # the fix applied: a boundary version without the Deny
    client = hub_iam(emulator)
    client.create_policy_version(PolicyArn=boundary, PolicyDocument=policy(everything), SetAsDefault=True)
    assert doctor(rolechain, *hops(operator_env))[1]["ok"] is True


def test_a_boundary_that_does_not_name_the_hop_gets_the_allow_to_add(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator
) -> None:
    s3_only = {"Effect": "Allow", "Action": ["s3:*", "iam:Get*", "iam:List*"], "Resource": "*"}
    boundary = put_boundary(emulator, operator_env, s3_only)
    code, report = doctor(rolechain, *hops(operator_env))
    second = report["hops"][1]
    assert (code, second["identity_policy_allows"], second["fix"]["layer"]) == (1, False, "permissions boundary")
    statement = second["fix"]["statement"]
    assert statement == {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": operator_env.targets[0].role_arn}
    client = hub_iam(emulator)
    client.create_policy_version(PolicyArn=boundary, PolicyDocument=policy(s3_only, statement), SetAsDefault=True)
    assert doctor(rolechain, *hops(operator_env))[1]["ok"] is True


def test_a_source_identity_the_caller_may_not_set(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    # U1 may AssumeRole R1 but not sts:SetSourceIdentity on it
    code, report = doctor(rolechain, *hops(operator_env), "--source-identity", "alice")
    first = report["hops"][0]
    assert (code, first["identity_policy_allows"], first["trust_policy_allows"]) == (1, False, True)
    assert first["fix"]["statement"] == {
        "Effect": "Allow",
        "Action": "sts:SetSourceIdentity",
        "Resource": operator_env.hub_role_arn,
    }
    hub_iam(emulator).put_user_policy(
        UserName=user_name(operator_env), PolicyName="fix", PolicyDocument=policy(first["fix"]["statement"])
    )
    assert doctor(rolechain, *hops(operator_env), "--source-identity", "alice")[1]["ok"] is True


def test_a_source_identity_the_trust_policy_does_not_allow(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator
) -> None:
    allow = {"Effect": "Allow", "Action": "sts:SetSourceIdentity", "Resource": operator_env.hub_role_arn}
    hub_iam(emulator).put_user_policy(UserName=user_name(operator_env), PolicyName="si", PolicyDocument=policy(allow))
    audit = audit_role(emulator, operator_env)
    target = operator_env.targets[0]
    no_source_identity = {
        "Effect": "Allow",
        "Principal": {"AWS": operator_env.hub_role_arn},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": operator_env.external_id}},
    }
    target_iam = emulator.admin_session(target.account_id).client("iam")
    target_iam.update_assume_role_policy(RoleName=role_name(target.role_arn), PolicyDocument=policy(no_source_identity))
    args = (*hops(operator_env), "--source-identity", "alice", "--inspect-via", audit)
    code, report = doctor(rolechain, *args)
    second = report["hops"][1]
    assert (code, second["identity_policy_allows"], second["trust_policy_allows"]) == (1, True, False)
    # only the missing action, and no ExternalId advice: the ExternalId given is right
    assert second["fix"]["kind"] == "trust"
    assert second["fix"]["statement"] == {
        "Effect": "Allow",
        "Principal": {"AWS": operator_env.hub_role_arn},
        "Action": "sts:SetSourceIdentity",
    }
    fixed = policy(no_source_identity, second["fix"]["statement"])
    target_iam.update_assume_role_policy(RoleName=role_name(target.role_arn), PolicyDocument=fixed)
    assert doctor(rolechain, *args)[1]["ok"] is True


def test_a_trust_policy_that_requires_a_source_identity(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator
) -> None:
    allow = {"Effect": "Allow", "Action": "sts:SetSourceIdentity", "Resource": operator_env.hub_role_arn}
    hub_iam(emulator).put_user_policy(UserName=user_name(operator_env), PolicyName="si", PolicyDocument=policy(allow))
    named = {
        "Effect": "Allow",
        "Principal": {"AWS": operator_env.user_arn},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        "Condition": {"Null": {"sts:SourceIdentity": "false"}},
    }
    hub_iam(emulator).update_assume_role_policy(
        RoleName=role_name(operator_env.hub_role_arn), PolicyDocument=policy(named)
    )
    code, report = doctor(rolechain, *hops(operator_env))
    first = report["hops"][0]
    assert (code, first["trust_policy_allows"], first["fix"]["kind"]) == (1, False, "chain")
    assert "--source-identity" in first["fix"]["say"]
    assert doctor(rolechain, *hops(operator_env), "--source-identity", "alice")[1]["ok"] is True


def test_a_session_policy_too_narrow_for_the_next_hop(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base credentials are an R1 session created with a session policy that does not allow the
    next hop: the doctor cannot read a session's policy, but AWS's denial names it."""

    def r1_session(*statements: dict[str, Any]) -> None:
        user = emulator.session(operator_env.user_access_key_id, operator_env.user_secret_access_key)
        creds = user.client("sts", endpoint_url=operator_env.endpoint_url).assume_role(
            RoleArn=operator_env.hub_role_arn, RoleSessionName="narrowed", Policy=policy(*statements)
        )["Credentials"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
        monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])

    read = {"Effect": "Allow", "Action": READ_OWN_IAM, "Resource": "*"}
    r1_session(read)
    target = operator_env.targets[0].role_arn
    args = ["--via", target, "--external-id", operator_env.external_id]
    code, report = doctor(rolechain, *args)
    first = report["hops"][0]
    assert (code, first["identity_policy_allows"], first["assumed"]) == (1, False, False)
    assert first["fix"]["layer"] == "session policy" and "session policy" in first["fix"]["say"]
    statement = first["fix"]["statement"]
    assert statement == {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target}
    r1_session(read, statement)  # the fix applied: a session whose policy allows the hop
    assert doctor(rolechain, *args)[1]["ok"] is True


def test_a_session_policy_the_chain_passes_is_evaluated_before_asking_aws(
    operator_env: Seed, emulator: Emulator
) -> None:
    """A hop's own session policy is known to the doctor: it decides condition (3) with it, and names
    the hop that passes it."""
    from rolechain import doctor as doctor_module
    from rolechain.chain import Chain, Hop
    from rolechain.sessions import ChainSessions

    target = operator_env.targets[0].role_arn
    narrow = {"Statement": [{"Effect": "Allow", "Action": READ_OWN_IAM, "Resource": "*"}]}
    chain = Chain(
        hops=(
            Hop(role_arn=operator_env.hub_role_arn, session_policy=narrow),
            Hop(role_arn=target, external_id=operator_env.external_id),
        ),
        session_name="doctor-test",
    )
    user = emulator.session(operator_env.user_access_key_id, operator_env.user_secret_access_key)
    reports = doctor_module.examine(ChainSessions(user), chain)
    first, second = reports
    assert first.assumed and not second.assumed and second.identity_policy_allows is False
    assert second.fix is not None and second.fix.layer == "session policy"
    assert second.fix.policy_of == operator_env.hub_role_arn and "when it assumes" in second.fix.say
    assert second.fix.statement == {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target}


# -- doctor JOB --config: the chains a run of the job takes --------------------------------------


def job_file(tmp_path: Any, seed: Seed) -> str:
    accounts = ", ".join(f'"{t.account_id}"' for t in seed.targets)
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "version: 1\n"
        "defaults:\n"
        f"  external_id: {seed.external_id}\n"
        "jobs:\n"
        "  inventory:\n"
        "    action: list_buckets\n"
        f"    targets: {{accounts: [{accounts}]}}\n"
    )
    return str(path)


def test_doctor_job_examines_each_target_and_the_shared_hop_once(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, tmp_path: Any
) -> None:
    from tests.integration.support import assume_role_requests

    config = job_file(tmp_path, operator_env)
    code, report = doctor(rolechain, "inventory", "--config", config, "--via", operator_env.hub_role_arn)
    count = len(operator_env.targets)
    assert (code, report["ok"], report["examined"], report["of"]) == (0, True, count, count)
    assert [t["account"] for t in report["targets"]] == [t.account_id for t in operator_env.targets]
    for target, seeded in zip(report["targets"], operator_env.targets, strict=True):
        assert [h["role_arn"] for h in target["hops"]] == [operator_env.hub_role_arn, seeded.role_arn]
        assert all(h["assumed"] for h in target["hops"])
    # R1 is examined (and assumed) once, each target role once
    assert len(assume_role_requests(emulator, operator_env.hub_role_arn)) == 1
    assert len(assume_role_requests(emulator)) == 1 + count
    assert operator_env.external_id not in json.dumps(report)


def test_doctor_job_names_the_broken_account_and_its_fix(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, tmp_path: Any
) -> None:
    audit_role(emulator, operator_env)  # in the first target account only: elsewhere it says it cannot read
    broken = operator_env.targets[0]
    other = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "sts:AssumeRole"}
    target_iam = emulator.admin_session(broken.account_id).client("iam")
    target_iam.update_assume_role_policy(RoleName=role_name(broken.role_arn), PolicyDocument=policy(other))
    args = ("inventory", "--config", job_file(tmp_path, operator_env), "--via", operator_env.hub_role_arn)
    inspect = ("--inspect-via", f"arn:aws:iam::{{account}}:role/{AUDIT}")
    code, report = doctor(rolechain, *args, *inspect)
    assert code == 1 and report["ok"] is False
    assert [t["ok"] for t in report["targets"]] == [False] + [True] * (len(operator_env.targets) - 1)
    second = report["targets"][0]["hops"][1]
    assert (second["trust_policy_allows"], second["fix"]["kind"]) == (False, "trust")
    assert second["fix"]["policy_of"] == broken.role_arn
    assert any("cannot read the trust policy" in n for n in report["targets"][1]["hops"][1]["notes"])
    table = rolechain("doctor", *args, *inspect)
    assert table.code == 1 and "1 chain(s) broken" in table.out
    assert f"{broken.account_id} fix: add to the trust policy of {broken.role_arn}" in table.out


def test_doctor_job_samples_and_narrows(rolechain: Rolechain, operator_env: Seed, tmp_path: Any) -> None:
    config = job_file(tmp_path, operator_env)
    via = ("--via", operator_env.hub_role_arn)
    accounts = [t.account_id for t in operator_env.targets]
    first, middle, last = accounts[0], accounts[len(accounts) // 2], accounts[-1]
    code, report = doctor(rolechain, "inventory", "--config", config, *via, "--sample", "2")
    assert (code, [t["account"] for t in report["targets"]], report["of"]) == (0, [first, last], len(accounts))
    code, report = doctor(rolechain, "inventory", "--config", config, *via, "--sample", "3")
    assert [t["account"] for t in report["targets"]] == [first, middle, last]
    code, report = doctor(rolechain, "inventory", "--config", config, *via, "--accounts", last)
    assert [t["account"] for t in report["targets"]] == [last]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("inventory",), "doctor: give JOB with --config FILE"),
        (("inventory", "--config", "{config}", "--sample", "0"), "--sample: must be at least 1"),
        (("--via", "arn:aws:iam::111111111111:role/x", "--sample", "2"), "--sample: goes with JOB --config FILE"),
        (("inventory", "--config", "{config}", "--accounts", "999999999999"), "not among the targets of job"),
        (("inventory", "--config", "{config}", "--external-id", "xx"), "--external-id: comes from the job file"),
        (("inventory", "--config", "{config}", "--inspect-via", "arn:aws:iam::{acct}:role/a"), "--inspect-via: "),
        (("nope", "--config", "{config}"), "nope"),
    ],
)
def test_doctor_job_bad_input_exits_2(
    rolechain: Rolechain, operator_env: Seed, tmp_path: Any, argv: tuple[str, ...], message: str
) -> None:
    config = job_file(tmp_path, operator_env)
    result = rolechain("doctor", *(a.replace("{config}", config) for a in argv))
    assert result.code == 2 and message in result.err, result.err
