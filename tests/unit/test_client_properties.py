"""Property tests of the client's input edges: whatever the API answers (any status, any body), and
whatever URL an operator gives, the client returns or raises its own error naming what was wrong;
never another exception, never a secret in the message."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from rolechain.client import ApiError, RetryPolicy, resolve_api_url
from rolechain.errors import ConfigError
from rolechain.runs_cli import report_of

from tests.unit.test_client import SECRET_KEY, TOKEN, answers, client

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)
KEYS = ["runs", "results", "next_token", "run_id", "status", "message", "field", "detail", "account", "region"]
# Bodies shaped like the API's, so the checks go past the top level.
SHAPED = st.dictionaries(st.sampled_from(KEYS), JSON | st.lists(st.dictionaries(st.sampled_from(KEYS), JSON)))
BODIES = (
    st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode()) | SHAPED.map(lambda v: json.dumps(v).encode())
)
STATUSES = st.sampled_from([200, 202, 204, 301, 400, 403, 404, 422, 429, 500, 502, 503])


@settings(max_examples=200, deadline=None)
@given(status=STATUSES, body=BODIES, route=st.sampled_from(["list", "show", "start"]))
@example(status=202, body=b'{"results": [{}]}', route="show")  # once reported as the API's 200
def test_any_answer_is_data_or_an_api_error(status: int, body: bytes, route: str) -> None:
    api, _ = client(answers((status, body), (200, {"runs": [], "next_token": None})), retry=RetryPolicy(attempts=1))
    try:
        if route == "list":
            list(api.list_runs(limit=5))
        elif route == "show":
            report_of(api.get_run("r1"))
        else:
            api.start_run({"job": "inventory"})
    except ApiError as exc:
        text = str(exc)
        assert text.startswith(("GET /runs", "POST /runs")) and SECRET_KEY not in text and TOKEN not in text
        assert exc.status == status


@settings(max_examples=200, deadline=None)
@given(run=st.dictionaries(st.sampled_from([*KEYS, "created_at", "completed_at", "action"]), JSON))
def test_any_run_is_a_report_or_an_api_error(run: dict[str, Any]) -> None:
    try:
        report = report_of(run)
    except ApiError as exc:
        assert "is malformed" in str(exc)
    else:
        assert len(report.results) == len(run.get("results") or [])


@settings(max_examples=200, deadline=None)
@given(url=st.text(max_size=60) | st.from_regex(r"\Ahttps?://[a-z0-9.:\[\]-]{0,20}(/[a-z0-9?#=]{0,10})?\Z"))
def test_any_url_is_accepted_as_https_or_loopback_http_or_refused_naming_the_flag(url: str) -> None:
    try:
        resolved = resolve_api_url(url, {}, None, lambda stack, key: None)
    except ConfigError as exc:
        assert exc.field == "--api-url"
    else:
        assert resolved.startswith(("https://", "http://127.", "http://localhost", "http://[::1]"))
        assert not resolved.endswith("/")
