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

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from rolechain import iam
from rolechain.chain import MAX_CHAINED_DURATION, Chain, Hop, role_arn_parts
from rolechain.diagnose import already_is, trust_principal
from rolechain.errors import AssumeRoleError, HopFailure, LikelyCause
from rolechain.planning import RunPlan
from rolechain.sessions import ChainSessions, Memo

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
    statement: dict[str, Any] | None  # the statement to add
    say: str
    # which identity-side policy: "identity policy", "permissions boundary", "session policy"
    layer: str | None = None
    remove: dict[str, Any] | None = None  # a Deny statement to remove or narrow (adding an Allow cannot help)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_of": self.policy_of,
            "kind": self.kind,
            "statement": self.statement,
            "say": self.say,
            "layer": self.layer,
            "remove": self.remove,
        }


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
    boundary_arn: str | None = None
    session_policy: Any = None  # the session policy the chain itself passed when it created this session
    session_policy_of: str | None = None  # the role whose AssumeRole carried it
    # SCP levels over the caller's account, account first then each OU, root last: (target id,
    # [(policy ARN, document)]); None when not read (or the account is no organisation's member)
    scps: list[tuple[str, list[tuple[str, Any]]]] | None = None


READ_ORGANIZATION = "organizations:DescribeOrganization, ListParents, ListPoliciesForTarget, DescribePolicy"
Level = tuple[str, list[tuple[str, Any]]]  # an SCP level: (target id, [(policy ARN, document)])


class OrgReader:
    """Reads the service control policies over an account from AWS Organizations, through ``via`` (a
    role in the management account or a delegated administrator; None: the base credentials), once per
    account. What it cannot read it says, with the access that would settle it."""

    def __init__(self, sessions: ChainSessions, via: Chain | None = None) -> None:
        self.sessions, self.via = sessions, via
        self._levels: dict[str, tuple[list[Level] | None, str]] = {}
        self._documents: dict[str, tuple[str, Any]] = {}

    def levels(self, account: str) -> tuple[list[Level] | None, str]:
        """(the SCP levels over ``account``, or None, and a note: why not, or "")."""
        if account not in self._levels:
            self._levels[account] = self._read(account)
        return self._levels[account]

    def _read(self, account: str) -> tuple[list[Level] | None, str]:
        try:
            client = self.sessions.client(self.via, "organizations")
            management = client.describe_organization()["Organization"]["MasterAccountId"]
            if management == account:
                return None, f"account {account} is the organisation's management account: no SCP applies to it"
            levels: list[Level] = []
            target, kind = account, "ACCOUNT"
            while True:
                levels.append((target, self._policies(client, target)))
                if kind == "ROOT":
                    return levels, ""
                parent = client.list_parents(ChildId=target)["Parents"][0]
                target, kind = parent["Id"], parent["Type"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "AWSOrganizationsNotInUseException":
                return None, ""  # no organisation: nothing to check
            return None, (
                f"SCPs over account {account} not read ({code}): give --org-via a role in the management account "
                f"(or a delegated administrator) allowed {READ_ORGANIZATION}"
            )
        except (AssumeRoleError, BotoCoreError) as exc:
            return None, f"SCPs over account {account} not read: {exc}"

    def _policies(self, client: Any, target: str) -> list[tuple[str, Any]]:
        policies = []
        paginator = client.get_paginator("list_policies_for_target")
        for page in paginator.paginate(TargetId=target, Filter="SERVICE_CONTROL_POLICY"):
            for summary in page["Policies"]:
                policy_id = summary["Id"]
                if policy_id not in self._documents:
                    content = client.describe_policy(PolicyId=policy_id)["Policy"]["Content"]
                    self._documents[policy_id] = (summary["Arn"], content)
                policies.append(self._documents[policy_id])
        return policies


def examine(
    sessions: ChainSessions,
    chain: Chain,
    *,
    inspect: Sequence[Chain] = (),
    seen: dict[tuple[Hop, ...], HopReport] | None = None,
    org: OrgReader | None = None,
) -> list[HopReport]:
    """A report for every hop of ``chain`` up to the first that cannot be assumed (later hops are not
    reachable, so they are reported with a note only). ``inspect`` chains end in roles that may read
    IAM in other accounts (``iam:GetRole``), used to read trust policies there. ``seen`` keeps the
    reports of hops already examined (by the hops up to them): chains to many accounts share their
    first hops, examined once. ``org`` reads the SCPs over each caller's account (default: through the
    base credentials)."""
    org = org or OrgReader(sessions)
    reports: list[HopReport] = []
    for index, hop in enumerate(chain.hops):
        key = chain.hops[: index + 1]
        if seen is not None and key in seen:
            reports.append(seen[key])
            continue
        report = HopReport(hop=index + 1, role_arn=hop.role_arn)
        reports.append(report)
        if reports[:-1] and not reports[-2].assumed:
            report.notes.append("not reached: an earlier hop failed")
            continue
        prefix = Chain(hops=chain.hops[:index], session_name=chain.session_name) if index else None
        _examine_hop(sessions, chain, prefix, hop, report, inspect, org)
        if seen is not None and index < len(chain.hops) - 1:
            seen[key] = report
    return reports


@dataclass
class TargetReport:
    """The doctor's report on the chain to one account of a job."""

    account: str
    hops: list[HopReport]

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hops)

    def to_dict(self) -> dict[str, Any]:
        return {"account": self.account, "hops": [h.to_dict() for h in self.hops], "ok": self.ok}


