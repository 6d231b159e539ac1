"""An API Gateway (REST, AWS_IAM auth) stand-in on loopback, for the tests of ``rolechain runs``.

It checks each request's SigV4 signature as API Gateway would (botocore's signer run again over the
request received, with the secret of the access key it names), turns the request into the REST proxy
event the API's handler takes (``requestContext.identity.userArn``: the identity whose key signed it)
and answers what the handler returns. Faults can be scripted: an answer in place of the handler's, or
after it ran (a lost answer), to hold the client's retries to what they promise.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.hub_support import load_event

Handler = Callable[[dict[str, Any]], dict[str, Any]]
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>[0-9]{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class Identity:
    """A caller API Gateway knows: its secret key, session token (None for long-term keys) and ARN."""

    secret_key: str
    arn: str
    token: str | None = None


class SignatureError(Exception):
    """Why a request's signature does not verify (API Gateway's 403)."""


def verify_sigv4(
    method: str, url: str, headers: Mapping[str, str], body: bytes, identities: Mapping[str, Identity]
) -> tuple[str, Identity, str]:
    """(access key, identity, region) of a request signed with SigV4 for ``execute-api`` over exactly
    ``method``, ``url`` (with its query), the headers it names as signed and ``body``.
    Raises SignatureError saying what does not match."""
    lower = {k.lower(): v for k, v in headers.items()}
    match = AUTHORIZATION.fullmatch(lower.get("authorization", ""))
    if match is None:
        raise SignatureError("Missing Authentication Token")
    if match["service"] != "execute-api":
        raise SignatureError(f"Credential should be scoped to correct service: 'execute-api', not {match['service']}")
    identity = identities.get(match["key"])
    if identity is None:
        raise SignatureError("The security token included in the request is invalid.")
    signed = match["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        raise SignatureError("host and x-amz-date must be signed")
    if identity.token is not None and lower.get("x-amz-security-token") != identity.token:
        raise SignatureError("The security token included in the request is invalid.")
    timestamp = lower["x-amz-date"]
    if timestamp[:8] != match["date"]:
        raise SignatureError("Date in Credential scope does not match the X-Amz-Date")
    request = AWSRequest(method=method, url=url, data=body, headers={k: lower[k] for k in signed if k in lower})
    request.context["timestamp"] = timestamp
    signer = SigV4Auth(Credentials(match["key"], identity.secret_key, identity.token), "execute-api", match["region"])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if expected != match["signature"]:
        raise SignatureError("The request signature we calculated does not match the signature you provided.")
    return match["key"], identity, match["region"]


@dataclass
class Received:
    """One request the server received, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    caller: str | None = None


@dataclass
class Fault:
    """Answer ``status`` instead of the handler (``after=False``) or after it ran (a lost answer)."""

    status: int
    after: bool = False
    body: bytes = b'{"message": "Service Unavailable"}'
    headers: dict[str, str] = field(default_factory=dict)


class ApiGateway:
    """The stand-in, serving ``handler`` under ``/<stage>`` on 127.0.0.1; ``url`` is its base URL."""

    def __init__(self, handler: Handler, identities: Mapping[str, Identity], stage: str = "v1") -> None:
        self.handler = handler
        self.identities = dict(identities)
        self.stage = stage
        self.received: list[Received] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gateway._serve(self)

            do_POST = do_GET
            do_PUT = do_GET
            do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), RequestHandler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/{stage}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ApiGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def requests(self, method: str | None = None, path: str | None = None) -> Iterator[Received]:
        return (r for r in self.received if (method is None or r.method == method) and (path is None or r.path == path))

    def _serve(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        parts = urlsplit(http.path)
        headers = dict(http.headers.items())
        received = Received(
            http.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}, headers, body
        )
        with self._lock:
            self.received.append(received)
            fault = self.faults.pop(0) if self.faults else None
        status, answer_headers, answer = self._answer(http, parts.path, parts.query, headers, body, fault, received)
        received.status = status
        http.send_response(status)
        for name, value in {"Content-Type": "application/json", **answer_headers}.items():
            http.send_header(name, value)
        http.send_header("Content-Length", str(len(answer)))
        http.end_headers()
        http.wfile.write(answer)

    def _answer(
        self,
        http: BaseHTTPRequestHandler,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        fault: Fault | None,
        received: Received,
    ) -> tuple[int, dict[str, str], bytes]:
        if fault is not None and not fault.after:
            return fault.status, fault.headers, fault.body
        url = f"http://{headers.get('Host', '')}{path}" + (f"?{query}" if query else "")
        try:
            _, identity, _ = verify_sigv4(http.command, url, headers, body, self.identities)
        except SignatureError as exc:
            return 403, {}, json.dumps({"message": str(exc)}).encode()
        prefix = f"/{self.stage}"
        if not (path == prefix or path.startswith(prefix + "/")):
            return 403, {}, b'{"message": "Missing Authentication Token"}'
        received.caller = identity.arn
        response = self.handler(rest_event(http.command, path[len(prefix) :] or "/", query, headers, body, identity))
        if fault is not None:
            return fault.status, fault.headers, fault.body
        text = response.get("body") or ""
        return int(response["statusCode"]), dict(response.get("headers") or {}), text.encode()


def rest_event(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, identity: Identity
) -> dict[str, Any]:
    """The API Gateway REST proxy event of a request (``events/api-get-run.json``'s shape)."""
    event = load_event("api-get-run.json")
    match = re.fullmatch(r"/runs/([^/]+)", path)
    params = parse_qs(query, keep_blank_values=True)
    event.update(
        {
            "resource": "/runs/{run_id}" if match else path,
            "path": path,
            "httpMethod": method,
            "pathParameters": {"run_id": unquote(match[1])} if match else None,
            "queryStringParameters": {k: v[-1] for k, v in params.items()} or None,
            "multiValueQueryStringParameters": params or None,
            "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "body": body.decode() if body else None,
        }
    )
    context = event["requestContext"]
    context.update({"path": path, "resourcePath": event["resource"], "httpMethod": method})
    # The access key is not passed on: what the handler sees is who signed, not with what.
    context["identity"].update({"userArn": identity.arn, "accessKey": None, "caller": None, "user": None})
    return event
