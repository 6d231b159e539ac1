"""Queued targets: one SQS message per target, partial batch responses so only failures return.

SQS delivers at least once, and a standard queue may deliver one message twice at the same time. A target
runs under Powertools' idempotency, keyed by (run, account, region) in the runs table: while one delivery
runs it, another is answered as a failure without running (SQS delivers it again after the visibility
timeout, when the first has recorded the target). The lock expires at the deadline of the invocation holding
it, so a delivery that died leaves the target to the next one: the queue's visibility timeout (6x the
function's timeout, which a template test checks) brings the message back after that deadline. A delivery
that raised (a retry) leaves no record.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from rolechain.hub import TargetMessage
from rolechain.hub.lambda_support import (
    LazyTracer,
    build_hub,
    idempotency_store,
    process_sqs_batch,
    remaining_seconds,
)
from rolechain.hub.models import ContinueMessage

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

logger = Logger()
tracer = LazyTracer()
metrics = Metrics()
HUB = build_hub(os.environ)
# What Powertools says when the table refused the in-progress record: nothing of the target ran yet.
LOCK_NOT_TAKEN = "Failed to save in progress record to idempotency store"
# The lock on a target while a delivery runs it; once done, a later delivery reads the run's own markers
# (``done already``), so the record need not outlive the queue's retention of a duplicate by much.
IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="[run_id, account, region]", raise_on_no_idempotency_key=True, expires_after_seconds=3600
)


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> dict[str, Any]:
    # Powertools passes the invocation's context to a record handler that asks for it: the time budget.
    if _kind(record.body) == "continue":  # the next part of a large run to enqueue
        part = ContinueMessage.model_validate_json(record.body)
        logger.append_keys(run_id=part.run_id)
        return {"enqueued": HUB.continue_queueing(part, remaining_seconds(lambda_context))}
    message = TargetMessage.model_validate_json(record.body)
    logger.append_keys(run_id=message.run_id, account=message.account, region=message.region)
    receive_count = int(record.attributes.approximate_receive_count)
    remaining = remaining_seconds(lambda_context)
    try:
        return run_locked(message=message, receive_count=receive_count, remaining=remaining)
    except IdempotencyAlreadyInProgressError:
        logger.warning("delivered twice at once: another delivery is running this target; SQS delivers it again")
        raise
    except IdempotencyPersistenceLayerError as exc:
        if receive_count < HUB.settings.max_receive_count or exc.message != LOCK_NOT_TAKEN:
            raise  # the table refused the lock (throttled, say), or a write after the run: SQS delivers it again
        # the lock was never taken, on the message's last delivery: a result recorded rather than the target
        # lost to the DLQ (a target counted before is still not run again: its marker says so)
        logger.warning("the lock on this target could not be taken on its last delivery: run without it", exc_info=True)
        return run_target(message, receive_count, remaining)


def run_target(message: TargetMessage, receive_count: int, remaining: Callable[[], float]) -> dict[str, Any]:
    """The target run and recorded; what the idempotency record keeps is its outcome, not its output."""
    result = HUB.process_target(message, receive_count=receive_count, remaining_seconds=remaining)
    metrics.add_metric(name=f"Targets_{result.status}", unit="Count", value=1)
    return {"account": result.account, "region": result.region, "action": result.action, "status": str(result.status)}


run_locked = idempotent_function(
    run_target,
    data_keyword_argument="message",
    config=IDEMPOTENCY,
    persistence_store=idempotency_store(HUB),
    key_prefix="rolechain.worker.target",  # the same in every container and release, whatever the module's name
)


def _kind(body: str) -> object:
    try:
        data = json.loads(body)
    except ValueError:
        return None  # TargetMessage's parsing says what is wrong with it
    return data.get("kind") if isinstance(data, dict) else None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY.register_lambda_context(context)  # a target's lock expires at this invocation's deadline
    return process_sqs_batch(event, record_handler, context)
