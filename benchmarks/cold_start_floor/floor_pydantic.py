"""The floor of a handler on the brief's stack, with none of rolechain: ``floor_lean`` plus pydantic used
as little as a handler can, its environment validated at import and its event model deferred (built by the
first event), as rolechain's models are."""

import os

import boto3
from aws_lambda_powertools import Logger, Metrics
from pydantic import BaseModel, ConfigDict, Field

logger = Logger()
metrics = Metrics()


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    region: str = Field(alias="AWS_REGION", min_length=1)
    runs_table: str = Field(alias="RUNS_TABLE", min_length=1)


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    run_id: str = Field(min_length=1)
    account: str = Field(pattern=r"\A[0-9]{12}\Z")


SETTINGS = Settings.model_validate(os.environ)
SESSION = boto3.Session()


def lambda_handler(event: dict[str, object], context: object) -> dict[str, object]:
    return Message.model_validate(event).model_dump()
