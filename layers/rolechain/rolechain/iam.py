"""A local IAM policy evaluator: does a set of policies allow an action on a resource for a principal?

Why our own: the Python candidates are either unmaintained (principalmapper's local simulation, last
released 2021, pulls networkx and a graph model we do not need) or do matching only (policyuniverse:
ARN and action expansion, no conditions; parliament: linting with action data, no decisions). The
well-kept simulator (cloud-copilot/iam-simulate) is TypeScript. What rolechain needs is small and
exactly specified by AWS's documentation of policy evaluation, so it is written here once and used
by the emulator (deciding requests like IAM) and the chain diagnosis.

Covered: Allow/Deny combination (an applicable explicit Deny wins, an Allow is needed, nothing
applicable is an implicit deny); Action/NotAction (case-insensitive), Resource/NotResource and
Principal/NotPrincipal with ``*``/``?`` wildcards and policy variables (``${aws:username}``...);
principal forms ``*``, account id, account root, user, role (matching its sessions), assumed-role
session, service; the condition operators (String*, Numeric*, Date*, Bool, Null, Arn*, IpAddress,
NotIpAddress, BinaryEquals) with ``IfExists`` and ``ForAnyValue:``/``ForAllValues:``. Condition keys
are case-insensitive. An operator IAM does not know raises :class:`UnsupportedPolicy` (AWS would have
refused the policy), so a caller never mistakes "could not evaluate" for "denied".
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from rolechain.errors import RolechainError

ContextValue = str | bool | int | float | Sequence[str] | None
Context = Mapping[str, ContextValue]
Statement = Mapping[str, Any]


class UnsupportedPolicy(RolechainError):
    """A policy uses an element or operator this evaluator (and IAM) does not know."""


class Decision(StrEnum):
    ALLOW = "allow"
    DENY = "deny"  # an applicable statement with Effect Deny
    IMPLICIT = "implicit"  # no applicable Allow


@dataclass(frozen=True)
class Evaluation:
    """A decision and the statement that decided it (the Deny, or the first applicable Allow)."""

    decision: Decision
    statement: Statement | None = None

    @property
    def allowed(self) -> bool:
        return self.decision == Decision.ALLOW


@dataclass(frozen=True)
class Principal:
    """Who makes a request, as a resource (trust) policy sees it.

    ``arn`` is a user ARN, an assumed-role session ARN or an account root ARN; ``role_arn`` the IAM role
    (with its path) behind a session; ``service`` a service principal such as ``lambda.amazonaws.com``.
    """

    arn: str
    role_arn: str | None = None
    service: str | None = None

    @property
    def account(self) -> str:
        parts = self.arn.split(":")
        return parts[4] if len(parts) > 4 else ""

    @property
    def partition(self) -> str:
        parts = self.arn.split(":")
        return parts[1] if len(parts) > 1 else "aws"

    @property
    def is_session(self) -> bool:
        return ":assumed-role/" in self.arn

    def aws_identifiers(self) -> frozenset[str]:
        """The ``Principal.AWS`` values that name this principal."""
        if self.service:
            return frozenset()
        names = {self.arn, self.account, f"arn:{self.partition}:iam::{self.account}:root"}
        if self.role_arn:
            names.add(self.role_arn)
        return frozenset(names)

    def named_directly_by(self, value: str) -> bool:
        """Whether ``value`` names this user or this very session (not its account, not its role)."""
        return value == self.arn and not self.arn.endswith(":root")


def statements_of(document: Any) -> list[Statement]:
    """The statements of a policy document given as a dict, JSON text or URL-encoded JSON text (as
    IAM's APIs return them). Raises UnsupportedPolicy for anything else."""
    if isinstance(document, str):
        for text in (document, unquote(document)):
            try:
                document = json.loads(text)
                break
            except ValueError:
                continue
        else:
            raise UnsupportedPolicy("a policy document is not JSON")
    if not isinstance(document, Mapping):
        raise UnsupportedPolicy("a policy document must be a JSON object")
    raw = document.get("Statement", [])
    listed = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(s, Mapping) for s in listed):
        raise UnsupportedPolicy("every Statement must be an object")
    return list(listed)


