"""The JobSchedules custom resource: CloudFormation's Create and Update make the stack's schedule group hold
one schedule per scheduled job of the job file, Delete empties the group (:mod:`rolechain.schedules`, the
code of ``rolechain schedules sync``).

What CloudFormation shows of a failure is :class:`ResourceFailure`'s reason, built here: rolechain's own
errors in their words (a job file's field and rule, Scheduler's refusal of a call), anything else by its
type alone. Never a traceback, never a value of the job file (an ExternalId may be one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolechain.actions.plugins import load_plugins
from rolechain.chain import config_error
from rolechain.errors import ConfigError, RolechainError
from rolechain.jobs import load_job_file
from rolechain.schedules import (
    ScheduleError,
    ScheduleGroup,
    SchedulePlan,
    ScheduleTarget,
    check_group,
    remove_all,
    sync,
)
from rolechain.types import FunctionArn, RoleArn, ScheduleGroupName

GROUP_FIELD = "ResourceProperties.ScheduleGroup"
REASON_LIMIT = 240  # CloudFormation shows a reason of a few hundred characters; the start says what failed


class ScheduleSettings(BaseModel):
    """The function's environment: the job file (the template's JobFile, as for every function)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)
    job_file: Path = Field(alias="JOB_FILE")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ScheduleSettings:
        return cls.model_validate(dict(env))


class JobSchedulesProperties(BaseModel):
    """The custom resource's properties in template.yaml. ``LayerVersion`` and ``JobFile`` are not read:
    they are there so that CloudFormation sends an Update whenever the job file may have changed."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    ServiceToken: str
    ServiceTimeout: int | str | None = None
    ScheduleGroup: ScheduleGroupName
    FunctionArn: FunctionArn
    RoleArn: RoleArn
    LayerVersion: str = ""
    JobFile: str = ""


class ResourceFailure(Exception):
    """A request of CloudFormation that failed; ``str()`` is the reason CloudFormation shows."""


def failure_reason(exc: BaseException) -> str:
    """What CloudFormation may show of ``exc``: rolechain's errors say what broke (they carry no secret),
    any other error only its type (its message could hold anything)."""
    if isinstance(exc, ConfigError):
        text = f"{exc.field}: {exc.rule}"
    elif isinstance(exc, RolechainError):
        text = str(exc)
    else:
        text = f"unexpected {type(exc).__name__}: see the function's log"
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


def properties_of(event: Mapping[str, Any]) -> JobSchedulesProperties:
    """The event's ResourceProperties. Raises ConfigError naming the property (``ResourceProperties.X``)."""
    try:
        return JobSchedulesProperties.model_validate(event.get("ResourceProperties"))
    except ValidationError as exc:
        raise config_error(exc, where="ResourceProperties") from exc


class JobSchedules:
    """The custom resource's use case. ``scheduler`` makes the boto3 ``scheduler`` client (the function's
    own role), once, when a request first needs it; ``env`` is the function's environment."""

    def __init__(self, env: Mapping[str, str], scheduler: Callable[[], Any]) -> None:
        self.env = dict(env)
        self._make_client = scheduler
        self._client: Any = None

    def _group(self, name: str) -> ScheduleGroup:
        check_group(name, GROUP_FIELD)  # before any client is made
        if self._client is None:
            self._client = self._make_client()
        return ScheduleGroup(self._client, name, field_name=GROUP_FIELD)

    def sync(self, event: Mapping[str, Any]) -> tuple[str, SchedulePlan]:
        """Create or Update: the group as the job file says. Returns (physical id: the group's name, the
        plan carried out). Raises ResourceFailure with the reason for CloudFormation."""
        try:
            properties = properties_of(event)
            load_plugins(self.env)  # the job file's actions may be plugins'
            job_file = load_job_file(ScheduleSettings.from_env(self.env).job_file)
            target = ScheduleTarget(function_arn=properties.FunctionArn, role_arn=properties.RoleArn)
            return properties.ScheduleGroup, sync(self._group(properties.ScheduleGroup), job_file, target)
        except Exception as exc:
            _fail(exc)

    def remove(self, event: Mapping[str, Any]) -> tuple[str, SchedulePlan | None]:
        """Delete: every schedule of the group goes (the job file is not read: a broken one never blocks a
        stack's deletion). A request whose properties name no valid group (a Create that failed on them)
        touches nothing. Raises ResourceFailure with the reason for CloudFormation."""
        physical = str(event.get("PhysicalResourceId") or "")
        try:
            group = check_group(properties_of(event).ScheduleGroup, GROUP_FIELD)
        except ConfigError:
            return physical, None
        try:
            return physical, remove_all(self._group(group))
        except ScheduleError as exc:
            if exc.code == "ResourceNotFoundException":  # the group (or a schedule) is gone already
                return physical, None
            _fail(exc)
        except Exception as exc:
            _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    """Raise the ResourceFailure for ``exc``. A rolechain error's reason says all, and its causes (a pydantic
    error among them, which could quote a job file's values) stay out of the traceback the log shows;
    anything else keeps its cause there."""
    failure = ResourceFailure(failure_reason(exc))
    if isinstance(exc, RolechainError):
        raise failure from None
    raise failure from exc


def build_job_schedules(env: Mapping[str, str]) -> JobSchedules:
    """The use case for this container: the scheduler client is the function's own role's, made on first use."""

    def client() -> Any:
        import boto3

        from rolechain.sessions import ChainSessions

        return ChainSessions(boto3.Session(), region=env.get("AWS_REGION")).client(None, "scheduler")

    return JobSchedules(env, client)
