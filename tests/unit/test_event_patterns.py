"""The EventBridge patterns of the remediation rules: one generator, both templates hold its output.

Patterns are matched with moto's EventBridge matcher (``moto.events.models.EventPattern``), not a
hand-written one, so "matches" means what an emulated bus would deliver.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.events.models import EventPattern, EventPatternParser
from rolechain import cli
from rolechain.errors import ConfigError
from rolechain.event_patterns import AUDIENCES, CLOUDTRAIL_API_CALL, event_pattern, event_patterns
from rolechain.jobs import JobFile, load_job_file, parse_job_file
from rolechain.templates import Stack

from tests.hub_support import EVENTS, ROOT, load_event, load_template

SHIPPED_JOB_FILE = ROOT / "layers/rolechain/rolechain-config/jobs.yaml"  # what sam build puts in the layer
DEMO_JOB_FILE = ROOT / "dev/rolechain_dev/examples/jobs.yaml"
REMEDIATION_FIXTURES = sorted(
    p.name for p in EVENTS.glob("remediation-*.json") if p.name != "remediation-bad-event.json"
)


def matcher(pattern: dict[str, Any]) -> EventPattern:
    """moto's matcher over ``pattern``, parsed (and validated) as EventBridge's PutRule would."""
    raw = json.dumps(pattern)
    return EventPattern(raw, EventPatternParser(raw).parse())


def hub_template_pattern() -> dict[str, Any]:
    function = load_template()["Resources"]["RemediationFunction"]["Properties"]
    (event,) = function["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    pattern: dict[str, Any] = event["Properties"]["Pattern"]
    return pattern


def member_template_pattern() -> dict[str, Any]:
    pattern: dict[str, Any] = load_template("target-role.yaml")["Resources"]["EventForwardingRule"]["Properties"][
        "EventPattern"
    ]
    return pattern


TEMPLATE_PATTERNS = {"hub": hub_template_pattern, "member": member_template_pattern}


# -- drift: the templates hold what the generator prints for the job file they ship -------------------
def test_the_hub_stack_ships_the_job_file_the_drift_tests_read() -> None:
    default = load_template()["Parameters"]["JobFile"]["Default"]
    assert default == "/opt/python/rolechain-config/jobs.yaml"  # the layer's python/ is the package folder
    assert SHIPPED_JOB_FILE.relative_to(ROOT / "layers/rolechain").as_posix() == "rolechain-config/jobs.yaml"


@pytest.mark.parametrize("audience", AUDIENCES)
def test_each_templates_pattern_is_the_generators_for_the_shipped_job_file(audience: str) -> None:
    expected = event_pattern(load_job_file(SHIPPED_JOB_FILE), audience)  # type: ignore[arg-type]
    checked_in = json.loads(json.dumps(TEMPLATE_PATTERNS[audience]()))
    assert checked_in == expected, (
        f"run `rolechain events pattern --config {SHIPPED_JOB_FILE.relative_to(ROOT)} --for {audience}` "
        "and update the template"
    )


def test_the_demo_job_file_needs_no_other_pattern() -> None:
    # the emulator's tests and `make demo` run the demo's job file against these same templates
    assert event_patterns(load_job_file(DEMO_JOB_FILE)) == event_patterns(load_job_file(SHIPPED_JOB_FILE))


# -- what the patterns match (moto's matcher) -----------------------------------------------------------
@pytest.mark.parametrize("audience", AUDIENCES)
@pytest.mark.parametrize("fixture", REMEDIATION_FIXTURES)
def test_each_pattern_matches_every_remediation_fixture(audience: str, fixture: str) -> None:
    event = load_event(fixture)
    assert load_job_file(DEMO_JOB_FILE).remediations_for(event), f"{fixture} is no remediation event"
    assert matcher(TEMPLATE_PATTERNS[audience]()).matches_event(event)


def unrelated_events() -> dict[str, dict[str, Any]]:
    cloudtrail = load_event("remediation-create-bucket.json")
    read = copy.deepcopy(cloudtrail)
    read["detail"]["eventName"] = "ListBuckets"  # an S3 call no rule remediates
    ec2 = copy.deepcopy(cloudtrail)
    ec2["source"], ec2["detail"]["eventSource"] = "aws.ec2", "ec2.amazonaws.com"  # a rule's name, not its source
    console = copy.deepcopy(cloudtrail)
    console["detail-type"] = "AWS Console Sign In via CloudTrail"
    return {
        "s3-read": read,
        "other-source": ec2,
        "other-detail-type": console,
        "schedule": load_event("scheduler-inventory.json"),
    }


@pytest.mark.parametrize("audience", AUDIENCES)
@pytest.mark.parametrize("name", sorted(unrelated_events()))
def test_no_pattern_matches_an_unrelated_event(audience: str, name: str) -> None:
    assert not matcher(TEMPLATE_PATTERNS[audience]()).matches_event(unrelated_events()[name])


def test_the_forwarded_member_fixture_comes_from_a_member_account_in_scope() -> None:
    event = load_event("remediation-forwarded-put-bucket-policy.json")
    job_file = load_job_file(DEMO_JOB_FILE)
    (rule,) = job_file.remediations_for(event)
    assert event["account"] == event["detail"]["recipientAccountId"] == "200000000004"
    assert event["account"] in job_file.remediation_accounts(rule)


# -- the generator --------------------------------------------------------------------------------------
def job_file(*matches: tuple[str, list[str]]) -> JobFile:
    rules = [
        {"name": f"rule-{i}", "match": {"source": source, "event_names": names}, "action": "whoami"}
        for i, (source, names) in enumerate(matches)
    ]
    return parse_job_file({"jobs": {}, "remediations": rules})


def test_one_source_gives_one_branch_with_sorted_unique_names() -> None:
    pattern = event_pattern(job_file(("aws.s3", ["PutBucketAcl", "CreateBucket"]), ("aws.s3", ["CreateBucket"])))
    assert pattern == {
        "source": ["aws.s3"],
        "detail-type": [CLOUDTRAIL_API_CALL],
        "detail": {"eventName": ["CreateBucket", "PutBucketAcl"]},
    }


def test_several_sources_never_match_each_others_event_names() -> None:
    pattern = event_pattern(job_file(("aws.s3", ["CreateBucket"]), ("aws.ec2", ["RunInstances"])))
    assert set(pattern) == {"$or"} and [b["source"] for b in pattern["$or"]] == [["aws.ec2"], ["aws.s3"]]
    event = load_event("remediation-create-bucket.json")
    assert matcher(pattern).matches_event(event)
    crossed = copy.deepcopy(event)
    crossed["detail"]["eventName"] = "RunInstances"  # ec2's event name under s3's source
    assert not matcher(pattern).matches_event(crossed)
    crossed["source"] = "aws.ec2"
    assert matcher(pattern).matches_event(crossed)


def test_a_job_file_without_remediation_rules_has_no_pattern() -> None:
    with pytest.raises(ConfigError) as caught:
        event_pattern(parse_job_file({"jobs": {}}), "member")
    assert caught.value.field == "remediations"


def test_an_unknown_audience_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        event_pattern(load_job_file(SHIPPED_JOB_FILE), "everyone")  # type: ignore[arg-type]
    assert caught.value.field == "audience" and "member, hub" in caught.value.rule


NAMES = st.sampled_from(["CreateBucket", "PutBucketAcl", "RunInstances", "DeleteTrail", "PutBucketPolicy"])
SOURCES = st.sampled_from(["aws.s3", "aws.ec2", "aws.cloudtrail"])


@settings(max_examples=60, deadline=None)
@given(
    rules=st.lists(st.tuples(SOURCES, st.lists(NAMES, min_size=1, max_size=3)), min_size=1, max_size=4),
    source=SOURCES,
    name=NAMES,
)
def test_a_cloudtrail_event_matches_the_pattern_exactly_when_a_rule_matches_it(
    rules: list[tuple[str, list[str]]], source: str, name: str
) -> None:
    # Given any rules and any CloudTrail API call: the bus delivers it iff the handler would act on it
    file = job_file(*rules)
    event = load_event("remediation-create-bucket.json")
    event["source"], event["detail"]["eventName"] = source, name
    for audience in AUDIENCES:
        assert matcher(event_pattern(file, audience)).matches_event(event) == bool(file.remediations_for(event))


# -- the CLI ---------------------------------------------------------------------------------------------
def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("audience", AUDIENCES)
def test_cli_prints_each_pattern_as_json_and_as_the_templates_yaml(audience: str) -> None:
    expected = event_pattern(load_job_file(SHIPPED_JOB_FILE), audience)  # type: ignore[arg-type]
    code, out, _ = run("events", "pattern", "--config", str(SHIPPED_JOB_FILE), "--for", audience, "--json")
    assert code == 0 and json.loads(out) == expected
    code, out, _ = run("events", "pattern", "--config", str(SHIPPED_JOB_FILE), "--for", audience)
    assert code == 0 and yaml.safe_load(out) == expected
    assert "eventName: [CreateBucket," in out  # flow lists, as the templates write them


def test_cli_without_for_prints_both_and_no_secret() -> None:
    code, out, _ = run("events", "pattern", "--config", str(SHIPPED_JOB_FILE), "--json")
    assert code == 0 and json.loads(out) == event_patterns(load_job_file(SHIPPED_JOB_FILE))
    code, out, _ = run("events", "pattern", "--config", str(DEMO_JOB_FILE))
    literal = load_job_file(DEMO_JOB_FILE).defaults.external_id
    assert code == 0 and isinstance(literal, str) and literal not in out  # the demo's ExternalId is a literal


def test_cli_bad_input_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "jobs.yaml"
    empty.write_text("version: 1\njobs: {}\n")
    code, out, err = run("events", "pattern", "--config", str(empty))
    assert (code, out) == (2, "") and "remediations:" in err
    code, _, _ = run("events", "pattern", "--config", str(SHIPPED_JOB_FILE), "--for", "everyone")
    assert code == 2 and "argument --for: invalid choice" in capsys.readouterr().err  # argparse's own message
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\njobs: {}\nremediations: [{name: r, match: {source: aws.s3}, action: whoami}]\n")
    code, _, err = run("events", "pattern", "--config", str(bad))
    assert code == 2 and "event_names" in err


# -- the member stack's forwarding, and the hub bus that accepts it --------------------------------------
def test_forwarding_is_off_by_default_and_needs_the_hub_bus() -> None:
    template = load_template("target-role.yaml")
    assert template["Parameters"]["ForwardEvents"]["Default"] == "false"
    assert template["Parameters"]["HubEventBusArn"]["Default"] == ""
    condition = template["Conditions"]["ForwardsEvents"]
    assert {"Fn::Equals": [{"Ref": "ForwardEvents"}, "true"]} in condition["Fn::And"]
    for rid in ("EventForwardingRule", "EventForwardingRole"):
        assert template["Resources"][rid]["Condition"] == "ForwardsEvents", rid
    (assertion,) = template["Rules"]["ForwardingNeedsTheHubBus"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "HubEventBusArn"}, ""]}]}
    assert "HubEventBusArn" in assertion["AssertDescription"]


TARGET_PLACEHOLDERS = {"HubRoleArn": "arn:aws:iam::111111111111:role/rolechain-hub", "ExternalId": "placeholder"}
HUB_BUS = "arn:aws:events:us-east-1:111111111111:event-bus/default"


@pytest.mark.parametrize(
    "overrides,forwards",
    [
        ({}, False),
        ({"ForwardEvents": "true", "HubEventBusArn": HUB_BUS}, True),
        ({"HubEventBusArn": HUB_BUS}, False),  # the bus alone turns nothing on
    ],
)
def test_forwarding_exists_only_when_turned_on_and_then_names_the_given_bus(
    overrides: dict[str, str], forwards: bool
) -> None:
    stack = Stack(load_template("target-role.yaml"), "target-role.yaml", overrides, placeholders=TARGET_PLACEHOLDERS)
    assert stack.condition("ForwardsEvents") is forwards
    if forwards:
        role = load_template("target-role.yaml")["Resources"]["EventForwardingRole"]["Properties"]
        (statement,) = stack.resolve(role["Policies"][0]["PolicyDocument"]["Statement"])
        assert statement["Resource"] == HUB_BUS


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:iam::111111111111:role/rolechain-hub",  # R1's ARN, the other parameter's value
        "arn:aws:events:us-east-1:1111:event-bus/default",
        "arn:aws:events:us-east-1:111111111111:rule/rolechain-forward-events",
    ],
)
def test_hub_event_bus_arn_must_be_an_event_bus(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Stack(
            load_template("target-role.yaml"),
            "target-role.yaml",
            {"HubEventBusArn": value},
            placeholders=TARGET_PLACEHOLDERS,
        )
    assert caught.value.rule.startswith("HubEventBusArn:")


def test_forwarding_rule_targets_the_hub_bus_on_the_default_bus_through_its_own_role() -> None:
    rule = load_template("target-role.yaml")["Resources"]["EventForwardingRule"]["Properties"]
    assert "EventBusName" not in rule  # the account's default bus: where CloudTrail's events arrive
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "HubEventBusArn"}
    assert target["RoleArn"] == {"Fn::GetAtt": ["EventForwardingRole", "Arn"]}


def test_forwarding_role_is_trusted_by_this_accounts_rule_and_may_only_put_events_on_the_hub_bus() -> None:
    template = load_template("target-role.yaml")
    role = template["Resources"]["EventForwardingRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    equals = trust["Condition"]["StringEquals"]
    assert equals["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    rule_name = template["Resources"]["EventForwardingRule"]["Properties"]["Name"]
    assert equals["aws:SourceArn"]["Fn::Sub"].endswith(f":rule/{rule_name}")
    assert "ManagedPolicyArns" not in role and "PermissionsBoundary" not in role
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement == {"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Ref": "HubEventBusArn"}}


def test_hub_bus_accepts_the_organisation_only_and_is_an_output() -> None:
    template = load_template()
    policy = template["Resources"]["OrganizationEventsPolicy"]
    assert policy["Type"] == "AWS::Events::EventBusPolicy" and policy["Condition"] == "HasOrganization"
    assert template["Conditions"]["HasOrganization"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OrganizationId"}, ""]}]}
    statement = policy["Properties"]["Statement"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}
    # the bus the policy opens is the bus the output names, and the remediation rule reads (the default)
    assert template["Outputs"]["HubEventBusArn"]["Value"] == statement["Resource"]
    assert statement["Resource"]["Fn::Sub"].endswith(":event-bus/default")
    (event,) = template["Resources"]["RemediationFunction"]["Properties"]["Events"].values()
    assert "EventBusName" not in event["Properties"]


def test_readme_says_how_to_forward_member_events_and_regenerate_the_patterns() -> None:
    section = (ROOT / "README.md").read_text().split("### Forwarding member events", 1)[1].split("\n## ", 1)[0]
    template = load_template("target-role.yaml")
    for name in ("ForwardEvents", "HubEventBusArn"):
        assert name in section and name in template["Parameters"], name
    assert "HubEventBusArn" in load_template()["Outputs"]
    assert "rolechain events pattern --config" in section and "--for member" in section and "--for hub" in section
