"""Every scheduled job of a job file as one EventBridge Scheduler schedule, in a schedule group the stack owns.

Desired state: each job with ``schedule:`` gives one schedule named after the job, whose target is the
scheduler function with the input ``{"job": "<name>"}``, run by the schedule role within a flexible time
window. Actual state: the group's schedules (a paged list, then a get of each one that is desired). The
difference is a :class:`SchedulePlan` of creates, updates and deletes; :func:`apply` carries it out.

Fail closed: every call names the group, a listed schedule of another group is never considered, and the
account's shared ``default`` group is refused. Used by ``rolechain schedules plan|sync`` and by the stack's
custom resource (``functions/schedules``), the same code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from rolechain.chain import config_error
from rolechain.errors import ConfigError, RolechainError
from rolechain.jobs import Job, JobFile
from rolechain.types import SCHEDULE_GROUP, FunctionArn, RoleArn

SHARED_GROUP = "default"  # every schedule of the account made without a group lands there: never ours
# What the single schedule of the stack had: a few delivery retries within the hour. A run that failed
# after starting is not retried (the scheduler function's EventInvokeConfig sends it to the DLQ instead).
RETRY_POLICY = {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
DESCRIPTION_LIMIT = 512
GROUP_RE = re.compile(f"^{SCHEDULE_GROUP}\\Z")

ChangeAction = Literal["create", "update", "delete"]


class ScheduleError(RolechainError):
    """EventBridge Scheduler refused a call of the reconciler; the message names the call, the schedule
    and group, and what AWS said (its error code and message, which carry no secret of rolechain's).
    ``code`` is AWS's error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class ScheduleTarget(BaseModel):
    """What every schedule invokes (the scheduler function) and with which role (the schedule role)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    function_arn: FunctionArn
    role_arn: RoleArn


def check_group(value: str, field_name: str) -> str:
    """``value`` if it names a schedule group rolechain may own. Raises ConfigError naming ``field_name``."""
    if not isinstance(value, str) or not GROUP_RE.match(value):
        raise ConfigError(field_name, f"{value!r} is not a schedule group name (1-64 of letters, digits, _ . -)")
    if value == SHARED_GROUP:
        raise ConfigError(field_name, "the default group holds every schedule made without one: give the stack's own")
    return value


def target_of(function_arn: str | None, role_arn: str | None, *, fields: tuple[str, str]) -> ScheduleTarget | None:
    """The target from two optional values (both or neither); ConfigError naming the field that is wrong."""
    if function_arn is None and role_arn is None:
        return None
    if function_arn is None or role_arn is None:
        missing = fields[0] if function_arn is None else fields[1]
        raise ConfigError(missing, f"goes with {fields[1] if function_arn is None else fields[0]}: give both")
    try:
        return ScheduleTarget(function_arn=function_arn, role_arn=role_arn)
    except ValidationError as exc:
        error = config_error(exc)
        raise ConfigError(fields[0] if error.field == "function_arn" else fields[1], error.rule) from exc


def desired_schedule(name: str, job: Job, target: ScheduleTarget | None) -> dict[str, Any]:
    """The schedule for ``job`` as EventBridge Scheduler describes one (only the fields rolechain sets);
    without ``target``, the target's function and role are left out (a plan that does not compare them)."""
    assert job.schedule is not None
    schedule_target: dict[str, Any] = {"Input": json.dumps({"job": name}), "RetryPolicy": dict(RETRY_POLICY)}
    if target is not None:
        schedule_target |= {"Arn": target.function_arn, "RoleArn": target.role_arn}
    return {
        "Name": name,
        "Description": (job.description or f"rolechain job {name}")[:DESCRIPTION_LIMIT],
        "ScheduleExpression": job.schedule,
        "ScheduleExpressionTimezone": job.schedule_timezone,
        "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": job.schedule_window_minutes},
        "State": "ENABLED",
        "Target": schedule_target,
    }


def desired_schedules(job_file: JobFile, target: ScheduleTarget | None) -> dict[str, dict[str, Any]]:
    """Schedule name -> desired schedule, for every job of ``job_file`` with a ``schedule``."""
    return {name: desired_schedule(name, job, target) for name, job in job_file.jobs.items() if job.schedule}


