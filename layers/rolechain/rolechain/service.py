"""The hub application: what the four Lambda functions do, with no Lambda event parsing.

Handlers (``functions/*/app.py``) parse their events into the inputs below and call one function
here. The base credentials are the Lambda's own role R1, so a chain to a target is just R2.

Runs are recorded in one DynamoDB table (``pk = run#<id>``; ``sk = meta`` for the run,
``sk = target#<account>#<region>`` for each target's result); small runs execute at once, larger
ones go to the worker through SQS, one message per target.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic import BaseModel, ConfigDict, Field

from rolechain.actions import REGISTRY
from rolechain.chain import new_run_id, sanitize_session_name
from rolechain.errors import ConfigError, RolechainError
from rolechain.jobs import JobFile, load_job_file, plan_job, plan_run
from rolechain.runner import RunPlan, Status, Target, TargetResult, run_plan
from rolechain.sessions import ChainSessions

logger = logging.getLogger(__name__)

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries
MAX_RESULT_BYTES = 300_000  # DynamoDB items stop at 400 KB
TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
}


class Settings(BaseModel):
    """The hub functions' configuration, parsed from their environment once per container.

    Raises pydantic's ValidationError naming the variable when one is missing or malformed.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    job_file: Path = Field(alias="JOB_FILE")
    runs_table: str = Field(alias="RUNS_TABLE", min_length=3)
    target_queue_url: str = Field(default="", alias="TARGET_QUEUE_URL")
    inline_target_limit: int = Field(default=10, alias="INLINE_TARGET_LIMIT", ge=0, le=1000)
    run_ttl_days: int = Field(default=30, alias="RUN_TTL_DAYS", ge=1, le=3650)
    max_receive_count: int = Field(default=3, alias="MAX_RECEIVE_COUNT", ge=1, le=100)
    region: str = Field(default="us-east-1", alias="AWS_REGION")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls.model_validate(dict(env))


class TargetMessage(BaseModel):
    """One target of a queued run: the SQS message the scheduler/API send and the worker reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str = Field(pattern=r"^[\w-]{1,64}$")
    job: str | None = None
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    account: str = Field(pattern=r"^\d{12}$")
    region: str
    dry_run: bool = False
    requested_by: str | None = None


class RunRequest(BaseModel):
    """POST /runs: a job, or an action with params and accounts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: str | None = Field(default=None, pattern=r"^[\w.-]{1,64}$")
    action: str | None = Field(default=None, pattern=r"^[a-z_]{1,64}$")
    params: dict[str, Any] | None = None
    accounts: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    regions: list[str] | None = Field(default=None, min_length=1, max_length=30)
    role_name: str | None = Field(default=None, pattern=r"^[\w+=,.@-]{1,64}$")
    dry_run: bool | None = None


class Forbidden(RolechainError):
    """The request names accounts or roles outside the configuration."""


class NotFound(RolechainError):
    """No such run or job."""


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


