"""The chain doctor: for each hop, which of its two conditions fails, and the statement that fixes it.

A hop works when (1) the caller's identity policies allow ``sts:AssumeRole`` on the role and (2) the
role's trust policy allows the caller (with the ExternalId). The doctor reads both policies where it
can (the caller's own policies through the caller's credentials; a role's trust policy through the
caller in the same account, or through ``inspect_via`` for another account), decides them with
:mod:`rolechain.iam`, then confirms with a real AssumeRole. What it cannot read it says, with the read
access that would settle it. Fixes name the policy they belong to and never carry a secret: an
ExternalId in a statement is a placeholder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from rolechain import iam
from rolechain.chain import MAX_CHAINED_DURATION, Chain, Hop, role_arn_parts
from rolechain.diagnose import already_is
from rolechain.errors import AssumeRoleError
from rolechain.sessions import ChainSessions

EXTERNAL_ID_PLACEHOLDER = "<the ExternalId you pass>"
READ_ROLE = (
    "iam:GetRole, iam:ListRolePolicies, iam:GetRolePolicy, iam:ListAttachedRolePolicies, iam:GetPolicy, "
    "iam:GetPolicyVersion"
)
READ_USER = (
    "iam:GetUser, iam:ListUserPolicies, iam:GetUserPolicy, iam:ListAttachedUserPolicies, iam:ListGroupsForUser, "
    "iam:ListGroupPolicies, iam:GetGroupPolicy, iam:ListAttachedGroupPolicies, iam:GetPolicy, iam:GetPolicyVersion"
)


@dataclass(frozen=True)
class Fix:
    """What to change: a statement to add to a policy, or a change to the chain itself."""

    policy_of: str  # the ARN whose policy changes (the caller for identity, the role for trust)
    kind: Literal["identity", "trust", "chain"]
    statement: dict[str, Any] | None
    say: str

    def to_dict(self) -> dict[str, Any]:
        return {"policy_of": self.policy_of, "kind": self.kind, "statement": self.statement, "say": self.say}


@dataclass
class HopReport:
    hop: int
    role_arn: str
    caller_arn: str | None = None
    identity_policy_allows: bool | None = None
    trust_policy_allows: bool | None = None
    assumed: bool = False
    fix: Fix | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.assumed

    def to_dict(self) -> dict[str, Any]:
        return {
            "hop": self.hop,
            "role_arn": self.role_arn,
            "caller_arn": self.caller_arn,
            "identity_policy_allows": self.identity_policy_allows,
            "trust_policy_allows": self.trust_policy_allows,
            "assumed": self.assumed,
            "fix": self.fix.to_dict() if self.fix else None,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class _Caller:
    arn: str
    account: str
    role_arn: str | None  # the IAM role (with path) behind an assumed-role session, when known
    documents: list[Any] | None  # identity policy documents; None when they could not be read
    boundary: list[Any] | None  # the permissions boundary's document, when set and read
    why_unread: str = ""


def examine(sessions: ChainSessions, chain: Chain, *, inspect: Sequence[Chain] = ()) -> list[HopReport]:
    """A report for every hop of ``chain`` up to the first that cannot be assumed (later hops are not
    reachable, so they are reported with a note only). ``inspect`` chains end in roles that may read
    IAM in other accounts (``iam:GetRole``), used to read trust policies there."""
    reports: list[HopReport] = []
    for index, hop in enumerate(chain.hops):
        report = HopReport(hop=index + 1, role_arn=hop.role_arn)
        reports.append(report)
        if reports[:-1] and not reports[-2].assumed:
            report.notes.append("not reached: an earlier hop failed")
            continue
        prefix = Chain(hops=chain.hops[:index], session_name=chain.session_name) if index else None
        _examine_hop(sessions, chain, prefix, hop, report, inspect)
    return reports


def _examine_hop(
    sessions: ChainSessions, chain: Chain, prefix: Chain | None, hop: Hop, report: HopReport, inspect: Sequence[Chain]
) -> None:
    caller = _caller(sessions, prefix)
    report.caller_arn = caller.arn
    role_account = role_arn_parts(hop.role_arn)[1]
    if already_is(caller.arn, hop.role_arn):
        report.fix = Fix(
            caller.arn,
            "chain",
            None,
            f"the caller already is {hop.role_arn}: drop this hop (--via {hop.role_arn}) from the chain",
        )
    if prefix is not None and hop.duration_seconds > MAX_CHAINED_DURATION:
        report.notes.append(f"a chained session lasts at most {MAX_CHAINED_DURATION} s; ask for no more")
    actions = ["sts:AssumeRole"]
    if hop.tags:
        actions.append("sts:TagSession")
    if hop.source_identity:
        actions.append("sts:SetSourceIdentity")
    context = _context(chain, hop, caller)
    principal = iam.Principal(caller.arn, role_arn=caller.role_arn)

    if caller.documents is None:
        report.notes.append(caller.why_unread)
    else:
        layers = [caller.documents] + ([caller.boundary] if caller.boundary else [])
        try:
            verdicts = [iam.evaluate_all(layers, action, hop.role_arn, context) for action in actions]
            report.identity_policy_allows = all(v.allowed for v in verdicts)
        except iam.UnsupportedPolicy as exc:
            report.notes.append(f"the caller's policies cannot be evaluated: {exc}")

    trust, why = _trust_policy(sessions, prefix, caller, hop, role_account, inspect)
    if trust is None:
        report.notes.append(why)
    else:
        try:
            report.trust_policy_allows = all(
                iam.evaluate([trust], action, hop.role_arn, context, principal=principal).allowed for action in actions
            )
        except iam.UnsupportedPolicy as exc:
            report.notes.append(f"the trust policy cannot be evaluated: {exc}")
        external_id_wrong = _external_id_would_pass(trust, hop.role_arn, context, principal)
        if report.fix is None and report.trust_policy_allows is False and external_id_wrong:
            given = "none was given" if hop.external_id is None else "the one given does not match"
            report.notes.append(f"the trust policy requires an ExternalId and {given}")
            report.fix = Fix(
                hop.role_arn,
                "chain",
                None,
                "pass the ExternalId this role's trust policy requires (--external-id, or the job file's "
                "external_id); do not drop the condition from the trust policy",
            )

    through = Chain(hops=(*(prefix.hops if prefix else ()), hop), session_name=chain.session_name)
    sessions.forget(through)  # a real AssumeRole confirms: no cached credentials, no remembered refusal
    try:
        sessions.identity(through)
        report.assumed = True
    except AssumeRoleError as exc:
        report.notes.append(f"AssumeRole answered {exc.failure.code}")
    if report.fix is None and not report.assumed:
        report.fix = _fix(report, caller, hop, actions, role_account)


def _caller(sessions: ChainSessions, prefix: Chain | None) -> _Caller:
    identity = sessions.identity(prefix)
    client = sessions.client(prefix, "iam")
    arn, account = identity.arn, identity.account
    try:
        if ":assumed-role/" in arn:
            role = client.get_role(RoleName=arn.split("/")[1])["Role"]
            name = role["RoleName"]
            documents: list[Any] = [
                client.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                for page in client.get_paginator("list_role_policies").paginate(RoleName=name)
                for p in page["PolicyNames"]
            ]
            documents += _attached(client, "list_attached_role_policies", RoleName=name)
            boundary = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
            return _Caller(arn, account, role["Arn"], documents, _boundary(client, boundary))
        if ":user/" in arn:
            name = arn.rsplit("/", 1)[-1]
            user = client.get_user(UserName=name)["User"]
            documents = [
                client.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"]
                for page in client.get_paginator("list_user_policies").paginate(UserName=name)
                for p in page["PolicyNames"]
            ]
            documents += _attached(client, "list_attached_user_policies", UserName=name)
            for page in client.get_paginator("list_groups_for_user").paginate(UserName=name):
                for group in page["Groups"]:
                    group_name = group["GroupName"]
                    documents += [
                        client.get_group_policy(GroupName=group_name, PolicyName=p)["PolicyDocument"]
                        for gp in client.get_paginator("list_group_policies").paginate(GroupName=group_name)
                        for p in gp["PolicyNames"]
                    ]
                    documents += _attached(client, "list_attached_group_policies", GroupName=group_name)
            boundary = user.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
            return _Caller(arn, account, None, documents, _boundary(client, boundary))
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        needed = READ_ROLE if ":assumed-role/" in arn else READ_USER
        return _Caller(arn, account, None, None, None, f"cannot read {arn}'s policies ({code}): it needs {needed}")
    # the account root: every action is allowed to it, unless an SCP denies
    return _Caller(arn, account, None, [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}], None)


def _attached(client: Any, operation: str, **who: str) -> list[Any]:
    documents = []
    for page in client.get_paginator(operation).paginate(**who):
        for attached in page["AttachedPolicies"]:
            documents.append(_managed(client, attached["PolicyArn"]))
    return documents


def _managed(client: Any, policy_arn: str) -> Any:
    version = client.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    return client.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]["Document"]


def _boundary(client: Any, policy_arn: str | None) -> list[Any] | None:
    return [_managed(client, policy_arn)] if policy_arn else None


def _trust_policy(
    sessions: ChainSessions,
    prefix: Chain | None,
    caller: _Caller,
    hop: Hop,
    role_account: str,
    inspect: Sequence[Chain],
) -> tuple[Any | None, str]:
    """The role's trust policy, or None and why it could not be read."""
    readers: list[Chain | None] = [prefix] if caller.account == role_account else []
    readers += [c for c in inspect if role_arn_parts(c.hops[-1].role_arn)[1] == role_account]
    name = hop.role_arn.rsplit("/", 1)[-1]
    why = (
        f"cannot read the trust policy of {hop.role_arn}: give --inspect-via a role in account {role_account} "
        f"allowed iam:GetRole on it"
    )
    for reader in readers:
        try:
            return sessions.client(reader, "iam").get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"], ""
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return None, f"{hop.role_arn} does not exist (check the ARN: account, path and name)"
            why = f"cannot read the trust policy of {hop.role_arn} ({exc.response.get('Error', {}).get('Code')})"
        except (AssumeRoleError, BotoCoreError) as exc:
            why = f"cannot read the trust policy of {hop.role_arn}: {exc}"
    return None, why


