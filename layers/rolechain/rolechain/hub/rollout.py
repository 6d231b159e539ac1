"""Guardrails of a queued run: waves (``rollout``) and ``max_failures``, held back through the queue.

A guarded run's record carries ``wave_ends`` (how many of its target messages each wave ends at: the
last is all of them), the wave running (``wave``, from 1) and the failures it tolerates
(``max_failures_count``). Only the running wave's messages are queued. Whenever a worker has counted a
target it looks at the run's progress:

* with a rollout, once every target of the wave is counted (the markers decide, as for completion),
  more failures than tolerated stop the run; otherwise one worker (a conditional update of ``wave``)
  queues the next wave;
* without one, the run stops as soon as its failures are over the limit (as the inline runner does).

A stopped run (``stopped``: why) starts nothing more: the targets not yet queued are recorded skipped with
that reason by whoever stops it (continuing through the queue when time runs out), and a queued message
of a stopped run is recorded skipped by the worker instead of being run. Every target still ends once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rolechain.hub.models import TargetMessage
from rolechain.jobs import resolve_count
from rolechain.planning import RunPlan
from rolechain.runner import FailureKind, Status, TargetResult

if TYPE_CHECKING:
    from rolechain.hub.hub import Hub

logger = logging.getLogger(__name__)
SKIP_CHUNK = 250  # targets recorded skipped between looks at the clock (20 BatchWriteItem calls)
RESERVE = 10.0  # seconds kept back, as when enqueueing


def guard_fields(plan: RunPlan, total: int) -> dict[str, Any]:
    """The record fields of a guarded queued run of ``total`` target messages ({} when unguarded)."""
    if plan.rollout is None and plan.max_failures is None:
        return {}
    sizes = plan.rollout.waves(total) if plan.rollout is not None else [total]
    ends, upto = [], 0
    for size in sizes:
        upto += size
        ends.append(upto)
    limit = 0 if plan.max_failures is None else resolve_count(plan.max_failures, total)
    return {
        "wave_ends": ends,
        "wave": 1,
        "max_failures_count": limit,
        "max_failures": plan.max_failures if plan.max_failures is not None else 0,
        "rollout": plan.rollout is not None,
        "waves": [],
    }


def part_end(record: dict[str, Any], start: int, total: int) -> int:
    """Where the part of the run's messages from ``start`` ends: its wave's end (all, when unguarded)."""
    ends = [int(e) for e in record.get("wave_ends", ())]
    return next((e for e in ends if e > start), total)


def check(
    hub: Hub,
    run_id: str,
    progress: dict[str, Any],
    remaining_seconds: Callable[[], float] | None,
    *,
    fresh: bool = False,
) -> bool:
    """Stop the run, or queue its next wave, when its progress says so (see the module's docstring).
    Returns whether it did (the progress read before is stale then). ``fresh``: ``progress`` was just
    read, so a part that nobody is queueing any more can be told from one being queued (:func:`_stalled`)."""
    if "wave_ends" not in progress:
        return False
    if fresh and _stalled(progress):
        # what was sent is counted and nothing more will come: whoever ended the wave (or stopped the
        # run) failed before it queued the rest; the continuation queues it (or skips it) once
        from rolechain.hub.models import ContinueMessage

        logger.warning("run %s: nothing queued from %s on; continuing through the queue", run_id, progress["enqueued"])
        hub.queue.send([ContinueMessage(run_id=run_id, start=int(progress["enqueued"]))])
        return False
    if progress.get("stopped"):
        return False
    limit = int(progress["max_failures_count"])
    if not progress.get("rollout"):
        if int(progress.get("count_failed", 0)) <= limit:
            return False
        failed = hub.store.done_targets(run_id)[1][str(Status.FAILED)]  # the markers: counters may overcount
        if failed > limit and hub.store.stop_run(
            run_id, f"not started: {failed} failure(s), over max_failures {progress['max_failures']}"
        ):
            # what is not queued yet is queued by its continuation, which finds the run stopped and
            # records it skipped instead; what is queued is recorded skipped by the workers
            logger.warning("run %s stopped: %d failure(s), over max_failures", run_id, failed)
            return True
        return False
    wave = int(progress["wave"])
    ends = [int(e) for e in progress["wave_ends"]]
    if wave > len(ends) or int(progress.get("targets_done", 0)) < ends[wave - 1]:
        return False  # the counter says the wave is still running (or every wave is over)
    end = ends[wave - 1]
    done, summary = hub.store.done_targets(run_id)
    if done < end:
        return False  # a target is claimed but not counted yet: its worker looks again
    failed = summary[str(Status.FAILED)]
    before = sum(int(w["failed"]) for w in progress.get("waves", ()))
    this_wave = {"wave": wave, "targets": end - (ends[wave - 2] if wave > 1 else 0), "failed": failed - before}
    if wave == len(ends):
        return hub.store.end_wave(run_id, wave, this_wave)  # the last: completion follows
    stopped = None
    if failed > limit:
        stopped = (
            f"not started: wave {wave} ended with {failed} failure(s), over max_failures {progress['max_failures']}"
        )
    if not hub.store.end_wave(run_id, wave, this_wave, stopped=stopped):
        return False  # another worker ended it
    if stopped:
        logger.warning("run %s stopped: %s", run_id, stopped)
    else:
        logger.info("run %s: wave %d ended with %d failure(s); queueing wave %d", run_id, wave, failed, wave + 1)
    # ending the wave was this worker's claim: it queues the next one (or records the rest skipped)
    from rolechain.hub.models import ContinueMessage
    from rolechain.hub.runs import dispatch  # runs imports this module

    try:
        record = hub.store.get_run_record(run_id)
        if record is not None:
            dispatch(hub, record, end, remaining_seconds)
    except Exception:
        # the wave is ended, so no other worker would queue the next one: the queue continues it (and if
        # even that fails, this message's redelivery finds the run stalled and continues it)
        hub.queue.send([ContinueMessage(run_id=run_id, start=end)])
        raise
    return True


def _stalled(progress: dict[str, Any]) -> bool:
    """Whether a guarded run has targets nobody will queue: every target sent is counted, some are not
    sent, and the run is stopped or its wave was ended (the next wave's first target is not sent)."""
    if "enqueued" not in progress:
        return False
    enqueued, done = int(progress["enqueued"]), int(progress.get("targets_done", 0))
    if done < enqueued or enqueued >= int(progress.get("target_count", 0)):
        return False
    if progress.get("stopped"):
        return True
    ends = [int(e) for e in progress.get("wave_ends", ())]
    wave = int(progress.get("wave", 1))
    return bool(progress.get("rollout")) and 2 <= wave <= len(ends) and enqueued <= ends[wave - 2]


def skip_part(
    hub: Hub,
    record: dict[str, Any],
    messages: Sequence[TargetMessage],
    start: int,
    remaining_seconds: Callable[[], float] | None,
) -> int:
    """Record ``messages[start:]`` of a stopped run skipped, with its reason, while time is left (a
    target an attempt claimed keeps its own result). Returns how many messages were handled."""
    from rolechain.hub.runs import archive_inline  # runs imports this module

    run_id = str(record["run_id"])
    why = str(record["stopped"])
    done = start
    while done < len(messages):
        if remaining_seconds is not None and remaining_seconds() <= RESERVE:
            break
        chunk = messages[done : done + SKIP_CHUNK]

        def archive(claimed: Sequence[TargetResult]) -> dict[tuple[str, str], str]:
            return archive_inline(hub, record, claimed, [(r.account, r.region) for r in claimed])

        hub.store.record_skipped(run_id, [skipped(m, why) for m in chunk], archive)
        done += len(chunk)
    return done - start


def skipped(message: TargetMessage, why: str) -> TargetResult:
    return TargetResult(
        message.account,
        message.region,
        message.action,
        Status.SKIPPED,
        error={"type": FailureKind.SKIPPED, "message": why},
    )
