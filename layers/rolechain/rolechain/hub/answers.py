"""What the API answers, as its OpenAPI document promises: the handler names these models in each route's
``responses=`` and the schemathesis tier holds every answer to them."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class ErrorAnswer(BaseModel):
    """A refused or failed request: the HTTP status again, why, and the field at fault when one is."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    statusCode: int  # the Powertools error body's own key
    message: str
    field: str | None = None


class ActionsAnswer(BaseModel):
    """GET /actions: every registered action, its params schema and the permissions it needs."""

    model_config = ConfigDict(defer_build=True)

    actions: list[dict[str, Any]]


class JobsAnswer(BaseModel):
    """GET /jobs: every job of the job file."""

    model_config = ConfigDict(defer_build=True)

    jobs: list[dict[str, Any]]


class RunAnswer(BaseModel):
    """POST /runs and GET /runs/{run_id}: the run; its results once it ran (queued: none yet)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    run_id: str
    status: Literal["completed", "queued", "running"]
    action: str
    job: str | None = None
    dry_run: bool
    requested_by: str | None = None
    target_count: int
    summary: dict[str, int] | None = None
    results: list[dict[str, Any]] | None = None
    next_token: str | None = None  # GET /runs/{run_id}: the next page of results (null: the last)
    results_uri: str | None = None  # where every result of the run is, as JSON Lines
    rerun_of: str | None = None  # the run this one runs again (POST /runs with "rerun")


class RunListEntry(BaseModel):
    """One run of GET /runs: what it is, who asked, when, and how its targets ended so far."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    run_id: str
    job: str | None = None
    action: str | None = None
    status: Literal["completed", "queued", "running"]
    mode: Literal["inline", "queued"] | None = None
    dry_run: bool
    requested_by: str | None = None
    created_at: str | None = None
    completed_at: str | None = None
    target_count: int
    counts: dict[str, int]


class RunListAnswer(BaseModel):
    """GET /runs: one page of the runs the caller may read, newest first; ``next_token`` goes on (null:
    the last page)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    runs: list[RunListEntry]
    next_token: str | None


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorAnswer}}}


def answer_response(description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": model}}}


# Every route: API Gateway refuses unsigned callers itself; the handler refuses a request without an IAM
# identity and (issue #10) callers without a grant.
FORBIDDEN = error_response("The caller has no IAM identity, or no grant for this")
ROUTE_RESPONSES: dict[str, dict[int, dict[str, Any]]] = {
    "list_actions": {200: answer_response("The registered actions", ActionsAnswer), 403: FORBIDDEN},
    "list_jobs": {200: answer_response("The job file's jobs", JobsAnswer), 403: FORBIDDEN},
    "create_run": {
        200: answer_response("The run ran at once (inline) and completed", RunAnswer),
        202: answer_response("The run was queued, one message per target; GET /runs/{run_id} follows it", RunAnswer),
        400: error_response("The request breaks a rule of the configuration (e.g. an unknown action)"),
        403: FORBIDDEN,
        404: error_response("No such job"),
        # 422 (the body does not match RunRequest, or the Idempotency-Key was used with another body) is
        # documented on every route by Powertools' request validation itself.
    },
    "get_run": {
        200: answer_response("The run, a summary and one page of its results", RunAnswer),
        400: error_response("A query parameter is malformed, or next_token is not one this API issued here"),
        403: FORBIDDEN,
        404: error_response("No such run"),
    },
    "list_runs": {
        200: answer_response("One page of the runs the caller may read, newest first", RunListAnswer),
        400: error_response("A query parameter is malformed, or next_token is not one this API issued here"),
        403: FORBIDDEN,
    },
}


def openapi_document(app: Any, **info: Any) -> dict[str, Any]:
    """The API's OpenAPI document: Powertools' own (``app.get_openapi_json_schema(**info)``), with one
    correction. Powertools documents a validation error's ``msg`` as required, yet leaves it out of the
    422 body on purpose (it could name Python internals); the document says what is really sent."""
    document: dict[str, Any] = json.loads(app.get_openapi_json_schema(**info))
    error = document.get("components", {}).get("schemas", {}).get("ValidationError")
    if error is not None:
        error["required"] = [name for name in error.get("required", []) if name != "msg"]
    return document
