"""The doctor over the project's own templates (``rolechain doctor --templates``), without any AWS call.

The chain U1 -> R1 -> R2 works when (1) U1's policies allow it to assume R1, (2) R1's trust policy allows
U1, (3) R1's policies allow it to assume R2 and (4) R2's trust policy allows R1 with the ExternalId.
template.yaml holds R1 (its trust policy, with ``OperatorPrincipals``, and its identity policy),
target-role.yaml holds R2 (its trust policy and its permissions): so (2), (3) and (4) are decided here
with :mod:`rolechain.iam`, as a deploy with the parameters' defaults (or overrides) would create them.
(1) is the operator's own policy, in no template: it is advice, a statement to paste. Besides the hops:
R2's trust must require an ExternalId, and R2's permissions must cover what every registered action
declares (``rolechain policy target``).

What only a deploy knows is a placeholder: the hub and member account ids, the region, R1's generated
name (``<stack>-HubRole-EXAMPLE``) and the ExternalId's value, which is never printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolechain import iam
from rolechain.actions import REGISTRY, target_role_policy
from rolechain.chain import role_arn_parts, source_identity_of
from rolechain.doctor import EXTERNAL_ID_PLACEHOLDER, Fix, HopReport
from rolechain.errors import ConfigError
from rolechain.templates import TARGET_ACCOUNT, Stack, load_template
from rolechain.types import ROLE_ARN_RE

HUB_ACTIONS = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]  # the hub sends tags and a SourceIdentity
OPERATOR_ACTIONS = ["sts:AssumeRole", "sts:SetSourceIdentity"]  # the CLI sends a SourceIdentity, no tags
EXTERNAL_ID_VALUE = "static-doctor-external-id"  # the ExternalId parameter's stand-in, when none is given
HUB_ROLE_ID = "HubRole"


@dataclass
class TemplateHop(HopReport):
    """A hop decided from the templates alone: nothing is assumed (``assumed`` is null in its JSON), and
    a policy the templates do not hold is ``None`` (unknown), not a failure."""

    @property
    def ok(self) -> bool:
        return self.trust_policy_allows is True and self.identity_policy_allows is not False

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "assumed": None}


@dataclass(frozen=True)
class TemplateCheck:
    """A check of the templates that is not one hop's condition."""

    check: str
    ok: bool
    say: str
    fix: Fix | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "say": self.say, "fix": self.fix.to_dict() if self.fix else None}


@dataclass
class TemplateReport:
    hops: list[TemplateHop]
    checks: list[TemplateCheck]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hops) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hops": [h.to_dict() for h in self.hops],
            "checks": [c.to_dict() for c in self.checks],
            "notes": self.notes,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class _Role:
    """An IAM role of a template, resolved: its ARN, trust policy and identity policy documents."""

    logical_id: str
    arn: str
    trust: Any
    documents: list[Any]
    managed: bool  # it also has ManagedPolicyArns, which the templates do not hold


def examine_templates(
    hub_template: str | Path = "template.yaml",
    target_template: str | Path = "target-role.yaml",
    *,
    operator: str | None = None,
    parameters: Mapping[str, str] | None = None,
) -> TemplateReport:
    """Decide the chain's conditions from the two templates (see the module's docstring).

    ``parameters`` override either template's parameter defaults (each key must be a parameter of one of
    them); ``operator`` is an IAM user or role ARN (or an assumed-role session ARN) to check against R1's
    trust policy.

    Raises:
        ConfigError: a template cannot be read or is not a template, a parameter is unknown or breaks its
            rule, ``operator`` is not such an ARN, or a policy cannot be resolved or evaluated.
    """
    hub_path, target_path = Path(hub_template), Path(target_template)
    hub = load_template(hub_path, flag="--template")
    target = load_template(target_path, flag="--target-template")
    hub_name, target_name = hub_path.name, target_path.name
    given = dict(parameters or {})
    try:
        return _examine(hub, target, hub_name, target_name, given, operator)
    except ConfigError:  # a ValueError too, and already naming what was wrong
        raise
    except iam.UnsupportedPolicy as exc:  # a template's policy IAM would refuse: bad input, not a verdict
        raise ConfigError("template", f"a policy cannot be evaluated: {exc}") from exc
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        # a template whose shape CloudFormation would refuse (a list where a mapping belongs...); the
        # exception's text is not shown, since it may quote a value (the ExternalId's among them)
        raise ConfigError(
            "template", f"{hub_name} or {target_name} is not shaped as CloudFormation wants ({type(exc).__name__})"
        ) from exc


