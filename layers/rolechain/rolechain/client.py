"""A client of the deployed rolechain API: SigV4-signed requests (botocore's signer, service
``execute-api``, the caller's usual credentials), retried with backoff on 429 and 5xx (never on another
4xx), paged through ``next_token``. The operator's ``rolechain runs`` commands are built on it.

Errors: :class:`ApiError` for an answer the API refused or could not give (its ``message`` and ``field``
carried over), or one that is not what the API promises; ``ConfigError`` for a bad URL or missing
credentials. No request header (the signature, the session token) is ever put in an error or a log.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import boto3
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError, ClientError

from rolechain.errors import ConfigError, RolechainError
from rolechain.types import RUN_ID

API_URL_ENV = "ROLECHAIN_API_URL"
API_URL_OUTPUT = "ApiUrl"  # template.yaml's output
SERVICE = "execute-api"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
LOOPBACK_NAMES = frozenset({"localhost"})
MAX_BODY_SHOWN = 200  # characters of a malformed answer quoted in its error


class ApiError(RolechainError):
    """The API refused a request, failed, or answered something it does not promise.

    ``status`` is the HTTP status (None: no answer at all), ``message`` and ``field`` the API's own
    (``functions/api/app.py`` ``_error``), or what was wrong with the answer.
    """

    def __init__(self, method: str, path: str, status: int | None, message: str, field: str | None = None) -> None:
        where = f"{method} {path}"
        said = f"{message} (field: {field})" if field else message
        super().__init__(f"{where}: the API answered {status}: {said}" if status is not None else f"{where}: {said}")
        self.status = status
        self.message = message
        self.field = field


# -- where the API is -----------------------------------------------------------------------------
def resolve_api_url(
    flag: str | None,
    env: Mapping[str, str],
    stack: str | None,
    stack_output: Callable[[str, str], str | None],
) -> str:
    """The API's base URL: ``--api-url``, else ``$ROLECHAIN_API_URL``, else stack ``stack``'s ``ApiUrl``
    output (``stack_output(stack, "ApiUrl")``, asked only when the first two are not given).

    Raises:
        ConfigError: none of the three gives a URL, the stack has no such output, or the URL is not an
            https URL (plain http only to a loopback address: the signed request carries a session token).
    """
    hosts = {h.strip().lower() for h in env.get(API_HOSTS_ENV, "").split(",") if h.strip()}
    if flag:
        return checked_url(flag, "--api-url", hosts)
    if env.get(API_URL_ENV):
        return checked_url(env[API_URL_ENV], API_URL_ENV, hosts)
    if stack:
        url = stack_output(stack, API_URL_OUTPUT)
        if not url:
            raise ConfigError("--stack", f"stack {stack!r} has no {API_URL_OUTPUT} output")
        return checked_url(url, f"--stack {stack} ({API_URL_OUTPUT})", hosts)
    raise ConfigError(
        "--api-url",
        f"no API URL: give --api-url URL, set {API_URL_ENV}, or name the hub stack with --stack NAME "
        f"(its {API_URL_OUTPUT} output)",
    )


def checked_url(url: str, where: str, hosts: Collection[str] = ()) -> str:
    """``url`` without its trailing slash, when it is https to an API Gateway host (``*.execute-api.
    REGION.amazonaws.com``, or one of ``hosts``: a custom domain) or http to a loopback host; the signed
    request carries the caller's session token, so it goes nowhere else. Raises ConfigError."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - parsing it refuses a port that is not a number in range
    except ValueError as exc:
        raise ConfigError(where, f"{url!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(
            where, f"{url!r} is not an http(s) URL like https://abc123.execute-api.us-east-1.amazonaws.com/v1"
        )
    if parts.query or parts.fragment:
        raise ConfigError(where, f"{url!r}: the API's base URL has no query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(where, "the API's URL carries no user name or password")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ConfigError(where, f"{url!r}: plain http only to a loopback address (the request carries credentials)")
    host = parts.hostname.lower()
    if parts.scheme == "https" and not (EXECUTE_API_HOST.match(host) or host in hosts or _loopback(host)):
        raise ConfigError(
            where,
            f"{host} is not an API Gateway host (*.execute-api.REGION.amazonaws.com): the signed request carries "
            f"your session token; for a custom domain, list it in {API_HOSTS_ENV}",
        )
    return url.strip().rstrip("/")


API_HOSTS_ENV = "ROLECHAIN_API_HOSTS"  # custom domains of the API the client may sign requests to
EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def region_of_url(url: str) -> str | None:
    """The region of an ``execute-api`` URL (``https://ID.execute-api.REGION.amazonaws.com/...``), else None."""
    labels = (urlsplit(url).hostname or "").split(".")
    if len(labels) >= 4 and labels[1] == SERVICE:
        return labels[2]
    return None


def cloudformation_output(session: boto3.Session) -> Callable[[str, str], str | None]:
    """``(stack, key) -> value`` of a CloudFormation stack's output, read with ``session``'s credentials.
    Raises ConfigError when the stack cannot be described (naming it and what AWS said)."""

    def output(stack: str, key: str) -> str | None:
        try:
            stacks = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ConfigError("--stack", f"{stack!r}: {error.get('Code')}: {error.get('Message')}") from exc
        except BotoCoreError as exc:
            raise ConfigError("--stack", f"{stack!r}: {exc}") from exc
        outputs = stacks[0].get("Outputs", []) if stacks else []
        return next((o.get("OutputValue") for o in outputs if o.get("OutputKey") == key), None)

    return output


# -- requests -------------------------------------------------------------------------------------
class Transport(Protocol):
    """What sends a request: ``urllib3.PoolManager`` (tests give their own)."""

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``attempts`` tries of a request answered 429 or 5xx (or not answered at all); between them
    full-jitter exponential backoff from ``base_seconds`` up to ``max_seconds``, or the answer's
    Retry-After when it says (capped the same)."""

    attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 8.0

    def delay(self, attempt: int, retry_after: str | None, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_seconds)
            except ValueError:
                pass  # an HTTP date: back off as usual
        return rand() * min(self.max_seconds, self.base_seconds * 2.0 ** (attempt - 1))


@dataclass
class ApiClient:
    """Signed requests to the rolechain API at ``base_url``.

    ``session``: the boto3 session whose credentials sign (its profile or the standard chain); ``region``
    the signing region (default: the URL's, else the session's). ``page_size``: runs asked for per page
    of GET /runs (1-100); ``results_page_size``: results per page of GET /runs/{id} (None: the API's
    default). ``http`` and ``sleep`` are the transport and the wait between retries (tests give their own).
    """

    base_url: str
    session: boto3.Session
    region: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_seconds: float = 60.0
    page_size: int = 100
    results_page_size: int | None = None
    http: Transport = field(default_factory=lambda: urllib3.PoolManager(retries=False))
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.region = self.region or region_of_url(self.base_url) or self.session.region_name
        if not self.region:
            raise ConfigError("--region", "the signing region: the API URL names none and no region is configured")

    def sign(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers of the request signed with SigV4 for ``execute-api`` (Authorization, X-Amz-Date,
        X-Amz-Security-Token with temporary credentials). Raises ConfigError without credentials."""
        credentials = self.session.get_credentials()
        if credentials is None:
            raise ConfigError(
                "credentials", "no AWS credentials found (--profile, AWS_PROFILE or the standard AWS environment)"
            )
        request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
        SigV4Auth(credentials.get_frozen_credentials(), SERVICE, str(self.region)).add_auth(request)
        return dict(request.headers.items())

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | None] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Send one API request (signed anew on each attempt) and return (status, JSON object answer).

        Raises:
            ApiError: a 4xx, a 5xx or 429 after the last retry, no answer, or an answer that is not a JSON object.
        """
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        url = self.base_url + path + (f"?{urlencode(sorted(params.items()), quote_via=quote)}" if params else "")
        data = json.dumps(body).encode() if body is not None else None
        base_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            base_headers["Content-Type"] = "application/json"
        for attempt in range(1, self.retry.attempts + 1):
            signed = self.sign(method, url, data, base_headers)
            try:
                response = self.http.request(
                    method, url, body=data, headers=signed, timeout=self.timeout_seconds, redirect=False
                )
            except urllib3.exceptions.HTTPError as exc:
                if attempt == self.retry.attempts:
                    raise ApiError(method, path, None, f"no answer from {self.base_url}: {type(exc).__name__}") from exc
                self.sleep(self.retry.delay(attempt, None))
                continue
            if response.status in RETRY_STATUSES and attempt < self.retry.attempts:
                self.sleep(self.retry.delay(attempt, response.headers.get("Retry-After")))
                continue
            return response.status, _answer(method, path, response.status, response.data or b"")
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- the routes ---------------------------------------------------------------------------------
    def list_runs(
        self, *, job: str | None = None, status: str | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """GET /runs, newest first, page after page (``next_token``) until ``limit`` runs (None: all)."""
        token: str | None = None
        given = 0
        while True:
            page_size = min(self.page_size, limit - given) if limit is not None else self.page_size
            query = {"job": job, "status": status, "limit": page_size, "next_token": token}
            code, answer = self.request("GET", "/runs", query=query)
            _read(code, "/runs")
            runs = _list_of(answer, "runs", "GET /runs", code)
            for run in runs:
                yield run
                given += 1
                if limit is not None and given >= limit:
                    return
            token = _token(answer, "GET /runs", code, previous=token)
            if token is None:
                return

    def run_pages(self, run_id: str, *, status: str | None = None) -> Iterator[dict[str, Any]]:
        """GET /runs/{id}, one answer per page of its results (``next_token``) until the last."""
        path = "/runs/" + run_path(run_id)
        token: str | None = None
        while True:
            query = {"status": status, "limit": self.results_page_size, "next_token": token}
            code, answer = self.request("GET", path, query=query)
            _read(code, path)
            _list_of(answer, "results", f"GET {path}", code, required=False)
            yield answer
            token = _token(answer, f"GET {path}", code, previous=token)
            if token is None:
                return

    def get_run(self, run_id: str, *, status: str | None = None) -> dict[str, Any]:
        """The run with every result (all pages joined); ``status`` keeps only results of that status."""
        return _joined(self.run_pages(run_id, status=status))

    def start_run(self, body: Mapping[str, Any], idempotency_key: str | None = None) -> tuple[int, dict[str, Any]]:
        """POST /runs with an Idempotency-Key (a new one when not given), the same on every retry: the hub
        starts the run once. Returns (200 completed inline | 202 queued, the run)."""
        key = idempotency_key or str(uuid.uuid4())
        status, run = self.request("POST", "/runs", body=dict(body), headers={"Idempotency-Key": key})
        if not isinstance(run.get("run_id"), str):
            raise ApiError("POST", "/runs", status, "the answer names no run_id")
        return status, run

    def get(self, path: str, query: Mapping[str, str | int | None] | None = None) -> dict[str, Any]:
        code, answer = self.request("GET", path, query=query)
        _read(code, path)
        return answer

    def wait(
        self,
        run_id: str,
        *,
        interval_seconds: float = 2.0,
        timeout_seconds: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> dict[str, Any]:
        """Poll GET /runs/{id} until the run is completed; returns it with every result.
        Raises ApiError when it is not completed within ``timeout_seconds``."""
        deadline = clock() + timeout_seconds
        while True:
            pages = self.run_pages(run_id)
            first = next(pages)
            if first.get("status") == "completed":
                return _joined(itertools.chain([first], pages))
            if clock() + interval_seconds > deadline:
                raise ApiError(
                    "GET", f"/runs/{run_id}", None, f"the run is still {first.get('status')} after {timeout_seconds:g}s"
                )
            self.sleep(interval_seconds)


def _read(status: int, path: str) -> None:
    """A page the API read answers 200; a GET answered otherwise (202, 204...) is not one of its pages."""
    if status != 200:
        raise ApiError("GET", path, status, f"the answer is {status}, not the 200 of a page of the API")


def _joined(pages: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """The first page's run with the results of every page."""
    run: dict[str, Any] | None = None
    results: list[dict[str, Any]] = []
    for page in pages:
        run = run or page
        results.extend(page.get("results") or [])
    assert run is not None, "run_pages yields at least one page"
    joined = {**run, "results": results}
    joined.pop("next_token", None)
    return joined


