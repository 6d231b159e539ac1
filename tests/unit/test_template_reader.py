"""rolechain.templates: CloudFormation YAML read without AWS (short-form intrinsics, parameters and their
rules, conditions), and the static doctor's edge under arbitrary templates, operators and parameters:
a report or a ConfigError naming what was wrong, never another error, never the ExternalId."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rolechain.errors import ConfigError
from rolechain.static_doctor import examine_templates
from rolechain.templates import Stack, load_template, parse_parameters

from tests.hub_support import ROOT

BUDGET = settings(max_examples=25, deadline=None)

SNIPPET = """
Parameters:
  Names: {Type: CommaDelimitedList, Default: ""}
  Flag: {Type: String, Default: "true", AllowedValues: ["true", "false"]}
  Size: {Type: Number, Default: 3}
  Secret: {Type: String, NoEcho: true}
Conditions:
  HasNames: !Not [!Equals [!Join ["", !Ref Names], ""]]
  Both: !And [!Condition HasNames, !Equals [!Ref Flag, "true"]]
  Either: !Or [!Condition HasNames, !Equals [!Ref Flag, "true"]]
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      a: !Ref AWS::Region
      b: !GetAtt Role.Arn
      c: !GetAtt [Other, Arn]
      d: !Sub "arn:${AWS::Partition}:x:${AWS::AccountId}:${Role.Arn}/${!Literal}"
      e: !Sub ["${x}-${Size}", {x: !Ref Flag}]
      f: !If [HasNames, !Ref Names, !Ref AWS::NoValue]
      g: [!If [Either, kept, dropped], !Ref AWS::NoValue]
      h: !Select [1, !Split [",", "a,b,c"]]
      i: !If [Both, both, not-both]
  Other: {Type: AWS::SQS::Queue}