def _examine(
    hub: Mapping[str, Any],
    target: Mapping[str, Any],
    hub_name: str,
    target_name: str,
    given: Mapping[str, str],
    operator: str | None,
) -> TemplateReport:
    hub_params = set(hub.get("Parameters") or {})
    target_params = set(target.get("Parameters") or {})
    unknown = sorted(set(given) - hub_params - target_params)
    if unknown:
        raise ConfigError("--parameter", f"{unknown[0]!r} is a parameter of neither {hub_name} nor {target_name}")
    hub_given = {k: v for k, v in given.items() if k in hub_params}
    target_given = {k: v for k, v in given.items() if k in target_params}
    operator_principal = _operator_principal(operator) if operator is not None else None

    report = TemplateReport(hops=[], checks=[])
    r1 = _hub_role(hub, hub_name, hub_given, target_given, report)
    hub_stack = Stack(
        hub, name=hub_name, overrides=hub_given, account=role_arn_parts(r1.arn)[1], arns={HUB_ROLE_ID: r1.arn}
    )
    r2 = _target_role(target, target_name, target_given, r1.arn)

    if operator is not None and operator_principal is not None:
        report.hops.append(_operator_hop(hub, hub_name, hub_given, hub_stack, r1, operator, operator_principal))
    report.hops.append(_hub_hop(hub_stack, hub_name, target_name, r1, r2))
    report.checks.append(_external_id_check(target_name, r1, r2))
    report.checks.append(_registry_check(target_name, r2))
    return report


# -- the two roles ----------------------------------------------------------------------------------


def _hub_role(
    hub: Mapping[str, Any],
    hub_name: str,
    hub_given: Mapping[str, str],
    target_given: Mapping[str, str],
    report: TemplateReport,
) -> _Role:
    resource = (hub.get("Resources") or {}).get(HUB_ROLE_ID)
    if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::IAM::Role":
        raise ConfigError("--template", f"{hub_name} has no AWS::IAM::Role {HUB_ROLE_ID} (R1)")
    properties = resource.get("Properties") or {}
    deployed = target_given.get("HubRoleArn")
    if deployed is not None:
        if not ROLE_ARN_RE.match(deployed):
            raise ConfigError("--parameter", "HubRoleArn is not an IAM role ARN")
        arn = deployed
        report.notes.append(f"R1 is {arn} (the HubRoleArn given)")
    else:
        stack = Stack(hub, name=hub_name, overrides=hub_given)
        name = stack.resolve(properties.get("RoleName", f"{stack.stack_name}-{HUB_ROLE_ID}-EXAMPLE"))
        path = stack.resolve(properties.get("Path", "/"))
        arn = f"arn:{stack.partition}:iam::{stack.account}:role{path}{name}"
        if "RoleName" not in properties:
            report.notes.append(
                f"R1 is named {arn} here: CloudFormation generates its name; give --parameter "
                "HubRoleArn=<the hub stack's HubRoleArn output> to check the deployed one"
            )
    stack = Stack(hub, name=hub_name, overrides=hub_given, account=role_arn_parts(arn)[1], arns={HUB_ROLE_ID: arn})
    role = _resolved_role(stack, HUB_ROLE_ID, properties, arn)
    # R1's policies that are resources of their own (AWS::IAM::RolePolicy / Policy naming it): its too
    for resource in (hub.get("Resources") or {}).values():
        if not isinstance(resource, Mapping) or resource.get("Type") not in (
            "AWS::IAM::RolePolicy",
            "AWS::IAM::Policy",
        ):
            continue
        attached = resource.get("Properties") or {}
        names = [attached.get("RoleName"), *(attached.get("Roles") or [])]
        if {"Ref": HUB_ROLE_ID} in names and "PolicyDocument" in attached:
            role.documents.append(stack.resolve(attached["PolicyDocument"]))
    return role