def run_path(run_id: str) -> str:
    """``run_id`` for a URL path, once it is a run id (what the API's route accepts). Raises ConfigError."""
    if not re.fullmatch(RUN_ID, run_id):
        raise ConfigError("RUN_ID", f"{run_id!r} is not a run id (1-64 letters, digits, _ and -)")
    return run_id


def _answer(method: str, path: str, status: int, data: bytes) -> dict[str, Any]:
    """The JSON object of an answer; ApiError for a refusal (its message and field) or a malformed answer."""
    try:
        parsed: Any = json.loads(data) if data else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        parsed = None
        if status < 400:
            shown = data[:MAX_BODY_SHOWN].decode("utf-8", "replace")
            raise ApiError(method, path, status, f"the answer is not JSON: {shown!r}") from None
    if status >= 400:
        message, field_ = _refusal(parsed, data)
        raise ApiError(method, path, status, message, field_)
    if not isinstance(parsed, dict):
        raise ApiError(method, path, status, f"the answer is not a JSON object: {type(parsed).__name__}")
    return parsed


def _refusal(parsed: Any, data: bytes) -> tuple[str, str | None]:
    """(message, field) of an error answer: the API's ``message``/``field``, Powertools' validation
    ``detail`` (each ``loc`` and what was wrong), API Gateway's ``message``, or the start of the body."""
    if isinstance(parsed, dict):
        detail = parsed.get("detail")
        if isinstance(detail, list) and detail:
            problems = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc") or ())
                    problems.append(f"{loc}: {item.get('msg') or item.get('type') or 'invalid'}")
            first = detail[0] if isinstance(detail[0], dict) else {}
            where = ".".join(str(p) for p in first.get("loc") or ()) or None
            return "invalid request: " + "; ".join(problems), where
        message = parsed.get("message") or parsed.get("Message")
        if isinstance(message, str):
            field_ = parsed.get("field")
            return message, field_ if isinstance(field_, str) else None
    shown = data[:MAX_BODY_SHOWN].decode("utf-8", "replace").strip()
    return (shown or "no body"), None


