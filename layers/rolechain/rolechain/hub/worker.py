"""The worker's use case: one queued target run and recorded, or handed back to SQS for a retry.

A message is a request, not an order: the worker derives the target's plan again from the job file (a
job's run) or from the run record (an ad-hoc run the API accepted) and refuses a message asking for
another action, params, account, region, role, dry-run setting or requester. A refused message is
recorded failed (kind ``config``) and never retried, so its run still completes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rolechain.errors import ConfigError
from rolechain.hub import rollout
from rolechain.hub.errors import Forbidden, TransientTargetError, UnknownRun
from rolechain.hub.models import Caller, QueuedPlan, TargetMessage
from rolechain.hub.store import PROGRESS_FIELDS
from rolechain.jobs import RoleRef
from rolechain.planning import PlanRequest, RunPlan, plan_job, plan_run
from rolechain.runner import FailureKind, Status, TargetResult, run_plan

if TYPE_CHECKING:
    from rolechain.hub.hub import Hub

logger = logging.getLogger(__name__)


def process_target(
    hub: Hub, message: TargetMessage, *, receive_count: int = 1, remaining_seconds: Callable[[], float] | None = None
) -> TargetResult:
    """Run one queued target and record its result.

    Raises:
        TransientTargetError: the target failed in a way a retry may fix (throttling, network) or was
            not started for lack of time, and SQS may still deliver it again; nothing is recorded so
            the retry decides. On the last delivery the result is recorded instead.
    """
    counted, record, planned, claimed = hub.store.worker_view(
        message.run_id, message.account, message.region, message.plan_buckets
    )
    if counted:
        # delivered again (at-least-once, or the retry of a refused completion event): the target is
        # done and recorded; acting on it again would change it twice
        logger.info("run %s: %s/%s is done already", message.run_id, message.account, message.region)
        hub.complete_if_done(message.run_id, remaining_seconds)
        return TargetResult(message.account, message.region, message.action, Status.SKIPPED,
                            error={"type": FailureKind.SKIPPED, "message": "done already: not run again"})  # fmt: skip
    if record is not None and record.get("stopped") and _in_run(record, message, planned) and not claimed:
        # the run's guardrail stopped it (max_failures): its queued targets start no more (one an attempt
        # claimed before has started: that attempt's delivery finishes it as any other)
        result = rollout.skipped(message, str(record["stopped"]))
        archive = _archiver(hub, record, message, [result])
        counters = hub.store.record_target(message.run_id, message.account, message.region, [result], archive=archive)
        hub.complete_if_done(message.run_id, remaining_seconds, _progress(hub, message.run_id, record, counters))
        return result
    try:
        plan = plan_message(hub, message, record, planned)
    except (ConfigError, Forbidden) as exc:  # the message itself is wrong: a retry cannot mend it
        logger.warning("run %s: refused message for %s/%s: %s", message.run_id, message.account, message.region, exc)
        result = TargetResult(
            message.account,
            message.region,
            message.action,
            Status.FAILED,
            error={"type": FailureKind.CONFIG, "message": f"refused: {exc}"},
        )
        # recorded for a run that exists, never over a real result of the same target (a forged or
        # replayed message must not rewrite what happened), and counted only for a target of the run
        # itself (so its run still completes; another target must not move the run's counts)
        if isinstance(exc, UnknownRun):
            return result
        if hub.store.has_result(message.run_id, message.account, message.region):
            if claimed and record is not None and _in_run(record, message, planned):
                # an earlier attempt stored its results and died before counting them: its count is
                # finished (with what it stored), or the run would never end
                counters = hub.store.finish_claim(message.run_id, message.account, message.region)
                if counters is not None:
                    hub.complete_if_done(
                        message.run_id, remaining_seconds, _progress(hub, message.run_id, record, counters)
                    )
            return result
        if record is not None and _in_run(record, message, planned):
            archive = _archiver(hub, record, message, [result])
            counters = hub.store.record_target(
                message.run_id, message.account, message.region, [result], archive=archive
            )
            hub.complete_if_done(message.run_id, remaining_seconds, _progress(hub, message.run_id, record, counters))
        else:
            hub.store.put_results(message.run_id, [result])
        return result
    results = run_plan(hub.sessions, plan, run_id=message.run_id, remaining_seconds=remaining_seconds).results
    result = results[0]  # one, or the first of an account's regions (regions: all)
    retry = any(is_transient(r) or _not_started(r) for r in results)
    if retry and receive_count < hub.settings.max_receive_count:
        raise TransientTargetError(result)
    archive = _archiver(hub, record, message, results)
    counters = hub.store.record_target(message.run_id, message.account, message.region, results, archive=archive)
    hub.complete_if_done(message.run_id, remaining_seconds, _progress(hub, message.run_id, record, counters))
    return result


def _archiver(
    hub: Hub, record: dict[str, Any] | None, message: TargetMessage, results: Sequence[TargetResult]
) -> Callable[[], str]:
    """What writes the target's object to the results bucket (the store calls it once it holds the
    target's claim); its key is the target's own, so a delivery finishing a claim overwrites it."""

    def archive() -> str:
        if record is None:
            raise UnknownRun(f"no run {message.run_id!r} is recorded")
        return hub.results.put_target(record, message.account, message.region, results)

    return archive


def _progress(
    hub: Hub, run_id: str, record: dict[str, Any] | None, counters: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The run's progress once a target was counted and its marker says so. None: read it afresh.

    Where this count reached the run's target count, the counters as it left them, the rest as the record
    said before the target ran (the wave and whether the run stopped can only have moved on since; the
    store's conditional updates decide on those). Otherwise read again, after the marker: another worker's
    count may have reached the end (of the run, or of a wave) between this one's count and its marker,
    and seen this marker still uncounted. The last worker to look after its marker sees every count and
    every marker, so one of them always ends the run (or the wave)."""
    if record is None or counters is None:
        return None
    if int(counters.get("targets_done", 0)) < int(record.get("target_count", 0)):
        return hub.store.progress(run_id)
    return {**{k: record[k] for k in PROGRESS_FIELDS if k in record}, **counters}


