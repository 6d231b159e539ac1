"""Queued targets: one SQS message per target, partial batch responses so only failures return."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from rolechain.hub import TargetMessage
from rolechain.hub.lambda_support import LazyTracer, build_hub, process_sqs_batch, remaining_seconds
from rolechain.hub.models import ContinueMessage

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

logger = Logger()
tracer = LazyTracer()
metrics = Metrics()
HUB = build_hub(os.environ)


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> dict[str, Any]:
    # Powertools passes the invocation's context to a record handler that asks for it: the time budget.
    if _kind(record.body) == "continue":  # the next part of a large run to enqueue
        part = ContinueMessage.model_validate_json(record.body)
        logger.append_keys(run_id=part.run_id)
        return {"enqueued": HUB.continue_queueing(part, remaining_seconds(lambda_context))}
    message = TargetMessage.model_validate_json(record.body)
    logger.append_keys(run_id=message.run_id, account=message.account, region=message.region)
    result = HUB.process_target(
        message,
        receive_count=int(record.attributes.approximate_receive_count),
        remaining_seconds=remaining_seconds(lambda_context),
    )
    metrics.add_metric(name=f"Targets_{result.status}", unit="Count", value=1)
    return result.to_dict()


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
    return process_sqs_batch(event, record_handler, context)