def sample(accounts: Sequence[str], size: int | None) -> list[str]:
    """``size`` accounts spread evenly over ``accounts`` (the first and the last among them), in order;
    all of them when ``size`` is None or not smaller. Deterministic: the same job samples the same."""
    if size is None or size >= len(accounts):
        return list(accounts)
    if size <= 1:
        return list(accounts[:size])
    return [accounts[round(i * (len(accounts) - 1) / (size - 1))] for i in range(size)]


def examine_job(
    sessions: ChainSessions,
    plan: RunPlan,
    *,
    session_name: str,
    accounts: Sequence[str],
    inspect: Sequence[str] = (),
    org: OrgReader | None = None,
) -> list[TargetReport]:
    """The doctor over the chains a run of ``plan`` takes to ``accounts``: the same hops, ExternalId,
    SourceIdentity, session tags and session policy (the action's declared permissions) as the runner.
    ``inspect`` are role ARNs to read trust policies through; ``{account}`` in one becomes each account."""
    seen: dict[tuple[Hop, ...], HopReport] = {}
    org = org or OrgReader(sessions)
    policy = plan.action.session_policy()
    reports = []
    for account in accounts:
        chain = plan.chain_to(account, session_name=session_name, session_policy=policy)
        readers = [
            Chain.build([arn.format(account=account)], session_name=session_name) for arn in dict.fromkeys(inspect)
        ]
        reports.append(TargetReport(account, examine(sessions, chain, inspect=readers, seen=seen, org=org)))
    return reports


def _examine_hop(
    sessions: ChainSessions,
    chain: Chain,
    prefix: Chain | None,
    hop: Hop,
    report: HopReport,
    inspect: Sequence[Chain],
    org: OrgReader,
) -> None:
    caller = _caller(sessions, prefix)
    scps, why_not = org.levels(caller.account)
    caller = replace(caller, scps=scps)
    if why_not:
        report.notes.append(why_not)
    previous = prefix.hops[-1] if prefix is not None else None
    if previous is not None and previous.session_policy is not None:
        caller = replace(caller, session_policy=previous.session_policy, session_policy_of=previous.role_arn)
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

    identity_fix: Fix | None = None
    if caller.documents is None:
        report.notes.append(caller.why_unread)
    else:
        try:
            identity_fix = _identity_side(caller, hop, actions, context)
            report.identity_policy_allows = identity_fix is None
        except iam.UnsupportedPolicy as exc:
            report.notes.append(f"the caller's policies cannot be evaluated: {exc}")

    trust, why = _trust_policy(sessions, prefix, caller, hop, role_account, inspect)
    trust_missing: list[str] = []
    if trust is None:
        report.notes.append(why)
    else:
        try:
            trust_missing = [
                action
                for action in actions
                if not iam.evaluate([trust], action, hop.role_arn, context, principal=principal).allowed
            ]
            report.trust_policy_allows = not trust_missing
        except iam.UnsupportedPolicy as exc:
            report.notes.append(f"the trust policy cannot be evaluated: {exc}")
        if report.fix is None and report.trust_policy_allows is False:
            report.fix = _what_the_chain_lacks(trust, hop, trust_missing, context, principal, report)

    through = Chain(hops=(*(prefix.hops if prefix else ()), hop), session_name=chain.session_name)
    # a real AssumeRole confirms: no cached credentials, no remembered refusal (earlier hops were just confirmed)
    sessions.forget(through, last_only=True)
    try:
        sessions.identity(through)
        report.assumed = True
    except AssumeRoleError as exc:
        report.notes.append(f"AssumeRole answered {exc.failure.code}")
        if report.identity_policy_allows is not False:
            # what the doctor cannot read: a session policy of the base credentials' session, an SCP.
            # AWS's newer denials name the policy type; then that is the fact.
            unseen = _unseen_identity_side(exc.failure.message, caller, hop, actions)
            if unseen is not None:
                report.identity_policy_allows, identity_fix = False, unseen
    if report.fix is None and not report.assumed:
        if report.identity_policy_allows is False:
            report.fix = identity_fix
        elif report.trust_policy_allows is False:
            report.fix = _trust_fix(caller, hop, trust_missing)


