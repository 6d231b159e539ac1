"""The runner: one action over many targets (account x region), concurrently, with a result for each.

Every target ends ``ok``, ``failed`` (with the hop or AWS error), ``skipped`` (with why) or
``dry_run``; one failing account never stops the others. Given a time budget (a Lambda's
remaining time) the runner stops starting targets before it ends and reports the rest skipped; so it
does once its ``stop`` event is set (the CLI sets it on Ctrl-C or SIGTERM), after those in flight end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pydantic import ValidationError

from rolechain.actions import ActionContext, ActionFailed, DryRunViolation
from rolechain.actions.base import RUNNER_IAM_ACTIONS, policy_document
from rolechain.chain import Chain, config_error, default_session_name, new_run_id
from rolechain.errors import (
    REJECTED_CREDENTIAL_CODES,
    AssumeRoleError,
    ConfigError,
    RolechainError,
    is_transient_error,
)
from rolechain.jobs import resolve_count
from rolechain.planning import RunPlan, Target
from rolechain.sessions import ChainSessions, ServiceLimits, limited
from rolechain.types import ALL_REGIONS

logger = logging.getLogger(__name__)


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"


class FailureKind(StrEnum):
    """Why a target did not end ok: the ``type`` of its error."""

    ASSUME_ROLE = "assume_role"  # a hop of the chain failed (error carries hop, caller, cause, hint)
    AWS = "aws"  # the action's AWS call answered an error (code, message, operation)
    ACTION = "action"  # the action reported a failure with a partial result
    DRY_RUN_VIOLATION = "dry_run_violation"  # a changing call was refused during a dry run
    CONFIG = "config"  # the target's plan or params broke a rule
    NETWORK = "network"  # the endpoint could not be reached or timed out
    CLIENT = "client"  # another error of rolechain or botocore before or around the call
    SKIPPED = "skipped"  # not started (out of time, or the run was interrupted)
    UNEXPECTED = "unexpected"  # a bug in the action


# botocore's errors of reaching an endpoint at all: a retry may well succeed.
NETWORK_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


@dataclass
class TargetResult:
    """One target's outcome. ``retryable``: whether a retry could change it (throttling, 5xx, network),
    decided where the error was caught, for the worker to hand the target back to SQS."""

    account: str
    region: str
    action: str
    status: Status
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    duration_ms: int = 0
    retryable: bool = False

    @property
    def kind(self) -> FailureKind | None:
        return FailureKind(self.error["type"]) if self.error else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "action": self.action,
            "status": str(self.status),
            "output": self.output,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


@dataclass
class RunReport:
    run_id: str
    action: str
    dry_run: bool
    started_at: str
    duration_s: float
    results: list[TargetResult] = field(default_factory=list)
    interrupted: bool = False  # stopped before every target was started
    waves: list[dict[str, int]] = field(default_factory=list)  # with a rollout: each wave's targets and failures
    stopped: str | None = None  # why targets were not started (max_failures), when they were not

    @property
    def summary(self) -> dict[str, int]:
        counts = {str(s): 0 for s in Status}
        for result in self.results:
            counts[str(result.status)] += 1
        return counts

    @property
    def exit_code(self) -> int:
        """0 when every target is ok or dry_run, 1 otherwise (failed or skipped)."""
        return 0 if all(r.status in (Status.OK, Status.DRY_RUN) for r in self.results) else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "action": self.action,
            "dry_run": self.dry_run,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "interrupted": self.interrupted,
            **({"waves": self.waves} if self.waves else {}),
            **({"stopped": self.stopped} if self.stopped else {}),
            "summary": self.summary,
            "results": [r.to_dict() for r in self.results],
        }


ResultCallback = Callable[[TargetResult, int, int], None]


def run_plan(
    sessions: ChainSessions,
    plan: RunPlan,
    *,
    run_id: str | None = None,
    remaining_seconds: Callable[[], float] | None = None,
    reserve_seconds: float = 10.0,
    on_result: ResultCallback | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """Run ``plan`` and return a report with one result per target, in target order.

    Args:
        sessions: chained sessions from the base credentials (R1 in Lambda, U1 on a laptop).
        remaining_seconds: time left in the budget (e.g. a Lambda's remaining time); targets not
            started while more than ``reserve_seconds`` remain are reported ``skipped``.
        on_result: called after each target with (result, done, total), for progress display.
        stop: once set, targets not yet started are reported ``skipped`` (interrupted); those in flight
            finish, so every target is accounted for once.
    """
    run_id = run_id or new_run_id()
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat()
    session_name = default_session_name(plan.job or plan.action.name, run_id)
    policy = plan.action.session_policy()
    if any(t.region == ALL_REGIONS for t in plan.targets):
        # finding an account's enabled regions goes through the same narrowed session
        policy = policy_document([*plan.action.iam_actions, *RUNNER_IAM_ACTIONS])
    total = len(plan.targets)
    done = 0
    lock = threading.Lock()
    # max_failures: with a rollout checked after each wave (default 0), without one as results come in
    limit = None if plan.max_failures is None else resolve_count(plan.max_failures, total)
    if limit is None and plan.rollout is not None:
        limit = 0
    failures = 0
    halted: list[str] = []  # the reason targets are no longer started, once there is one
    caps = ServiceLimits(plan.service_concurrency) if plan.service_concurrency else None

    def each(target: Target) -> list[TargetResult]:
        """The target's results: one, or one per enabled region for region "all"."""
        with limited(caps):
            return each_capped(target)

    def each_capped(target: Target) -> list[TargetResult]:
        if target.region != ALL_REGIONS or halted or (stop is not None and stop.is_set()):
            return [one(target)]  # one() reports a target it does not start as skipped
        nonlocal total
        regions, failed = _enabled_regions(sessions, plan, target, session_name, policy)
        if failed is not None:
            return [_counted(failed)]
        with lock:
            total += len(regions) - 1  # the account's one target became one per region
        return [one(Target(target.account, region)) for region in regions]

    def _counted(result: TargetResult) -> TargetResult:
        nonlocal done, failures
        with lock:
            if result.status == Status.FAILED:  # an account whose regions are unknown counts as a failure
                failures += 1
                if plan.rollout is None and limit is not None and failures > limit and not halted:
                    halted.append(f"not started: {failures} failure(s), over max_failures {plan.max_failures}")
            done += 1
            if on_result is not None:
                on_result(result, done, total)
        return result

    def one(target: Target) -> TargetResult:
        nonlocal done
        nonlocal failures
        skipped = None
        if halted:
            skipped = halted[0]
        elif stop is not None and stop.is_set():
            skipped = "interrupted: not started before the run was stopped"
        elif remaining_seconds is not None and remaining_seconds() <= reserve_seconds:
            skipped = "out of time: not started before the time budget ended"
        if skipped:
            result = TargetResult(
                target.account,
                target.region,
                plan.action.name,
                Status.SKIPPED,
                error={"type": FailureKind.SKIPPED, "message": skipped},
            )
        else:
            result = _run_target(sessions, plan, target, run_id, session_name, policy)
        with lock:
            if result.status == Status.FAILED:
                failures += 1
                if plan.rollout is None and limit is not None and failures > limit and not halted:
                    halted.append(f"not started: {failures} failure(s), over max_failures {plan.max_failures}")
            done += 1
            if on_result is not None:
                on_result(result, done, total)
        return result

    workers = max(1, min(plan.concurrency, total))
    sizes = plan.rollout.waves(total) if plan.rollout is not None else [total]
    results: list[TargetResult] = []
    waves: list[dict[str, int]] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"rolechain-{run_id}") as pool:
        start = 0
        for number, size in enumerate(sizes, start=1):
            if halted:  # the waves left are not run: their targets end skipped, with the reason
                results += [result for batch in pool.map(each, plan.targets[start:]) for result in batch]
                break
            before = failures
            results += [result for batch in pool.map(each, plan.targets[start : start + size]) for result in batch]
            start += size
            waves.append({"wave": number, "targets": size, "failed": failures - before})
            left = start < len(plan.targets)
            if plan.rollout is not None and limit is not None and failures > limit and not halted and left:
                halted.append(
                    f"not started: wave {number} ended with {failures} failure(s), over max_failures "
                    f"{plan.max_failures if plan.max_failures is not None else 0}"
                )
    report = RunReport(
        run_id=run_id,
        action=plan.action.name,
        dry_run=plan.dry_run,
        started_at=started_at,
        duration_s=time.monotonic() - started,
        results=results,
        interrupted=stop is not None and stop.is_set(),
        waves=waves if plan.rollout is not None else [],
        stopped=halted[0] if halted else None,
    )
    logger.info("run %s finished: %s in %.2fs", run_id, report.summary, report.duration_s)
    return report