def _context(chain: Chain, hop: Hop, caller: _Caller) -> dict[str, Any]:
    return {
        "sts:ExternalId": hop.external_id,
        "sts:SourceIdentity": hop.source_identity,
        "sts:RoleSessionName": chain.session_name,
        "aws:PrincipalArn": caller.role_arn or caller.arn,
        "aws:PrincipalAccount": caller.account,
        "aws:TagKeys": [k for k, _ in hop.tags] or None,
        **{f"aws:RequestTag/{k}": v for k, v in hop.tags},
    }


def _external_id_would_pass(trust: Any, role_arn: str, context: dict[str, Any], principal: iam.Principal) -> bool:
    """Whether the trust policy would allow the caller with the ExternalId it asks for: then the
    ExternalId is what is wrong. The values are read from the policy and never reported."""
    try:
        statements = iam.statements_of(trust)
    except iam.UnsupportedPolicy:
        return False
    wanted = {
        str(value)
        for statement in statements
        for operator, keys in (statement.get("Condition") or {}).items()
        if str(operator).lower().startswith("string") and isinstance(keys, dict)
        for key, values in keys.items()
        if str(key).lower() == "sts:externalid"
        for value in (values if isinstance(values, list) else [values])
    }
    for candidate in wanted:
        try:
            if iam.evaluate([trust], "sts:AssumeRole", role_arn, {**context, "sts:ExternalId": candidate},
                            principal=principal).allowed:  # fmt: skip
                return True
        except iam.UnsupportedPolicy:
            return False
    return False


def _fix(report: HopReport, caller: _Caller, hop: Hop, actions: list[str], role_account: str) -> Fix | None:
    action: str | list[str] = actions if len(actions) > 1 else actions[0]
    if report.identity_policy_allows is False:
        policy_of = caller.role_arn or caller.arn
        allow = {"Effect": "Allow", "Action": action, "Resource": hop.role_arn}
        return Fix(policy_of, "identity", allow, f"add to the identity policy of {policy_of}")
    if report.trust_policy_allows is False:
        trust: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": {"AWS": caller.role_arn or caller.arn},
            "Action": action,
        }
        if hop.external_id is not None:
            trust["Condition"] = {"StringEquals": {"sts:ExternalId": EXTERNAL_ID_PLACEHOLDER}}
        return Fix(hop.role_arn, "trust", trust, f"add to the trust policy of {hop.role_arn}")
    return None


__all__ = ["EXTERNAL_ID_PLACEHOLDER", "Fix", "HopReport", "examine"]