def evaluate(
    policies: Iterable[Any],
    action: str,
    resource: str | None,
    context: Context | None = None,
    *,
    principal: Principal | None = None,
) -> Evaluation:
    """Combine every statement of ``policies`` (documents) for one request.

    ``resource`` None means "not known" (the statement's Resource element is not checked).
    With ``principal`` the policies are resource-based (a trust policy): a statement must name the
    principal, and one without a Resource element applies to the resource it is attached to. Without
    it they are identity-based. Raises UnsupportedPolicy (an unknown condition operator, a malformed
    document).
    """
    context = _normalised(context or {})
    decisive: Statement | None = None
    for document in policies:
        for statement in statements_of(document):
            if not _applies(statement, action, resource, context, principal):
                continue
            effect = str(statement.get("Effect", "")).lower()
            if effect == "deny":
                return Evaluation(Decision.DENY, statement)
            if effect == "allow" and decisive is None:
                decisive = statement
    return Evaluation(Decision.ALLOW, decisive) if decisive is not None else Evaluation(Decision.IMPLICIT)


def evaluate_all(
    layers: Sequence[Sequence[Any]], action: str, resource: str, context: Context | None = None
) -> Evaluation:
    """An identity-side decision through layers that must each allow: the identity policies, then
    (when given) the permissions boundary and the session policies. A Deny in any layer wins; else the
    first layer without an Allow gives the implicit deny."""
    results = [evaluate(layer, action, resource, context) for layer in layers]
    denied = next((r for r in results if r.decision == Decision.DENY), None)
    missing = next((r for r in results if not r.allowed), None)
    return denied or missing or (results[0] if results else Evaluation(Decision.IMPLICIT))


# -- matching ---------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` any one character, nothing else special."""
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def arn_match(pattern: str, value: str) -> bool:
    """ArnLike: the six colon-separated parts of the ARN matched one by one (the last takes the rest)."""
    wanted, got = pattern.split(":", 5), value.split(":", 5)
    if len(wanted) != 6 or len(got) != 6:
        return False
    return all(glob_match(w, g) for w, g in zip(wanted, got, strict=True))


_VARIABLE_RE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_VARIABLES = {"*": "*", "?": "?", "$": "$"}


