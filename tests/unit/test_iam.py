"""The local IAM evaluator against the rules of AWS's policy evaluation documentation."""

from __future__ import annotations

from typing import Any

import pytest
from rolechain.iam import (
    Decision,
    Principal,
    UnsupportedPolicy,
    arn_match,
    evaluate,
    evaluate_all,
    glob_match,
    statements_of,
)

ROLE = "arn:aws:iam::200000000001:role/rolechain-target"
HUB_ROLE = "arn:aws:iam::111111111111:role/ops/rolechain-hub"
HUB_SESSION = Principal("arn:aws:sts::111111111111:assumed-role/rolechain-hub/run-1", role_arn=HUB_ROLE)
ALICE = Principal("arn:aws:iam::111111111111:user/alice")


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**element: Any) -> dict[str, Any]:
    return {"Effect": "Allow", **element}


def deny(**element: Any) -> dict[str, Any]:
    return {"Effect": "Deny", **element}


@pytest.mark.parametrize(
    ("statements", "decision"),
    [
        ([allow(Action="sts:AssumeRole", Resource=ROLE)], Decision.ALLOW),
        ([allow(Action="STS:assumerole", Resource=ROLE)], Decision.ALLOW),  # actions are case-insensitive
        ([allow(Action="sts:Assume*", Resource="arn:aws:iam::*:role/rolechain-*")], Decision.ALLOW),
        ([allow(Action="sts:AssumeRol?", Resource=ROLE)], Decision.ALLOW),
        ([allow(Action="sts:AssumeRole", Resource=ROLE.upper())], Decision.IMPLICIT),  # resources are not
        ([allow(NotAction="iam:*", Resource="*")], Decision.ALLOW),
        ([allow(NotAction="sts:*", Resource="*")], Decision.IMPLICIT),
        ([allow(Action="*", NotResource="arn:aws:iam::200000000001:role/*")], Decision.IMPLICIT),
        ([allow(Action="*", Resource="*"), deny(Action="sts:AssumeRole", Resource=ROLE)], Decision.DENY),
        (
            [deny(Action="sts:AssumeRole", Resource="arn:aws:iam::999999999999:*"), allow(Action="*", Resource="*")],
            Decision.ALLOW,
        ),
        ([allow(Action="s3:*", Resource="*")], Decision.IMPLICIT),
        ([], Decision.IMPLICIT),
        ([allow(Action="sts:AssumeRole")], Decision.IMPLICIT),  # an identity statement needs a Resource
    ],
)
def test_identity_policies(statements: list[dict[str, Any]], decision: Decision) -> None:
    assert evaluate([policy(*statements)], "sts:AssumeRole", ROLE).decision == decision


def test_the_decisive_statement_is_reported() -> None:
    refusal = deny(Sid="NoProd", Action="sts:*", Resource="*")
    result = evaluate([policy(allow(Action="*", Resource="*")), policy(refusal)], "sts:AssumeRole", ROLE)
    assert result.decision == Decision.DENY and result.statement == refusal
    assert not result.allowed


@pytest.mark.parametrize(
    ("principal_element", "caller", "allowed"),
    [
        ({"AWS": "arn:aws:iam::111111111111:user/alice"}, ALICE, True),
        ({"AWS": "arn:aws:iam::111111111111:user/bob"}, ALICE, False),
        ({"AWS": "arn:aws:iam::111111111111:root"}, ALICE, True),
        ({"AWS": "111111111111"}, HUB_SESSION, True),
        ({"AWS": "arn:aws:iam::222222222222:root"}, HUB_SESSION, False),
        ({"AWS": HUB_ROLE}, HUB_SESSION, True),  # a role ARN names every session of the role
        ({"AWS": "arn:aws:iam::111111111111:role/rolechain-hub"}, HUB_SESSION, False),  # wrong path
        ({"AWS": HUB_SESSION.arn}, HUB_SESSION, True),
        ({"AWS": ["arn:aws:iam::111111111111:user/bob", HUB_ROLE]}, HUB_SESSION, True),
        ("*", ALICE, True),
        ({"AWS": "*"}, ALICE, True),
        ({"Service": "lambda.amazonaws.com"}, Principal("lambda.amazonaws.com", service="lambda.amazonaws.com"), True),
        ({"Service": "lambda.amazonaws.com"}, ALICE, False),
        ({"AWS": "*"}, Principal("ec2.amazonaws.com", service="ec2.amazonaws.com"), False),
    ],
)
def test_trust_principals(principal_element: Any, caller: Principal, allowed: bool) -> None:
    trust = policy(allow(Principal=principal_element, Action="sts:AssumeRole"))
    assert evaluate([trust], "sts:AssumeRole", ROLE, principal=caller).allowed is allowed