def _list_of(
    answer: Mapping[str, Any], key: str, where: str, status: int, *, required: bool = True
) -> list[dict[str, Any]]:
    value = answer.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        method, _, path = where.partition(" ")
        raise ApiError(method, path, status, f"the answer's {key!r} is not a list of objects")
    return value


def _token(answer: Mapping[str, Any], where: str, status: int, *, previous: str | None) -> str | None:
    """The answer's ``next_token`` (None: the last page). Raises ApiError for one that is not a string, or
    the very token just sent (paging would never end)."""
    token = answer.get("next_token")
    if token is None or token == "":
        return None
    method, _, path = where.partition(" ")
    if not isinstance(token, str):
        raise ApiError(method, path, status, "the answer's 'next_token' is not a string")
    if token == previous:
        raise ApiError(method, path, status, "the answer's 'next_token' is the one just sent: paging would not end")
    return token


def run_body(
    *,
    job: str | None = None,
    action: str | None = None,
    params: Mapping[str, Any] | None = None,
    accounts: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    role_name: str | None = None,
    dry_run: bool | None = None,
) -> dict[str, Any]:
    """The POST /runs body (``RunRequest``) with only the fields given."""
    body: dict[str, Any] = {
        "job": job,
        "action": action,
        "params": dict(params) if params else None,
        "accounts": list(accounts) if accounts else None,
        "regions": list(regions) if regions else None,
        "role_name": role_name,
        "dry_run": dry_run,
    }
    return {k: v for k, v in body.items() if v is not None}