def _caller(sessions: ChainSessions, prefix: Chain | None) -> _Caller:
    identity = sessions.identity(prefix)
    return _read_caller(identity.arn, identity.account, sessions.client(prefix, "iam"))


def _read_caller(arn: str, account: str, client: Any) -> _Caller:
    """The caller's identity-side policies, read with its own credentials (``client``: its IAM client)."""
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
            return _Caller(arn, account, role["Arn"], documents, _boundary(client, boundary), boundary_arn=boundary)
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
            return _Caller(arn, account, None, documents, _boundary(client, boundary), boundary_arn=boundary)
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
        # with SerialNumber and TokenCode the request is MFA-authenticated; a session's request without
        # them is not; a user's long-term keys leave the key absent (as AWS does)
        "aws:MultiFactorAuthPresent": "true" if hop.serial_number else "false" if caller.role_arn else None,
    }


def _identity_side(caller: _Caller, hop: Hop, actions: list[str], context: dict[str, Any]) -> Fix | None:
    """None when every identity-side policy allows every action; else the fix for the first that does
    not: a Deny to remove (wherever it is), or an Allow to add to the layer that lacks one. The layers:
    identity policies, the permissions boundary, the session policy, then each SCP level (account, OUs,
    root) when Organizations was read."""
    assert caller.documents is not None
    policy_of = caller.role_arn or caller.arn
    # (layer, whose it is, documents, the ARN of each document: who holds a Deny)
    layers: list[tuple[str, str, list[Any], list[str]]] = [
        ("identity policy", policy_of, caller.documents, [policy_of] * len(caller.documents))
    ]
    if caller.boundary is not None:
        owner = caller.boundary_arn or policy_of
        layers.append(("permissions boundary", owner, caller.boundary, [owner]))
    if caller.session_policy is not None:
        owner = caller.session_policy_of or caller.arn
        layers.append(("session policy", owner, [caller.session_policy], [owner]))
    for target, policies in caller.scps or ():
        layers.append(("service control policy", target, [d for _, d in policies], [a for a, _ in policies]))
    for action in actions:
        for layer, _owner, documents, holders in layers:
            for document, holder in zip(documents, holders, strict=True):
                verdict = iam.evaluate([document], action, hop.role_arn, context)
                if verdict.decision != iam.Decision.DENY:
                    continue
                where = f"the {layer} of {holder}" if layer in ("identity policy", "session policy") else (
                    f"the {layer} {holder}"
                )  # fmt: skip
                return Fix(
                    holder,
                    "identity",
                    None,
                    f"{where} denies {action} on {hop.role_arn}: remove or narrow this Deny (an Allow cannot "
                    "override it)",
                    layer=layer,
                    remove=_redacted(verdict.statement) if verdict.statement is not None else None,
                )
    for layer, owner, documents, _holders in layers:
        wanted = [a for a in actions if not iam.evaluate(documents, a, hop.role_arn, context).allowed]
        if not wanted:
            continue
        allow = {"Effect": "Allow", "Action": wanted if len(wanted) > 1 else wanted[0], "Resource": hop.role_arn}
        say = {
            "identity policy": f"add to the identity policy of {owner}",
            "permissions boundary": f"add to the permissions boundary {owner} (of {policy_of}): a boundary "
            "allows only what it names",
            "session policy": f"add to the session policy the chain passes when it assumes {owner}",
            "service control policy": f"no service control policy attached to {owner} allows it: add this "
            "statement to one of them, or attach FullAWSAccess there",
        }[layer]
        return Fix(owner, "identity", allow, say, layer=layer)
    return None


def _redacted(statement: Any) -> dict[str, Any]:
    """A policy statement to show, with any ExternalId it compares with replaced by the placeholder."""
    shown = json.loads(json.dumps(statement, default=str))
    for keys in (shown.get("Condition") or {}).values():
        if isinstance(keys, dict):
            for key in list(keys):
                if str(key).lower() == "sts:externalid":
                    keys[key] = EXTERNAL_ID_PLACEHOLDER
    return dict(shown)