def _target_role(target: Mapping[str, Any], target_name: str, target_given: Mapping[str, str], r1_arn: str) -> _Role:
    roles = {
        rid: r
        for rid, r in (target.get("Resources") or {}).items()
        if isinstance(r, Mapping) and r.get("Type") == "AWS::IAM::Role"
    }
    if not roles:
        raise ConfigError("--target-template", f"{target_name} has no AWS::IAM::Role (R2)")
    logical_id = "TargetRole" if "TargetRole" in roles else sorted(roles)[0]
    properties = roles[logical_id].get("Properties") or {}
    stack = Stack(
        target,
        name=target_name,
        overrides=target_given,
        account=TARGET_ACCOUNT,
        stack_name="rolechain-target",
        placeholders={"HubRoleArn": r1_arn, "ExternalId": EXTERNAL_ID_VALUE},
    )
    name = stack.resolve(properties.get("RoleName", f"{stack.stack_name}-{logical_id}-EXAMPLE"))
    path = stack.resolve(properties.get("Path", "/"))
    arn = f"arn:{stack.partition}:iam::{TARGET_ACCOUNT}:role{path}{name}"
    return _resolved_role(stack, logical_id, properties, arn)


def _resolved_role(stack: Stack, logical_id: str, properties: Mapping[str, Any], arn: str) -> _Role:
    trust = stack.resolve(properties.get("AssumeRolePolicyDocument") or {"Statement": []})
    documents = [
        stack.resolve(policy["PolicyDocument"])
        for policy in properties.get("Policies") or []
        if isinstance(policy, Mapping) and "PolicyDocument" in policy
    ]
    return _Role(logical_id, arn, trust, documents, bool(properties.get("ManagedPolicyArns")))


# -- hop 1: the operator -> R1 ----------------------------------------------------------------------


def _operator_principal(operator: str) -> iam.Principal:
    """The operator as R1's trust policy sees it. Raises ConfigError for anything but a user, role or
    assumed-role session ARN."""
    parts = operator.split(":", 5)
    if ROLE_ARN_RE.match(operator):
        partition, account, _, name = role_arn_parts(operator)
        return iam.Principal(f"arn:{partition}:sts::{account}:assumed-role/{name}/operator", role_arn=operator)
    if (
        len(parts) == 6
        and parts[0] == "arn"
        and parts[2] in ("iam", "sts")
        and parts[4].isdigit()
        and len(parts[4]) == 12
    ):
        kind, _, rest = parts[5].partition("/")
        if parts[2] == "iam" and kind == "user" and rest:
            return iam.Principal(operator)
        if parts[2] == "sts" and kind == "assumed-role" and "/" in rest:
            role = f"arn:{parts[1]}:iam::{parts[4]}:role/{rest.split('/', 1)[0]}"
            return iam.Principal(operator, role_arn=role)
    raise ConfigError(
        "--operator",
        "must be an IAM user or role ARN (or an assumed-role session ARN) like arn:aws:iam::123456789012:user/alice",
    )