"""


def stack(tmp_path: Path, **overrides: str) -> tuple[Stack, dict[str, Any]]:
    path = tmp_path / "t.yaml"
    path.write_text(SNIPPET)
    template = load_template(path)
    built = Stack(template, name="t.yaml", overrides=overrides, arns={"Role": "arn:aws:iam::111111111111:role/r"},
                  placeholders={"Secret": "s3cr3t"})  # fmt: skip
    return built, template["Resources"]["Role"]["Properties"]


def test_short_forms_and_conditions_resolve_as_a_deploy_would(tmp_path: Path) -> None:
    built, properties = stack(tmp_path)
    assert built.resolve(properties) == {
        "a": "us-east-1",
        "b": "arn:aws:iam::111111111111:role/r",
        "c": "arn:aws:cloudformation:us-east-1:111111111111:placeholder/Other",
        "d": "arn:aws:x:111111111111:arn:aws:iam::111111111111:role/r/${Literal}",
        "e": "true-3",
        "g": ["kept"],
        "h": "b",
        "i": "not-both",
    }
    named, _ = stack(tmp_path, Names="a,b", Flag="false")
    resolved = named.resolve(properties)
    assert (resolved["f"], resolved["i"], resolved["g"]) == (["a", "b"], "not-both", ["kept"])
    assert stack(tmp_path, Names="a")[0].resolve(properties)["i"] == "both"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Nope": "1"}, "'Nope' is not a parameter of t.yaml"),
        ({"Flag": "maybe"}, "Flag: t.yaml allows only true, false"),
        ({"Size": "three"}, "Size: t.yaml wants a number"),
    ],
)
def test_overrides_are_checked_against_the_parameters_rules(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        stack(tmp_path, **overrides)
    assert raised.value.field == "--parameter" and message in raised.value.rule


def test_a_parameter_without_default_or_value_and_an_unknown_intrinsic_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(SNIPPET)
    with pytest.raises(ConfigError, match="parameter Secret has no default: give Secret=VALUE"):
        Stack(load_template(path), name="t.yaml")
    built, _ = stack(tmp_path)
    with pytest.raises(ConfigError, match="Fn::FindInMap is not resolved without AWS"):
        built.resolve({"Fn::FindInMap": ["a", "b", "c"]})
    with pytest.raises(ConfigError, match="selects nothing"):
        built.resolve({"Fn::Select": [7, ["a"]]})


def test_a_condition_that_depends_on_itself_is_an_error() -> None:
    template = {"Conditions": {"A": {"Condition": "B"}, "B": {"Fn::Not": [{"Condition": "A"}]}}, "Resources": {}}
    with pytest.raises(ConfigError, match="depends on itself"):
        Stack(template).condition("A")


def test_parse_parameters_refuses_items_without_echoing_them() -> None:
    assert parse_parameters(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(ConfigError, match="the 2nd --parameter is not KEY=VALUE") as raised:
        parse_parameters(["A=1", "secretvalue"])
    assert "secretvalue" not in str(raised.value)
    with pytest.raises(ConfigError, match="A is given twice"):
        parse_parameters(["A=1", "A=2"])


# -- the static doctor's edge under anything --------------------------------------------------------

HUB = load_template(ROOT / "template.yaml")
TARGET = load_template(ROOT / "target-role.yaml")
SECRET = "Hypothesis-Secret-ExternalId"
WORDS = [
    "Ref", "Fn::If", "Fn::Sub", "Fn::GetAtt", "Fn::Join", "Condition", "HasOperators", "AWS::NoValue", "Statement",
    "Effect", "Allow", "Deny", "Action", "NotAction", "Resource", "Principal", "AWS", "sts:AssumeRole", "*",
    "sts:ExternalId", "StringEquals", "Null", "TargetRoleName", "HubRoleArn", "ExternalId", "PolicyDocument",
]  # fmt: skip
SCALARS = st.sampled_from(WORDS) | st.text(max_size=10) | st.integers(-5, 5) | st.booleans() | st.none()
DATA = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
PLACES = [
    ("hub", ["Resources", "HubRole", "Properties", "AssumeRolePolicyDocument"]),
    ("hub", ["Resources", "HubRole", "Properties", "Policies"]),
    ("hub", ["Resources", "HubRole", "Properties", "Policies", 0, "PolicyDocument", "Statement", 0, "Resource"]),
    ("hub", ["Resources", "HubRole", "Properties"]),
    ("hub", ["Conditions", "HasOperators"]),
    ("hub", ["Parameters", "TargetRoleName"]),
    ("target", ["Resources", "TargetRole", "Properties", "AssumeRolePolicyDocument", "Statement"]),
    ("target", ["Resources", "TargetRole", "Properties", "AssumeRolePolicyDocument", "Statement", 0, "Condition"]),
    ("target", ["Resources", "TargetRole", "Properties", "Policies", 0, "PolicyDocument"]),
    ("target", ["Resources", "TargetRole", "Properties", "RoleName"]),
    ("target", ["Parameters"]),
]


def _replaced(template: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(template)
    node: Any = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


@BUDGET
@given(
    place=st.sampled_from(PLACES),
    value=DATA,
    operator=st.none() | st.text(max_size=40) | st.just("arn:aws:iam::111111111111:user/alice"),
)
def test_any_template_change_gives_a_report_or_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, place: tuple[str, list[Any]], value: Any, operator: str | None
) -> None:
    which, path = place
    directory = tmp_path_factory.mktemp("templates")
    hub = _replaced(HUB, path, value) if which == "hub" else HUB
    target = _replaced(TARGET, path, value) if which == "target" else TARGET
    (directory / "template.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(hub))))
    (directory / "target-role.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(target))))
    try:
        report = examine_templates(
            directory / "template.yaml", directory / "target-role.yaml", operator=operator,
            parameters={"ExternalId": SECRET},
        )  # fmt: skip
    except ConfigError as exc:
        assert SECRET not in str(exc)
        return
    assert SECRET not in json.dumps(report.to_dict())


@BUDGET
@given(
    parameters=st.dictionaries(
        st.sampled_from(
            ["TargetRoleName", "RoleName", "OperatorPrincipals", "OrganizationId", "HubRoleArn", "OperatorRequireMfa"]
        ),
        st.text(max_size=30),
        max_size=4,
    )
)
def test_any_parameter_values_give_a_report_or_a_config_error(parameters: dict[str, str]) -> None:
    try:
        report = examine_templates(
            ROOT / "template.yaml", ROOT / "target-role.yaml", parameters={**parameters, "ExternalId": SECRET}
        )
    except ConfigError:
        return
    assert SECRET not in json.dumps(report.to_dict())