def test_not_principal_and_principal_less_statements() -> None:
    exempt = [HUB_ROLE, HUB_SESSION.arn, "111111111111"]
    trust = policy(deny(NotPrincipal={"AWS": exempt}, Action="sts:AssumeRole"), allow(Principal="*", Action="*"))
    assert evaluate([trust], "sts:AssumeRole", ROLE, principal=HUB_SESSION).allowed
    assert evaluate([trust], "sts:AssumeRole", ROLE, principal=ALICE).decision == Decision.DENY
    # a statement without Principal never applies in a resource policy, one with it never in an identity one
    assert not evaluate([policy(allow(Action="*", Resource="*"))], "sts:AssumeRole", ROLE, principal=ALICE).allowed
    assert not evaluate([policy(allow(Principal="*", Action="*", Resource="*"))], "sts:AssumeRole", ROLE).allowed


EXTERNAL_ID = {"StringEquals": {"sts:ExternalId": "ext-123"}}


@pytest.mark.parametrize(
    ("condition", "context", "met"),
    [
        (EXTERNAL_ID, {"sts:ExternalId": "ext-123"}, True),
        (EXTERNAL_ID, {"STS:EXTERNALID": "ext-123"}, True),  # keys are case-insensitive
        (EXTERNAL_ID, {"sts:ExternalId": "EXT-123"}, False),  # values are not
        (EXTERNAL_ID, {}, False),  # a missing key fails a positive operator
        ({"StringEqualsIgnoreCase": {"sts:ExternalId": "EXT-123"}}, {"sts:ExternalId": "ext-123"}, True),
        ({"StringLike": {"sts:ExternalId": "ext-*"}}, {"sts:ExternalId": "ext-9"}, True),
        ({"StringNotEquals": {"sts:ExternalId": "bad"}}, {}, True),  # a negated operator holds when absent
        ({"StringNotEquals": {"sts:ExternalId": ["a", "b"]}}, {"sts:ExternalId": "b"}, False),
        ({"StringNotLike": {"aws:PrincipalArn": "*:role/admin-*"}}, {"aws:PrincipalArn": HUB_ROLE}, True),
        ({"StringEqualsIfExists": {"sts:SourceIdentity": "alice"}}, {}, True),
        ({"StringEqualsIfExists": {"sts:SourceIdentity": "alice"}}, {"sts:SourceIdentity": "bob"}, False),
        ({"Null": {"sts:SourceIdentity": "false"}}, {"sts:SourceIdentity": "alice"}, True),
        ({"Null": {"sts:SourceIdentity": "false"}}, {}, False),
        ({"Null": {"sts:SourceIdentity": "true"}}, {}, True),
        ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, {"aws:MultiFactorAuthPresent": True}, True),
        ({"Bool": {"aws:MultiFactorAuthPresent": True}}, {"aws:MultiFactorAuthPresent": False}, False),
        ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, {}, False),
        ({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, {"aws:MultiFactorAuthAge": 120}, True),
        ({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, {"aws:MultiFactorAuthAge": 7200}, False),
        ({"NumericGreaterThanEquals": {"n": "2"}}, {"n": "2"}, True),
        ({"NumericNotEquals": {"n": "2"}}, {"n": "3"}, True),
        ({"NumericEquals": {"n": "2"}}, {"n": "two"}, False),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/*"}}, {"aws:PrincipalArn": HUB_ROLE}, True),
        ({"ArnEquals": {"aws:PrincipalArn": HUB_ROLE}}, {"aws:PrincipalArn": HUB_ROLE}, True),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}, {"aws:PrincipalArn": HUB_ROLE}, False),
        ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}, {"aws:PrincipalArn": HUB_ROLE}, True),
        ({"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}, {"aws:PrincipalOrgID": "o-abc123"}, True),
        ({"StringEquals": {"aws:PrincipalTag/team": "platform"}}, {"aws:PrincipalTag/team": "platform"}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner", "team"]}}, {"aws:TagKeys": ["team", "x"]}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}}, {"aws:TagKeys": ["team"]}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}}, {}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["owner", "team"]}}, {"aws:TagKeys": ["team"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["owner"]}}, {"aws:TagKeys": ["team", "owner"]}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["owner"]}}, {}, True),  # vacuously true
        (
            {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2026-12-01T21:00:00Z"},
            True,
        ),
        ({"DateLessThan": {"aws:EpochTime": "1000"}}, {"aws:EpochTime": 999}, True),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, True),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "192.0.2.1"}, True),
        ({"BinaryEquals": {"k": "cXdlcnR5"}}, {"k": "cXdlcnR5"}, True),
        # every operator and every key must hold (AND), values of one key are alternatives (OR)
        ({**EXTERNAL_ID, "Bool": {"aws:MultiFactorAuthPresent": "true"}}, {"sts:ExternalId": "ext-123"}, False),
        ({"StringEquals": {"sts:ExternalId": ["a", "ext-123"]}}, {"sts:ExternalId": "ext-123"}, True),
    ],
)
def test_conditions(condition: dict[str, Any], context: dict[str, Any], met: bool) -> None:
    trust = policy(allow(Principal={"AWS": HUB_ROLE}, Action="sts:AssumeRole", Condition=condition))
    assert evaluate([trust], "sts:AssumeRole", ROLE, context, principal=HUB_SESSION).allowed is met


def test_unknown_operators_and_malformed_documents_are_errors_not_denials() -> None:
    trust = policy(allow(Principal="*", Action="*", Condition={"StringSortOf": {"k": "v"}}))
    with pytest.raises(UnsupportedPolicy, match="StringSortOf"):
        evaluate([trust], "sts:AssumeRole", ROLE, {"k": "v"}, principal=ALICE)
    with pytest.raises(UnsupportedPolicy, match="set operator"):
        evaluate(
            [policy(allow(Principal="*", Action="*", Condition={"ForSome:StringEquals": {"k": "v"}}))],
            "sts:AssumeRole",
            ROLE,
            principal=ALICE,
        )
    with pytest.raises(UnsupportedPolicy):
        statements_of("not json")


def test_documents_as_iam_returns_them() -> None:
    text = '{"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}}'
    assert statements_of(text) == [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]
    encoded = "%7B%22Statement%22%3A%20%5B%5D%7D"  # URL-encoded, as GetRole returns trust policies
    assert statements_of(encoded) == []


def test_policy_variables() -> None:
    own = policy(allow(Action="iam:*AccessKey*", Resource="arn:aws:iam::111111111111:user/${aws:username}"))
    assert evaluate(
        [own], "iam:CreateAccessKey", "arn:aws:iam::111111111111:user/alice", {"aws:username": "alice"}
    ).allowed
    assert not evaluate(
        [own], "iam:CreateAccessKey", "arn:aws:iam::111111111111:user/bob", {"aws:username": "alice"}
    ).allowed
    assert not evaluate([own], "iam:CreateAccessKey", "arn:aws:iam::111111111111:user/alice").allowed  # no variable
    star = policy(allow(Action="s3:GetObject", Resource="arn:aws:s3:::b/${*}"))
    assert evaluate([star], "s3:GetObject", "arn:aws:s3:::b/*").allowed
    assert not evaluate([star], "s3:GetObject", "arn:aws:s3:::b/key").allowed  # ${*} is a literal star


def test_layers_boundary_and_session_policy() -> None:
    identity = [policy(allow(Action="*", Resource="*"))]
    boundary = [policy(allow(Action=["sts:AssumeRole", "s3:*"], Resource="*"), deny(Action="s3:Delete*", Resource="*"))]
    session = [policy(allow(Action="s3:ListAllMyBuckets", Resource="*"))]
    assert evaluate_all([identity, boundary], "sts:AssumeRole", ROLE).allowed
    assert evaluate_all([identity, boundary], "s3:DeleteBucket", "arn:aws:s3:::b").decision == Decision.DENY
    assert evaluate_all([identity, boundary], "iam:ListUsers", "*").decision == Decision.IMPLICIT
    narrowed = evaluate_all([identity, boundary, session], "s3:PutBucketTagging", "arn:aws:s3:::b")
    assert narrowed.decision == Decision.IMPLICIT
    assert evaluate_all([identity, boundary, session], "s3:ListAllMyBuckets", "*").allowed
    # a Deny in a later layer wins even when an earlier layer lacks the Allow
    assert evaluate_all([[policy()], boundary], "s3:DeleteObject", "*").decision == Decision.DENY


def test_wildcards() -> None:
    assert glob_match("a*c", "abbbc") and glob_match("a?c", "abc") and not glob_match("a?c", "abbc")
    assert glob_match("a.c", "a.c") and not glob_match("a.c", "abc")  # only * and ? are special
    assert arn_match("arn:aws:iam::*:role/*", HUB_ROLE)
    assert not arn_match("arn:aws:iam::*:role/*", "arn:aws:sts::1:assumed-role/x/y")
    assert not arn_match("arn:aws:iam::*", HUB_ROLE)  # fewer than six parts never matches


def test_not_principal_exempts_only_a_principal_named_completely() -> None:
    # A Deny with NotPrincipal naming only the role (or only the account) still denies its sessions:
    # IAM exempts a session only when its ARN, its role's ARN and its account are all listed
    def deny_all_but(*names: str) -> dict[str, Any]:
        return policy(
            deny(NotPrincipal={"AWS": list(names)}, Action="sts:AssumeRole"), allow(Principal="*", Action="*")
        )

    session = HUB_SESSION
    for partial in ([HUB_ROLE], ["111111111111"], [HUB_ROLE, session.arn]):
        assert evaluate([deny_all_but(*partial)], "sts:AssumeRole", ROLE, principal=session).decision == Decision.DENY
    complete = deny_all_but(HUB_ROLE, session.arn, "arn:aws:iam::111111111111:root")
    assert evaluate([complete], "sts:AssumeRole", ROLE, principal=session).allowed
    assert evaluate([deny_all_but(ALICE.arn, "111111111111")], "sts:AssumeRole", ROLE, principal=ALICE).allowed
    assert evaluate([deny_all_but(ALICE.arn)], "sts:AssumeRole", ROLE, principal=ALICE).decision == Decision.DENY


def test_a_missing_policy_variable_fails_even_a_negated_condition() -> None:
    negated = policy(allow(Principal="*", Action="*", Condition={"StringNotEquals": {"k": "${aws:PrincipalTag/none}"}}))
    assert not evaluate([negated], "sts:AssumeRole", ROLE, {"k": "v"}, principal=ALICE).allowed
    present = {"k": "v", "aws:PrincipalTag/none": "w"}
    assert evaluate([negated], "sts:AssumeRole", ROLE, present, principal=ALICE).allowed