def _operator_hop(
    hub: Mapping[str, Any],
    hub_name: str,
    hub_given: Mapping[str, str],
    hub_stack: Stack,
    r1: _Role,
    operator: str,
    principal: iam.Principal,
) -> TemplateHop:
    hop = TemplateHop(hop=1, role_arn=r1.arn, caller_arn=operator)
    name = source_identity_of(principal.arn) or "operator"
    context: dict[str, Any] = {
        "sts:SourceIdentity": name,
        "aws:MultiFactorAuthPresent": True,
        "aws:PrincipalArn": principal.role_arn or principal.arn,
        "aws:PrincipalAccount": principal.account,
    }

    def allows(ctx: Mapping[str, Any], trust: Any = r1.trust) -> bool:
        return all(_trust_allows(trust, action, r1.arn, ctx, principal) for action in OPERATOR_ACTIONS)

    def admits(trust: Any) -> Any:
        """The statement of ``trust`` that lets the operator in, or None."""
        if not allows(context, trust):
            return None
        return iam.evaluate([trust], "sts:AssumeRole", r1.arn, context, principal=principal).statement

    hop.trust_policy_allows = allows(context)
    identity_statement = {"Effect": "Allow", "Action": OPERATOR_ACTIONS, "Resource": r1.arn}
    identity_advice = (
        f"(1) the operator's own identity policy is in no template: it must allow {json.dumps(identity_statement)} "
        f"(`rolechain doctor --via {r1.arn} --source-identity` checks it live)"
    )
    if hop.trust_policy_allows:
        without_mfa = {k: v for k, v in context.items() if k != "aws:MultiFactorAuthPresent"}
        if not allows(without_mfa):
            hop.notes.append("R1's trust requires MFA (OperatorRequireMfa): pass --mfa-serial and --mfa-code")
        if allows({k: v for k, v in context.items() if k != "sts:SourceIdentity"}):
            hop.notes.append(
                "R1's trust does not require a SourceIdentity: CloudTrail in member accounts names R1's session, "
                "not the person"
            )
        else:
            hop.notes.append(f"R1's trust requires a SourceIdentity: pass --source-identity (bare: {name})")
        hop.fix = Fix(
            principal.role_arn or operator,
            "identity",
            identity_statement,
            "the operator's identity policy is in no template: make sure it allows this (advice, not checked)",
        )
        return hop
    hop.notes.append(identity_advice)
    hop.fix = _operator_trust_fix(hub, hub_name, hub_given, hub_stack, r1, operator, admits)
    return hop


def _operator_trust_fix(
    hub: Mapping[str, Any],
    hub_name: str,
    hub_given: Mapping[str, str],
    hub_stack: Stack,
    r1: _Role,
    operator: str,
    admits: Callable[[Any], Any],
) -> Fix:
    """The parameter value that lets ``operator`` in and the statement it makes, when the template has
    OperatorPrincipals and it would (``admits(trust)`` gives the allowing statement or None); else the
    statement to add to HubRole's trust policy by hand."""
    if "OperatorPrincipals" in (hub.get("Parameters") or {}):
        listed = [p for p in hub_stack.values.get("OperatorPrincipals") or [] if p]
        joined = ",".join([*listed, operator])
        shown = f"'{joined}'" if "," in joined else joined  # quoted for a shell
        overrides = {**hub_given, "OperatorPrincipals": joined}
        stack = Stack(hub, name=hub_name, overrides=overrides, account=hub_stack.account, arns={HUB_ROLE_ID: r1.arn})
        allowing = admits(stack.resolve(hub["Resources"][HUB_ROLE_ID]["Properties"]["AssumeRolePolicyDocument"]))
        if allowing is not None:
            return Fix(
                r1.arn,
                "trust",
                dict(allowing),
                f"set {hub_name}'s parameter OperatorPrincipals to include {operator} "
                f"(sam deploy --parameter-overrides OperatorPrincipals={shown}); {HUB_ROLE_ID}'s trust policy then "
                "has this statement",
            )
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": operator},
        "Action": OPERATOR_ACTIONS,
        "Condition": {"Null": {"sts:SourceIdentity": "false"}},
    }
    return Fix(r1.arn, "trust", statement, f"add to {hub_name}'s {HUB_ROLE_ID} AssumeRolePolicyDocument")


# -- hop 2: R1 -> R2 --------------------------------------------------------------------------------


