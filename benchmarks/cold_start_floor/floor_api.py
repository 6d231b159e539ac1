"""The floor of the API handler: ``floor_pydantic`` plus Powertools' REST resolver with OpenAPI validation
and one route whose body is a pydantic model (what ``enable_validation`` imports and builds)."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from floor_pydantic import SETTINGS, BaseModel, ConfigDict, Field  # its logger, metrics and session too

app = APIGatewayRestResolver(enable_validation=True)


class RunRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    job: str = Field(min_length=1)


@app.post("/runs")
def create_run(request: RunRequest) -> dict[str, Any]:
    return {"job": request.job, "region": SETTINGS.region}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
