"""The hub functions' configuration, parsed from their environment once per container."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """The hub functions' configuration, parsed from their environment once per container.

    Raises pydantic's ValidationError naming the variable when one is missing or malformed.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)

    job_file: Path = Field(alias="JOB_FILE")
    runs_table: str = Field(alias="RUNS_TABLE", min_length=3)
    target_queue_url: str = Field(default="", alias="TARGET_QUEUE_URL")
    inline_target_limit: int = Field(default=10, alias="INLINE_TARGET_LIMIT", ge=0, le=1000)
    run_ttl_days: int = Field(default=30, alias="RUN_TTL_DAYS", ge=1, le=3650)
    max_receive_count: int = Field(default=3, alias="MAX_RECEIVE_COUNT", ge=1, le=100)
    region: str = Field(default="us-east-1", alias="AWS_REGION")
    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME", min_length=1)
    results_bucket: str = Field(default="", alias="RESULTS_BUCKET", pattern="^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$")
    page_token_key: str = Field(default="", alias="PAGE_TOKEN_KEY_ID")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls.model_validate(dict(env))
