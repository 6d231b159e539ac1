"""Planning: from a request (what to run, where, as whom) to a validated :class:`RunPlan`.

Every trigger plans the same way: the CLI, the scheduler, the API, the worker and remediation build a
:class:`PlanRequest` and ask :func:`plan_run` (ad-hoc settings) or :func:`plan_job` (a named job). Nothing
here calls AWS except to read an ExternalId kept in SSM.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from rolechain.actions import Action, get_action
from rolechain.chain import Chain, Hop, role_arn_parts
from rolechain.errors import ConfigError, RolechainError
from rolechain.jobs import JobFile, RoleRef, RoleSettings, Rollout, SsmParameter, TargetResolver
from rolechain.sessions import ChainSessions
from rolechain.targets import resolve_accounts
from rolechain.types import ALL_REGIONS, check, region_problem


@dataclass(frozen=True)
class Target:
    account: str
    region: str


class RoleSpec(RoleRef):
    """How a plan reaches the target role in an account: the job's :class:`RoleRef` with the ExternalId
    resolved, the session duration and the partition."""

    external_id: str | None = Field(default=None, repr=False)  # the resolved secret: never in a repr
    duration_seconds: int = Field(default=3600, ge=900, le=3600)
    partition: str = "aws"

    def role_arn(self, account: str) -> str:
        if self.role_arn_template:
            arn = self.role_arn_template.format(account=account, partition=self.partition)
        else:
            arn = f"arn:{self.partition}:iam::{account}:role{self.role_path}{self.role_name}"
        role_arn_parts(arn)  # raises ConfigError on a malformed result
        return arn

    def chain(
        self,
        account: str,
        *,
        session_name: str,
        session_policy: dict[str, Any] | None = None,
        source_identity: str | None = None,
        tags: dict[str, str] | None = None,
        mfa: tuple[str, str] | None = None,
    ) -> Chain:
        """The chain to ``account``: ``via`` hops, then the target role with the ExternalId and the
        session policy (the last hop only); ``mfa`` (serial number, code) goes with the first hop."""
        common: dict[str, Any] = {"duration_seconds": self.duration_seconds}
        if source_identity:
            common["source_identity"] = source_identity
        if tags:
            common["tags"] = tags
        hops = [Hop(role_arn=arn, **common) for arn in self.via]
        hops.append(
            Hop(
                role_arn=self.role_arn(account),
                external_id=self.external_id,
                session_policy=session_policy,  # the validator minifies a dict
                **common,
            )
        )
        if mfa is not None:
            hops[0] = Hop.model_validate({**hops[0].model_dump(), "serial_number": mfa[0], "token_code": mfa[1]})
        return Chain(hops=tuple(hops), session_name=session_name)


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs, validated: the action and params, targets, how to reach them."""

    action: Action[Any]
    params: BaseModel
    targets: Sequence[Target]
    role: RoleSpec
    dry_run: bool = False
    concurrency: int = 10
    job: str | None = None
    source_identity: str | None = None
    session_tags: dict[str, str] | None = None
    mfa: tuple[str, str] | None = field(default=None, repr=False)  # (serial number, one-time code) for hop 1
    exclude_regions: tuple[str, ...] = ()  # left out of "all" (a target region "all" is found per account)
    rollout: Rollout | None = None
    max_failures: int | str | None = None
    # requests in flight at once per target account to each service named (the job's service_concurrency)
    service_concurrency: Mapping[str, int] = field(default_factory=dict)

    def chain_to(self, account: str, *, session_name: str, session_policy: dict[str, Any] | None) -> Chain:
        """The chain a run of this plan takes to ``account``: its role, with the plan's SourceIdentity,
        session tags and MFA, and ``session_policy`` on the last hop."""
        return self.role.chain(
            account,
            session_name=session_name,
            session_policy=session_policy,
            source_identity=self.source_identity,
            tags=self.session_tags,
            mfa=self.mfa,
        )


@dataclass(frozen=True)
class PlanRequest:
    """What a trigger asks to run. Unset fields come from the job (:func:`plan_job`) or the settings.

    ``accounts`` narrows a job's targets (an account outside them is refused); ``extra_via`` hops come
    before the settings' own (an operator's laptop reaching R1 first); ``source_identity`` and
    ``session_tags`` name the caller along the chain.
    """

    action: str | None = None
    params: Mapping[str, Any] | None = None
    accounts: Sequence[str] = ()
    regions: Sequence[str] | None = None
    dry_run: bool | None = None
    concurrency: int | None = None
    service_concurrency: Mapping[str, int] | None = None  # over the job's own, service by service
    extra_via: Sequence[str] = ()
    job: str | None = None
    source_identity: str | None = None
    session_tags: Mapping[str, str] | None = field(default=None)
    mfa: tuple[str, str] | None = field(default=None, repr=False)
    # a job's targets as already resolved (a queued run's record): not read from Organizations again
    scope: Sequence[str] | None = None
    exclude: Sequence[str] = ()  # accounts left out of the job's targets (the CLI's --exclude)


