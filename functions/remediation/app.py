"""Event-driven remediation: CloudTrail events from member accounts, acted on once per event id."""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent
from aws_lambda_powertools.utilities.typing import LambdaContext
from rolechain.hub.lambda_support import LazyTracer, RemediationEvent, build_hub, idempotency_store

logger = Logger()
tracer = LazyTracer()
metrics = Metrics()
HUB = build_hub(os.environ)
# EventBridge delivers at least once: a duplicate of the same event id returns the first result.
IDEMPOTENCY = IdempotencyConfig(event_key_jmespath="id", expires_after_seconds=24 * 3600)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@idempotent(persistence_store=idempotency_store(HUB), config=IDEMPOTENCY)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = RemediationEvent.model_validate(event)
    logger.append_keys(event_id=parsed.id, account=parsed.account, event_name=parsed.detail.eventName)
    outcome = HUB.remediate(parsed.model_dump(by_alias=True))
    metrics.add_metric(name="RemediationRules", unit="Count", value=len(outcome["rules"]))
    return outcome
