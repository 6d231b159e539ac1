"""Who may do what through the API: the job file's ``api`` rules applied to a caller and a planned run.

A request is allowed when one rule matching the caller allows all of it (rules are not merged, so one
rule's accounts never widen another's jobs). Without a matching rule a caller may list the actions and
jobs and nothing else. Changing ad-hoc actions need a grant by name; a dry run the configuration sets
stays on unless the rule grants ``disable_dry_run``. A run is readable by its requester and by callers
granted ``read_all``. Refusals say what was refused, never what else the configuration allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from rolechain.diagnose import trust_principal
from rolechain.hub.errors import Forbidden
from rolechain.jobs import ApiPolicy, ApiRule
from rolechain.planning import RunPlan


@dataclass(frozen=True)
class RunScope:
    """What a planned run would do, as far as authorisation goes."""

    job: str | None
    action: str
    changes: bool
    accounts: frozenset[str]
    regions: frozenset[str]
    dry_run: bool
    dry_run_by_default: bool

    @classmethod
    def of(cls, plan: RunPlan, *, dry_run_by_default: bool) -> RunScope:
        """The scope of ``plan``; ``dry_run_by_default`` is what the job (or the file's defaults) sets."""
        return cls(
            job=plan.job,
            action=plan.action.name,
            changes=plan.action.changes,
            accounts=frozenset(t.account for t in plan.targets),
            regions=frozenset(t.region for t in plan.targets),
            dry_run=plan.dry_run,
            dry_run_by_default=dry_run_by_default,
        )


def caller_names(caller_arn: str) -> tuple[str, ...]:
    """The ARNs a rule's principal patterns are matched against: the caller's own and, for an
    assumed-role session, its role's."""
    role = trust_principal(caller_arn)
    return (caller_arn,) if role == caller_arn else (caller_arn, role)


def matching_rules(policy: ApiPolicy, caller_arn: str) -> list[ApiRule]:
    names = caller_names(caller_arn)
    return [rule for rule in policy.rules if any(fnmatchcase(n, p) for n in names for p in rule.principals)]


def _outside(wanted: Iterable[str], granted: list[str]) -> list[str]:
    return [] if "*" in granted else sorted(set(wanted) - set(granted))


def refusal(rule: ApiRule, scope: RunScope) -> str | None:
    """What ``rule`` does not allow of ``scope`` (None: it allows all of it)."""
    if scope.job is not None:
        if "*" not in rule.jobs and scope.job not in rule.jobs:
            return f"starting job {scope.job!r}"
    elif not rule.ad_hoc_allowed:
        return "ad-hoc runs"
    elif scope.changes and scope.action not in rule.actions:
        return f"the ad-hoc action {scope.action!r}, which changes resources"
    accounts = _outside(scope.accounts, rule.accounts)
    if accounts:
        return f"runs in account(s) {', '.join(accounts)}"
    regions = _outside(scope.regions, rule.regions)
    if regions:
        return f"runs in region(s) {', '.join(regions)}"
    if scope.dry_run_by_default and not scope.dry_run and not rule.disable_dry_run:
        return f"turning off the dry run of {'job ' + repr(scope.job) if scope.job else repr(scope.action)}"
    return None


def decide(policy: ApiPolicy, caller_arn: str, scope: RunScope) -> str | None:
    """None when one rule matching ``caller_arn`` allows all of ``scope``; otherwise what was refused
    (the first matching rule's reason, or that no rule grants the caller any run)."""
    rules = matching_rules(policy, caller_arn)
    if not rules:
        return "any run (no api rule of the job file names this caller)"
    reasons = [refusal(rule, scope) for rule in rules]
    return None if None in reasons else reasons[0]


def authorize_run(policy: ApiPolicy, caller_arn: str, scope: RunScope) -> None:
    """Raises Forbidden naming the caller and what was refused, unless ``policy`` allows ``scope``."""
    refused = decide(policy, caller_arn, scope)
    if refused is not None:
        raise Forbidden(f"{caller_arn} is not allowed {refused}")


def may_read(policy: ApiPolicy, caller_arn: str, requested_by: str | None) -> bool:
    """Whether ``caller_arn`` may read a run ``requested_by`` someone (None: the scheduler or a rule)."""
    return requested_by == caller_arn or may_read_all(policy, caller_arn)


def may_read_all(policy: ApiPolicy, caller_arn: str) -> bool:
    """Whether a rule matching ``caller_arn`` grants ``read_all`` (every run, not only their own)."""
    return any(rule.read_all for rule in matching_rules(policy, caller_arn))