def differences(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields (``Target.Input`` for the target's) whose value in ``actual`` is not the desired one;
    only the fields ``desired`` has are compared, the target's input as JSON."""
    found: list[str] = []
    for key, value in desired.items():
        if key == "Target":
            given = actual.get("Target") or {}
            for sub, wanted in value.items():
                same = (
                    _json_or_text(given.get(sub)) == json.loads(wanted) if sub == "Input" else given.get(sub) == wanted
                )
                if not same:
                    found.append(f"Target.{sub}")
        elif actual.get(key) != value:
            found.append(key)
    return tuple(found)


def _json_or_text(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


@dataclass(frozen=True)
class ScheduleChange:
    """One schedule to create, update (``fields``: what differs) or delete."""

    action: ChangeAction
    name: str
    fields: tuple[str, ...] = ()
    schedule: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)  # the desired one

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "schedule": self.name, "fields": list(self.fields)}


@dataclass(frozen=True)
class SchedulePlan:
    """What a sync of ``group`` does: ``changes`` in order (creates, updates, deletes), and the schedules
    already as desired. ``target_compared``: whether the target's function and role were compared."""

    group: str
    changes: tuple[ScheduleChange, ...]
    unchanged: tuple[str, ...]
    target_compared: bool = True

    @property
    def empty(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "changes": [c.to_dict() for c in self.changes],
            "unchanged": list(self.unchanged),
            "target_compared": self.target_compared,
        }


class ScheduleGroup:
    """EventBridge Scheduler, confined to one schedule group: every call names the group, and a listed
    schedule that says it belongs to another group is left out. ``client`` is a boto3 ``scheduler`` client;
    ``page_size``: schedules a list page asks for (None: the service's default)."""

    def __init__(self, client: Any, group: str, *, field_name: str = "group", page_size: int | None = None) -> None:
        self.client = client
        self.group = check_group(group, field_name)
        self.page_size = page_size

    def _call(self, operation: str, name: str | None, **params: Any) -> Any:
        try:
            return getattr(self.client, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "error")
            what = f"schedule {name} of group {self.group}" if name else f"group {self.group}"
            said = f": {error['Message']}" if error.get("Message") else ""
            raise ScheduleError(f"{operation} of {what}: {code}{said}", code) from exc

    def check_exists(self) -> None:
        """Raises ScheduleError when the group does not exist (or may not be read)."""
        self._call("get_schedule_group", None, Name=self.group)

    def names(self) -> list[str]:
        """The names of the group's schedules, every page of the list."""
        names: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"GroupName": self.group}
            if token:
                params["NextToken"] = token
            if self.page_size:
                params["MaxResults"] = self.page_size
            page = self._call("list_schedules", None, **params)
            names += [s["Name"] for s in page.get("Schedules", []) if s.get("GroupName") == self.group]
            token = page.get("NextToken")
            if not token:
                return sorted(set(names))

    def get(self, name: str) -> dict[str, Any]:
        schedule: dict[str, Any] = self._call("get_schedule", name, Name=name, GroupName=self.group)
        return schedule

    def put(self, schedule: Mapping[str, Any], *, create: bool) -> None:
        self._call("create_schedule" if create else "update_schedule", str(schedule["Name"]),
                   **dict(schedule), GroupName=self.group)  # fmt: skip

    def delete(self, name: str) -> None:
        self._call("delete_schedule", name, Name=name, GroupName=self.group)


def plan(group: ScheduleGroup, desired: Mapping[str, Mapping[str, Any]], *, target_compared: bool) -> SchedulePlan:
    """The changes that make ``group`` hold exactly ``desired`` (name -> schedule, see
    :func:`desired_schedules`): a get of each desired schedule that exists, no change made.

    Raises:
        ScheduleError: the group does not exist, or a call was refused.
    """
    group.check_exists()
    actual = set(group.names())
    creates = [ScheduleChange("create", n, schedule=desired[n]) for n in sorted(desired) if n not in actual]
    updates, unchanged = [], []
    for name in sorted(set(desired) & actual):
        fields = differences(desired[name], group.get(name))
        if fields:
            updates.append(ScheduleChange("update", name, fields, schedule=desired[name]))
        else:
            unchanged.append(name)
    deletes = [ScheduleChange("delete", n) for n in sorted(actual - set(desired))]
    return SchedulePlan(group.group, (*creates, *updates, *deletes), tuple(unchanged), target_compared)


def apply(group: ScheduleGroup, changes: Iterable[ScheduleChange]) -> None:
    """Carry out ``changes`` in ``group``, in order. A failure stops there (ScheduleError); a sync run
    again picks up what was left.

    Raises:
        ConfigError: a create or update without the target's function and role.
        ScheduleError: a call was refused.
    """
    changes = list(changes)
    for change in changes:
        if change.action != "delete" and not {"Arn", "RoleArn"} <= set((change.schedule or {}).get("Target", {})):
            raise ConfigError("target", f"schedule {change.name}: a sync needs the function and role ARNs")
    for change in changes:
        if change.action == "delete":
            group.delete(change.name)
        else:
            assert change.schedule is not None
            group.put(change.schedule, create=change.action == "create")


def sync(group: ScheduleGroup, job_file: JobFile, target: ScheduleTarget) -> SchedulePlan:
    """Make ``group`` hold one schedule per scheduled job of ``job_file``; returns the plan carried out."""
    planned = plan(group, desired_schedules(job_file, target), target_compared=True)
    apply(group, planned.changes)
    return planned


def remove_all(group: ScheduleGroup) -> SchedulePlan:
    """Delete every schedule of ``group`` (nothing else); returns the plan carried out."""
    planned = plan(group, {}, target_compared=False)
    apply(group, planned.changes)
    return planned