def _hub_hop(hub_stack: Stack, hub_name: str, target_name: str, r1: _Role, r2: _Role) -> TemplateHop:
    hop = TemplateHop(hop=2, role_arn=r2.arn, caller_arn=r1.arn)
    session = _session_of(r1)
    hub_account = session.account
    wanted = _external_ids(r2.trust)
    context: dict[str, Any] = {
        "sts:ExternalId": wanted[0] if wanted else None,
        "sts:SourceIdentity": "operator",
        "aws:PrincipalArn": r1.arn,
        "aws:PrincipalAccount": hub_account,
        "aws:TagKeys": ["requested-by"],
        "aws:RequestTag/requested-by": "operator",
    }
    organization = str(hub_stack.values.get("OrganizationId") or "")
    if organization:
        context["aws:ResourceOrgID"] = organization
        hop.notes.append(f"assuming the member account is in organisation {organization} (OrganizationId)")

    layers: list[list[Any]] = [r1.documents]
    try:
        denied = [a for a in HUB_ACTIONS if not iam.evaluate_all(layers, a, r2.arn, context).allowed]
        hop.identity_policy_allows = not denied
        trust_denied = [a for a in HUB_ACTIONS if not _trust_allows(r2.trust, a, r2.arn, context, session)]
    except iam.UnsupportedPolicy as exc:
        raise ConfigError("template", f"a policy cannot be evaluated: {exc}") from exc
    hop.trust_policy_allows = not trust_denied
    if r1.managed:
        hop.notes.append(f"{hub_name}'s {HUB_ROLE_ID} also has managed policies, which are not read here")

    mismatch = _name_mismatch(hub_stack, hub_name, target_name, r2)
    if mismatch:
        hop.notes.append(mismatch)
    trust_fix = _r2_trust_fix(
        r1,
        r2,
        f"add to {target_name}'s {r2.logical_id} AssumeRolePolicyDocument (Principal AWS: !Ref HubRoleArn, "
        "sts:ExternalId: !Ref ExternalId)",
    )
    if denied:
        say = f"add to {hub_name}'s {HUB_ROLE_ID} Policies (denied: {', '.join(denied)})"
        if mismatch:
            say = f"make the target role's name agree between the templates ({mismatch}), or {say}"
        hop.fix = Fix(r1.arn, "identity", {"Effect": "Allow", "Action": HUB_ACTIONS, "Resource": r2.arn}, say)
        if trust_denied:
            hop.notes.append(f"(4) fails too: {trust_fix.say}: {json.dumps(trust_fix.statement)}")
    elif trust_denied:
        hop.notes.append(f"{target_name}'s trust policy does not allow R1 {r1.arn} ({', '.join(trust_denied)})")
        hop.fix = trust_fix
    return hop


def _r2_trust_fix(r1: _Role, r2: _Role, say: str) -> Fix:
    """The statement R2's trust policy needs for R1: the hub's actions, with the ExternalId (a placeholder)."""
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": r1.arn},
        "Action": HUB_ACTIONS,
        "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID_PLACEHOLDER}},
    }
    return Fix(r2.arn, "trust", statement, say)


def _session_of(r1: _Role) -> iam.Principal:
    """A session of R1 (what its functions assume R2 with), as R2's trust policy sees it."""
    partition, account, _, name = role_arn_parts(r1.arn)
    return iam.Principal(f"arn:{partition}:sts::{account}:assumed-role/{name}/rolechain", role_arn=r1.arn)


def _name_mismatch(hub_stack: Stack, hub_name: str, target_name: str, r2: _Role) -> str | None:
    """Why template.yaml's TargetRolePath/TargetRoleName do not name the role target-role.yaml creates."""
    if "TargetRoleName" not in hub_stack.values:
        return None
    named = f"{hub_stack.values.get('TargetRolePath', '/')}{hub_stack.values['TargetRoleName']}"
    created = "/" + r2.arn.split(":role/", 1)[1]
    if named == created:
        return None
    return (
        f"{hub_name} names the target role {named} (TargetRolePath, TargetRoleName) but {target_name} creates "
        f"{created} (RolePath, RoleName)"
    )


