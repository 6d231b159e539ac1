"""Job files: named jobs (action, params, targets, regions, how to reach them) and remediation rules.

A job file is YAML::

    version: 1
    defaults:            # applied to every job and remediation that does not set the field
      role_name: rolechain-target
      external_id: {ssm_parameter: /rolechain/external-id}   # or a literal string
      regions: [us-east-1]
    jobs:
      inventory:
        action: list_buckets
        params: {with_tags: true}
        targets: {accounts: ["200000000001"]}
        schedule: rate(1 day)
    remediations:
      - name: block-public-bucket
        match: {source: aws.s3, event_names: [CreateBucket, PutBucketAcl]}
        action: block_s3_public_access
        params_from_event: {bucket: "{detail.requestParameters.bucketName}"}
        # targets: {accounts: [...]}   # default: the accounts the jobs target; others are refused

Every error names the job (or rule), the field and the rule it broke.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rolechain.actions import get_action
from rolechain.chain import config_error
from rolechain.errors import ConfigError

if TYPE_CHECKING:
    import yaml

from rolechain.types import (
    ALL_REGIONS,
    DEFAULT_ROLE_NAME,
    EXTERNAL_ID,
    ROLE_ARN_RE,
    SSM_PARAMETER_NAME,
    AccountId,
    JobName,
    Region,
    RegionOrAll,
    RoleName,
    RolePath,
    check,
)

MAX_NESTING = 64  # levels of lists and mappings a job file may nest; deeper is a mistake or an attack
MAX_VALUES = 100_000  # values a job file may hold once YAML aliases are expanded (no "billion laughs")
SCHEDULE_RE = re.compile(r"^(rate\([0-9]+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+( \S+){5}\))$", re.ASCII)
MAX_CONCURRENCY = 256


TIME_ZONE_RE = re.compile(r"^(UTC|[A-Za-z]+(/[A-Za-z0-9_+-]+){1,2})\Z", re.ASCII)


@functools.cache
def _known_time_zones() -> frozenset[str]:
    """The time zone database's names (read from disk once: a walk of its folder)."""
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def check_time_zone(value: str) -> str:
    """``value`` if it is an IANA time zone name (``UTC``, ``Europe/Paris``). Where this Python has a time
    zone database, the name must be in it; else its shape is checked and EventBridge Scheduler checks the rest.

    Raises:
        ValueError: naming the rule broken.
    """
    if not TIME_ZONE_RE.match(value):
        raise ValueError(f"{value!r} is not an IANA time zone name like UTC or Europe/Paris")
    known = _known_time_zones()
    if known and value not in known:
        raise ValueError(f"{value!r} is not a time zone of the IANA database (like UTC or Europe/Paris)")
    return value


class SsmParameter(BaseModel):
    """An ExternalId kept in an SSM SecureString parameter of the hub account."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    ssm_parameter: str = Field(min_length=1, max_length=2048, pattern=f"^{SSM_PARAMETER_NAME}$")


OU_ID = r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}"
OU_ID_RE = re.compile(f"^{OU_ID}\\Z")


def _ou_id(value: str) -> str:
    if not OU_ID_RE.match(value):
        raise ValueError(f"{value!r} is not an OU id like ou-ab12-cdef3456")
    return value


OuId = Annotated[str, AfterValidator(_ou_id)]
TAG_KEY = r"[\w\s.:/=+\-@]{1,128}"


class OrganizationTargets(BaseModel):
    """Accounts read live from AWS Organizations: every ACTIVE account below the root (``root: true``)
    or below the OUs (each OU and all OUs under it), whose tags all match ``tags``. ``role``: how to
    read Organizations (a role in the management account or a delegated administrator; default: the
    base credentials)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    root: bool = False
    ous: list[OuId] = Field(default_factory=list)
    tags: dict[Annotated[str, StringConstraints(pattern=f"^{TAG_KEY}$")], Annotated[str, Field(max_length=256)]] = (
        Field(default_factory=dict)
    )
    role: str | None = None

    @field_validator("role")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None:
            check("role_arn", value, "role")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> OrganizationTargets:
        if not self.root and not self.ous:
            raise ValueError("give root: true (every account) or ous: [ou-...] (each OU and all below it)")
        if self.root and self.ous:
            raise ValueError("root: true already covers every OU: give root or ous, not both")
        return self


