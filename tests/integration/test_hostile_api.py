"""Issue #10 defect 7, the API edge: hostile bodies and request contexts get 4xx answers (never 5xx),
and a property-based test over arbitrary bodies. In-process handler against the emulated hub."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rolechain_dev.emulator import Emulator, Seed

from tests.hub_support import FakeContext, create_hub_resources, load_event, load_handler, test_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(emulator: Emulator, landscapes: Any) -> Iterator[ModuleType]:
    """The API handler over a hub whose accounts are seeded once for the module (nothing here may act)."""
    seed: Seed = landscapes.fresh(targets=2)
    resources = create_hub_resources(emulator, seed)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for key, value in test_env(resources, seed, AWS_LAMBDA_FUNCTION_NAME="rolechain-test").items():
            monkeypatch.setenv(key, value)
        yield load_handler("api")
    landscapes.invalidate()


def post(api: ModuleType, body: str | None, **changes: Any) -> tuple[int, dict[str, Any]]:
    event = load_event("api-post-run-job.json")
    event["headers"].pop("Idempotency-Key", None)
    event["multiValueHeaders"].pop("Idempotency-Key", None)
    event["body"] = body
    event.update(changes)
    response = api.lambda_handler(event, FakeContext("api"))
    return response["statusCode"], json.loads(response["body"] or "{}")


def nested(depth: int) -> str:
    return '{"job": "inventory", "params": ' + '{"a": ' * depth + "1" + "}" * depth + "}"


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_api_answers_4xx_to_a_body_nested_thousands_deep(api: ModuleType, depth: int) -> None:
    status, body = post(api, nested(depth))
    assert status in (400, 422), body
    assert "nested" in json.dumps(body)


def test_api_answers_400_to_invalid_base64(api: ModuleType) -> None:
    status, body = post(api, "%%%not base64%%%", isBase64Encoded=True)
    assert status == 400 and "base64" in body["message"]


def test_api_decodes_a_valid_base64_body(api: ModuleType) -> None:
    encoded = base64.b64encode(b'{"job": "inventory", "surprise": 1}').decode()
    status, body = post(api, encoded, isBase64Encoded=True)
    assert status == 422 and ("body", "surprise") in {tuple(d["loc"]) for d in body["detail"]}


@pytest.mark.parametrize("body", ["not json", "{", "[1, 2", "\udcff", '"just a string"', "null", "[]"])
def test_api_answers_4xx_to_a_body_that_is_not_a_json_object(api: ModuleType, body: str) -> None:
    status, _ = post(api, body)
    assert status in (400, 422)


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"identity": None},
        {"identity": {}},
        {"identity": "alice"},
        None,
    ],
)
def test_api_without_an_identity_in_the_request_context_is_refused_with_403(
    api: ModuleType, emulator: Emulator, context: dict[str, Any] | None
) -> None:
    emulator.clear_requests()
    event = load_event("api-post-run-job.json")
    base = {k: v for k, v in event["requestContext"].items() if k != "identity"}
    status, body = post(api, event["body"], requestContext=None if context is None else {**base, **context})
    assert status == 403, body
    assert emulator.calls(action="AssumeRole") == []
    # GET /runs/{id} too: refused, never a crash (API Gateway would answer 502)
    read = load_event("api-get-run.json", RUN_ID="abc123")
    read["requestContext"] = None if context is None else {**base, **context}
    answer = api.lambda_handler(read, FakeContext("api"))
    assert answer["statusCode"] == 403, answer


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"job": "inventory", "regions": ["us-esat-1"]}, ("body", "regions", 0)),
        ({"action": "whoami", "accounts": ["٢٠٠٠٠٠٠٠٠٠٠١"]}, ("body", "accounts", 0)),
    ],
)
def test_api_refuses_an_unknown_region_and_non_ascii_digits_naming_the_field(
    api: ModuleType, emulator: Emulator, body: dict[str, Any], field: tuple[Any, ...]
) -> None:
    emulator.clear_requests()
    status, answer = post(api, json.dumps(body))
    assert status == 422 and field in {tuple(d["loc"]) for d in answer["detail"]}
    assert emulator.calls(action="AssumeRole") == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)
# Objects with the request's own keys, so validation goes past the top level.
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "job": JSON,
        "action": JSON,
        "params": JSON,
        "accounts": JSON,
        "regions": JSON,
        "dry_run": JSON,
        "surprise": JSON,
    },
)
BODIES = (
    st.text(max_size=200)
    | JSON.map(json.dumps)
    | SHAPED.map(json.dumps)
    | st.binary(max_size=100).map(lambda b: base64.b64encode(b).decode())
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, encoded=st.booleans())
def test_api_never_answers_5xx_to_any_body(api: ModuleType, emulator: Emulator, body: str, encoded: bool) -> None:
    emulator.clear_requests()
    status, _ = post(api, body, isBase64Encoded=encoded)
    assert status < 500
    # Nothing generated is a runnable request here, so nothing reaches STS (no accounts in scope).
    if status >= 400:
        assert emulator.calls(action="AssumeRole") == []
