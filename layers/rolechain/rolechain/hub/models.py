"""What crosses the hub's edges: the SQS target message, the API's run request, and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rolechain.chain import sanitize_session_name
from rolechain.jobs import RoleRef
from rolechain.types import AccountId, ActionName, JobName, Region, RoleName, RunId


class TargetMessage(BaseModel):
    """One target of a queued run: the SQS message the scheduler/API send and the worker reads.

    The worker never trusts it alone: it derives the plan again from the job file (``job``) or from the
    run record (an ad-hoc run) and refuses a message that asks for anything else; ``role`` is the role
    the run was planned with (no ExternalId), checked the same way.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: RunId
    job: str | None = None
    action: ActionName
    params: dict[str, Any] = Field(default_factory=dict)
    account: AccountId
    region: Region
    dry_run: bool = False
    requested_by: str | None = None
    role: RoleRef | None = None


class QueuedPlan(BaseModel):
    """What a queued run was planned as, kept in its run record: the worker checks each message
    against it (an ad-hoc run has no job file entry to derive it from)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    params: dict[str, Any] = Field(default_factory=dict)
    accounts: list[AccountId] = Field(min_length=1)
    regions: list[Region] = Field(min_length=1)
    role: RoleRef


class RunRequest(BaseModel):
    """POST /runs: a job, or an action with params and accounts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: JobName | None = None
    action: ActionName | None = None
    params: dict[str, Any] | None = None
    accounts: list[AccountId] | None = Field(default=None, min_length=1, max_length=1000)
    regions: list[Region] | None = Field(default=None, min_length=1, max_length=30)
    role_name: RoleName | None = None
    dry_run: bool | None = None


@dataclass(frozen=True)
class Caller:
    """Who asked for a run (the API caller's IAM identity, or the scheduler/rule that fired)."""

    arn: str

    @property
    def source_identity(self) -> str:
        """SourceIdentity for the chain: the caller's name, sanitised to STS rules."""
        return sanitize_session_name(self.arn.rsplit("/", 1)[-1] or self.arn)

    @property
    def session_tags(self) -> dict[str, str]:
        value = "".join(ch if ch.isalnum() or ch in " _.:/=+-@" else "-" for ch in self.arn)[:256]
        return {"requested-by": value}