class Targets(BaseModel):
    """Which accounts a job runs in: explicit ``accounts`` and/or the ``organization``'s, minus
    ``exclude_accounts`` and the accounts below ``exclude_ous``. :meth:`resolve` gives the explicit ones;
    organisation targets are resolved live by :mod:`rolechain.targets`."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    accounts: list[AccountId] = Field(default_factory=list)
    organization: OrganizationTargets | None = None
    exclude_accounts: list[AccountId] = Field(default_factory=list)
    exclude_ous: list[OuId] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_account_left(self) -> Targets:
        if not self.accounts and self.organization is None:
            raise ValueError("give accounts: [...] and/or organization: {root: true} or {ous: [...]}")
        if self.exclude_ous and self.organization is None:
            raise ValueError("exclude_ous applies to organization targets; this job has none")
        if self.organization is None and not self.resolve():
            raise ValueError("exclude_accounts removes every account: nothing would run")
        return self

    @property
    def live(self) -> bool:
        """Whether the accounts come (also) from AWS Organizations, known only when read."""
        return self.organization is not None

    def resolve(self) -> list[str]:
        """The explicit accounts minus the excluded ones (all of them unless :attr:`live`)."""
        excluded = set(self.exclude_accounts)
        return list(dict.fromkeys(a for a in self.accounts if a not in excluded))


class RoleRef(BaseModel):
    """Which role to reach in a target account, and through which hops first.

    ``role_arn_template`` may use ``{account}`` and ``{partition}``; otherwise the ARN is built from
    ``role_path`` and ``role_name``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    role_name: RoleName = DEFAULT_ROLE_NAME
    role_path: RolePath = "/"
    role_arn_template: str | None = None
    via: tuple[str, ...] = ()

    @field_validator("role_arn_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            sample = value.format(account="123456789012", partition="aws")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("may only use the placeholders {account} and {partition}") from exc
        # The placeholder must be the ARN's account field: "role/{account}" would reach one fixed account.
        fields = value.split(":")
        if len(fields) < 6 or fields[4] != "{account}" or not ROLE_ARN_RE.match(sample):
            raise ValueError(
                "must be a role ARN whose account is the {account} placeholder, e.g. arn:aws:iam::{account}:role/x"
            )
        return value

    @field_validator("via")
    @classmethod
    def _via(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arn in value:
            if not ROLE_ARN_RE.match(arn):
                raise ValueError(f"{arn!r} is not an IAM role ARN")
        return value


class RoleSettings(RoleRef):
    """How to reach targets and how many at once; shared by jobs, remediation rules and the file's defaults."""

    external_id: str | SsmParameter | None = Field(default=None, repr=False)
    # a list, or "all": the regions enabled in each target account (ec2:DescribeRegions through the chain)
    regions: list[RegionOrAll] = Field(default_factory=lambda: ["us-east-1"], min_length=1)
    exclude_regions: list[Region] = Field(default_factory=list)
    concurrency: int = Field(default=10, ge=1, le=MAX_CONCURRENCY)
    # at most N requests in flight at once per target account to each service named (boto3 names:
    # s3, ec2, resourcegroupstaggingapi...), across the run's regions and threads, retries included
    service_concurrency: dict[str, int] = Field(default_factory=dict)
    dry_run: bool = False

    @field_validator("regions", mode="before")
    @classmethod
    def _all(cls, value: Any) -> Any:
        return [ALL_REGIONS] if value == ALL_REGIONS else value

    @model_validator(mode="after")
    def _regions_left(self) -> RoleSettings:
        if ALL_REGIONS in self.regions and len(self.regions) > 1:
            raise ValueError("regions: give all, or a list of regions, not both")
        if ALL_REGIONS not in self.regions and not set(self.regions) - set(self.exclude_regions):
            raise ValueError("exclude_regions removes every region: nothing would run")
        return self

    @field_validator("service_concurrency", mode="before")
    @classmethod
    def _services(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError("must be a mapping of service name to a count, like {s3: 4}")
        return check_service_caps(value)

    @field_validator("external_id")
    @classmethod
    def _external_id(cls, value: str | SsmParameter | None) -> str | SsmParameter | None:
        if isinstance(value, str) and not re.fullmatch(EXTERNAL_ID, value):
            raise ValueError("must be 2-1224 characters of letters, digits and +=,.@:/-")
        return value


def check_service_caps(caps: Mapping[str, int]) -> dict[str, int]:
    """``caps`` if every key is a boto3 service name and every cap a count of 1 to MAX_CONCURRENCY."""
    if not caps:
        return dict(caps)
    known = known_services()
    for service, cap in caps.items():
        if service not in known:
            close = difflib.get_close_matches(service, known, n=1)
            raise ValueError(
                f"{service!r} is not a boto3 service name" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_CONCURRENCY:
            raise ValueError(f"{service}: must be a count of requests from 1 to {MAX_CONCURRENCY}")
    return dict(caps)


@functools.cache
def known_services() -> list[str]:
    """The service names botocore knows (a listing of its data folders, read once)."""
    import botocore.loaders  # only when a job caps a service

    return sorted(botocore.loaders.Loader().list_available_services("service-2"))


PERCENT_RE = re.compile(r"^([1-9][0-9]?|100)%\Z")


def _count_or_percent(value: Any) -> int | str:
    """A positive count (5) or a percentage of the run's targets ("25%")."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a count like 5 or a percentage like '25%'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if not PERCENT_RE.match(value):
        raise ValueError(f"{value!r} must be a count like 5 or a percentage like '25%' (1-100%)")
    return value


CountOrPercent = Annotated[int | str, AfterValidator(_count_or_percent)]


def resolve_count(value: int | str, total: int, *, at_least: int = 0) -> int:
    """``value`` as a number of targets out of ``total`` (a percentage rounds up)."""
    if isinstance(value, int):
        return max(at_least, value)
    return max(at_least, -(-int(value[:-1]) * total // 100))


class Rollout(BaseModel):
    """Waves for a changing job: ``first`` targets, then ``then`` at a time (a count or a percentage of
    the targets); after each wave, more failures than the job's ``max_failures`` stop the run and the
    targets not started are recorded skipped with the reason."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    first: CountOrPercent = 1
    then: CountOrPercent = "100%"

    @model_validator(mode="after")
    def _positive(self) -> Rollout:
        for name in ("first", "then"):
            if getattr(self, name) == 0:
                raise ValueError(f"{name} must be at least 1 target (or a percentage)")
        return self

    def waves(self, total: int) -> list[int]:
        """The size of each wave over ``total`` targets."""
        sizes: list[int] = []
        left = total
        size = resolve_count(self.first, total, at_least=1)
        while left > 0:
            sizes.append(min(size, left))
            left -= sizes[-1]
            size = resolve_count(self.then, total, at_least=1)
        return sizes


class Job(RoleSettings):
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    targets: Targets
    schedule: str | None = None
    # with schedule: the time zone a cron() expression is read in, and the flexible window (minutes) EventBridge
    # Scheduler may start the run in, spreading many scheduled jobs instead of starting them in one instant
    schedule_timezone: str = "UTC"
    schedule_window_minutes: int = Field(default=15, ge=1, le=1440)
    description: str = ""
    rollout: Rollout | None = None
    # failures the run tolerates (a count or a percentage of its targets); with a rollout, checked after
    # each wave (default 0: the first failure stops it), without one, checked as results come in
    max_failures: CountOrPercent | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None and not SCHEDULE_RE.match(value):
            raise ValueError("must be an EventBridge expression like 'rate(1 day)' or 'cron(0 6 * * ? *)'")
        return value

    @field_validator("schedule_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_time_zone(value)

    @model_validator(mode="after")
    def _schedule_fields(self) -> Job:
        for name in ("schedule_timezone", "schedule_window_minutes"):
            if name in self.model_fields_set and self.schedule is None:
                raise ValueError(f"{name} goes with schedule: this job has none")
        return self

    @model_validator(mode="after")
    def _action_and_params(self) -> Job:
        get_action(self.action).parse_params(self.params)  # ConfigError is a ValueError: pydantic reports it
        return self


class EventMatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    source: str = Field(min_length=1)
    event_names: list[str] = Field(min_length=1)


PLACEHOLDER_RE = re.compile(r"\{([A-Za-z0-9_.-]+)\}")


def _lookup(event: Mapping[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise ConfigError("event", f"has no {path} (needed by the remediation rule)")
        value = value[part]
    return value


class Remediation(RoleSettings):
    """Which event triggers which action, with which params taken from the event.

    ``params_from_event`` maps a param (a dotted path for nested ones, e.g. ``tags.created-by``) to a
    template whose ``{dotted.path}`` placeholders are filled from the event; a list param gets a
    one-element list.

    ``targets`` lists the accounts whose events the rule acts on (as a job's targets do); without it,
    the rule acts on the accounts the file's jobs target. An event from any other account (the hub's
    own included, unless listed) is refused and recorded, and nothing acts.
    """

    name: JobName
    match: EventMatch
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    params_from_event: dict[str, str] = Field(default_factory=dict)
    targets: Targets | None = None

    @model_validator(mode="after")
    def _action(self) -> Remediation:
        action = get_action(self.action)
        # Validate the fixed params with placeholders for event-sourced ones.
        names = set(action.params_model.model_fields)
        for key, template in self.params_from_event.items():
            if key.split(".")[0] not in names:
                raise ValueError(f"params_from_event: {key!r} is not a parameter of {self.action}")
            rest = PLACEHOLDER_RE.sub("", template)
            if "{" in rest or "}" in rest:
                raise ValueError(
                    f"params_from_event.{key}: {template!r} has an unclosed or malformed placeholder "
                    "(write {detail.path.to.value}: letters, digits, _ . -)"
                )
        return self

    def params_for(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The action's params for ``event``: fixed ``params`` plus the event-sourced ones.
        Raises ConfigError when the event lacks a path the rule needs."""
        params: dict[str, Any] = copy.deepcopy(self.params)
        fields = get_action(self.action).params_model.model_fields
        for key, template in self.params_from_event.items():
            value = PLACEHOLDER_RE.sub(lambda m: str(_lookup(event, m.group(1))), template)
            *parents, leaf = key.split(".")
            holder = params
            for part in parents:
                holder = holder.setdefault(part, {})
            annotation = str(fields[key.split(".")[0]].annotation)
            holder[leaf] = [value] if not parents and "list" in annotation else value
        return params

    def matches(self, event: Mapping[str, Any]) -> bool:
        detail = event.get("detail") or {}
        return event.get("source") == self.match.source and detail.get("eventName") in self.match.event_names


CALLER_PATTERN_RE = re.compile(r"^(\*|arn:[A-Za-z0-9*?-]+:(iam|sts|\*)::[0-9*?]{1,12}:[!-~]{1,2000})$")  # ASCII only


class ApiRule(BaseModel):
    """What the API callers matching ``principals`` may do; a request is allowed when one rule allows all of it.

    ``principals`` are IAM ARN globs (fnmatch: ``*``, ``?``, ``[...]``); an assumed-role session
    (``arn:aws:sts::<acct>:assumed-role/<role>/<session>``) also matches by its role,
    ``arn:aws:iam::<acct>:role/<role>`` (the session ARN carries no role path). ``jobs`` they may start
    (``"*"``: every job); ``adhoc``: they may run read-only actions ad hoc; ``actions``: ad-hoc actions
    granted by name, the only way to run a changing one (implies ``adhoc``); ``accounts``/``regions``
    in scope (``"*"``, the default: every configured one); ``disable_dry_run``: they may turn off a dry
    run that the job (or the file's defaults) sets; ``read_all``: they may read every run, not only
    their own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    principals: list[str] = Field(min_length=1)
    jobs: list[str] = Field(default_factory=list)
    adhoc: bool = False
    actions: list[str] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    regions: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    disable_dry_run: bool = False
    read_all: bool = False

    @field_validator("principals")
    @classmethod
    def _principals(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not CALLER_PATTERN_RE.match(pattern):
                raise ValueError(
                    f"{pattern!r} must be '*' or an IAM ARN pattern like arn:aws:iam::111111111111:role/ops-*"
                )
        return value

    @field_validator("actions")
    @classmethod
    def _actions(cls, value: list[str]) -> list[str]:
        for name in value:
            try:
                get_action(name)
            except ConfigError as exc:
                raise ValueError(exc.rule) from exc
        return value

    @field_validator("accounts", "regions")
    @classmethod
    def _scope(cls, value: list[str], info: ValidationInfo) -> list[str]:
        kind = "account" if info.field_name == "accounts" else "region"
        for item in value:
            if item != "*":
                try:
                    check(kind, item, kind)
                except ConfigError as exc:
                    raise ValueError(f"{exc.rule} (or '*')") from exc
        return value

    @property
    def ad_hoc_allowed(self) -> bool:
        return self.adhoc or bool(self.actions)


class ApiPolicy(BaseModel):
    """Who may do what through the API. No rule matching a caller: GET /actions and /jobs only."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    rules: list[ApiRule] = Field(default_factory=list)


TargetResolver = Callable[[Targets, str], list[str]]  # (targets, where in the file) -> their accounts


def _accounts(targets: Targets, resolve: TargetResolver | None, where: str) -> list[str]:
    return resolve(targets, where) if resolve is not None and targets.live else targets.resolve()


class JobFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    version: Literal[1] = 1
    defaults: RoleSettings = Field(default_factory=RoleSettings)
    jobs: dict[JobName, Job] = Field(default_factory=dict)
    remediations: list[Remediation] = Field(default_factory=list)
    api: ApiPolicy = Field(default_factory=ApiPolicy)

    def target_accounts(self, resolve: TargetResolver | None = None) -> set[str]:
        """Every account some job targets: what an on-demand run may touch. Organisation targets count
        only through ``resolve`` (without it, only the explicit accounts: the scope fails closed)."""
        return {
            account
            for name, job in self.jobs.items()
            for account in _accounts(job.targets, resolve, f"jobs.{name}.targets")
        }

    def remediation_accounts(self, rule: Remediation, resolve: TargetResolver | None = None) -> set[str]:
        """The accounts whose events ``rule`` may act on: its own targets, else every job's."""
        if rule.targets:
            return set(_accounts(rule.targets, resolve, f"remediations.{rule.name}.targets"))
        return self.target_accounts(resolve)

    def role_names(self) -> set[str]:
        return {self.defaults.role_name} | {job.role_name for job in self.jobs.values()}

    def job(self, name: str) -> Job:
        try:
            return self.jobs[name]
        except KeyError:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise ConfigError("job", f"no job named {name!r} (jobs: {known})") from None

    def remediations_for(self, event: Mapping[str, Any]) -> list[Remediation]:
        """Every rule the event matches, in file order."""
        return [rule for rule in self.remediations if rule.matches(event)]


def parse_job_file(data: Any, *, source: str = "job file") -> JobFile:
    """Validate job-file data; ``defaults`` are merged under each job and remediation first.

    Raises:
        ConfigError: naming the job or rule, the field and the rule broken (``source`` when the data
            is not a mapping or nests more than :data:`MAX_NESTING` levels).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(source, "must be a mapping with 'jobs' (and optional 'defaults', 'remediations')")
    problem = _nesting_problem(data)
    if problem:
        raise ConfigError(source, problem)
    data = dict(data)
    defaults = data.pop("defaults", None) or {}
    if not isinstance(defaults, Mapping):
        raise ConfigError("defaults", "must be a mapping")
    try:
        RoleSettings.model_validate(defaults)
    except ValidationError as exc:
        raise config_error(exc, where="defaults") from exc
    jobs = data.get("jobs") or {}
    if not isinstance(jobs, Mapping):
        raise ConfigError("jobs", "must be a mapping of job name to job")
    data["jobs"] = {name: {**defaults, **job} if isinstance(job, Mapping) else job for name, job in jobs.items()}
    rules = data.get("remediations") or []
    if not isinstance(rules, list):
        raise ConfigError("remediations", "must be a list of rules")
    data["remediations"] = [{**defaults, **rule} if isinstance(rule, Mapping) else rule for rule in rules]
    data["defaults"] = defaults
    try:
        job_file = JobFile.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc) from exc
    for index, rule in enumerate(job_file.api.rules):
        unknown = [name for name in rule.jobs if name != "*" and name not in job_file.jobs]
        if unknown:
            raise ConfigError(f"api.rules[{index}].jobs", f"{unknown[0]!r} is not a job of this file")
    return job_file


@functools.cache
def _unique_key_loader() -> type[yaml.SafeLoader]:
    """PyYAML's safe loader, refusing a mapping that gives a key twice (PyYAML keeps the last one
    silently, so a second job of the same name would replace the first unseen). Made by the first job
    file read: PyYAML is no part of a handler's import."""
    import yaml

    # libyaml's parser when PyYAML is built with it (its wheels are): a 10,000-account file in 0.35 s, not 2.2 s
    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class UniqueKeyLoader(base):  # type: ignore[valid-type,misc]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                except TypeError:  # unhashable: the base class refuses it with its own message
                    break
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            return mapping

    return UniqueKeyLoader


def _nesting_problem(data: Any) -> str | None:
    """Why ``data`` nests too deeply (over :data:`MAX_NESTING` levels) or is too large (over
    :data:`MAX_VALUES` values, aliases counted each time they are used), or None; iterative, so the
    check itself cannot exhaust the stack, and bounded, so an alias bomb cannot keep it busy."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if depth > MAX_NESTING:
            return f"nests lists and mappings more than {MAX_NESTING} levels deep"
        if seen > MAX_VALUES:
            return f"holds more than {MAX_VALUES} values (YAML aliases counted each time they are used)"
        if isinstance(value, Mapping):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return None


def load_job_file(path: str | Path) -> JobFile:
    """Read and validate a YAML job file.

    Raises:
        ConfigError: naming the file when it is unreadable, not UTF-8, not valid YAML, gives a key twice
            or nests too deeply; naming the job or rule, the field and the rule for bad content.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"is not UTF-8 text (byte {exc.start} cannot be decoded)") from exc
    import yaml

    try:
        data = yaml.load(text, Loader=_unique_key_loader())  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(getattr(exc, "problem", "")):  # libyaml's own limit (1,000 levels)
            raise ConfigError(str(path), f"nests lists and mappings more than {MAX_NESTING} levels deep") from exc
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    except RecursionError as exc:  # the parser recurses once per level of nesting
        raise ConfigError(str(path), f"nests lists and mappings more than {MAX_NESTING} levels deep") from exc
    return parse_job_file(data, source=str(path))