def _trust_allows(trust: Any, action: str, role_arn: str, context: Mapping[str, Any], principal: iam.Principal) -> bool:
    try:
        return iam.evaluate([trust], action, role_arn, context, principal=principal).allowed
    except iam.UnsupportedPolicy as exc:
        raise ConfigError("template", f"a trust policy cannot be evaluated: {exc}") from exc


def _external_ids(trust: Any) -> list[str]:
    """The ExternalId values the trust policy's String conditions ask for (never reported)."""
    return sorted(
        {
            str(value)
            for statement in iam.statements_of(trust)
            for operator, keys in (statement.get("Condition") or {}).items()
            if str(operator).lower().startswith("string") and isinstance(keys, Mapping)
            for key, values in keys.items()
            if str(key).lower() == "sts:externalid"
            for value in (values if isinstance(values, list) else [values])
        }
    )


# -- the other checks -------------------------------------------------------------------------------


def _external_id_check(target_name: str, r1: _Role, r2: _Role) -> TemplateCheck:
    session = _session_of(r1)
    context = {"aws:PrincipalArn": r1.arn, "aws:PrincipalAccount": session.account}
    without = _trust_allows(r2.trust, "sts:AssumeRole", r2.arn, context, session)
    fix = _r2_trust_fix(
        r1,
        r2,
        f"make every statement of {target_name}'s {r2.logical_id} trust policy that allows R1 require the "
        "ExternalId (Condition StringEquals sts:ExternalId: !Ref ExternalId)",
    )
    if without:
        return TemplateCheck(
            "external_id", False, f"{target_name}'s trust policy lets R1 in without an ExternalId", fix
        )
    if not _external_ids(r2.trust):
        return TemplateCheck("external_id", False, f"{target_name}'s trust policy has no sts:ExternalId condition", fix)
    return TemplateCheck("external_id", True, f"{target_name}'s trust policy requires the ExternalId")


def _registry_check(target_name: str, r2: _Role) -> TemplateCheck:
    required = target_role_policy()  # what `rolechain policy target` prints: the registry's union
    needed = [
        (action, str(resource))
        for statement in required["Statement"]
        for action in statement["Action"]
        for resource in _as_list(statement["Resource"])
    ]
    try:
        missing = sorted({a for a, r in needed if not iam.evaluate(r2.documents, a, r).allowed})
    except iam.UnsupportedPolicy as exc:
        raise ConfigError("--target-template", f"{target_name}'s permissions cannot be evaluated: {exc}") from exc
    granted = {
        str(a)
        for document in r2.documents
        for s in iam.statements_of(document)
        if str(s.get("Effect", "")).lower() == "allow"
        for a in _as_list(s.get("Action"))
    }
    extra = sorted(granted - {a for a, _ in needed})
    also = f"; it also allows {', '.join(extra)}, which no registered action declares" if extra else ""
    if not missing:
        return TemplateCheck("registry_permissions", True, f"R2's permissions cover every registered action{also}")
    users = {
        action: sorted(name for name, spec in REGISTRY.items() if action in spec.iam_actions) for action in missing
    }
    said = "; ".join(f"{action} ({', '.join(users[action])})" for action in missing)
    managed = ", unless its managed policies grant them" if r2.managed else ""
    return TemplateCheck(
        "registry_permissions",
        False,
        f"R2 lacks what registered actions declare: {said}{managed}{also}",
        Fix(
            r2.arn,
            "identity",
            {"Effect": "Allow", "Action": missing, "Resource": "*"},
            f"put what `rolechain policy target` prints into {target_name}'s {r2.logical_id} Policies",
        ),
    )


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, list) else [value]


__all__ = ["TemplateCheck", "TemplateHop", "TemplateReport", "examine_templates"]