def _enabled_regions(
    sessions: ChainSessions, plan: RunPlan, target: Target, session_name: str, policy: dict[str, Any]
) -> tuple[list[str], TargetResult | None]:
    """The regions enabled in ``target.account`` (ec2:DescribeRegions through its chain) minus the plan's
    exclude_regions; or a failed result for (account, "all") saying why they are unknown."""
    probe = TargetResult(target.account, ALL_REGIONS, plan.action.name, Status.FAILED)
    try:
        chain = plan.chain_to(target.account, session_name=session_name, session_policy=policy)
        response = sessions.client(chain, "ec2").describe_regions(AllRegions=False)
    except AssumeRoleError as exc:
        probe.error = {"type": FailureKind.ASSUME_ROLE, **exc.failure.to_dict()}
        probe.retryable = exc.failure.likely_cause == "transient"
        return [], probe
    except ClientError as exc:
        error = exc.response.get("Error", {})
        probe.error = {
            "type": FailureKind.AWS,
            "code": error.get("Code", "Unknown"),
            "message": f"cannot list the account's enabled regions: {error.get('Message', exc)}",
            "operation": exc.operation_name,
        }
        probe.retryable = is_transient_error(probe.error["code"], None)
        return [], probe
    except (RolechainError, BotoCoreError, *NETWORK_ERRORS) as exc:
        probe.error = {"type": FailureKind.CLIENT, "message": f"cannot list the account's enabled regions: {exc}"}
        probe.retryable = True
        return [], probe
    except ValidationError as exc:  # a hop STS would refuse: the message only, never the input
        probe.error = {"type": FailureKind.CONFIG, "message": str(config_error(exc))}
        return [], probe
    except Exception as exc:  # one account's surprise must not lose the others' results
        logger.exception("listing the regions of %s failed unexpectedly", target.account)
        probe.error = {"type": FailureKind.UNEXPECTED, "message": f"{type(exc).__name__}: {exc}"}
        return [], probe
    excluded = set(plan.exclude_regions)
    enabled = sorted(
        str(r["RegionName"])
        for r in response.get("Regions", [])
        if r.get("OptInStatus", "opt-in-not-required") in ("opt-in-not-required", "opted-in")
    )
    regions = [r for r in enabled if r not in excluded]
    if not regions:
        probe.status = Status.SKIPPED
        probe.error = {"type": FailureKind.SKIPPED, "message": "no enabled region left once exclude_regions applied"}
        return [], probe
    return regions, None