def _substitute(text: str, context: Mapping[str, list[str]]) -> str | None:
    """``text`` with its policy variables filled from ``context``; None when one is missing (the
    element then matches nothing, as in IAM). ``${*}``, ``${?}``, ``${$}`` stand for the literals, which
    are escaped so they match only themselves."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name in _LITERAL_VARIABLES:
            return "\0" + name  # marked literal, unescaped below
        key, _, default = name.partition(",")
        values = context.get(key.strip().lower())
        if values and len(values) == 1:
            return values[0].replace("*", "\0*").replace("?", "\0?")
        if default.strip().startswith("'") and default.strip().endswith("'"):
            return default.strip()[1:-1]
        missing = True
        return ""

    substituted = _VARIABLE_RE.sub(value, text)
    return None if missing else substituted


def _literal_aware_glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if "\0" not in pattern:
        return glob_match(pattern, value, ignore_case=ignore_case)
    regex, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\0" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append("." if c == "?" else ".*" if c == "*" else re.escape(c))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch("".join(regex), value, flags) is not None


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _action_applies(statement: Statement, action: str) -> bool:
    if "Action" in statement:
        return any(glob_match(str(p), action, ignore_case=True) for p in _listed(statement["Action"]))
    if "NotAction" in statement:
        return not any(glob_match(str(p), action, ignore_case=True) for p in _listed(statement["NotAction"]))
    return False


def _resource_applies(
    statement: Statement, resource: str | None, context: Mapping[str, list[str]], resource_based: bool
) -> bool:
    if resource is None:  # the caller could not tell the resource: only the action decides
        return "Resource" in statement or "NotResource" in statement or resource_based

    def matches(patterns: Any) -> bool:
        for raw in _listed(patterns):
            pattern = _substitute(str(raw), context)
            if pattern is not None and _literal_aware_glob(pattern, resource):
                return True
        return False

    if "Resource" in statement:
        return matches(statement["Resource"])
    if "NotResource" in statement:
        return not matches(statement["NotResource"])
    return resource_based  # a resource policy's statement is about the resource it is attached to


def principal_matches(element: Any, principal: Principal) -> bool:
    """Whether a Principal element names ``principal``."""
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    aws = {str(v) for v in _listed(element.get("AWS"))}
    if "*" in aws and not principal.service:
        return True
    if aws & principal.aws_identifiers():
        return True
    services = {str(v) for v in _listed(element.get("Service"))}
    return principal.service is not None and principal.service in services


def _principal_applies(statement: Statement, principal: Principal | None) -> bool:
    if principal is None:
        return "Principal" not in statement and "NotPrincipal" not in statement
    if "Principal" in statement:
        return principal_matches(statement["Principal"], principal)
    if "NotPrincipal" in statement:
        return not _named_completely(statement["NotPrincipal"], principal)
    return False


def _named_completely(element: Any, principal: Principal) -> bool:
    """Whether a NotPrincipal element exempts ``principal``: IAM exempts it only when every identity
    it acts as is listed (a session: its ARN, its role's ARN and its account; a user: its ARN and its
    account; an account: itself), so naming just the role or just the account exempts nobody."""
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    if principal.service:
        return principal.service in {str(v) for v in _listed(element.get("Service"))}
    listed = {str(v) for v in _listed(element.get("AWS"))}
    if "*" in listed:
        return True
    account = {principal.account, f"arn:{principal.partition}:iam::{principal.account}:root"}
    needed = [account]
    if not principal.arn.endswith(":root"):
        needed.append({principal.arn})
    if principal.is_session:
        needed.append({principal.role_arn} if principal.role_arn else set())
    return all(names & listed for names in needed)


def _applies(
    statement: Statement,
    action: str,
    resource: str | None,
    context: Mapping[str, list[str]],
    principal: Principal | None,
) -> bool:
    return (
        _action_applies(statement, action)
        and _resource_applies(statement, resource, context, principal is not None)
        and _principal_applies(statement, principal)
        and conditions_met(statement.get("Condition"), context)
    )


# -- conditions -------------------------------------------------------------------------------------


def _normalised(context: Context) -> dict[str, list[str]]:
    """Condition keys lower-cased (IAM's keys are case-insensitive), values as lists of strings."""
    result: dict[str, list[str]] = {}
    for key, value in context.items():
        if value is None:
            continue
        if isinstance(value, bool):
            result[key.lower()] = ["true" if value else "false"]
        elif isinstance(value, str | int | float):
            result[key.lower()] = [str(value)]
        else:
            result[key.lower()] = [str(v) for v in value]
    return result


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> float | None:
    number = _number(text)
    if number is not None:
        return number  # epoch seconds
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _compare(kind: str, relation: str, value: str, wanted: str) -> bool:
    convert = _number if kind == "numeric" else _date
    got, expected = convert(value), convert(wanted)
    if got is None or expected is None:
        return False
    return {
        "equals": got == expected,
        "lessthan": got < expected,
        "lessthanequals": got <= expected,
        "greaterthan": got > expected,
        "greaterthanequals": got >= expected,
    }[relation]


def _ip_in(value: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _binary_equals(value: str, wanted: str) -> bool:
    try:
        return base64.b64decode(value, validate=True) == base64.b64decode(wanted, validate=True)
    except ValueError:
        return False


# operator (lower case, without IfExists/set prefix) -> (negated, match(value, wanted))
def _matcher(operator: str) -> tuple[bool, Any]:
    string_ops = {
        "stringequals": (False, lambda v, w: v == w),
        "stringnotequals": (True, lambda v, w: v == w),
        "stringequalsignorecase": (False, lambda v, w: v.lower() == w.lower()),
        "stringnotequalsignorecase": (True, lambda v, w: v.lower() == w.lower()),
        "stringlike": (False, lambda v, w: _literal_aware_glob(w, v)),
        "stringnotlike": (True, lambda v, w: _literal_aware_glob(w, v)),
        "arnequals": (False, lambda v, w: arn_match(w, v)),
        "arnlike": (False, lambda v, w: arn_match(w, v)),
        "arnnotequals": (True, lambda v, w: arn_match(w, v)),
        "arnnotlike": (True, lambda v, w: arn_match(w, v)),
        "bool": (False, lambda v, w: v.lower() == w.lower()),
        "ipaddress": (False, _ip_in),
        "notipaddress": (True, _ip_in),
        "binaryequals": (False, _binary_equals),
    }
    if operator in string_ops:
        return string_ops[operator]
    for kind in ("numeric", "date"):
        if operator.startswith(kind):
            relation = operator[len(kind) :]
            if relation == "notequals":
                return True, lambda v, w, k=kind: _compare(k, "equals", v, w)
            if relation in ("equals", "lessthan", "lessthanequals", "greaterthan", "greaterthanequals"):
                return False, lambda v, w, k=kind, r=relation: _compare(k, r, v, w)
    raise UnsupportedPolicy(f"unknown condition operator {operator!r}")


def conditions_met(block: Any, context: Mapping[str, list[str]]) -> bool:
    """Whether a Condition element holds: every operator, every key of it (AND); a key's values OR
    (negated operators: none may match). Raises UnsupportedPolicy for an unknown operator."""
    if block is None:
        return True
    if not isinstance(block, Mapping):
        raise UnsupportedPolicy("Condition must be an object")
    for raw_operator, keys in block.items():
        if not isinstance(keys, Mapping):
            raise UnsupportedPolicy(f"Condition {raw_operator!r} must map keys to values")
        operator = str(raw_operator)
        qualifier = ""
        if ":" in operator:
            qualifier, operator = operator.split(":", 1)
            qualifier = qualifier.lower()
            if qualifier not in ("foranyvalue", "forallvalues"):
                raise UnsupportedPolicy(f"unknown condition set operator {qualifier!r}")
        operator = operator.lower()
        if_exists = operator.endswith("ifexists") and operator != "ifexists"
        if if_exists:
            operator = operator[: -len("ifexists")]
        for key, wanted_raw in keys.items():
            values = context.get(str(key).lower())
            wanted = [str(w).lower() if isinstance(w, bool) else str(w) for w in _listed(wanted_raw)]
            if operator == "null":
                absent = not values
                if not any(w.lower() == ("true" if absent else "false") for w in wanted):
                    return False
                continue
            try:
                negated, match = _matcher(operator)
            except UnsupportedPolicy:
                raise UnsupportedPolicy(f"unknown condition operator {raw_operator!r}") from None
            if not values:
                if if_exists or qualifier == "forallvalues" or (negated and qualifier != "foranyvalue"):
                    continue
                return False
            filled = [w2 for w in wanted if (w2 := _substitute(w, context)) is not None]
            if len(filled) < len(wanted):
                return False  # a policy variable with no value matches nothing: the condition fails

            def hit(value: str, filled: list[str] = filled, match: Any = match) -> bool:
                return any(match(value, w) for w in filled)

            if qualifier == "forallvalues":
                held = all((not hit(v)) if negated else hit(v) for v in values)
            elif qualifier == "foranyvalue":
                held = any((not hit(v)) if negated else hit(v) for v in values)
            else:
                held = not any(hit(v) for v in values) if negated else any(hit(v) for v in values)
            if not held:
                return False
    return True


__all__ = [
    "Context",
    "Decision",
    "Evaluation",
    "Principal",
    "UnsupportedPolicy",
    "arn_match",
    "conditions_met",
    "evaluate",
    "evaluate_all",
    "glob_match",
    "principal_matches",
    "statements_of",
]
