"""On-demand runs over an IAM-authenticated REST API, validated against its OpenAPI models."""

import binascii
import os
import warnings
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext
from rolechain.errors import ConfigError, RolechainError
from rolechain.hub import Caller, Forbidden, NotFound, RunRequest
from rolechain.hub.answers import ROUTE_RESPONSES
from rolechain.hub.lambda_support import (
    LazyTracer,
    api_caller,
    build_hub,
    idempotency_store,
    remaining_seconds,
    request_user_arn,
)
from rolechain.hub.models import MAX_TOKEN, ResultQuery, RunListQuery
from rolechain.types import JOB_NAME, RUN_ID

logger = Logger()
tracer = LazyTracer()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)
# Read-only routes publish no metric; Powertools would warn about that on every call.
warnings.filterwarnings("ignore", message="No application metrics to publish")
HUB = build_hub(os.environ)
IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="[key, caller]", payload_validation_jmespath="body", expires_after_seconds=24 * 3600
)


NO_IDENTITY = "no IAM identity on the request (the API requires AWS_IAM auth)"


def _error(status: int, message: str, field: str | None = None) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if field:
        body["field"] = field
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(Forbidden)
def _forbidden(exc: Forbidden) -> Response[dict[str, Any]]:
    return _error(403, str(exc))


@app.exception_handler(NotFound)
def _not_found(exc: NotFound) -> Response[dict[str, Any]]:
    return _error(404, str(exc))


@app.exception_handler(ConfigError)
def _bad_request(exc: ConfigError) -> Response[dict[str, Any]]:
    return _error(400, exc.rule, field=exc.field)


@app.exception_handler(IdempotencyValidationError)
def _idempotency_conflict(exc: IdempotencyValidationError) -> Response[dict[str, Any]]:
    return _error(422, "Idempotency-Key was already used with a different body", field="Idempotency-Key")


# A malformed query parameter is a 400 naming it (the rule every edge keeps); Powertools' own answer, a
# 422 listing where and what (never pydantic's message), stays for the body and the path.
@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[dict[str, Any]]:
    errors = exc.errors()
    query = [e for e in errors if tuple(e.get("loc", ()))[:1] == ("query",)]
    if query:
        field = str(query[0]["loc"][1]) if len(query[0]["loc"]) > 1 else "query"
        return _error(400, f"query parameter {field!r} is not valid ({query[0]['type']})", field=field)
    detail = [{"loc": e["loc"], "type": e["type"]} for e in errors]
    return Response(
        status_code=422, content_type=content_types.APPLICATION_JSON, body={"statusCode": 422, "detail": detail}
    )


# The body is decoded and parsed by Powertools' validation before any route runs; what it cannot decode
# is the caller's mistake (400), never a failure of the function (which API Gateway would answer 502).
@app.exception_handler(binascii.Error)
def _not_base64(exc: binascii.Error) -> Response[dict[str, Any]]:
    return _error(400, "body is not valid base64 (isBase64Encoded is true)", field="body")


@app.exception_handler(UnicodeDecodeError)
def _not_utf8(exc: UnicodeDecodeError) -> Response[dict[str, Any]]:
    return _error(400, "body is not UTF-8 text", field="body")


@app.exception_handler(RecursionError)
def _too_deep(exc: RecursionError) -> Response[dict[str, Any]]:
    return _error(400, "body is nested too deeply", field="body")


@app.exception_handler(RolechainError)
def _failed(exc: RolechainError) -> Response[dict[str, Any]]:
    logger.exception("request failed")
    return _error(502, str(exc))


@app.get("/actions", responses=ROUTE_RESPONSES["list_actions"])
def list_actions() -> dict[str, Any]:
    return {"actions": HUB.list_actions()}


@app.get("/jobs", responses=ROUTE_RESPONSES["list_jobs"])
def list_jobs() -> dict[str, Any]:
    return {"jobs": HUB.list_jobs()}


@idempotent_function(data_keyword_argument="request", persistence_store=idempotency_store(HUB), config=IDEMPOTENCY)
def _create_run_once(request: dict[str, Any]) -> dict[str, Any]:
    return _create_run(RunRequest.model_validate(request["body"]), request["caller"])


def _create_run(body: RunRequest, caller_arn: str) -> dict[str, Any]:
    return HUB.create_run(body, Caller(caller_arn), remaining_seconds=remaining_seconds(app.lambda_context))


@app.post("/runs", responses=ROUTE_RESPONSES["create_run"])
def create_run(
    body: RunRequest,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", max_length=256)] = None,
) -> Response[dict[str, Any]]:
    caller = api_caller(request_user_arn(app.current_event.raw_event), os.environ)
    if caller is None:
        return _error(403, NO_IDENTITY)
    logger.append_keys(caller=caller.arn)
    metrics.add_metric(name="RunsRequested", unit="Count", value=1)
    if idempotency_key:
        run = _create_run_once(
            request={"key": idempotency_key, "caller": caller.arn, "body": body.model_dump(mode="json")}
        )
    else:
        run = _create_run(body, caller.arn)
    return Response(
        status_code=200 if run["status"] == "completed" else 202, content_type=content_types.APPLICATION_JSON, body=run
    )


NextToken = Annotated[str | None, Query(min_length=1, max_length=MAX_TOKEN, description="the last page's next_token")]


@app.get("/runs", responses=ROUTE_RESPONSES["list_runs"])
def list_runs(
    job: Annotated[str | None, Query(pattern=f"^{JOB_NAME}$")] = None,
    status: Annotated[Literal["queued", "running", "completed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    next_token: NextToken = None,
) -> Response[dict[str, Any]]:
    caller = api_caller(request_user_arn(app.current_event.raw_event), os.environ)
    if caller is None:
        return _error(403, NO_IDENTITY)
    query = RunListQuery(job=job, status=status, limit=limit, next_token=next_token)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=HUB.list_runs(query, caller))


@app.get("/runs/<run_id>", responses=ROUTE_RESPONSES["get_run"])
def get_run(
    run_id: Annotated[str, Path(pattern=f"^{RUN_ID}$")],
    status: Annotated[Literal["ok", "failed", "skipped", "dry-run", "dry_run"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    next_token: NextToken = None,
) -> Response[dict[str, Any]]:
    caller = api_caller(request_user_arn(app.current_event.raw_event), os.environ)
    if caller is None:
        return _error(403, NO_IDENTITY)
    query = ResultQuery.model_validate({"status": status, "limit": limit, "next_token": next_token})
    run = HUB.get_run(run_id, caller, query)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=run)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY.register_lambda_context(context)  # in-progress records expire with the invocation
    return app.resolve(event, context)
