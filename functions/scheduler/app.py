"""Scheduled cross-account job: ``{"job": "<name>"}`` from an EventBridge schedule."""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from rolechain.hub.lambda_support import LazyTracer, ScheduleInput, build_hub, remaining_seconds

logger = Logger()
tracer = LazyTracer()
metrics = Metrics()
HUB = build_hub(os.environ)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ScheduleInput)
def lambda_handler(event: ScheduleInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job=event.job)
    run = HUB.start_job(event.job, remaining_seconds=remaining_seconds(context))
    logger.info("run started", run_id=run["run_id"], mode=run["mode"], targets=run["target_count"])
    metrics.add_metric(name="TargetsStarted", unit="Count", value=run["target_count"])
    return run