def _run_target(
    sessions: ChainSessions, plan: RunPlan, target: Target, run_id: str, session_name: str, policy: dict[str, Any]
) -> TargetResult:
    started = time.monotonic()
    result = TargetResult(target.account, target.region, plan.action.name, Status.FAILED)
    chain: Chain | None = None
    try:
        chain = plan.chain_to(target.account, session_name=session_name, session_policy=policy)
        context = ActionContext(
            account=target.account,
            region=target.region,
            dry_run=plan.dry_run,
            run_id=run_id,
            partition=plan.role.partition,
            client_factory=lambda service: sessions.client(chain, service, target.region),
        )
        result.output = plan.action.run(context, plan.params)
        result.status = Status.DRY_RUN if plan.dry_run else Status.OK
    except AssumeRoleError as exc:
        failure = exc.failure
        result.error = {"type": FailureKind.ASSUME_ROLE, **failure.to_dict()}
        # A later hop whose caller's credentials were rejected: those are dropped, a retry assumes afresh.
        rejected = failure.hop > 1 and failure.code in REJECTED_CREDENTIAL_CODES
        result.retryable = failure.likely_cause == "transient" or rejected
    except ClientError as exc:
        error = exc.response.get("Error", {})
        result.error = {
            "type": FailureKind.AWS,
            "code": error.get("Code", "Unknown"),
            "message": error.get("Message", str(exc)),
            "operation": exc.operation_name,
        }
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        result.retryable = is_transient_error(result.error["code"], status)
        if result.error["code"] in REJECTED_CREDENTIAL_CODES and chain is not None:
            # AWS refused credentials the cache holds as valid: drop them so a retry (or the next run)
            # assumes the chain again instead of failing the same way with no AssumeRole at all.
            sessions.forget(chain)
            result.retryable = True
    except ActionFailed as exc:
        result.output = exc.output
        result.error = {"type": FailureKind.ACTION, "message": str(exc)}
        result.retryable = exc.retryable
    except DryRunViolation as exc:
        result.error = {"type": FailureKind.DRY_RUN_VIOLATION, "message": str(exc)}
    except ValidationError as exc:
        result.error = {"type": FailureKind.CONFIG, "message": str(config_error(exc))}
    except ConfigError as exc:
        result.error = {"type": FailureKind.CONFIG, "message": str(exc)}
    except NETWORK_ERRORS as exc:
        result.error = {"type": FailureKind.NETWORK, "message": str(exc)}
        result.retryable = True
    except (RolechainError, BotoCoreError) as exc:
        result.error = {"type": FailureKind.CLIENT, "message": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # one target's bug must not lose the others' results
        logger.exception("target %s/%s failed unexpectedly", target.account, target.region)
        result.error = {"type": FailureKind.UNEXPECTED, "message": f"{type(exc).__name__}: {exc}"}
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result
