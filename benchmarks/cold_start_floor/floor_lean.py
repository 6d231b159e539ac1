"""The floor of a handler without pydantic: boto3 with a session for the function's own credentials, and
Powertools' Logger and Metrics, made at import as every rolechain handler makes them. None of rolechain."""

import json
import os

import boto3
from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
REGION = os.environ["AWS_REGION"]
SESSION = boto3.Session()


def lambda_handler(event: dict[str, object], context: object) -> str:
    return json.dumps(event)
