"""Issue #13 point 2, the doctor's static mode: the chain's conditions decided from template.yaml and
target-role.yaml alone (no AWS call), over the real templates and over broken copies of them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rolechain import cli
from rolechain.doctor import EXTERNAL_ID_PLACEHOLDER
from rolechain.errors import ConfigError
from rolechain.static_doctor import TemplateReport, examine_templates

from tests.hub_support import ROOT

HUB, TARGET = ROOT / "template.yaml", ROOT / "target-role.yaml"
ALICE = "arn:aws:iam::111111111111:user/alice"
R1 = "arn:aws:iam::111111111111:role/rolechain-HubRole-EXAMPLE"
R2 = "arn:aws:iam::222222222222:role/rolechain-target"


def broken(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """A copy of ``source`` in ``tmp_path`` with ``old`` (which must be there) replaced by ``new``."""
    text = source.read_text()
    assert old in text, old
    copy = tmp_path / source.name
    copy.write_text(text.replace(old, new))
    return copy


def check(report: TemplateReport, name: str) -> Any:
    (found,) = [c for c in report.checks if c.check == name]
    return found


def test_the_projects_templates_make_a_working_chain() -> None:
    report = examine_templates(HUB, TARGET)

    assert report.ok
    (hop,) = report.hops  # without --operator: R1 -> R2 only, conditions (3) and (4)
    assert (hop.hop, hop.caller_arn, hop.role_arn) == (2, R1, R2)
    assert (hop.identity_policy_allows, hop.trust_policy_allows, hop.fix) == (True, True, None)
    assert hop.to_dict()["assumed"] is None
    assert [(c.check, c.ok) for c in report.checks] == [("external_id", True), ("registry_permissions", True)]


def test_r1_naming_another_role_fails_condition_3_with_the_fix(tmp_path: Path) -> None:
    hub = broken(tmp_path, HUB, "role${TargetRolePath}${TargetRoleName}", "role${TargetRolePath}other-role")

    report = examine_templates(hub, TARGET)

    assert not report.ok
    hop = report.hops[-1]
    assert (hop.identity_policy_allows, hop.trust_policy_allows) == (False, True)
    assert hop.fix is not None and (hop.fix.kind, hop.fix.policy_of) == ("identity", R1)
    assert hop.fix.statement == {
        "Effect": "Allow",
        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
        "Resource": R2,
    }
    assert "template.yaml's HubRole Policies" in hop.fix.say


def test_role_names_that_disagree_between_the_templates_fail_condition_3_naming_the_parameters() -> None:
    report = examine_templates(HUB, TARGET, parameters={"TargetRoleName": "rolechain-other"})

    hop = report.hops[-1]
    assert hop.identity_policy_allows is False and not report.ok
    assert hop.fix is not None and "TargetRoleName" in hop.fix.say and "RoleName" in hop.fix.say
    # and agreeing again (both templates' parameters) is green
    agreed = examine_templates(HUB, TARGET, parameters={"TargetRoleName": "rc", "RoleName": "rc"})
    assert agreed.ok and agreed.hops[-1].role_arn == "arn:aws:iam::222222222222:role/rc"


def test_a_trust_without_the_external_id_condition_is_reported(tmp_path: Path) -> None:
    target = broken(
        tmp_path,
        TARGET,
        "            Condition:\n              StringEquals:\n                sts:ExternalId: !Ref ExternalId\n",
        "",
    )

    report = examine_templates(HUB, target)

    assert not report.ok
    assert report.hops[-1].trust_policy_allows is True  # R1 gets in: the problem is that anyone with R1 does
    external_id = check(report, "external_id")
    assert not external_id.ok and "without an ExternalId" in external_id.say
    assert external_id.fix.kind == "trust" and external_id.fix.policy_of == R2
    assert external_id.fix.statement["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID_PLACEHOLDER}}


def test_a_trust_naming_another_principal_fails_condition_4_with_the_fix(tmp_path: Path) -> None:
    target = broken(tmp_path, TARGET, "AWS: !Ref HubRoleArn", "AWS: arn:aws:iam::999999999999:role/someone-else")

    report = examine_templates(HUB, target)

    hop = report.hops[-1]
    assert (hop.identity_policy_allows, hop.trust_policy_allows) == (True, False) and not report.ok
    assert hop.fix is not None and (hop.fix.kind, hop.fix.policy_of) == ("trust", R2)
    assert hop.fix.statement is not None and hop.fix.statement["Principal"] == {"AWS": R1}
    assert hop.fix.statement["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID_PLACEHOLDER}}


def test_an_operator_not_in_operator_principals_fails_condition_2_naming_the_parameter() -> None:
    report = examine_templates(HUB, TARGET, operator=ALICE)

    assert not report.ok
    hop = report.hops[0]
    assert (hop.hop, hop.caller_arn, hop.role_arn) == (1, ALICE, R1)
    assert (hop.identity_policy_allows, hop.trust_policy_allows) == (None, False)
    assert hop.fix is not None and (hop.fix.kind, hop.fix.policy_of) == ("trust", R1)
    assert "parameter OperatorPrincipals to include " + ALICE in hop.fix.say
    assert hop.fix.statement == {
        "Sid": "OperatorsWithSourceIdentity",
        "Effect": "Allow",
        "Principal": {"AWS": [ALICE]},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        "Condition": {"Null": {"sts:SourceIdentity": "false"}},
    }
    # (1) is in no template: the statement to paste into the operator's own policy is in a note
    assert any('"Resource": "' + R1 + '"' in note for note in hop.notes)


def test_an_operator_in_operator_principals_passes_and_gets_the_identity_advice() -> None:
    parameters = {"OperatorPrincipals": f"333333333333,{ALICE}", "OperatorRequireMfa": "true"}

    report = examine_templates(HUB, TARGET, operator=ALICE, parameters=parameters)

    assert report.ok
    hop = report.hops[0]
    assert (hop.identity_policy_allows, hop.trust_policy_allows) == (None, True)
    assert hop.fix is not None and (hop.fix.kind, hop.fix.policy_of) == ("identity", ALICE)
    assert hop.fix.statement == {
        "Effect": "Allow",
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        "Resource": R1,
    }
    assert any("requires MFA" in n for n in hop.notes) and any(
        "--source-identity (bare: alice)" in n for n in hop.notes
    )


def test_an_operator_role_matches_its_sessions_and_the_fix_keeps_the_listed_principals() -> None:
    sso = "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Ops_0123456789abcdef"
    assert examine_templates(HUB, TARGET, operator=sso, parameters={"OperatorPrincipals": sso}).ok

    report = examine_templates(HUB, TARGET, operator=sso, parameters={"OperatorPrincipals": ALICE})
    fix = report.hops[0].fix
    assert fix is not None and fix.statement is not None and fix.statement["Principal"] == {"AWS": [ALICE, sso]}
    assert f"OperatorPrincipals='{ALICE},{sso}'" in fix.say


def test_a_permission_the_registry_declares_missing_from_r2_is_reported(tmp_path: Path) -> None:
    target = broken(tmp_path, TARGET, "                  - tag:TagResources\n", "")

    report = examine_templates(HUB, target)

    registry = check(report, "registry_permissions")
    assert not registry.ok and not report.ok
    assert "tag:TagResources (tag_resources)" in registry.say
    assert registry.fix.statement == {"Effect": "Allow", "Action": ["tag:TagResources"], "Resource": "*"}
    assert "rolechain policy target" in registry.fix.say


def test_the_external_id_value_is_never_in_the_report(tmp_path: Path) -> None:
    secret = "Sup3r-Secret-ExternalId"
    target = broken(tmp_path, TARGET, "sts:ExternalId: !Ref ExternalId", "sts:ExternalId: Another-Secret-Literal")

    for path in (TARGET, target):
        report = examine_templates(HUB, path, parameters={"ExternalId": secret})
        text = json.dumps(report.to_dict())
        assert secret not in text and "Another-Secret-Literal" not in text


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"hub_template": "missing.yaml"}, "--template", "cannot read missing.yaml"),
        ({"target_template": "missing.yaml"}, "--target-template", "cannot read missing.yaml"),
        ({"parameters": {"NoSuchParameter": "x"}}, "--parameter", "'NoSuchParameter' is a parameter of neither"),
        ({"parameters": {"OperatorRequireMfa": "yes"}}, "--parameter", "OperatorRequireMfa: template.yaml allows only"),
        ({"parameters": {"TargetRoleName": "no spaces"}}, "--parameter", "TargetRoleName: the value does not match"),
        ({"operator": "alice"}, "--operator", "must be an IAM user or role ARN"),
        ({"operator": "arn:aws:s3:::bucket"}, "--operator", "must be an IAM user or role ARN"),
    ],
)
def test_bad_input_is_a_config_error_naming_what_was_wrong(
    kwargs: dict[str, Any], field: str, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    arguments: dict[str, Any] = {"hub_template": HUB, "target_template": TARGET, **kwargs}
    with pytest.raises(ConfigError) as raised:
        examine_templates(**arguments)
    assert raised.value.field == field and message in raised.value.rule


def test_a_file_that_is_not_yaml_or_not_a_template_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("Resources: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml is not valid YAML at line 2"):
        examine_templates(bad, TARGET)
    bad.write_text("just: text\n")
    with pytest.raises(ConfigError, match="is not a CloudFormation template"):
        examine_templates(HUB, bad)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        ["doctor", "--templates", "--template", str(HUB), "--target-template", str(TARGET), *argv], out, err
    )
    return code, out.getvalue(), err.getvalue()


def test_cli_exit_codes_and_json() -> None:
    code, out, err = run("--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["ok"] is True and [h["hop"] for h in data["hops"]] == [2]
    assert set(data["hops"][0]) == {
        "hop", "role_arn", "caller_arn", "identity_policy_allows", "trust_policy_allows", "assumed", "fix", "notes"
    }  # fmt: skip

    code, out, err = run("--operator", ALICE, "--json")
    assert code == 1 and json.loads(out)["ok"] is False and json.loads(out)["hops"][0]["fix"]["kind"] == "trust"

    code, out, err = run("--operator", ALICE)
    assert code == 1
    assert "hop 1 fix: set template.yaml's parameter OperatorPrincipals to include " + ALICE in out
    assert out.rstrip().endswith("the templates break the chain: see the fix above")

    code, out, err = run("--parameter", "Nope=1")
    assert (code, out) == (2, "") and err == (
        "rolechain: error: --parameter: 'Nope' is a parameter of neither template.yaml nor target-role.yaml\n"
    )
    code, out, err = run("--parameter", "ExternalId")  # no "=": refused without echoing the item
    assert code == 2 and "the 1st --parameter is not KEY=VALUE" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--via", R1], "--via: goes with the live doctor, not --templates"),
        (["--external-id", "abc"], "--external-id: goes with the live doctor"),
    ],
)
def test_live_flags_with_templates_are_refused(argv: list[str], message: str) -> None:
    code, _out, err = run(*argv)
    assert code == 2 and message in err and "abc" not in err


def test_static_flags_without_templates_are_refused() -> None:
    err = io.StringIO()
    assert cli.main(["doctor", "--via", R1, "--operator", ALICE], io.StringIO(), err) == 2
    assert "--operator: goes with --templates" in err.getvalue()


def test_the_installed_command_reads_the_templates_of_the_working_directory(tmp_path: Path) -> None:
    rolechain = Path(sys.executable).with_name("rolechain")

    def doctor(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(rolechain), "doctor", "--templates", *argv],
            check=False,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = doctor(ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "the templates make a working chain" in ok.stdout
    missing = doctor(tmp_path)
    assert missing.returncode == 2 and "--template: cannot read template.yaml" in missing.stderr


def test_when_operator_principals_would_not_let_the_operator_in_the_fix_is_a_statement_by_hand(
    tmp_path: Path,
) -> None:
    # Given a template whose operator statement ignores OperatorPrincipals
    hub = broken(tmp_path, HUB, "Principal: {AWS: !Ref OperatorPrincipals}", "Principal: {AWS: '999999999999'}")

    report = examine_templates(hub, TARGET, operator=ALICE)

    fix = report.hops[0].fix
    assert fix is not None and fix.kind == "trust" and "OperatorPrincipals" not in fix.say
    assert fix.say == "add to template.yaml's HubRole AssumeRolePolicyDocument"
    assert fix.statement is not None and fix.statement["Principal"] == {"AWS": ALICE}


def test_r1_policies_of_their_own_resource_count_as_r1s(tmp_path: Path) -> None:
    # Given HubRole's own sts statement naming no target, and an AWS::IAM::RolePolicy of HubRole that does
    resource = """
  R1AssumesTargets:
    Type: AWS::IAM::RolePolicy
    Properties:
      RoleName: !Ref HubRole
      PolicyName: assume-targets
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: [sts:AssumeRole, sts:TagSession, sts:SetSourceIdentity]
            Resource: !Sub arn:${AWS::Partition}:iam::*:role${TargetRolePath}${TargetRoleName}

Outputs:
"""
    hub = broken(tmp_path, HUB, "role${TargetRolePath}${TargetRoleName}", "role/nothing-here")
    without = examine_templates(hub, TARGET)
    hub.write_text(hub.read_text().replace("\nOutputs:\n", resource, 1))

    # Then condition (3) holds through the RolePolicy, and fails without it
    assert examine_templates(hub, TARGET).ok
    assert without.hops[-1].identity_policy_allows is False