def _unseen_identity_side(message: str, caller: _Caller, hop: Hop, actions: list[str]) -> Fix | None:
    """A fix from AWS's own reason for a denial, for the policies the doctor cannot read."""
    lowered = message.lower()
    denied = next((a for a in actions if f"perform: {a.lower()}" in lowered), actions[0])
    allow = {"Effect": "Allow", "Action": denied, "Resource": hop.role_arn}
    if "session policy" in lowered:
        return Fix(
            caller.arn,
            "identity",
            allow,
            f"AWS says a session policy of {caller.arn} does not allow {denied} on {hop.role_arn}: the "
            "session was created with a session policy (AssumeRole's Policy/PolicyArns) that must allow it, or "
            "use credentials without one",
            layer="session policy",
        )
    if "service control policy" in lowered:
        return Fix(
            caller.account,
            "identity",
            None,
            f"AWS says a service control policy of account {caller.account} "
            + ("denies" if "explicit deny" in lowered else "does not allow")
            + f" {denied} on {hop.role_arn}: change the SCP (in the organisation's management account)",
            layer="service control policy",
        )
    return None


def _what_the_chain_lacks(
    trust: Any, hop: Hop, missing: list[str], context: dict[str, Any], principal: iam.Principal, report: HopReport
) -> Fix | None:
    """When the trust policy would allow the caller if the request carried what it asks for (an
    ExternalId, MFA, a SourceIdentity), the chain is what changes, not the policy. The values asked for
    are read from the policy and never reported."""

    def passes(**changes: Any) -> bool:
        try:
            changed = {**context, **changes}
            return all(
                iam.evaluate([trust], action, hop.role_arn, changed, principal=principal).allowed for action in missing
            )
        except iam.UnsupportedPolicy:
            return False

    if any(passes(**{"sts:ExternalId": value}) for value in _condition_values(trust, "sts:externalid")):
        given = "none was given" if hop.external_id is None else "the one given does not match"
        report.notes.append(f"the trust policy requires an ExternalId and {given}")
        return Fix(
            hop.role_arn,
            "chain",
            None,
            "pass the ExternalId this role's trust policy requires (--external-id, or the job file's "
            "external_id); do not drop the condition from the trust policy",
        )
    if not hop.serial_number and passes(**{"aws:MultiFactorAuthPresent": "true", "aws:MultiFactorAuthAge": "0"}):
        report.notes.append("the trust policy requires MFA and the request carried none")
        return Fix(
            hop.role_arn,
            "chain",
            None,
            "assume this role with MFA: --mfa-serial (your MFA device's ARN) and --mfa-code, or a profile with "
            "mfa_serial; do not drop the condition from the trust policy",
        )
    if hop.source_identity is None and passes(**{"sts:SourceIdentity": "rolechain-doctor"}):
        report.notes.append("the trust policy requires a SourceIdentity and none was set")
        return Fix(
            hop.role_arn,
            "chain",
            None,
            "set a SourceIdentity that names you (--source-identity), which this role's trust policy requires",
        )
    return None


def _condition_values(document: Any, key: str) -> set[str]:
    """Every value a String* condition on ``key`` (lower case) of ``document`` compares with."""
    try:
        statements = iam.statements_of(document)
    except iam.UnsupportedPolicy:
        return set()
    return {
        str(value)
        for statement in statements
        for operator, keys in (statement.get("Condition") or {}).items()
        if str(operator).lower().startswith("string") and isinstance(keys, dict)
        for name, values in keys.items()
        if str(name).lower() == key
        for value in (values if isinstance(values, list) else [values])
    }


def _trust_fix(caller: _Caller, hop: Hop, missing: list[str]) -> Fix:
    """The trust statement to add: the actions the trust policy does not allow this caller."""
    trust: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": caller.role_arn or caller.arn},
        "Action": missing if len(missing) > 1 else missing[0],
    }
    if hop.external_id is not None and "sts:AssumeRole" in missing:
        trust["Condition"] = {"StringEquals": {"sts:ExternalId": EXTERNAL_ID_PLACEHOLDER}}
    return Fix(hop.role_arn, "trust", trust, f"add to the trust policy of {hop.role_arn}")


# -- hints from facts: a failed AssumeRole explained by the evaluator ------------------------------


