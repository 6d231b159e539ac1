"""The API client of ``rolechain runs`` without a network: where the URL comes from, what is signed,
which answers are retried, what an error says and how pages are followed. A recording transport
stands in for urllib3."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import urllib3
from rolechain import cli
from rolechain.client import API_URL_ENV, ApiClient, ApiError, RetryPolicy, resolve_api_url
from rolechain.errors import ConfigError

from tests.api_server import Identity, SignatureError, verify_sigv4

ACCESS_KEY = "AKIDCLIENTTEST000001"
SECRET_KEY = "clientTestSecretKey/0123456789abcdefghijkl"
TOKEN = "clientTestSessionToken+0123456789abcdefghijklmnopqrstuvwxyz=="
URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"


@dataclass
class Sent:
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]


@dataclass
class Recorder:
    """A transport answering from a script: (status, body, headers) per request, or an exception."""

    script: list[tuple[int, Any, dict[str, str]] | Exception]
    sent: list[Sent] = field(default_factory=list)

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        self.sent.append(Sent(method, url, kwargs.get("body"), dict(kwargs.get("headers") or {})))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        status, body, headers = step
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return urllib3.HTTPResponse(body=data, status=status, headers=headers, preload_content=True)


def answers(*steps: tuple[int, Any] | tuple[int, Any, dict[str, str]] | Exception) -> Recorder:
    return Recorder([s if isinstance(s, Exception) else (s[0], s[1], s[2] if len(s) > 2 else {}) for s in steps])


def session(token: str | None = TOKEN, region: str | None = "us-east-1") -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, aws_session_token=token, region_name=region
    )


def client(transport: Recorder, url: str = URL, **kwargs: Any) -> tuple[ApiClient, list[float]]:
    slept: list[float] = []
    api = ApiClient(url, session(), http=transport, sleep=slept.append, **kwargs)
    return api, slept


# -- where the URL comes from ---------------------------------------------------------------------
class Stack:
    def __init__(self, outputs: Mapping[str, str]) -> None:
        self.outputs = outputs
        self.asked: list[tuple[str, str]] = []

    def __call__(self, stack: str, key: str) -> str | None:
        self.asked.append((stack, key))
        return self.outputs.get(key)


def test_the_flag_wins_over_the_environment_and_the_stack() -> None:
    stack = Stack({"ApiUrl": "https://stack.execute-api.us-east-1.amazonaws.com/v1"})
    env = {API_URL_ENV: "https://env.execute-api.us-east-1.amazonaws.com/v1"}
    flag = "https://flag.execute-api.us-east-1.amazonaws.com/v1/"
    assert resolve_api_url(flag, env, "hub", stack) == flag.rstrip("/")
    assert stack.asked == []  # the stack is not even read


def test_the_environment_wins_over_the_stack() -> None:
    stack = Stack({"ApiUrl": "https://stack.execute-api.us-east-1.amazonaws.com/v1"})
    env = {API_URL_ENV: "https://env.execute-api.us-east-1.amazonaws.com/v1"}
    assert resolve_api_url(None, env, "hub", stack) == env[API_URL_ENV]
    assert stack.asked == []


def test_the_stack_output_is_the_last_resort() -> None:
    stack = Stack({"HubRoleArn": "x", "ApiUrl": "https://stack.execute-api.us-east-1.amazonaws.com/v1"})
    assert resolve_api_url(None, {}, "hub", stack) == "https://stack.execute-api.us-east-1.amazonaws.com/v1"
    assert stack.asked == [("hub", "ApiUrl")]


def test_no_url_names_the_three_ways_to_give_one() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_api_url(None, {API_URL_ENV: ""}, None, Stack({}))
    assert caught.value.field == "--api-url"
    assert "--api-url" in caught.value.rule and API_URL_ENV in caught.value.rule and "--stack" in caught.value.rule


def test_a_signed_request_goes_only_to_an_api_gateway_host_or_a_listed_custom_domain() -> None:
    # the request carries the caller's session token: never to a host nobody named as the API's
    with pytest.raises(ConfigError, match=r"api\.example\.com is not an API Gateway host") as caught:
        resolve_api_url("https://api.example.com/v1", {}, None, Stack({}))
    assert caught.value.field == "--api-url" and "ROLECHAIN_API_HOSTS" in caught.value.rule
    listed = {"ROLECHAIN_API_HOSTS": "other.example.com, API.example.com"}
    assert resolve_api_url("https://api.example.com/v1", listed, None, Stack({})) == "https://api.example.com/v1"
    assert resolve_api_url("https://abc.execute-api.cn-north-1.amazonaws.com.cn/v1", {}, None, Stack({}))
    with pytest.raises(ConfigError, match="no user name or password"):
        resolve_api_url("https://me:secret@abc.execute-api.us-east-1.amazonaws.com/v1", {}, None, Stack({}))


def test_a_stack_without_the_output_is_named() -> None:
    with pytest.raises(ConfigError, match="'hub' has no ApiUrl output") as caught:
        resolve_api_url(None, {}, "hub", Stack({"HubRoleArn": "x"}))
    assert caught.value.field == "--stack"


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("abc123.execute-api.us-east-1.amazonaws.com", "is not an http(s) URL"),
        ("ftp://example.com/v1", "is not an http(s) URL"),
        ("http://api.example.com/v1", "plain http only to a loopback address"),
        ("https://api.example.com/v1?x=1", "no query or fragment"),
    ],
)
def test_a_bad_url_is_refused_naming_where_it_came_from(url: str, rule: str) -> None:
    with pytest.raises(ConfigError, match=rule.replace("(", r"\(").replace(")", r"\)")) as caught:
        resolve_api_url(None, {API_URL_ENV: url}, None, Stack({}))
    assert caught.value.field == API_URL_ENV


def test_plain_http_is_allowed_to_loopback() -> None:
    assert resolve_api_url("http://127.0.0.1:3000", {}, None, Stack({})) == "http://127.0.0.1:3000"
    assert resolve_api_url("http://localhost:3000/", {}, None, Stack({})) == "http://localhost:3000"


def test_cli_without_a_url_exits_2_naming_the_three_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_URL_ENV, raising=False)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["runs", "list"], out=out, err=err)
    assert code == 2
    assert "--api-url" in err.getvalue() and API_URL_ENV in err.getvalue() and "--stack NAME" in err.getvalue()


# -- signing --------------------------------------------------------------------------------------
IDENTITIES = {ACCESS_KEY: Identity(SECRET_KEY, "arn:aws:iam::111111111111:user/alice", TOKEN)}


def test_the_request_is_sigv4_signed_for_execute_api_over_exactly_what_is_sent() -> None:
    transport = answers((202, {"run_id": "r1", "status": "queued"}))
    api, _ = client(transport)
    api.start_run({"job": "inventory"}, idempotency_key="key-1")
    sent = transport.sent[0]
    authorization = sent.headers["Authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization  # the region the URL names
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "x-amz-security-token", "idempotency-key", "content-type"} <= set(signed)
    assert sent.headers["X-Amz-Security-Token"] == TOKEN
    assert sent.body == b'{"job": "inventory"}' and sent.headers["Idempotency-Key"] == "key-1"
    # the signature checks out over the request as sent ...
    key, _, region = verify_sigv4(sent.method, sent.url, sent.headers, sent.body or b"", IDENTITIES)
    assert (key, region) == (ACCESS_KEY, "eu-west-1")
    # ... and over nothing else
    with pytest.raises(SignatureError):
        verify_sigv4(sent.method, sent.url, sent.headers, b'{"job": "tag-owner"}', IDENTITIES)
    with pytest.raises(SignatureError):
        verify_sigv4("PUT", sent.url, sent.headers, sent.body or b"", IDENTITIES)
    with pytest.raises(SignatureError):
        verify_sigv4(sent.method, sent.url, {**sent.headers, "Idempotency-Key": "key-2"}, sent.body or b"", IDENTITIES)


def test_the_query_string_is_signed_too() -> None:
    transport = answers((200, {"runs": [], "next_token": None}))
    api, _ = client(transport)
    list(api.list_runs(job="inventory", status="completed", limit=5))
    sent = transport.sent[0]
    assert parse_qs(urlsplit(sent.url).query) == {"job": ["inventory"], "status": ["completed"], "limit": ["5"]}
    verify_sigv4(sent.method, sent.url, sent.headers, b"", IDENTITIES)
    with pytest.raises(SignatureError):
        verify_sigv4(sent.method, sent.url.replace("limit=5", "limit=6"), sent.headers, b"", IDENTITIES)


def test_a_url_without_a_region_signs_with_the_sessions_and_without_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    api = ApiClient("http://127.0.0.1:3000", session(region="ca-central-1"), http=answers())
    assert api.region == "ca-central-1"
    with pytest.raises(ConfigError, match="signing region") as caught:
        ApiClient("http://127.0.0.1:3000", session(region=None), http=answers())
    assert caught.value.field == "--region"


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    api, _ = client(answers((200, {})))
    monkeypatch.setattr(api.session, "get_credentials", lambda: None)
    with pytest.raises(ConfigError, match="no AWS credentials"):
        api.get("/jobs")


def test_no_secret_is_in_an_error_even_when_the_api_echoes_nothing_but_headers() -> None:
    transport = answers((403, {"message": "User is not authorized to access this resource"}))
    api, _ = client(transport)
    with pytest.raises(ApiError) as caught:
        api.get("/runs/r1")
    text = str(caught.value) + repr(caught.value.args)
    assert "not authorized" in text
    for secret in (SECRET_KEY, TOKEN, transport.sent[0].headers["Authorization"].rsplit("=", 1)[1]):
        assert secret not in text


# -- retries --------------------------------------------------------------------------------------
def test_429_and_5xx_are_retried_with_backoff_and_each_attempt_is_signed_again() -> None:
    transport = answers((503, {"message": "busy"}), (429, {"message": "slow down"}), (200, {"jobs": []}))
    api, slept = client(transport, retry=RetryPolicy(attempts=4, base_seconds=1.0, max_seconds=8.0))
    assert api.get("/jobs") == {"jobs": []}
    assert len(transport.sent) == 3 and len(slept) == 2
    assert 0 <= slept[0] <= 1.0 and 0 <= slept[1] <= 2.0  # full jitter under 1 s, then 2 s
    for sent in transport.sent:
        verify_sigv4(sent.method, sent.url, sent.headers, b"", IDENTITIES)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    transport = answers((429, {}, {"Retry-After": "3"}), (503, {}, {"Retry-After": "120"}), (200, {}))
    api, slept = client(transport, retry=RetryPolicy(attempts=3, max_seconds=10.0))
    api.get("/jobs")
    assert slept == [3.0, 10.0]


def test_a_start_retried_keeps_its_idempotency_key() -> None:
    transport = answers((502, {"message": "Internal server error"}), (202, {"run_id": "r1", "status": "queued"}))
    api, _ = client(transport)
    status, run = api.start_run({"job": "inventory"})
    assert (status, run["run_id"]) == (202, "r1")
    keys = {s.headers["Idempotency-Key"] for s in transport.sent}
    assert len(transport.sent) == 2 and len(keys) == 1 and len(keys.pop()) >= 32


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_a_4xx_other_than_429_is_never_retried(status: int) -> None:
    transport = answers((status, {"statusCode": status, "message": "no"}), (200, {}))
    api, slept = client(transport)
    with pytest.raises(ApiError) as caught:
        api.get("/runs/r1")
    assert caught.value.status == status and len(transport.sent) == 1 and slept == []


def test_retries_end_with_the_last_answer() -> None:
    transport = answers(*[(500, {"message": "Internal server error"})] * 3)
    api, slept = client(transport, retry=RetryPolicy(attempts=3))
    with pytest.raises(ApiError, match="answered 500: Internal server error"):
        api.get("/jobs")
    assert len(transport.sent) == 3 and len(slept) == 2


def test_no_answer_at_all_is_retried_then_named() -> None:
    refused = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    transport = answers(refused, refused)
    api, _ = client(transport, retry=RetryPolicy(attempts=2))
    with pytest.raises(ApiError, match=r"GET /jobs: no answer from https://abc123\.execute-api") as caught:
        api.get("/jobs")
    assert caught.value.status is None


# -- error messages -------------------------------------------------------------------------------
def test_an_api_error_carries_its_message_and_field() -> None:
    body = {"statusCode": 400, "message": "unknown action 'nope'", "field": "action"}
    api, _ = client(answers((400, body)))
    with pytest.raises(ApiError) as caught:
        api.start_run({"action": "nope", "accounts": ["200000000001"]})
    assert str(caught.value) == "POST /runs: the API answered 400: unknown action 'nope' (field: action)"
    assert (caught.value.message, caught.value.field) == ("unknown action 'nope'", "action")


def test_a_validation_error_names_each_field() -> None:
    body = {"statusCode": 422, "detail": [{"loc": ["body", "accounts"], "type": "list_type"}]}
    api, _ = client(answers((422, body)))
    with pytest.raises(ApiError) as caught:
        api.start_run({"action": "list_buckets", "accounts": "200000000001"})
    assert caught.value.field == "body.accounts" and "body.accounts: list_type" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (200, b"<html>gateway</html>", "the answer is not JSON: '<html>gateway</html>'"),
        (200, b"[1, 2]", "the answer is not a JSON object: list"),
        (200, b"", "the answer is not a JSON object: NoneType"),
        (502, b"Bad Gateway", "answered 502: Bad Gateway"),
        (200, {"runs": "many"}, "the answer's 'runs' is not a list of objects"),
        (200, {"runs": [], "next_token": 7}, "the answer's 'next_token' is not a string"),
        (200, {"runs": [], "next_token": "t"}, "the answer's 'next_token' is the one just sent"),
    ],
)
def test_a_malformed_answer_says_what_is_wrong(status: int, body: Any, said: str) -> None:
    api, _ = client(answers((200, {"runs": [], "next_token": "t"}), (status, body)), retry=RetryPolicy(attempts=1))
    with pytest.raises(ApiError) as caught:
        list(api.list_runs())
    assert said in str(caught.value)


@pytest.mark.parametrize("status", [202, 204])
def test_a_read_answered_with_another_success_than_200_is_refused_naming_it(status: int) -> None:
    # what a proxy or a wrong URL may answer: never read as a run with results (found by hypothesis:
    # a 202 whose results were malformed was reported as the API's 200)
    run = {"run_id": "r1", "status": "completed", "results": [{}], "next_token": None}
    for read in (lambda api: api.get_run("r1"), lambda api: list(api.list_runs()), lambda api: api.get("/jobs")):
        api, _ = client(answers((status, {**run, "runs": [run]})), retry=RetryPolicy(attempts=1))
        with pytest.raises(ApiError) as caught:
            read(api)
        assert caught.value.status == status and f"the answer is {status}, not the 200" in str(caught.value)


def test_a_run_id_is_checked_before_any_request() -> None:
    transport = answers()
    api, _ = client(transport)
    with pytest.raises(ConfigError, match="is not a run id") as caught:
        api.get_run("../actions")
    assert caught.value.field == "RUN_ID" and transport.sent == []


# -- paging ---------------------------------------------------------------------------------------
def run(n: int) -> dict[str, Any]:
    return {"run_id": f"r{n}", "status": "completed"}


def test_list_runs_follows_next_token_and_stops_at_the_limit() -> None:
    transport = answers(
        (200, {"runs": [run(1), run(2)], "next_token": "t/1+"}),
        (200, {"runs": [run(3), run(4)], "next_token": "t2"}),
        (200, {"runs": [run(5)], "next_token": "t3"}),
    )
    api, _ = client(transport)
    assert [r["run_id"] for r in api.list_runs(limit=5)] == ["r1", "r2", "r3", "r4", "r5"]
    queries = [parse_qs(urlsplit(s.url).query) for s in transport.sent]
    assert [q.get("next_token") for q in queries] == [None, ["t/1+"], ["t2"]]
    assert [q["limit"] for q in queries] == [["5"], ["3"], ["1"]]  # never more than is still wanted
    assert "t%2F1%2B" in transport.sent[1].url  # a token's / and + are escaped, as SigV4 signs them


def test_list_runs_ends_at_the_last_page() -> None:
    transport = answers((200, {"runs": [run(1)], "next_token": "t1"}), (200, {"runs": [run(2)], "next_token": None}))
    api, _ = client(transport)
    assert [r["run_id"] for r in api.list_runs()] == ["r1", "r2"]
    assert parse_qs(urlsplit(transport.sent[0].url).query)["limit"] == ["100"]


def test_get_run_joins_every_page_of_results() -> None:
    meta = {"run_id": "r1", "status": "completed", "action": "list_buckets", "results_uri": "s3://b/k"}
    transport = answers(
        (200, {**meta, "results": [{"account": "200000000001"}], "next_token": "p2"}),
        (200, {**meta, "results": [{"account": "200000000002"}], "next_token": "p3"}),
        (200, {**meta, "results": [], "next_token": None}),
    )
    api, _ = client(transport)
    got = api.get_run("r1", status="failed")
    assert [r["account"] for r in got["results"]] == ["200000000001", "200000000002"]
    assert "next_token" not in got and got["results_uri"] == "s3://b/k"
    queries = [parse_qs(urlsplit(s.url).query) for s in transport.sent]
    assert all(q["status"] == ["failed"] for q in queries)
    assert [q.get("next_token") for q in queries] == [None, ["p2"], ["p3"]]


def test_wait_polls_until_completed_then_reads_every_page_once() -> None:
    meta = {"run_id": "r1", "action": "list_buckets"}
    transport = answers(
        (200, {**meta, "status": "queued", "results": [], "next_token": None}),
        (200, {**meta, "status": "running", "results": [], "next_token": None}),
        (200, {**meta, "status": "completed", "results": [{"account": "200000000001"}], "next_token": "p2"}),
        (200, {**meta, "status": "completed", "results": [{"account": "200000000002"}], "next_token": None}),
    )
    api, slept = client(transport)
    done = api.wait("r1", interval_seconds=0.5)
    assert done["status"] == "completed" and [r["account"] for r in done["results"]] == ["200000000001", "200000000002"]
    assert slept == [0.5, 0.5] and len(transport.sent) == 4 and transport.script == []


def test_wait_gives_up_at_its_deadline() -> None:
    transport = answers(*[(200, {"run_id": "r1", "status": "running", "next_token": None})] * 3)
    api, slept = client(transport)
    now = [0.0]

    def clock() -> float:
        return now[0]

    api.sleep = lambda seconds: now.__setitem__(0, now[0] + seconds)
    with pytest.raises(ApiError, match="the run is still running after 2s"):
        api.wait("r1", interval_seconds=1.0, timeout_seconds=2.0, clock=clock)
    assert len(transport.sent) == 3 and slept == []
