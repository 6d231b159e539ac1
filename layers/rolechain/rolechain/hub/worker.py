"""The worker's use case: one queued target run and recorded, or handed back to SQS for a retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rolechain.hub.errors import TransientTargetError
from rolechain.hub.models import Caller, TargetMessage
from rolechain.planning import PlanRequest, plan_run
from rolechain.runner import Status, TargetResult, run_plan

if TYPE_CHECKING:
    from rolechain.hub.hub import Hub


def process_target(
    hub: Hub, message: TargetMessage, *, receive_count: int = 1, remaining_seconds: Callable[[], float] | None = None
) -> TargetResult:
    """Run one queued target and record its result.

    Raises:
        TransientTargetError: the target failed in a way a retry may fix (throttling, network),
            and SQS may still deliver it again; nothing is recorded so the retry decides.
    """
    caller = Caller(message.requested_by) if message.requested_by else None
    settings = hub.job_file.job(message.job) if message.job else hub.job_file.defaults
    request = PlanRequest(
        action=message.action,
        params=message.params,
        accounts=[message.account],
        regions=[message.region],
        dry_run=message.dry_run,
        job=message.job,
        source_identity=caller.source_identity if caller else None,
        session_tags=caller.session_tags if caller else None,
    )
    plan = plan_run(hub.sessions, settings, request)
    result = run_plan(hub.sessions, plan, run_id=message.run_id, remaining_seconds=remaining_seconds).results[0]
    if is_transient(result) and receive_count < hub.settings.max_receive_count:
        raise TransientTargetError(result)
    hub.store.put_results(message.run_id, [result])
    return result


def is_transient(result: TargetResult) -> bool:
    """Whether a retry could change the outcome (throttling, 5xx, network), unlike a denied hop: the
    runner decides it where it caught the error (``TargetResult.retryable``)."""
    return result.status == Status.FAILED and result.retryable