def _caller_facts(caller_arn: str, client: Any, memo: Memo) -> _Caller:
    """The caller's policies, read once while ``memo`` keeps them, per role or user (a run that fails at
    many targets reads them once)."""
    key = ("caller", trust_principal(caller_arn))
    hit = memo.get(key)
    if isinstance(hit, _Caller):
        return replace(hit, arn=caller_arn)
    account = caller_arn.split(":")[4] if caller_arn.count(":") >= 5 else ""
    caller = _read_caller(caller_arn, account, client)
    memo.put(key, caller)
    return caller


def explain(
    failure: HopFailure, hop: Hop, session_name: str, caller_client: Callable[[str], Any], memo: Memo
) -> HopFailure:
    """``failure`` with a hint decided from the policies where the caller can read them.

    AWS answers a missing identity permission and a trust policy that does not allow the caller with the
    same AccessDenied, and STS's messages rarely say which: the guess in :mod:`rolechain.diagnose` then
    names both. Here the caller's own policies (and the role's trust policy, when it is in the caller's
    account) are read with the caller's credentials (``caller_client(service)``) and evaluated; what
    they settle replaces the guess. Never raises: a failure to read leaves ``failure`` as it was."""
    if not failure.code.startswith("AccessDenied") or failure.likely_cause not in _UNDECIDED:
        return failure
    if already_is(failure.caller_arn, hop.role_arn):
        return failure
    try:
        return _explained(failure, hop, session_name, caller_client, memo)
    except Exception:  # an explanation must never mask the failure it explains
        return failure


_UNDECIDED = ("either", "caller_permission", "trust_policy")


def _explained(
    failure: HopFailure, hop: Hop, session_name: str, caller_client: Callable[[str], Any], memo: Memo
) -> HopFailure:
    client = caller_client("iam")
    caller = _caller_facts(failure.caller_arn, client, memo)
    if caller.documents is None:
        return failure
    actions = ["sts:AssumeRole"]
    if hop.tags:
        actions.append("sts:TagSession")
    if hop.source_identity:
        actions.append("sts:SetSourceIdentity")
    chain = Chain(hops=(hop,), session_name=session_name)
    context = _context(chain, hop, caller)
    identity_fix = _identity_side(caller, hop, actions, context)
    if identity_fix is not None:
        return _with(failure, "caller_permission", "condition (1), checked: " + _say(identity_fix))
    trust: Any = None
    if caller.account == role_arn_parts(hop.role_arn)[1]:
        try:
            trust = client.get_role(RoleName=hop.role_arn.rsplit("/", 1)[-1])["Role"]["AssumeRolePolicyDocument"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return _with(failure, "trust_policy", f"{hop.role_arn} does not exist (check its ARN: account, path "
                             "and name)")  # fmt: skip
        except BotoCoreError:
            trust = None
    allowed = f"the policies of {caller.role_arn or caller.arn} allow {', '.join(actions)} on {hop.role_arn} (checked)"
    if trust is None:
        ext = " with the ExternalId given (value not shown)" if hop.external_id else ""
        return _with(
            failure,
            "trust_policy",
            f"condition (2): {allowed}, so the trust policy of {hop.role_arn} does not allow "
            f"{failure.caller_arn}{ext}, or the role does not exist (`rolechain doctor` with --inspect-via a "
            "role that may read it names the statement to add)",
        )
    principal = iam.Principal(caller.arn, role_arn=caller.role_arn)
    missing = [a for a in actions if not iam.evaluate([trust], a, hop.role_arn, context, principal=principal).allowed]
    if missing:
        report = HopReport(hop=failure.hop, role_arn=hop.role_arn)
        chain_fix = _what_the_chain_lacks(trust, hop, missing, context, principal, report)
        return _with(
            failure, "trust_policy", "condition (2), checked: " + _say(chain_fix or _trust_fix(caller, hop, missing))
        )
    return _with(
        failure,
        "either",
        f"{allowed}, and so does the trust policy of {hop.role_arn}: what denies it is a policy the caller cannot "
        "read (a service control policy, a session policy of the base credentials, a resource control policy)",
    )


def _say(fix: Fix) -> str:
    if fix.remove is not None:
        return f"{fix.say}: {json.dumps(fix.remove, separators=(',', ':'))}"
    if fix.statement is not None:
        return f"{fix.say}: {json.dumps(fix.statement, separators=(',', ':'))}"
    return fix.say


def _with(failure: HopFailure, cause: LikelyCause, hint: str) -> HopFailure:
    return replace(failure, likely_cause=cause, hint=hint)


__all__ = [
    "EXTERNAL_ID_PLACEHOLDER",
    "Fix",
    "HopReport",
    "OrgReader",
    "TargetReport",
    "examine",
    "examine_job",
    "explain",
    "sample",
]
