"""schemathesis against the OpenAPI document the api handler itself generates (issue #10, fuzzing in CI).

Every operation gets valid and invalid requests generated from the document; each is turned into an API
Gateway REST event shaped like events/api-get-actions.json (the caller's IAM identity included) and
handled in-process against the emulator-backed hub. No answer may be a 5xx, and every answer must be a
status code, content type and body the document promises.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections import Counter
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extra (pip install -e .[test])")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from rolechain.hub.answers import openapi_document  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.core.transport import Response  # noqa: E402

from tests.hub_support import FakeContext, load_event  # noqa: E402
from tests.integration.test_handlers import Hub, hub  # noqa: E402

__all__ = ["hub"]  # the fixture, shared with the handler tests

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 30  # per generation mode: 4 operations x 2 modes x 30 = 240 requests, ~20 s
BASE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


def body_text(case: Any) -> tuple[str | None, bool]:
    """The body as API Gateway passes it on: text, or base64 (and True) when it is not UTF-8."""
    body = case.body
    if body is schemathesis.core.NOT_SET:
        return None, False
    if isinstance(body, bytes):
        try:
            return body.decode(), False
        except UnicodeDecodeError:
            return base64.b64encode(body).decode(), True
    if isinstance(body, str) and "json" not in (case.media_type or "json"):
        return body, False
    return json.dumps(body), False


class LambdaTransport:
    """Sends a schemathesis case to the api handler in-process, as API Gateway would hand it over."""

    def __init__(self, api: ModuleType) -> None:
        self.api = api
        self.template = load_event("api-get-actions.json")

    def event(self, case: Any) -> dict[str, Any]:
        path = case.formatted_path
        headers = {str(k): str(v) for k, v in (case.headers or {}).items()}
        event = copy.deepcopy(self.template)
        body, encoded = body_text(case)
        if body is not None:
            headers.setdefault("Content-Type", case.media_type or "application/json")
        query = {str(k): str(v) for k, v in (case.query or {}).items()} or None
        event.update(
            path=path,
            resource=case.operation.path.replace("<", "{").replace(">", "}"),
            httpMethod=case.method.upper(),
            body=body,
            isBase64Encoded=encoded,
            queryStringParameters=query,
            multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
            pathParameters=case.path_parameters or None,
            headers={**event["headers"], **headers},
            multiValueHeaders={**event["multiValueHeaders"], **{k: [v] for k, v in headers.items()}},
        )
        event["requestContext"].update(
            httpMethod=case.method.upper(), path=f"/v1{path}", resourcePath=event["resource"]
        )
        return event

    def send(self, case: Any) -> Response:
        event = self.event(case)
        answer = self.api.lambda_handler(event, FakeContext("api"))
        content = answer.get("body") or ""
        raw = base64.b64decode(content) if answer.get("isBase64Encoded") else content.encode()
        headers = {k.lower(): list(v) for k, v in (answer.get("multiValueHeaders") or {}).items()}
        headers.update({k.lower(): [v] for k, v in (answer.get("headers") or {}).items()})
        query = f"?{urlencode(event['queryStringParameters'])}" if event["queryStringParameters"] else ""
        request = requests.Request(
            event["httpMethod"], f"{BASE_URL}{event['path']}{query}", headers=event["headers"], data=event["body"]
        ).prepare()
        return Response(answer["statusCode"], headers, raw, request, elapsed=0.0, verify=True)


def api_document(api: ModuleType) -> dict[str, Any]:
    return openapi_document(api.app, title="rolechain", version="1")


ACCOUNTS = [f"20000000000{i}" for i in range(1, 6)]
# Requests the configuration accepts, so the 200 and 202 answers are generated too, not only refusals
# (random job and action names never name a configured one).
ACCEPTED_BODIES = st.one_of(
    st.fixed_dictionaries(
        {"job": st.sampled_from(["inventory", "tag-owner", "block-public-access"])}, optional={"dry_run": st.just(True)}
    ),
    st.fixed_dictionaries(
        {
            "action": st.sampled_from(["list_buckets", "whoami", "block_s3_public_access"]),
            "accounts": st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=3, unique=True),
        },
        optional={"dry_run": st.just(True), "regions": st.just(["us-east-1"])},
    ),
)


def test_the_served_document_documents_every_answer_the_routes_give(hub: Hub) -> None:
    paths = api_document(hub.load("api"))["paths"]
    assert set(paths["/runs"]["post"]["responses"]) >= {"200", "202", "400", "403", "404", "422"}
    assert set(paths["/runs/{run_id}"]["get"]["responses"]) >= {"200", "403", "404", "422"}
    for route in ("/actions", "/jobs"):
        assert set(paths[route]["get"]["responses"]) >= {"200", "403"}


@pytest.mark.parametrize(
    "body", [base64.b64encode(b'{"job": "inventory\x80"}').decode(), "not base64!"], ids=["not-utf8", "not-base64"]
)
def test_a_body_that_cannot_be_decoded_is_refused_with_400_not_a_crash(hub: Hub, body: str) -> None:
    # Found by schemathesis: API Gateway base64-encodes a body that is not UTF-8, and decoding it raised
    # out of the handler (API Gateway answers 502 for that)
    event = load_event("api-post-run-job.json")
    event.update(body=body, isBase64Encoded=True)
    answer = hub.load("api").lambda_handler(event, FakeContext("api"))
    assert answer["statusCode"] == 400 and json.loads(answer["body"])["field"] == "body"
    assert hub.emulator.calls(action="AssumeRole") == []


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(hub: Hub) -> None:
    api = hub.load("api")
    api.HUB.settings = api.HUB.settings.model_copy(update={"inline_target_limit": 2})  # larger runs: 202
    transport = LambdaTransport(api)
    schema = schemathesis.openapi.from_dict(api_document(api))
    operations = {op.label: op for op in (result.ok() for result in schema.get_all_operations())}
    statuses: Counter[tuple[str, int]] = Counter()
    problems: list[str] = []
    run_ids: list[str] = []

    def exchange(case: Any) -> Response:
        response = transport.send(case)
        statuses[(case.operation.label, response.status_code)] += 1
        # every failing case is reported, not only the first one, shrunk
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:
            problems.append(f"{case.method} {case.formatted_path} {case.body!r:.200}: {exc}"[:2000])
        return response

    def check_one(case: Any) -> None:
        exchange(case)

    def budget(strategy: st.SearchStrategy[Any], check: Callable[[Any], Any]) -> None:
        settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,  # the same cases on every CI run; a failure reproduces
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(case=strategy)(check))()

    started = time.monotonic()
    for operation in operations.values():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                budget(operation.as_strategy(generation_mode=mode), check_one)
            except Unsatisfiable:  # no invalid request exists (GET /actions takes no input at all)
                assert mode is GenerationMode.NEGATIVE, operation.label

    # Then requests the configuration accepts, each run read back through GET /runs/{run_id}
    def run_and_read_back(case: Any) -> None:
        response = exchange(case)
        if response.status_code in (200, 202):
            run_id = json.loads(response.content)["run_id"]
            run_ids.append(run_id)
            exchange(operations["GET /runs/{run_id}"].Case(path_parameters={"run_id": run_id}))

    posts = operations["POST /runs"]
    budget(ACCEPTED_BODIES.flatmap(lambda body: posts.as_strategy(body=body)), run_and_read_back)

    total = sum(statuses.values())
    print(f"\nschemathesis: {total} requests in {time.monotonic() - started:.1f} s")
    for (label, status), count in sorted(statuses.items()):
        print(f"  {label:24} {status}: {count}")
    assert not [key for key in statuses if key[1] >= 500]
    assert not problems, f"{len(problems)} answer(s) outside the document:\n" + "\n".join(problems[:10])
    # every documented success was reached, so the document's promises about them were checked
    assert {(label, code) for label, code in statuses if code < 300} >= {
        ("GET /actions", 200),
        ("GET /jobs", 200),
        ("POST /runs", 200),
        ("POST /runs", 202),
        ("GET /runs/{run_id}", 200),
    }
