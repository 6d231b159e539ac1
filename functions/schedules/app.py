"""The JobSchedules custom resource: one EventBridge Scheduler schedule per scheduled job of the job file.

crhelper answers CloudFormation (the PUT to the presigned ResponseURL): SUCCESS with the group as the
physical id, FAILED with the reason on any error, and FAILED just before the function would time out, so a
deploy never waits on this resource.
"""

import functools
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from crhelper import CfnResource
from rolechain.hub.job_schedules import build_job_schedules

logger = Logger()
SCHEDULES = build_job_schedules(os.environ)


def sync(event: dict[str, Any], context: LambdaContext) -> str:
    group, plan = SCHEDULES.sync(event)
    logger.info("schedules synced", plan=plan.to_dict())
    return group


def remove(event: dict[str, Any], context: LambdaContext) -> str:
    physical, plan = SCHEDULES.remove(event)
    logger.info("schedules removed", physical_id=physical, plan=plan.to_dict() if plan else None)
    return physical


@functools.cache
def helper() -> CfnResource:
    """crhelper's resource, made by the first request: it makes three boto3 clients (for its polling mode,
    unused here), no part of what the import needs. log_level INFO: crhelper logs the whole event, whose
    ResponseURL is a presigned URL, at DEBUG only; sleep_on_delete 0: it would wait two minutes on a Delete."""
    made = CfnResource(log_level="INFO", sleep_on_delete=0)
    made.create(sync)
    made.update(sync)
    made.delete(remove)
    return made


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    helper()(event, context)