class RunStore:
    """Runs and their per-target results in DynamoDB (the aws-access side of run records)."""

    def __init__(self, client: Any, table: str, ttl_days: int) -> None:
        self._client = client
        self._table = table
        self._ttl_seconds = ttl_days * 86400
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    def _item(self, data: Mapping[str, Any]) -> dict[str, Any]:
        clean = json.loads(json.dumps(data, default=str), parse_float=Decimal)  # DynamoDB wants Decimal
        return {k: self._serializer.serialize(v) for k, v in clean.items() if v is not None}

    def _ttl(self) -> int:
        return int(time.time()) + self._ttl_seconds

    def put_run(self, run: Mapping[str, Any]) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=self._item({**run, "pk": f"run#{run['run_id']}", "sk": "meta", "ttl": self._ttl()}),
        )

    def put_results(self, run_id: str, results: Iterable[TargetResult]) -> None:
        items = [self._result_item(run_id, r) for r in results]
        for start in range(0, len(items), 25):  # BatchWriteItem takes 25 items a call
            request = {self._table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
            for _ in range(8):
                response = self._client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(0.1)
            else:
                raise RolechainError(f"DynamoDB kept {len(request[self._table])} result(s) of run {run_id} unprocessed")

    def _result_item(self, run_id: str, result: TargetResult) -> dict[str, Any]:
        data = result.to_dict()
        if len(json.dumps(data.get("output"), default=str)) > MAX_RESULT_BYTES:
            data["output"] = {"truncated": True, "note": f"output over {MAX_RESULT_BYTES} bytes not stored"}
        return self._item(
            {**data, "pk": f"run#{run_id}", "sk": f"target#{result.account}#{result.region}", "ttl": self._ttl()}
        )

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run with its results and a summary. Raises NotFound."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"run#{run_id}"}},
        }
        for page in self._client.get_paginator("query").paginate(**kwargs):
            items.extend({k: self._deserializer.deserialize(v) for k, v in item.items()} for item in page["Items"])
        meta = next((i for i in items if i["sk"] == "meta"), None)
        if meta is None:
            raise NotFound(f"no run {run_id!r}")
        results = [_plain(i) for i in items if i["sk"].startswith("target#")]
        for result in results:
            for key in ("pk", "sk", "ttl"):
                result.pop(key, None)
        summary = {str(s): 0 for s in Status}
        for result in results:
            summary[result["status"]] = summary.get(result["status"], 0) + 1
        run = {k: v for k, v in _plain(meta).items() if k not in ("pk", "sk", "ttl")}
        expected = int(run.get("target_count", len(results)))
        run["status"] = "completed" if len(results) >= expected else "running"
        return {**run, "summary": summary, "results": sorted(results, key=lambda r: (r["account"], r["region"]))}


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to ints/floats, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class TargetQueue:
    """The SQS queue of targets for the worker."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, messages: Sequence[TargetMessage]) -> None:
        """Send every message, 10 a call; entries SQS refuses are sent again, then reported."""
        for start in range(0, len(messages), SQS_BATCH):
            pending = {str(i): m for i, m in enumerate(messages[start : start + SQS_BATCH])}
            for _ in range(5):
                response = self._client.send_message_batch(
                    QueueUrl=self._url,
                    Entries=[{"Id": key, "MessageBody": m.model_dump_json()} for key, m in pending.items()],
                )
                pending = {f["Id"]: pending[f["Id"]] for f in response.get("Failed", [])}
                if not pending:
                    break
                time.sleep(0.2)
            else:
                raise RolechainError(f"SQS refused {len(pending)} target message(s) after retries")


class Hub:
    """The hub's use cases. One per container: it holds the chained sessions (R1 as base)."""

    def __init__(self, settings: Settings, sessions: ChainSessions) -> None:
        self.settings = settings
        self.sessions = sessions

    @cached_property
    def job_file(self) -> JobFile:
        return load_job_file(self.settings.job_file)

    @cached_property
    def store(self) -> RunStore:
        return RunStore(self.sessions.client(None, "dynamodb"), self.settings.runs_table, self.settings.run_ttl_days)

    @cached_property
    def queue(self) -> TargetQueue:
        if not self.settings.target_queue_url:
            raise ConfigError("TARGET_QUEUE_URL", "is not set, so large runs cannot be queued")
        return TargetQueue(self.sessions.client(None, "sqs"), self.settings.target_queue_url)

    # -- scheduler ------------------------------------------------------------------------------
    def start_job(
        self,
        job: str,
        *,
        remaining_seconds: Callable[[], float] | None = None,
        caller: Caller | None = None,
        accounts: Sequence[str] | None = None,
        dry_run: bool | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Run job ``job``: at once when it has few targets, else one SQS message per target."""
        plan = plan_job(
            self.sessions,
            self.job_file,
            job,
            accounts=accounts,
            dry_run=dry_run,
            source_identity=caller.source_identity if caller else None,
            session_tags=caller.session_tags if caller else None,
        )
        return self._start(plan, run_id or new_run_id(), caller, remaining_seconds)

    def _start(
        self,
        plan: RunPlan,
        run_id: str,
        caller: Caller | None,
        remaining_seconds: Callable[[], float] | None,
        *,
        inline: bool | None = None,
    ) -> dict[str, Any]:
        """Record the run, then run it at once (few targets, or ``inline``) or queue one message per target."""
        run = {
            "run_id": run_id,
            "job": plan.job,
            "action": plan.action.name,
            "dry_run": plan.dry_run,
            "requested_by": caller.arn if caller else None,
            "created_at": datetime.now(UTC).isoformat(),
            "target_count": len(plan.targets),
        }
        if inline or (inline is None and len(plan.targets) <= self.settings.inline_target_limit):
            run["mode"] = "inline"
            self.store.put_run(run)
            report = run_plan(self.sessions, plan, run_id=run_id, remaining_seconds=remaining_seconds)
            self.store.put_results(run_id, report.results)
            return {**run, **report.to_dict(), "status": "completed"}
        run["mode"] = "queued"
        self.store.put_run(run)
        messages = [
            TargetMessage(
                run_id=run_id,
                job=plan.job,
                action=plan.action.name,
                params=plan.params.model_dump(mode="json", exclude_unset=True),
                account=t.account,
                region=t.region,
                dry_run=plan.dry_run,
                requested_by=caller.arn if caller else None,
            )
            for t in plan.targets
        ]
        self.queue.send(messages)
        logger.info("run %s queued %d target(s)", run_id, len(messages))
        return {**run, "status": "queued"}

    # -- worker ---------------------------------------------------------------------------------
    def process_target(
        self, message: TargetMessage, *, receive_count: int = 1, remaining_seconds: Callable[[], float] | None = None
    ) -> TargetResult:
        """Run one queued target and record its result.

        Raises:
            TransientTargetError: the target failed in a way a retry may fix (throttling, network),
                and SQS may still deliver it again; nothing is recorded so the retry decides.
        """
        caller = Caller(message.requested_by) if message.requested_by else None
        settings = self.job_file.job(message.job) if message.job else self.job_file.defaults
        plan = plan_run(
            self.sessions,
            settings,
            action=message.action,
            params=message.params,
            accounts=[message.account],
            regions=[message.region],
            dry_run=message.dry_run,
            job=message.job,
            source_identity=caller.source_identity if caller else None,
            session_tags=caller.session_tags if caller else None,
        )
        result = run_plan(self.sessions, plan, run_id=message.run_id, remaining_seconds=remaining_seconds).results[0]
        if is_transient(result) and receive_count < self.settings.max_receive_count:
            raise TransientTargetError(result)
        self.store.put_results(message.run_id, [result])
        return result

    # -- remediation ----------------------------------------------------------------------------
    def remediate(self, event: Mapping[str, Any], *, run_id: str | None = None) -> dict[str, Any]:
        """Apply every remediation rule ``event`` matches, in the event's own account and region.

        Raises ConfigError when the event lacks what a rule needs (account, region, a param path).
        """
        account, region = event.get("account"), event.get("region")
        if not isinstance(account, str) or not isinstance(region, str):
            raise ConfigError("event", "needs 'account' and 'region'")
        rules = self.job_file.remediations_for(event)
        run_id = run_id or new_run_id()
        results: list[dict[str, Any]] = []
        for rule in rules:
            plan = plan_run(
                self.sessions,
                rule,
                action=rule.action,
                params=rule.params_for(event),
                accounts=[account],
                regions=[region],
                job=f"remediation.{rule.name}",
            )
            # a remediation acts at once, in the event's own account, however small the inline limit
            run = self._start(plan, f"{run_id}-{len(results)}", None, None, inline=True)
            results.append({"rule": rule.name, **run})
        return {"run_id": run_id, "event_id": event.get("id"), "rules": results}

    # -- API ------------------------------------------------------------------------------------
    def list_actions(self) -> list[dict[str, Any]]:
        return [REGISTRY[name].describe() for name in sorted(REGISTRY)]

    def list_jobs(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "action": job.action,
                "description": job.description,
                "accounts": job.targets.resolve(),
                "regions": job.regions,
                "schedule": job.schedule,
                "dry_run": job.dry_run,
            }
            for name, job in sorted(self.job_file.jobs.items())
        ]

    def create_run(
        self, request: RunRequest, caller: Caller, *, remaining_seconds: Callable[[], float] | None = None
    ) -> dict[str, Any]:
        """POST /runs. Raises Forbidden for accounts/roles outside the configuration, ConfigError for
        a malformed request, NotFound for an unknown job."""
        if (request.job is None) == (request.action is None):
            raise ConfigError("body", "give exactly one of 'job' or 'action'")
        allowed = self.job_file.target_accounts()
        outside = sorted(set(request.accounts or ()) - allowed)
        if outside:
            raise Forbidden(f"accounts outside the configured targets: {', '.join(outside)}")
        if request.role_name is not None and request.role_name not in self.job_file.role_names():
            raise Forbidden(f"role {request.role_name!r} is not a configured target role")
        run_id = new_run_id()
        if request.job is not None:
            if request.job not in self.job_file.jobs:
                raise NotFound(f"no job {request.job!r}")
            if request.params is not None or request.regions is not None or request.role_name is not None:
                raise ConfigError("body", "params, regions and role_name go with 'action', not 'job'")
            return self.start_job(
                request.job,
                remaining_seconds=remaining_seconds,
                caller=caller,
                accounts=request.accounts,
                dry_run=request.dry_run,
                run_id=run_id,
            )
        if not request.accounts:
            raise ConfigError("accounts", "required with 'action'")
        defaults = self.job_file.defaults
        settings = defaults.model_copy(update={"role_name": request.role_name}) if request.role_name else defaults
        plan = plan_run(
            self.sessions,
            settings,
            action=request.action or "",
            params=request.params,
            accounts=request.accounts,
            regions=request.regions,
            dry_run=request.dry_run,
            source_identity=caller.source_identity,
            session_tags=caller.session_tags,
        )
        return self._start(plan, run_id, caller, remaining_seconds)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self.store.get_run(run_id)


class TransientTargetError(RolechainError):
    """A target failed transiently; raising it makes SQS deliver the message again."""

    def __init__(self, result: TargetResult) -> None:
        super().__init__(f"transient failure at {result.account}/{result.region}: {result.error}")
        self.result = result


def is_transient(result: TargetResult) -> bool:
    """Whether a retry could change the outcome (throttling, network), unlike a denied hop."""
    if result.status != Status.FAILED or not result.error:
        return False
    error = result.error
    if error.get("type") == "assume_role":
        return error.get("likely_cause") == "transient"
    return error.get("code") in TRANSIENT_CODES or error.get("type") in {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
    }


__all__ = [
    "Caller",
    "Forbidden",
    "Hub",
    "NotFound",
    "RunRequest",
    "RunStore",
    "Settings",
    "Target",
    "TargetMessage",
    "TargetQueue",
    "TransientTargetError",
    "is_transient",
]