def _not_started(result: TargetResult) -> bool:
    """Skipped for want of time or because the run was stopped: another delivery may run it (a
    target with nothing to do, such as no enabled region left, is not retried)."""
    message = str((result.error or {}).get("message", ""))
    return result.status == Status.SKIPPED and message.startswith(("out of time", "interrupted"))


def _in_run(record: dict[str, Any], message: TargetMessage, planned: bool) -> bool:
    """Whether ``message`` names one of its run's own targets (``planned``: its (account, region) is a
    target of the run's plan): only those are counted."""
    return "queued" in record and planned


def plan_message(
    hub: Hub, message: TargetMessage, record: dict[str, Any] | None = None, planned: bool | None = None
) -> RunPlan:
    """The plan for ``message``'s target as its job (or its run record) defines it; ``record`` and
    ``planned`` (whether the run's plan holds the target) are read unless given.

    Raises:
        ConfigError: an unknown job, or a message that differs from what its job or run allows.
        Forbidden: an ad-hoc message without a run record, or outside the run's accounts/regions.
    """
    if record is None or planned is None:
        _, record, planned, _ = hub.store.worker_view(message.run_id, message.account, message.region, None)
    if record is None:
        raise UnknownRun(f"no run {message.run_id!r} is recorded (a run is recorded before its messages)")
    requested_by = record.get("requested_by")
    _same("job", message.job, record.get("job"))
    _same("requested_by", message.requested_by, requested_by)
    queued = QueuedPlan.model_validate(record["queued"]) if "queued" in record else None
    caller = Caller(requested_by) if requested_by else None
    identity: dict[str, Any] = {
        "source_identity": caller.source_identity if caller else None,
        "session_tags": caller.session_tags if caller else None,
    }
    if queued is None:  # an inline run sends no message: one naming it is not the hub's
        raise Forbidden(f"no queued run {message.run_id!r} recorded for this message")
    if not planned:
        raise Forbidden(f"{message.account}/{message.region} is not a target of run {message.run_id!r}")
    if message.job:
        hub.job_file.job(message.job)  # an unknown job: ConfigError
        dry_run = bool(record["dry_run"])
        scope = [message.account]  # in the plan resolved when the run was queued
        request = PlanRequest(
            accounts=[message.account], regions=[message.region], dry_run=dry_run, scope=scope, **identity
        )
        # refuses an account outside the job
        plan = plan_job(hub.sessions, hub.job_file, message.job, request, resolve=hub.targets_of)
    else:
        if message.account not in hub.job_file.target_accounts(hub.targets_of):
            raise Forbidden(f"account {message.account} is not a target of run {message.run_id!r}")
        if queued.role.role_name not in hub.job_file.role_names():
            raise Forbidden(f"role {queued.role.role_name!r} is not a configured target role")
        settings = hub.job_file.defaults.model_copy(update=queued.role.model_dump())
        request = PlanRequest(
            action=str(record["action"]),
            params=queued.params,
            accounts=[message.account],
            regions=[message.region],
            dry_run=bool(record["dry_run"]),
            job=None,
            **identity,
        )
        plan = plan_run(hub.sessions, settings, request)
    _same("action", message.action, plan.action.name)
    _same("params", message.params, plan.params.model_dump(mode="json", exclude_unset=True))
    _same("dry_run", message.dry_run, plan.dry_run)
    if message.role is not None:
        _same("role", message.role, RoleRef.model_validate(plan.role.model_dump(include=set(RoleRef.model_fields))))
    return plan


def _same(field: str, sent: object, allowed: object) -> None:
    if sent != allowed:
        raise ConfigError(field, f"the message asks for {sent!r}, its run allows {allowed!r}")


def is_transient(result: TargetResult) -> bool:
    """Whether a retry could change the outcome (throttling, 5xx, network), unlike a denied hop: the
    runner decides it where it caught the error (``TargetResult.retryable``)."""
    return result.status == Status.FAILED and result.retryable
