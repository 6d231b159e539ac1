"""What crosses the hub's edges: the SQS target message, the API's run request, and the caller."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from rolechain.chain import sanitize_session_name, sanitize_tag_value
from rolechain.jobs import RoleRef
from rolechain.types import AccountId, ActionName, JobName, Region, RegionOrAll, RoleName, RunId


class TargetMessage(BaseModel):
    """One target of a queued run: the SQS message the scheduler/API send and the worker reads.

    The worker never trusts it alone: it derives the plan again from the job file (``job``) or from the
    run record (an ad-hoc run) and refuses a message that asks for anything else; ``role`` is the role
    the run was planned with (no ExternalId), checked the same way.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    run_id: RunId
    job: str | None = None
    action: ActionName
    params: dict[str, Any] = Field(default_factory=dict)
    account: AccountId
    region: RegionOrAll  # "all": the worker runs the account's every enabled region
    dry_run: bool = False
    requested_by: str | None = None
    role: RoleRef | None = None


class ContinueMessage(BaseModel):
    """Queue the targets of run ``run_id`` from ``start`` on: the scheduler (or a worker) that ran out of
    time sends it, and the worker that reads it enqueues the next part within its own time."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: Literal["continue"] = "continue"
    run_id: RunId
    start: int = Field(ge=0)


class QueuedPlan(BaseModel):
    """What a queued run was planned as, kept in its run record: the worker checks each message
    against it (an ad-hoc run has no job file entry to derive it from)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    params: dict[str, Any] = Field(default_factory=dict)
    accounts: list[AccountId] = Field(min_length=1)
    regions: list[RegionOrAll] = Field(min_length=1)
    role: RoleRef


class RunRequest(BaseModel):
    """POST /runs: a job, or an action with params and accounts."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    job: JobName | None = None
    action: ActionName | None = None
    params: dict[str, Any] | None = None
    accounts: list[AccountId] | None = Field(default=None, min_length=1, max_length=1000)
    regions: list[Region] | None = Field(default=None, min_length=1, max_length=30)
    role_name: RoleName | None = None
    dry_run: bool | None = None
    rerun: Rerun | None = None


RunStatus = Literal["queued", "running", "completed"]
ResultStatus = Literal["ok", "failed", "skipped", "dry_run"]
MAX_TOKEN = 4096


class RunListQuery(BaseModel):
    """GET /runs: the filters, the page size and where to go on."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    job: JobName | None = None
    status: RunStatus | None = None
    limit: int = Field(default=25, ge=1, le=100)
    next_token: str | None = Field(default=None, min_length=1, max_length=MAX_TOKEN)


def _status_name(value: object) -> object:
    """``dry-run`` (the API's spelling in a query) is the results' ``dry_run``."""
    return value.replace("-", "_") if isinstance(value, str) else value


class ResultQuery(BaseModel):
    """GET /runs/{run_id}: which of the run's results, how many, and where to go on."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    status: Annotated[ResultStatus | None, BeforeValidator(_status_name)] = None
    limit: int = Field(default=1000, ge=1, le=1000)
    next_token: str | None = Field(default=None, min_length=1, max_length=MAX_TOKEN)


class Rerun(BaseModel):
    """POST /runs ``rerun``: run an old run again over only its targets that ended in ``statuses``."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    run_id: RunId
    statuses: list[ResultStatus] = Field(default=["failed", "skipped"], min_length=1, max_length=4)


SOURCE_IDENTITY_DIGEST_CHARS = 12  # 48 bits of SHA-256: distinct callers do not collide in practice
MAX_SOURCE_IDENTITY = 64


@dataclass(frozen=True)
class Caller:
    """Who asked for a run (the API caller's IAM identity, or the scheduler/rule that fired)."""

    arn: str

    @property
    def source_identity(self) -> str:
        """SourceIdentity for the chain: a readable name and a digest of the full ARN, e.g.
        ``alice.1f2e3d4c5b6a`` for ``arn:aws:iam::111111111111:user/alice``.

        The name alone would collide (``user/alice``, ``assumed-role/AnyRole/alice`` and another
        account's ``user/alice``); the digest is of the whole ARN, so different callers differ. The
        result is 2-64 characters of ``[A-Za-z0-9_+=,.@-]``, as STS requires.
        """
        digest = hashlib.sha256(self.arn.encode("utf-8", "surrogatepass")).hexdigest()[:SOURCE_IDENTITY_DIGEST_CHARS]
        resource = self.arn.split(":", 5)[-1]  # user/alice, assumed-role/AnyRole/alice, root
        name = resource.split("/", 1)[-1]  # the type says little; the role and session name do
        room = MAX_SOURCE_IDENTITY - SOURCE_IDENTITY_DIGEST_CHARS - 1
        return f"{sanitize_session_name(name)[:room].rstrip('-')}.{digest}"

    @property
    def session_tags(self) -> dict[str, str]:
        """The session tag naming the caller: the full ARN, sanitised to STS's tag-value rules."""
        return {"requested-by": sanitize_tag_value(self.arn)}