def plan_run(sessions: ChainSessions, settings: RoleSettings, request: PlanRequest) -> RunPlan:
    """A validated :class:`RunPlan` for ``request.action`` over its accounts x regions, reaching them
    as ``settings`` say. Raises ConfigError for an unknown action, bad params, a malformed account id,
    region or role ARN."""
    if not request.action:
        raise ConfigError("action", "no action to run")
    spec = get_action(request.action)
    parsed = spec.parse_params(dict(request.params or {}))
    for account in request.accounts:
        check("account", account, "accounts")
    if not request.accounts:
        raise ConfigError("accounts", "no target accounts")
    for arn in request.extra_via:  # settings.via is validated by RoleSettings; these come straight from the caller
        check("role_arn", arn, "via")
    # Deduplicated (order kept): a repeated account or region is one target, acted on once.
    regions = list(dict.fromkeys(request.regions or settings.regions))
    if ALL_REGIONS in regions and len(regions) > 1:
        raise ConfigError("regions", "give all, or a list of regions, not both")
    for region in regions if regions != [ALL_REGIONS] else ():
        check("region", region, "regions")
    role = RoleSpec(
        **settings.model_dump(include=set(RoleRef.model_fields), exclude={"via"}),
        via=(*request.extra_via, *settings.via),
        external_id=resolve_external_id(sessions, settings.external_id),
    )
    for region in [*(r for r in regions if r != ALL_REGIONS), *settings.exclude_regions]:
        problem = region_problem(region, role.partition)
        if problem:
            raise ConfigError("regions", problem)
    excluded = set(settings.exclude_regions)
    regions = [r for r in regions if r not in excluded]
    if not regions:
        raise ConfigError("regions", "exclude_regions removes every region: nothing would run")
    return RunPlan(
        action=spec,
        params=parsed,
        targets=[Target(account, region) for account in dict.fromkeys(request.accounts) for region in regions],
        role=role,
        dry_run=settings.dry_run if request.dry_run is None else request.dry_run,
        concurrency=request.concurrency or settings.concurrency,
        service_concurrency={**settings.service_concurrency, **(request.service_concurrency or {})},
        job=request.job,
        source_identity=request.source_identity,
        session_tags=dict(request.session_tags) if request.session_tags else None,
        mfa=request.mfa,
        exclude_regions=tuple(settings.exclude_regions),
    )


def plan_job(
    sessions: ChainSessions,
    job_file: JobFile,
    name: str,
    request: PlanRequest | None = None,
    *,
    resolve: TargetResolver | None = None,
) -> RunPlan:
    """The plan of job ``name``, with ``request`` narrowing it (accounts, regions, dry run, concurrency)
    and naming the caller. An account that is not one of the job's targets is refused (ConfigError),
    since a job file is also the list of what may be touched; so is an action or params of its own.
    Organisation targets are read live (``resolve``, default :func:`rolechain.targets.resolve_accounts`)
    unless ``request.scope`` carries them already resolved."""
    request = request or PlanRequest()
    job = job_file.job(name)
    if request.action is not None or request.params is not None:
        raise ConfigError("job", f"job {name!r} runs its own action and params")
    where = f"jobs.{name}.targets"
    if not job.targets.live:
        configured = job.targets.resolve()
    elif request.scope is not None:
        configured = list(request.scope)
    elif resolve is not None:
        configured = resolve(job.targets, where)
    else:
        configured = resolve_accounts(sessions, job.targets, where=where, via=(*request.extra_via, *job.via)).accounts
    for account in request.exclude:
        check("account", account, "exclude")
    configured = [a for a in configured if a not in set(request.exclude)]
    if not configured:
        raise ConfigError(where, "resolves to no account (see `rolechain targets` for what was excluded and why)")
    outside = [a for a in request.accounts if a not in configured]
    if outside:
        raise ConfigError("accounts", f"{', '.join(outside)} not among the targets of job {name!r}")
    plan = plan_run(
        sessions,
        job,
        PlanRequest(
            action=job.action,
            params=job.params,
            accounts=list(request.accounts or configured),
            regions=request.regions,
            dry_run=request.dry_run,
            concurrency=request.concurrency,
            service_concurrency=request.service_concurrency,
            extra_via=request.extra_via,
            job=name,
            source_identity=request.source_identity,
            session_tags=request.session_tags,
            mfa=request.mfa,
        ),
    )
    if job.rollout is not None or job.max_failures is not None:
        plan = dataclasses.replace(plan, rollout=job.rollout, max_failures=job.max_failures)
    return plan


@functools.lru_cache(maxsize=64)
def _ssm_value(sessions: ChainSessions, name: str) -> str:
    try:
        value: str = sessions.client(None, "ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except Exception as exc:
        raise RolechainError(f"cannot read the ExternalId from SSM parameter {name!r}: {exc}") from exc
    return value


def resolve_external_id(sessions: ChainSessions, value: str | SsmParameter | None) -> str | None:
    """The ExternalId itself: a literal, or the value of an SSM SecureString parameter (read once
    per process with the base credentials)."""
    if isinstance(value, SsmParameter):
        return _ssm_value(sessions, value.ssm_parameter)
    return value
