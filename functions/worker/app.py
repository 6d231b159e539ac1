"""Queued targets: one SQS message per target, partial batch responses so only failures return."""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from rolechain.hub import TargetMessage
from rolechain.hub.lambda_support import LazyTracer, build_hub, remaining_seconds

logger = Logger()
tracer = LazyTracer()
metrics = Metrics()
# A batch whose every record failed answers every record as a failure (SQS redelivers them, then the DLQ
# keeps them) instead of failing the invocation: one unparseable message must not look like a worker crash.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
HUB = build_hub(os.environ)


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> dict[str, Any]:
    # Powertools passes the invocation's context to a record handler that asks for it: the time budget.
    message = TargetMessage.model_validate_json(record.body)
    logger.append_keys(run_id=message.run_id, account=message.account, region=message.region)
    result = HUB.process_target(
        message,
        receive_count=int(record.attributes.approximate_receive_count),
        remaining_seconds=remaining_seconds(lambda_context),
    )
    metrics.add_metric(name=f"Targets_{result.status}", unit="Count", value=1)
    return result.to_dict()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
