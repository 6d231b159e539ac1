"""A local multi-account AWS for tests, demos and benchmarks: moto's server with a middleware in front.

The :class:`Emulator` runs moto's WSGI app in-process on a threaded werkzeug server bound to a loopback
address. A middleware in front of moto

* records every AWS request (service, operation, parameters, caller access key and account, status);
* can slow requests down (:attr:`Emulator.latency`) and make them fail (:meth:`Emulator.inject_fault`);
* enforces ``sts:AssumeRole`` the way IAM does (identity policy, trust policy, ExternalId, session tags,
  role-chaining and MaxSessionDuration limits), because moto itself lets anybody assume any role,
  existing or not;
* enforces S3's ``ExpectedBucketOwner`` (``x-amz-expected-bucket-owner``, recorded as the
  ``ExpectedBucketOwner`` param): a bucket of another account answers 403, which moto never does;
* recognises "admin" credentials (:meth:`Emulator.admin_session`) used for seeding and assertions: they
  bypass enforcement, latency and faults, and their requests are hidden from :meth:`Emulator.calls`.

:meth:`Emulator.seed` builds the standard rolechain landscape (hub user U1 -> hub role R1 -> target role R2
in every target account, plus S3 buckets) through HTTP, the same path real clients use.

moto is an optional dependency (``rolechain[emulator]``): it is imported only inside functions, so
``import rolechain_dev.emulator`` works without it. moto's state is process-global, so at most one
:class:`Emulator` may run per process, and ``moto.mock_aws`` must not be active in the same process.

Command line (for demos and ``sam local``)::

    python -m rolechain_dev.emulator serve [--host 127.0.0.1] [--port 0] [--targets 3] [--buckets 3]
                                       [--seed-file PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from http import HTTPStatus
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape as xml_escape

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, Credentials, ReadOnlyCredentials
from rolechain import iam
from rolechain.sessions import fast_timestamp

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from werkzeug.serving import BaseWSGIServer

__all__ = [
    "ADMIN_ROLE_NAME",
    "DEFAULT_EXTERNAL_ID",
    "DEFAULT_TARGET_POLICY",
    "HUB_ACCOUNT",
    "HUB_ROLE_NAME",
    "OPERATOR_USER_NAME",
    "TARGET_ROLE_NAME",
    "Emulator",
    "RecordedRequest",
    "Seed",
    "SeededAccount",
    "main",
    "target_account_id",
]

HUB_ACCOUNT = "111111111111"
OPERATOR_USER_NAME = "rolechain-operator"
HUB_ROLE_NAME = "rolechain-hub"
TARGET_ROLE_NAME = "rolechain-target"
DEFAULT_EXTERNAL_ID = "rolechain-demo-external-id"
# Role assumed by admin sessions. It need not exist: moto issues credentials for any role ARN and derives
# the account of later requests from those credentials (enforcement is bypassed for admin callers).
ADMIN_ROLE_NAME = "OrganizationAccountAccessRole"
DEFAULT_TARGET_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "RolechainDemoActions",
            "Effect": "Allow",
            "Action": [
                "s3:ListAllMyBuckets",
                "s3:GetBucketLocation",
                "s3:GetBucketTagging",
                "s3:PutBucketPublicAccessBlock",
                "s3:GetBucketPublicAccessBlock",
                "tag:GetResources",
                "tag:TagResources",
                "s3:PutBucketTagging",
                "sts:GetCallerIdentity",
            ],
            "Resource": "*",
        }
    ],
}

# Not a real key: moto maps unknown keys to its default account, which is all the bootstrap client needs
# (it only calls sts:AssumeRole to obtain per-account admin credentials).
_BOOTSTRAP_ACCESS_KEY = "AKIAEMULATORADMIN001"
_BOOTSTRAP_SECRET_KEY = "rolechain-emulator-bootstrap-secret-key"
_ADMIN_SESSION_NAME = "rolechain-emulator-admin"
_ROLE_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([\w+=,.@-]+)$")
_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_CHAINED_LIMIT = 3600
_JSON_BODY_LIMIT = 1 << 20  # parse JSON bodies up to 1 MiB; keep S3/XML text bodies up to 64 KiB
_TEXT_BODY_LIMIT = 1 << 16

_Creds = tuple[str, str, str | None]  # access key id, secret access key, session token


def target_account_id(index: int) -> str:
    """Account id of the ``index``-th (1-based) seeded target account: ``2`` followed by 11 digits."""
    if not 1 <= index <= 99_999_999_999:
        raise ValueError(f"target index out of range: {index}")
    return f"2{index:011d}"


# --------------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One AWS request seen by the emulator.

    ``service`` is the SigV4 signing name (``sts``, ``s3``, ``tagging``...; empty for unsigned requests).
    ``action`` is the operation: the ``Action`` parameter for query protocols (STS, IAM), the operation
    part of ``X-Amz-Target`` for JSON protocols, a derived name for S3 REST (``ListBuckets``,
    ``PutPublicAccessBlock``...), otherwise ``"METHOD /path"``. ``params`` holds the decoded query-string
    and form parameters; ``body`` the parsed JSON body (JSON protocols), the text body of small XML
    requests (S3), else None. ``account`` is the account moto attributes the caller's key to.
    ``status`` is the HTTP status returned; ``emulator_error`` the error code when the emulator itself
    answered (injected fault or AssumeRole enforcement), None when moto handled the request.
    """

    service: str
    action: str
    params: dict[str, str]
    access_key: str
    account: str
    admin: bool
    host: str
    method: str
    path: str
    status: int
    time: float
    region: str = ""
    body: Any = None
    duration: float = 0.0
    emulator_error: str | None = None


@dataclass(frozen=True)
class SeededAccount:
    """A target account created by :meth:`Emulator.seed`. ``role_arn`` is set even when the role is
    missing (``role_missing``), so a caller can try it and observe the failure."""

    account_id: str
    role_arn: str
    buckets: tuple[str, ...]
    role_missing: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "role_arn": self.role_arn,
            "buckets": list(self.buckets),
            "role_missing": self.role_missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeededAccount:
        return cls(
            account_id=str(data["account_id"]),
            role_arn=str(data["role_arn"]),
            buckets=tuple(str(b) for b in data.get("buckets", ())),
            role_missing=bool(data.get("role_missing", False)),
        )


@dataclass(frozen=True)
class Seed:
    """Everything a client needs to use a seeded emulator. ``to_dict()`` output is JSON-serialisable and
    round-trips through ``from_dict()``. Contains the operator's (fake) secret key, by design."""

    endpoint_url: str
    region: str
    hub_account: str
    user_arn: str
    user_access_key_id: str
    user_secret_access_key: str
    hub_role_arn: str
    target_role_name: str
    external_id: str
    targets: tuple[SeededAccount, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = [t.to_dict() for t in self.targets]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Seed:
        fields = {k: str(data[k]) for k in cls.__dataclass_fields__ if k != "targets"}
        return cls(**fields, targets=tuple(SeededAccount.from_dict(t) for t in data.get("targets", ())))

    @property
    def target_account_ids(self) -> tuple[str, ...]:
        """Ids of all target accounts, including those whose role is missing."""
        return tuple(t.account_id for t in self.targets)

    def target(self, account_id: str) -> SeededAccount:
        """The seeded target account ``account_id``; KeyError if it was not seeded."""
        for t in self.targets:
            if t.account_id == account_id:
                return t
        raise KeyError(account_id)


@dataclass
class _Fault:
    action: str
    code: str
    message: str
    status: int
    remaining: int
    match: Callable[[RecordedRequest], bool] | None


@dataclass(frozen=True)
class _ErrorReply:
    status: int
    code: str
    message: str


@dataclass(frozen=True)
class _Caller:
    """The principal behind an access key, as far as AssumeRole evaluation is concerned."""

    arn: str
    account: str
    principal: iam.Principal  # as a trust policy's Principal element sees it
    statements: tuple[dict[str, Any], ...] | None  # identity policy statements; None = account root
    chained: bool  # an assumed-role session (role chaining limits apply)
    session_policy: Any = None  # the policy passed on AssumeRole, narrowing a session (None: none)
    boundary: Any = None  # the permissions boundary's document, when one is set


@dataclass
class _RecordLog:
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_seq: int = 0
    entries: list[tuple[int, RecordedRequest]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# boto3 sessions bound to the emulator
# --------------------------------------------------------------------------------------------------


class _EmulatorSession(boto3.Session):
    """A boto3 Session whose clients default to the emulator's endpoint and ignore proxy env vars.

    Why: a client created without ``endpoint_url`` would otherwise send (fake-credential) requests to
    real AWS, and HTTP(S)_PROXY could route loopback traffic through a proxy.
    """

    def __init__(self, endpoint_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.emulator_endpoint_url = endpoint_url

    def client(self, service_name: str, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("endpoint_url") is None:
            kwargs["endpoint_url"] = self.emulator_endpoint_url
        no_proxy = Config(proxies={})
        user_config = kwargs.get("config")
        kwargs["config"] = no_proxy.merge(user_config) if user_config is not None else no_proxy
        return super().client(service_name, **kwargs)  # type: ignore[call-overload]


@lru_cache(maxsize=1)
def _shared_loader() -> Any:
    """One botocore data loader for every session the emulator creates.

    Why: each fresh botocore session re-reads and parses the service models (~150 ms for two clients);
    sharing the loader's cache makes a new session + clients ~10x cheaper, which matters when seeding
    hundreds of accounts.
    """
    return botocore.session.get_session().get_component("data_loader")


def _botocore_session() -> botocore.session.Session:
    """A botocore session isolated from the user's AWS config files, sharing the model loader."""
    bc = botocore.session.get_session()
    # Why: a developer's ~/.aws/config (addressing_style, retries, a default profile...) must not change
    # how tests talk to the emulator.
    bc.set_config_variable("config_file", os.devnull)
    bc.set_config_variable("credentials_file", os.devnull)
    bc.set_config_variable("profile", None)
    bc.register_component("data_loader", _shared_loader())
    return bc


def _new_session(endpoint_url: str, creds: _Creds | None, region: str) -> boto3.Session:
    bc = _botocore_session()
    kwargs: dict[str, Any] = {"region_name": region, "botocore_session": bc}
    if creds is not None:
        kwargs.update(aws_access_key_id=creds[0], aws_secret_access_key=creds[1], aws_session_token=creds[2])
    session = _EmulatorSession(endpoint_url, **kwargs)
    # boto3.Session appends its data dir to the (shared) loader's search path every time; undo duplicates.
    paths = _shared_loader().search_paths
    paths[:] = list(dict.fromkeys(paths))
    return session


class _ThreadCredentials(Credentials):
    """Credentials whose value is chosen per thread, so one client can act in many accounts.

    Why: creating boto3 clients costs ~10 ms each; seeding 200 accounts with per-account clients would
    spend seconds just building clients.
    """

    def __init__(self) -> None:
        super().__init__("unset", "unset")
        self._local = threading.local()

    @contextlib.contextmanager
    def use(self, creds: _Creds) -> Iterator[None]:
        previous = getattr(self._local, "creds", None)
        self._local.creds = ReadOnlyCredentials(*creds)
        try:
            yield
        finally:
            self._local.creds = previous

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        creds: ReadOnlyCredentials | None = getattr(self._local, "creds", None)
        if creds is None:
            raise RuntimeError("no credentials selected for this thread")
        return creds


class _FixedProvider(CredentialProvider):
    METHOD = "rolechain-emulator"

    def __init__(self, creds: Credentials) -> None:
        super().__init__()
        self._creds = creds

    def load(self) -> Credentials:
        return self._creds


# --------------------------------------------------------------------------------------------------
# Request description
# --------------------------------------------------------------------------------------------------

# subresource -> (GET, PUT, DELETE) operation names for bucket-level S3 requests
_S3_BUCKET_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None]] = {
    "publicAccessBlock": ("GetPublicAccessBlock", "PutPublicAccessBlock", "DeletePublicAccessBlock"),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging"),
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "policyStatus": ("GetBucketPolicyStatus", None, None),
    "location": ("GetBucketLocation", None, None),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "encryption": ("GetBucketEncryption", "PutBucketEncryption", "DeleteBucketEncryption"),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "lifecycle": (
        "GetBucketLifecycleConfiguration",
        "PutBucketLifecycleConfiguration",
        "DeleteBucketLifecycle",
    ),
    "cors": ("GetBucketCors", "PutBucketCors", "DeleteBucketCors"),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "notification": ("GetBucketNotificationConfiguration", "PutBucketNotificationConfiguration", None),
    "ownershipControls": (
        "GetBucketOwnershipControls",
        "PutBucketOwnershipControls",
        "DeleteBucketOwnershipControls",
    ),
    "object-lock": ("GetObjectLockConfiguration", "PutObjectLockConfiguration", None),
    "replication": ("GetBucketReplication", "PutBucketReplication", "DeleteBucketReplication"),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None),
    "accelerate": ("GetBucketAccelerateConfiguration", "PutBucketAccelerateConfiguration", None),
    "uploads": ("ListMultipartUploads", None, None),
    "versions": ("ListObjectVersions", None, None),
}
_S3_OBJECT_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None]] = {
    "tagging": ("GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging"),
    "acl": ("GetObjectAcl", "PutObjectAcl", None),
    "retention": ("GetObjectRetention", "PutObjectRetention", None),
    "legal-hold": ("GetObjectLegalHold", "PutObjectLegalHold", None),
    "attributes": ("GetObjectAttributes", None, None),
}
_METHOD_INDEX = {"GET": 0, "PUT": 1, "DELETE": 2}


def _check_bucket_owner(request: RecordedRequest) -> _ErrorReply | None:
    """S3's answer to a path-style request whose ExpectedBucketOwner does not own the bucket."""
    from moto.s3.models import s3_backends

    bucket = request.path.lstrip("/").split("/", 1)[0]
    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is not None and owner[1] != request.params["ExpectedBucketOwner"]:
        return _ErrorReply(403, "AccessDenied", "Access Denied")
    return None


def _s3_operation(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """A readable S3 operation name for a path-style request; ``"METHOD /path"`` when unknown."""
    parts = path.lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    fallback = f"{method} {path}"
    if not bucket:
        return "ListBuckets" if method == "GET" else fallback
    if not key:
        for sub, names in _S3_BUCKET_SUBRESOURCES.items():
            if sub in query and method in _METHOD_INDEX:
                return names[_METHOD_INDEX[method]] or fallback
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        plain = {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
        return plain.get(method, fallback)
    for sub, names in _S3_OBJECT_SUBRESOURCES.items():
        if sub in query and method in _METHOD_INDEX:
            return names[_METHOD_INDEX[method]] or fallback
    copy = "x-amz-copy-source" in headers
    if "uploads" in query and method == "POST":
        return "CreateMultipartUpload"
    if "uploadId" in query:
        multipart = {
            "PUT": "UploadPartCopy" if copy else "UploadPart",
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
            "GET": "ListParts",
        }
        return multipart.get(method, fallback)
    plain = {
        "GET": "GetObject",
        "PUT": "CopyObject" if copy else "PutObject",
        "HEAD": "HeadObject",
        "DELETE": "DeleteObject",
    }
    return plain.get(method, fallback)


# EventBridge Scheduler (REST JSON): (method, first path segment, a name follows) -> operation
_SCHEDULER_OPERATIONS = {
    ("GET", "schedules", False): "ListSchedules",
    ("POST", "schedules", True): "CreateSchedule",
    ("GET", "schedules", True): "GetSchedule",
    ("PUT", "schedules", True): "UpdateSchedule",
    ("DELETE", "schedules", True): "DeleteSchedule",
    ("GET", "schedule-groups", False): "ListScheduleGroups",
    ("POST", "schedule-groups", True): "CreateScheduleGroup",
    ("GET", "schedule-groups", True): "GetScheduleGroup",
    ("DELETE", "schedule-groups", True): "DeleteScheduleGroup",
    ("GET", "tags", True): "ListTagsForResource",
    ("POST", "tags", True): "TagResource",
    ("DELETE", "tags", True): "UntagResource",
}


def _scheduler_operation(method: str, path: str) -> str:
    """The Scheduler operation of a request (``"METHOD /path"`` when unknown)."""
    kind, _, name = path.lstrip("/").partition("/")
    return _SCHEDULER_OPERATIONS.get((method, kind, bool(name)), f"{method} {path}")


def _read_body(environ: WSGIEnvironment) -> bytes:
    """Read the whole request body and give moto a fresh, rewound ``wsgi.input`` of the right length."""
    stream = environ.get("wsgi.input")
    body = b""
    if stream is not None:
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit():
            body = stream.read(int(length)) if int(length) else b""
        elif environ.get("wsgi.input_terminated"):
            # chunked transfer encoding: werkzeug de-chunks and marks the end of the stream
            body = stream.read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _headers_of(environ: WSGIEnvironment) -> dict[str, str]:
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


def _signature_scope(headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[str, str, str]:
    """(access key, region, service) from a SigV4 header or presigned query; SigV2 gives only the key."""
    auth = headers.get("authorization", "")
    m = _CREDENTIAL_RE.search(auth)
    if m:
        return m.group(1), m.group(2), m.group(3).lower()
    if "X-Amz-Credential" in query:
        scope = query["X-Amz-Credential"].split("/")
        if len(scope) == 5:
            return scope[0], scope[2], scope[3].lower()
    if auth.startswith("AWS ") and ":" in auth:
        return auth[4:].split(":", 1)[0], "", ""
    return "", "", ""


# --------------------------------------------------------------------------------------------------
# Policy evaluation (just enough IAM for AssumeRole)
# --------------------------------------------------------------------------------------------------


def _statements(document: Any) -> list[dict[str, Any]]:
    """Statements of a policy document given as dict, JSON text or URL-encoded JSON text ([] when it is
    none of those: moto stores what it was given)."""
    try:
        return [dict(s) for s in iam.statements_of(document)]
    except iam.UnsupportedPolicy:
        return []


# --------------------------------------------------------------------------------------------------
# moto state access (lazy imports)
# --------------------------------------------------------------------------------------------------


def _account_of(access_key: str, cache: dict[str, tuple[str, bool]] | None = None) -> str:
    """The account moto attributes ``access_key`` to (moto's default account for unknown keys).

    moto's own lookup scans every account. ``cache`` remembers answers: a known key is re-validated with
    one dict lookup (so a deleted key is not remembered forever); an unknown key stays unknown (moto
    generates key ids itself, so a key nobody has been issued cannot become valid later).
    """
    from moto.iam.models import get_account_id_from, iam_backends

    if cache is not None and access_key in cache:
        account, known = cache[access_key]
        if not known or access_key in iam_backends[account]["global"].access_keys:
            return account
    account = get_account_id_from(access_key)
    if cache is not None:
        cache[access_key] = (account, access_key in iam_backends[account]["global"].access_keys)
    return account


def _policy_statements(holder: Any) -> list[dict[str, Any]]:
    """Inline + attached managed policy statements of a moto User, Group or Role."""
    result: list[dict[str, Any]] = []
    for document in list(holder.policies.values()):
        result.extend(_statements(document))
    for policy in list(holder.managed_policies.values()):
        for version in policy.versions:
            if version.is_default:
                result.extend(_statements(version.document))
    return result


def _find_role(account: str, role_arn: str) -> Any:
    from moto.iam.models import iam_backends

    if account not in iam_backends:
        return None
    for role in list(iam_backends[account]["global"].roles.values()):
        if role.arn == role_arn:
            return role
    return None


def _boundary_document(account: str, holder: Any) -> Any:
    """The permissions boundary's policy document of a moto User or Role, or None."""
    from moto.iam.models import iam_backends

    arn = getattr(holder, "permissions_boundary_arn", None) if holder is not None else None
    if not arn:
        boundary = getattr(holder, "permissions_boundary", None) if holder is not None else None
        arn = boundary.get("PermissionsBoundaryArn") if isinstance(boundary, dict) else boundary
    if not arn:
        return None
    policy = iam_backends[account]["global"].managed_policies.get(arn)
    if policy is None:
        return {"Statement": []}  # a boundary that does not exist allows nothing
    return next((v.document for v in policy.versions if v.is_default), {"Statement": []})


# IAM's action names where the operation's name is not the action's (S3's, mostly).
_IAM_ACTION_OF = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeletePublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeleteBucketTagging"): "s3:PutBucketTagging",
    ("s3", "DeleteBucketPolicy"): "s3:DeleteBucketPolicy",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "CopyObject"): "s3:PutObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    # SQS authorises a batch by the action of one entry
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
}
_IAM_PREFIX = {"tagging": "tag", "monitoring": "cloudwatch"}  # signing name -> IAM service prefix
_NEEDS_NO_PERMISSION = {("sts", "GetCallerIdentity")}
_DENIED_CODE = {"s3": "AccessDenied", "sts": "AccessDenied", "iam": "AccessDenied", "sqs": "AccessDenied"}


def iam_action(request: RecordedRequest) -> str | None:
    """The IAM action a request needs (``s3:ListAllMyBuckets`` for ListBuckets...), or None when the
    emulator cannot name the operation (such a request is not enforced)."""
    if not request.service or " " in request.action or not request.action:
        return None
    mapped = _IAM_ACTION_OF.get((request.service, request.action))
    return mapped or f"{_IAM_PREFIX.get(request.service, request.service)}:{request.action}"


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _transact_checks(request: RecordedRequest) -> list[tuple[str, str | None]]:
    """DynamoDB authorises TransactWriteItems by the action of each item on its table (IAM has no
    TransactWriteItems action); empty for any other request."""
    if (request.service, request.action) != ("dynamodb", "TransactWriteItems"):
        return []
    body = request.body if isinstance(request.body, dict) else {}
    region, account = request.region or "us-east-1", request.account
    checks: list[tuple[str, str | None]] = []
    for item in body.get("TransactItems") or []:
        for kind, operation in item.items() if isinstance(item, dict) else ():
            table = operation.get("TableName") if isinstance(operation, dict) else None
            arn = f"arn:aws:dynamodb:{region}:{account}:table/{table}" if isinstance(table, str) else None
            checks.append((f"dynamodb:{_TRANSACT_ACTIONS.get(kind, kind)}", arn))
    return checks or [("dynamodb:PutItem", None)]


def request_resource(request: RecordedRequest) -> str | None:
    """The ARN a request acts on where the emulator can tell (S3 buckets and objects, DynamoDB tables, SQS queues,
    SSM parameters); None otherwise (the policy's Resource is then not checked)."""
    region, account = request.region or "us-east-1", request.account
    if request.service == "s3":
        # a bucket's ARN, or an object's (bucket/key) for a request naming a key
        bucket_and_key = request.path.lstrip("/").split("?", 1)[0]
        return f"arn:aws:s3:::{unquote(bucket_and_key)}" if bucket_and_key else None
    body = request.body if isinstance(request.body, dict) else {}
    if request.service == "dynamodb" and isinstance(body.get("TableName"), str):
        return f"arn:aws:dynamodb:{region}:{account}:table/{body['TableName']}"
    queue_url = request.params.get("QueueUrl") or body.get("QueueUrl")
    if request.service == "sqs" and isinstance(queue_url, str):
        return f"arn:aws:sqs:{region}:{account}:{queue_url.rstrip('/').rsplit('/', 1)[-1]}"
    if request.service == "ssm" and isinstance(body.get("Name"), str):
        return f"arn:aws:ssm:{region}:{account}:parameter/{body['Name'].lstrip('/')}"
    if request.service == "iam":
        return _iam_resource(request.params, account)
    if request.service == "scheduler":
        return _scheduler_resource(request, body)
    return None


def _scheduler_resource(request: RecordedRequest, body: Mapping[str, Any]) -> str | None:
    """A schedule's ARN (its group from the body or the ``groupName`` query, else ``default``) or a group's;
    None for the lists, which IAM authorises on "*"."""
    region, account = request.region or "us-east-1", request.account
    kind, _, name = request.path.lstrip("/").partition("/")
    if not name:
        return None
    if kind == "schedules":
        group = body.get("GroupName") or request.params.get("groupName") or "default"
        return f"arn:aws:scheduler:{region}:{account}:schedule/{group}/{name}"
    if kind == "schedule-groups":
        return f"arn:aws:scheduler:{region}:{account}:schedule-group/{name}"
    return urllib.parse.unquote(name) if kind == "tags" else None


def _pass_role_checks(request: RecordedRequest) -> list[tuple[str, str | None, dict[str, Any]]]:
    """The ``iam:PassRole`` a request needs besides its own action: a schedule's target role, passed to
    ``scheduler.amazonaws.com`` (AWS checks it on CreateSchedule and UpdateSchedule)."""
    if (request.service, request.action) not in {("scheduler", "CreateSchedule"), ("scheduler", "UpdateSchedule")}:
        return []
    body = request.body if isinstance(request.body, dict) else {}
    target = body.get("Target") if isinstance(body.get("Target"), dict) else {}
    role = target.get("RoleArn") if isinstance(target, dict) else None
    passed = {"iam:PassedToService": "scheduler.amazonaws.com"}
    return [("iam:PassRole", role, passed)] if isinstance(role, str) else []


def _iam_resource(params: Mapping[str, str], account: str) -> str | None:
    """The ARN an IAM request names: a role or user (with its path, looked up), a group, a policy."""
    from moto.iam.models import iam_backends

    if "PolicyArn" in params:
        return params["PolicyArn"]
    backend = iam_backends[account]["global"] if account in iam_backends else None
    if "RoleName" in params:
        role = next((r for r in backend.roles.values() if r.name == params["RoleName"]), None) if backend else None
        return str(role.arn) if role is not None else f"arn:aws:iam::{account}:role/{params['RoleName']}"
    if "UserName" in params:
        user = backend.users.get(params["UserName"]) if backend else None
        return str(user.arn) if user is not None else f"arn:aws:iam::{account}:user/{params['UserName']}"
    if "GroupName" in params:
        return f"arn:aws:iam::{account}:group/{params['GroupName']}"
    return None


def _identify_caller(access_key: str, account: str) -> _Caller:
    """Map an access key (of ``account``) to a user, an assumed-role session or the account root.

    A key moto does not know at all is the account root; a known key whose user is gone has no policies.
    """
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    root = f"arn:aws:iam::{account}:root"
    backend = iam_backends[account]["global"]
    key = backend.access_keys.get(access_key)
    if key is not None and key.role_arn:
        role_arn: str = key.role_arn
        role_name = role_arn.rsplit("/", 1)[-1]
        assumed = sts_backends[account]["aws"].get_assumed_role_from_access_key(access_key)
        session = assumed.session_name if assumed is not None else "unknown"
        arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"
        role = _find_role(account, role_arn)
        statements = tuple(_policy_statements(role)) if role is not None else ()
        policy = assumed.policy if assumed is not None else None
        boundary = _boundary_document(account, role)
        return _Caller(arn, account, iam.Principal(arn, role_arn=role_arn), statements, True, policy or None, boundary)
    if key is not None and key.user_name:
        user = backend.users.get(key.user_name)
        if user is not None:
            statements_list = _policy_statements(user)
            for group in list(backend.groups.values()):
                if user in group.users:
                    statements_list.extend(_policy_statements(group))
            boundary = _boundary_document(account, user)
            return _Caller(user.arn, account, iam.Principal(user.arn), tuple(statements_list), False, None, boundary)
        arn = f"arn:aws:iam::{account}:user/{key.user_name}"
        return _Caller(arn, account, iam.Principal(arn), (), False)
    return _Caller(root, account, iam.Principal(root), None, False)


def _scp_layers(account: str) -> list[list[Any]]:
    """The service control policies over ``account``: one layer per level (the account, each OU above
    it, the root), each of which must allow a request. None for an account outside an organisation
    and for the management account, which SCPs do not restrict."""
    from moto.organizations.models import organizations_backends

    where = organizations_backends.master_accounts.get(account)
    if where is None:
        return []
    backend = organizations_backends[where[0]][where[1]]
    level: Any = next((a for a in backend.accounts if a.id == account), None)
    layers: list[list[Any]] = []
    while level is not None:
        layers.append([json.loads(p.content) for p in level.attached_policies if p.type == "SERVICE_CONTROL_POLICY"])
        parent = getattr(level, "parent_id", None)
        level = next((ou for ou in backend.ou if ou.id == parent), None) if parent else None
    return layers


def _assume_role_context(params: Mapping[str, str], caller: _Caller) -> dict[str, Any]:
    """The condition keys IAM sets on an AssumeRole request (those the emulator can know)."""
    tags = {
        params[key]: params.get(key.replace(".Key", ".Value"), "")
        for key in params
        if key.startswith("Tags.member.") and key.endswith(".Key")
    }
    context: dict[str, Any] = {
        "sts:ExternalId": params.get("ExternalId"),
        "sts:SourceIdentity": params.get("SourceIdentity"),
        "sts:RoleSessionName": params.get("RoleSessionName"),
        "aws:PrincipalArn": caller.principal.role_arn or caller.arn,  # a session's is its role's ARN
        "aws:PrincipalAccount": caller.account,
        "aws:PrincipalType": "AssumedRole" if caller.chained else "Account" if caller.statements is None else "User",
        "aws:TagKeys": list(tags) or None,
        **{f"aws:RequestTag/{key}": value for key, value in tags.items()},
    }
    # MFA: AssumeRole with SerialNumber and TokenCode is MFA-authenticated (the key the AWS CLI's
    # mfa_serial sets); a session's request without them is not; a user's long-term keys leave the key
    # absent, as in AWS (so BoolIfExists and Bool differ there).
    if params.get("SerialNumber") and params.get("TokenCode"):
        context["aws:MultiFactorAuthPresent"] = "true"
        context["aws:MultiFactorAuthAge"] = "0"
    elif caller.chained:
        context["aws:MultiFactorAuthPresent"] = "false"
    return context


_DYNAMODB_LOCK = threading.Lock()
_ACCESS_KEY_ID = re.compile(rb"<AccessKeyId>([A-Z0-9]+)</AccessKeyId>")


def _uncounted_sqs_attributes() -> None:
    """moto reads a queue's whole attribute map where SQS reads one setting: on every message it sends
    (ContentBasedDeduplication) and every message it receives (MessageRetentionPeriod). The map counts
    the queue's messages three times, so sending or receiving N messages costs O(N^2): 10,000 queued
    targets took the emulator tens of minutes. Inside those calls (per thread) the three approximate
    counts read 0; they are not what those calls read. GetQueueAttributes itself still counts."""
    from moto.sqs import models

    if getattr(models.SQSBackend.send_message, "rolechain_uncounted", False):
        return  # once per process
    inside = threading.local()
    counts = (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    )
    for name in counts:
        counted = getattr(models.Queue, name)

        def lazy(queue: Any, _counted: Any = counted) -> int:
            return 0 if getattr(inside, "depth", 0) else int(_counted.fget(queue))

        setattr(models.Queue, name, property(lazy))

    def quietly(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            inside.depth = getattr(inside, "depth", 0) + 1
            try:
                return method(*args, **kwargs)
            finally:
                inside.depth -= 1

        wrapper.rolechain_uncounted = True  # type: ignore[attr-defined]
        return wrapper

    models.SQSBackend.send_message = quietly(models.SQSBackend.send_message)  # type: ignore[method-assign]
    models.SQSBackend.is_message_valid_based_on_retention_period = quietly(  # type: ignore[method-assign]
        models.SQSBackend.is_message_valid_based_on_retention_period
    )


def _fast_serialised_timestamps() -> None:
    """moto's response serialiser reads every timestamp it writes back with botocore's parser (dateutil,
    ~0.3 ms each): a tenth of the emulator's CPU for S3's ListBuckets, one per bucket. ISO 8601 strings
    in UTC, what moto keeps, are read by :func:`rolechain.sessions.fast_timestamp` (the same instant);
    anything else by botocore's own ``parse_to_aware_datetime``."""
    from moto.core import serialize

    original = serialize.parse_to_aware_datetime  # type: ignore[attr-defined]  # botocore's, imported by moto
    if getattr(original, "rolechain_fast", False):
        return  # once per process

    def fast(value: Any) -> Any:
        if isinstance(value, str) and value.endswith("Z"):
            return fast_timestamp(value)
        return original(value)

    fast.rolechain_fast = True  # type: ignore[attr-defined]
    serialize.parse_to_aware_datetime = fast  # type: ignore[attr-defined]


def _a(noun: str) -> str:
    """``noun`` with its indefinite article, as AWS's messages have it ("an identity-based policy")."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


_MFA_SERIAL_RE = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:mfa/[\w+=,.@/-]+\Z")
_TOKEN_CODE_RE = re.compile(r"^\d{6}\Z")


# --------------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------------


class Emulator:
    """moto server for many accounts, with recording, latency/fault injection and AssumeRole enforcement.

    Use as a context manager or call :meth:`start` / :meth:`stop`. :meth:`start` resets moto's
    (process-global) state. Attributes that may be changed at any time:

    * ``enforce`` (default True): evaluate AssumeRole requests of non-admin callers (see
      :meth:`_check_assume_role` for the exact rules) and, with ``enforce_iam`` (default True), every
      other request too (:meth:`_check_permission`: identity policies, boundary, session policy).
      ``enforce_iam = False`` is the switch for speed where a test does not need it.
    * ``detailed_denials`` (default True): append AWS's newer "because no ... policy allows ..." reason
      to AccessDenied messages.
    * ``latency`` (seconds, default 0): sleep this long before handling each non-admin request.

    Admin requests (:meth:`admin_session`) are never delayed, faulted or enforced.
    """

    _active: Emulator | None = None
    _active_lock = threading.Lock()

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        region: str = "us-east-1",
        enforce: bool = True,
        enforce_iam: bool = True,
        detailed_denials: bool = True,
        latency: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.region = region
        self.enforce = enforce
        self.enforce_iam = enforce_iam
        self.detailed_denials = detailed_denials
        self.latency = latency
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._app: WSGIApplication | None = None
        self._log = _RecordLog()
        self._faults: list[_Fault] = []
        self._faults_lock = threading.Lock()
        self._admin_lock = threading.Lock()
        self._admin_keys: set[str] = {_BOOTSTRAP_ACCESS_KEY}
        self._admin_creds: dict[str, _Creds] = {}
        self._bootstrap_sts: Any = None
        self._key_accounts: dict[str, tuple[str, bool]] = {}

    # ---- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def endpoint_url(self) -> str:
        """``http://HOST:PORT`` clients should use (a wildcard bind address is replaced by loopback)."""
        if self._server is None:
            raise RuntimeError("emulator is not running; call start() first")
        port = self._server.server_address[1]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> Self:
        """Bind, start serving in a daemon thread and reset moto's state. Raises if another Emulator is
        running in this process (moto's backends are process-global)."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        _uncounted_sqs_attributes()
        _fast_serialised_timestamps()
        if os.environ.get("MOTO_ACCOUNT_ID"):
            # moto would then put every request in that one account, defeating multi-account emulation
            raise RuntimeError("unset MOTO_ACCOUNT_ID: it forces every request into one account")
        with Emulator._active_lock:
            if Emulator._active is not None:
                raise RuntimeError("another Emulator is running in this process; moto state is global")
            Emulator._active = self
        try:
            from werkzeug.serving import make_server

            self._app = _dispatcher_class()()
            # make_server binds here, so a bad host/port fails in the caller's thread
            self._server = make_server(
                self.host, self.port, self._wsgi, threaded=True, request_handler=_request_handler_class()
            )
            self._thread = threading.Thread(target=self._server.serve_forever, name="rolechain-emulator", daemon=True)
            self._thread.start()
            self.reset()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Idempotent. moto's state is left as is."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        with Emulator._active_lock:
            if Emulator._active is self:
                Emulator._active = None

    def reset(self) -> None:
        """Wipe all moto state (every account and service), recorded requests, pending faults and cached
        admin credentials. Settings (enforce, latency, detailed_denials) are kept."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")
        with opener.open(request, timeout=900) as response:  # minutes after 10,000 seeded accounts
            response.read()
        from moto.organizations.models import organizations_backends

        organizations_backends.master_accounts.clear()  # moto's reset keeps who belongs to which organisation
        with self._admin_lock:
            self._admin_keys = {_BOOTSTRAP_ACCESS_KEY}
            self._admin_creds.clear()
            self._bootstrap_sts = None  # the endpoint may have changed (stop() then start())
        self._key_accounts.clear()
        self.clear_faults()
        self.clear_requests()

    # ---- recording ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every recorded request (admin ones included), in arrival order."""
        with self._log.lock:
            entries = list(self._log.entries)
        return [r for _, r in sorted(entries, key=lambda e: e[0])]

    def calls(
        self,
        service: str | None = None,
        action: str | None = None,
        account: str | None = None,
        include_admin: bool = False,
    ) -> list[RecordedRequest]:
        """Recorded requests filtered by service, action and caller account (None = any), in arrival
        order. Admin requests are excluded unless ``include_admin``."""
        return [
            r
            for r in self.requests
            if (include_admin or not r.admin)
            and (service is None or r.service == service)
            and (action is None or r.action == action)
            and (account is None or r.account == account)
        ]

    def clear_requests(self) -> None:
        with self._log.lock:
            self._log.entries.clear()

    # ---- fault injection ------------------------------------------------------------------------

    def inject_fault(
        self,
        action: str,
        code: str,
        message: str,
        status: int = 400,
        times: int = 1,
        match: Callable[[RecordedRequest], bool] | None = None,
    ) -> None:
        """Make the next ``times`` non-admin requests whose action equals ``action`` (``"*"``: any) and
        for which ``match(request)`` is true fail with an AWS-shaped error ``code``/``message``/``status``.
        ``match`` sees the request before it is handled (``status`` is 0). Faults are checked in the order
        they were injected and before AssumeRole enforcement."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._faults_lock:
            self._faults.append(_Fault(action, code, message, status, times, match))

    def clear_faults(self) -> None:
        with self._faults_lock:
            self._faults.clear()

    def _take_fault(self, request: RecordedRequest) -> _Fault | None:
        with self._faults_lock:
            for fault in self._faults:
                if fault.action not in ("*", request.action):
                    continue
                if fault.match is not None and not fault.match(request):
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ---- enforcement ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def unenforced(self) -> Iterator[None]:
        """Disable AssumeRole enforcement (for every thread) inside the ``with`` block."""
        previous = self.enforce
        self.enforce = False
        try:
            yield
        finally:
            self.enforce = previous

    def _check_permission(self, request: RecordedRequest) -> _ErrorReply | None:
        """Decide a request like IAM would (None: let moto handle it): the caller's identity policies,
        then its permissions boundary and, for a session, the session policy passed on AssumeRole
        must each allow the request's IAM action on its resource, and none may deny it. The account
        root (a key moto does not know) may do anything. AssumeRole has its own check."""
        action = iam_action(request)
        if action is None or (request.service, request.action) in _NEEDS_NO_PERMISSION:
            return None
        caller = _identify_caller(request.access_key, request.account)
        if caller.statements is None:
            return None
        names = ["identity-based policy"]
        layers: list[list[Any]] = [[{"Statement": list(caller.statements)}]]
        if caller.boundary is not None:
            names.append("permissions boundary")
            layers.append([caller.boundary])
        if caller.session_policy is not None:
            names.append("session policy")
            layers.append([caller.session_policy])
        for scp in _scp_layers(caller.account):
            names.append("service control policy")
            layers.append(scp)
        context = {"aws:PrincipalArn": caller.principal.role_arn or caller.arn, "aws:PrincipalAccount": caller.account}
        checks: list[tuple[str, str | None, dict[str, Any]]] = [
            (a, r, {}) for a, r in _transact_checks(request) or [(action, request_resource(request))]
        ]
        for needed, resource, extra in checks + _pass_role_checks(request):
            reply = self._decide(request, caller, names, layers, needed, resource, {**context, **extra})
            if reply is not None:
                return reply
        return None

    def _decide(
        self,
        request: RecordedRequest,
        caller: _Caller,
        names: list[str],
        layers: list[list[Any]],
        action: str,
        resource: str | None,
        context: dict[str, Any],
    ) -> _ErrorReply | None:
        try:
            verdicts = [iam.evaluate(layer, action, resource, context) for layer in layers]
        except iam.UnsupportedPolicy as exc:
            verdicts, names = [iam.Evaluation(iam.Decision.DENY)], [f"policy that cannot be evaluated ({exc})"]
        denied = next((i for i, v in enumerate(verdicts) if v.decision == iam.Decision.DENY), None)
        missing = next((i for i, v in enumerate(verdicts) if not v.allowed), None)
        if denied is None and missing is None:
            return None
        on = f" on resource: {resource}" if resource else ""
        message = f"User: {caller.arn} is not authorized to perform: {action}{on}"
        if self.detailed_denials:
            message += (
                f" with an explicit deny in {_a(names[denied])}"
                if denied is not None
                else f" because no {names[missing or 0]} allows the {action} action"
            )
        return _ErrorReply(403, _DENIED_CODE.get(request.service, "AccessDeniedException"), message)

    def _check_assume_role(self, request: RecordedRequest) -> _ErrorReply | None:
        """Decide an ``sts:AssumeRole`` like IAM would; None means "let moto handle it".

        In order:

        0. ``DurationSeconds`` must be an integer in 900..43200 (ValidationError).
        1. The role must exist (AccessDenied, resource-based reason).
        2. For each required action - ``sts:AssumeRole``, plus ``sts:TagSession`` when session tags are
           passed and ``sts:SetSourceIdentity`` when ``SourceIdentity`` is - the caller's identity
           policies (user + its groups, or the session's role; inline and attached managed) must allow
           it on the role ARN, and the role's trust policy must allow it for the caller. Account-root
           callers (keys moto does not know) pass the identity check. Trust principals match the user
           ARN, the role ARN or session ARN of an assumed-role caller, the caller account's root ARN or
           bare id, or ``*``. Both are decided by :mod:`rolechain.iam` with every condition operator, on
           the keys of :func:`_assume_role_context` (sts:ExternalId, sts:SourceIdentity,
           aws:PrincipalArn, request tags, aws:MultiFactorAuthPresent from SerialNumber + TokenCode); the
           permissions boundary and the session's session policy must allow it too. Unlike AWS, a
           same-account trust policy naming the caller does not waive the identity-policy check (the
           emulator is stricter).
        3. A role-chaining caller may not ask for more than 3600 s; nobody for more than the role's
           MaxSessionDuration (ValidationError).
        """
        params = request.params
        role_arn = params.get("RoleArn", "")
        duration_text = params.get("DurationSeconds")
        duration: int | None = None
        if duration_text is not None:
            try:
                duration = int(duration_text)
            except ValueError:
                return _ErrorReply(400, "ValidationError", f"Invalid DurationSeconds: {duration_text}")
            if not 900 <= duration <= 43200:
                bound = "greater than or equal to 900" if duration < 900 else "less than or equal to 43200"
                return _ErrorReply(
                    400,
                    "ValidationError",
                    f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to "
                    f"satisfy constraint: Member must have value {bound}",
                )

        caller = _identify_caller(request.access_key, request.account)

        def denied(action: str, reason: str) -> _ErrorReply:
            message = f"User: {caller.arn} is not authorized to perform: {action} on resource: {role_arn}"
            if self.detailed_denials:
                message += reason
            return _ErrorReply(403, "AccessDenied", message)

        def resource_reason(action: str, decision: iam.Decision) -> str:
            if decision == iam.Decision.DENY:
                return " with an explicit deny in a resource-based policy"
            return f" because no resource-based policy allows the {action} action"

        m = _ROLE_ARN_RE.match(role_arn)
        role = _find_role(m.group(2), role_arn) if m else None
        if role is None:
            return denied("sts:AssumeRole", resource_reason("sts:AssumeRole", iam.Decision.IMPLICIT))

        actions = ["sts:AssumeRole"]
        if any(k.startswith("Tags.member.") for k in params):
            actions.append("sts:TagSession")
        if "SourceIdentity" in params:
            actions.append("sts:SetSourceIdentity")
        if "SerialNumber" in params or "TokenCode" in params:
            serial, code = params.get("SerialNumber", ""), params.get("TokenCode", "")
            if not (_MFA_SERIAL_RE.match(serial) and _TOKEN_CODE_RE.match(code)):
                return _ErrorReply(
                    403, "AccessDenied", "MultiFactorAuthentication failed with invalid MFA one time pass code."
                )
        trust = {"Statement": _statements(role.assume_role_policy_document)}
        context = _assume_role_context(params, caller)
        layers: list[tuple[str, list[Any]]] = []
        if caller.statements is not None:
            layers.append(("identity-based policy", [{"Statement": list(caller.statements)}]))
            if caller.boundary is not None:
                layers.append(("permissions boundary", [caller.boundary]))
            if caller.session_policy is not None:
                layers.append(("session policy", [caller.session_policy]))
            layers += [("service control policy", scp) for scp in _scp_layers(caller.account)]
        for action in actions:
            try:
                for name, layer in layers:
                    identity = iam.evaluate(layer, action, role_arn, context)
                    if identity.decision == iam.Decision.DENY:
                        return denied(action, f" with an explicit deny in {_a(name)}")
                for name, layer in layers:
                    if not iam.evaluate(layer, action, role_arn, context).allowed:
                        return denied(action, f" because no {name} allows the {action} action")
                decision = iam.evaluate([trust], action, role_arn, context, principal=caller.principal).decision
            except iam.UnsupportedPolicy as exc:
                return denied(action, f" because a policy cannot be evaluated: {exc}")
            if decision != iam.Decision.ALLOW:
                return denied(action, resource_reason(action, decision))

        if duration is not None:
            if caller.chained and duration > _CHAINED_LIMIT:
                return _ErrorReply(
                    400,
                    "ValidationError",
                    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
                    "role chaining.",
                )
            max_duration = int(role.max_session_duration or 3600)
            if duration > max_duration:
                return _ErrorReply(
                    400,
                    "ValidationError",
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                )
        return None

    # ---- the middleware -------------------------------------------------------------------------

    def _describe(self, environ: WSGIEnvironment, body: bytes, seq_time: float) -> RecordedRequest:
        headers = _headers_of(environ)
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", ""))
        query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        access_key, region, service = _signature_scope(headers, query)
        params = dict(query)
        content_type = headers.get("content-type", "")
        parsed_body: Any = None
        if content_type.startswith("application/x-www-form-urlencoded") and body:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        elif "json" in content_type and body and len(body) <= _JSON_BODY_LIMIT:
            try:
                parsed_body = json.loads(body)
            except ValueError:
                parsed_body = None
        elif body and len(body) <= _TEXT_BODY_LIMIT and ("xml" in content_type or body.startswith(b"<")):
            parsed_body = body.decode("utf-8", "replace")
        if "x-amz-expected-bucket-owner" in headers:
            params["ExpectedBucketOwner"] = headers["x-amz-expected-bucket-owner"]
        target = headers.get("x-amz-target", "")
        if "Action" in params:
            action = params["Action"]
        elif target:
            action = target.rsplit(".", 1)[-1]
        elif service == "s3":
            action = _s3_operation(method, path, query, headers)
        elif service == "scheduler":
            action = _scheduler_operation(method, path)
        else:
            action = f"{method} {path}"
        with self._admin_lock:
            admin = access_key in self._admin_keys
        # moto honours an explicit x-moto-account-id header over the access key; so do we
        account = headers.get("x-moto-account-id") or (
            _account_of(access_key, self._key_accounts) if access_key else ""
        )
        return RecordedRequest(
            service=service,
            action=action,
            params=params,
            access_key=access_key,
            account=account,
            admin=admin,
            host=headers.get("host", ""),
            method=method,
            path=path,
            status=0,
            time=seq_time,
            region=region,
            body=parsed_body,
        )

    def _record(self, seq: int, request: RecordedRequest) -> None:
        with self._log.lock:
            self._log.entries.append((seq, request))

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        app = self._app
        assert app is not None
        if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
            return app(environ, start_response)  # moto's control plane: not an AWS request
        started = time.time()
        clock = time.perf_counter()
        with self._log.lock:
            seq = self._log.next_seq
            self._log.next_seq += 1
        body = _read_body(environ)
        request = self._describe(environ, body, started)
        if request.account:
            # Why: moto would repeat the scan over all accounts for this request; tell it the same answer.
            environ.setdefault("HTTP_X_MOTO_ACCOUNT_ID", request.account)

        reply: _ErrorReply | None = None
        if not request.admin:
            if self.latency > 0:
                time.sleep(self.latency)
            fault = self._take_fault(request)
            if fault is not None:
                reply = _ErrorReply(fault.status, fault.code, fault.message)
            elif self.enforce and request.service == "s3" and "ExpectedBucketOwner" in request.params:
                reply = _check_bucket_owner(request)
            elif self.enforce and request.service == "sts" and request.action == "AssumeRole":
                try:
                    reply = self._check_assume_role(request)
                except Exception as exc:  # a bug here must surface as a failed call, not a hang or a pass
                    reply = _ErrorReply(500, "InternalFailure", f"emulator enforcement error: {exc!r}")
            elif self.enforce and self.enforce_iam:
                try:
                    reply = self._check_permission(request)
                except Exception as exc:
                    reply = _ErrorReply(500, "InternalFailure", f"emulator enforcement error: {exc!r}")

        if reply is not None:
            status_line, headers, payload = _error_payload(request, environ, reply)
            start_response(status_line, headers)
            self._record(
                seq,
                replace(
                    request,
                    status=reply.status,
                    duration=time.perf_counter() - clock,
                    emulator_error=reply.code,
                ),
            )
            return [payload]

        status_holder: list[int] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_holder.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info)

        try:
            # moto's DynamoDB reads and writes an item's dict without a lock: concurrent ADDs to one item
            # would lose updates that DynamoDB never loses. One DynamoDB request at a time here.
            with _DYNAMODB_LOCK if request.service == "dynamodb" else contextlib.nullcontext():
                result = list(app(environ, capture))
        finally:
            status = status_holder[-1] if status_holder else 500
            self._record(seq, replace(request, status=status, duration=time.perf_counter() - clock))
        if status == 200 and (request.service, request.action) == ("sts", "AssumeRole"):
            self._remember_key(request.params.get("RoleArn", ""), b"".join(result))
        return result

    def _remember_key(self, role_arn: str, response: bytes) -> None:
        """The account of the credentials AssumeRole just issued is the role's: remembered, so their
        requests are attributed without moto's scan of every account (quadratic with 10,000 accounts)."""
        found = _ACCESS_KEY_ID.search(response)
        parts = role_arn.split(":")
        if found is not None and len(parts) > 4 and parts[4]:
            self._key_accounts[found.group(1).decode()] = (parts[4], False)

    # ---- sessions -------------------------------------------------------------------------------

    def session(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        region: str | None = None,
    ) -> boto3.Session:
        """A boto3 Session with the given credentials whose clients default to this emulator's endpoint
        (and ignore proxy environment variables and the user's AWS config files)."""
        creds = (access_key_id, secret_access_key, session_token)
        return _new_session(self.endpoint_url, creds, region or self.region)

    def admin_session(self, account_id: str, region: str | None = None) -> boto3.Session:
        """A boto3 Session acting as an administrator of ``account_id``, for seeding and assertions.

        Credentials come from an STS AssumeRole of ``OrganizationAccountAccessRole`` in that account sent
        to the emulator (moto attributes later requests to the role's account); they are cached per
        account until :meth:`reset`. Requests with them bypass enforcement, latency and faults, and are
        recorded with ``admin=True``. Clients default to this emulator's endpoint.
        """
        creds = self._admin_credentials(account_id)
        return _new_session(self.endpoint_url, creds, region or self.region)

    def create_organization(self, management: str, members: Mapping[str, Sequence[str]]) -> dict[str, str]:
        """An AWS Organization managed by ``management`` with ``members``: account id -> the OU path it
        sits in below the root (``[]``: the root itself; OUs are made on first use). Returns
        ``{"root": root_id, "/".join(path): ou_id, ...}``. moto gives created accounts random ids, so the
        emulator renames each to the id asked for (a member joins with the IAM it already has). Every
        level has FullAWSAccess attached, as AWS does; SCPs attached later are enforced on the
        members' requests (:meth:`_check_permission`, :meth:`_check_assume_role`)."""
        from moto.organizations.models import organizations_backends

        orgs = self.admin_session(management).client("organizations")
        orgs.create_organization(FeatureSet="ALL")
        ids = {"root": str(orgs.list_roots()["Roots"][0]["Id"])}
        backend = organizations_backends[management]["aws"]
        for account, path in members.items():
            parent = ids["root"]
            for depth in range(1, len(path) + 1):
                key = "/".join(path[:depth])
                if key not in ids:
                    made = orgs.create_organizational_unit(ParentId=parent, Name=path[depth - 1])
                    ids[key] = str(made["OrganizationalUnit"]["Id"])
                parent = ids[key]
            status = orgs.create_account(AccountName=f"member-{account}", Email=f"{account}@example.com")
            made_id = str(status["CreateAccountStatus"]["AccountId"])
            fake = next(a for a in backend.accounts if a.id == made_id)
            fake.id = account
            organizations_backends.master_accounts.pop(made_id, None)
            organizations_backends.master_accounts[account] = (management, "aws")
            if parent != ids["root"]:
                orgs.move_account(AccountId=account, SourceParentId=ids["root"], DestinationParentId=parent)
        return ids

    def organization_reader(self, management: str, seed: Seed, name: str = "rolechain-org-reader") -> str:
        """A role ``name`` in ``management`` that may read Organizations and that ``seed``'s operator U1
        may assume (both sides of the hop); its ARN."""
        trust = {"Effect": "Allow", "Principal": {"AWS": seed.user_arn}, "Action": "sts:AssumeRole"}
        read = _allow(["organizations:Describe*", "organizations:List*"], "*")
        management_iam = self.admin_session(management).client("iam")
        arn = str(
            management_iam.create_role(RoleName=name, AssumeRolePolicyDocument=_policy_json([trust]))["Role"]["Arn"]
        )
        management_iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=_policy_json([read]))
        self.admin_session(seed.hub_account).client("iam").put_user_policy(
            UserName=seed.user_arn.rsplit("/", 1)[-1],
            PolicyName=f"assume-{name}",
            PolicyDocument=_policy_json([_allow(["sts:AssumeRole"], arn)]),
        )
        return arn

    def _admin_credentials(self, account_id: str) -> _Creds:
        if not re.fullmatch(r"\d{12}", account_id):
            raise ValueError(f"not an AWS account id: {account_id!r}")
        with self._admin_lock:
            cached = self._admin_creds.get(account_id)
            if cached is not None:
                return cached
            if self._bootstrap_sts is None:
                bootstrap = (_BOOTSTRAP_ACCESS_KEY, _BOOTSTRAP_SECRET_KEY, None)
                self._bootstrap_sts = _new_session(self.endpoint_url, bootstrap, self.region).client("sts")
            sts = self._bootstrap_sts
        response = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{ADMIN_ROLE_NAME}",
            RoleSessionName=_ADMIN_SESSION_NAME,
            DurationSeconds=43200,
        )
        c = response["Credentials"]
        creds: _Creds = (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        with self._admin_lock:
            self._admin_keys.add(creds[0])
            return self._admin_creds.setdefault(account_id, creds)

    # ---- seeding --------------------------------------------------------------------------------

    def seed(
        self,
        targets: int = 3,
        buckets_per_account: int = 3,
        region: str = "us-east-1",
        external_id: str = DEFAULT_EXTERNAL_ID,
        target_role_name: str = TARGET_ROLE_NAME,
        target_policy: dict[str, Any] | None = None,
        missing_role_accounts: Sequence[str] = (),
        workers: int = 8,
    ) -> Seed:
        """Create the rolechain landscape through HTTP (admin credentials) and describe it.

        Hub account ``111111111111``: user ``rolechain-operator`` (U1) with an access key and an inline
        policy allowing only ``sts:AssumeRole`` on R1; role ``rolechain-hub`` (R1) trusting U1 and
        ``lambda.amazonaws.com``, MaxSessionDuration 3600, allowed to AssumeRole/TagSession/
        SetSourceIdentity on ``arn:aws:iam::*:role/<target_role_name>``.
        Target accounts ``target_account_id(1..targets)``: role ``target_role_name`` (R2) trusting R1 with
        ``StringEquals sts:ExternalId``, MaxSessionDuration 3600, inline policy ``target_policy``
        (default :data:`DEFAULT_TARGET_POLICY`) - except accounts in ``missing_role_accounts`` - and
        ``buckets_per_account`` buckets ``rc-<account>-<NN>`` in ``region``.
        Expects a fresh (or :meth:`reset`) emulator: existing entities make IAM calls fail.
        """
        if targets < 0 or buckets_per_account < 0:
            raise ValueError("targets and buckets_per_account must be >= 0")
        account_ids = [target_account_id(i) for i in range(1, targets + 1)]
        unknown = set(missing_role_accounts) - set(account_ids)
        if unknown:
            raise ValueError(f"missing_role_accounts not among the targets: {sorted(unknown)}")
        user_arn = f"arn:aws:iam::{HUB_ACCOUNT}:user/{OPERATOR_USER_NAME}"
        hub_role_arn = f"arn:aws:iam::{HUB_ACCOUNT}:role/{HUB_ROLE_NAME}"

        # One botocore session and one client per service for the whole seeding; each worker thread
        # selects the account's admin credentials for its requests.
        thread_creds = _ThreadCredentials()
        bc = _botocore_session()
        bc.register_component("credential_provider", CredentialResolver([_FixedProvider(thread_creds)]))
        session = _EmulatorSession(self.endpoint_url, botocore_session=bc, region_name=region)
        retry = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=max(workers, 10))
        iam = session.client("iam", config=retry)
        s3 = session.client("s3", config=retry)

        with thread_creds.use(self._admin_credentials(HUB_ACCOUNT)):
            iam.create_user(UserName=OPERATOR_USER_NAME)
            key = iam.create_access_key(UserName=OPERATOR_USER_NAME)["AccessKey"]
            iam.put_user_policy(
                UserName=OPERATOR_USER_NAME,
                PolicyName="assume-rolechain-hub",
                PolicyDocument=_policy_json([_allow(["sts:AssumeRole"], hub_role_arn)]),
            )
            iam.create_role(
                RoleName=HUB_ROLE_NAME,
                Path="/",
                MaxSessionDuration=3600,
                AssumeRolePolicyDocument=_policy_json(
                    [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": user_arn},
                            "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                        },
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        },
                    ]
                ),
            )
            iam.put_role_policy(
                RoleName=HUB_ROLE_NAME,
                PolicyName="assume-rolechain-targets",
                PolicyDocument=_policy_json(
                    [
                        _allow(
                            ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                            f"arn:aws:iam::*:role/{target_role_name}",
                        )
                    ]
                ),
            )

        trust = _policy_json(
            [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": hub_role_arn},
                    "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                    "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
                }
            ]
        )
        permissions = json.dumps(target_policy if target_policy is not None else DEFAULT_TARGET_POLICY)
        missing = set(missing_role_accounts)

        def seed_account(account_id: str) -> SeededAccount:
            buckets = tuple(f"rc-{account_id}-{j:02d}" for j in range(1, buckets_per_account + 1))
            with thread_creds.use(self._admin_credentials(account_id)):
                if account_id not in missing:
                    iam.create_role(
                        RoleName=target_role_name,
                        AssumeRolePolicyDocument=trust,
                        MaxSessionDuration=3600,
                    )
                    iam.put_role_policy(
                        RoleName=target_role_name,
                        PolicyName="rolechain-target-permissions",
                        PolicyDocument=permissions,
                    )
                for bucket in buckets:
                    if region == "us-east-1":
                        s3.create_bucket(Bucket=bucket)
                    else:
                        s3.create_bucket(
                            Bucket=bucket,
                            CreateBucketConfiguration={"LocationConstraint": region},
                        )
            return SeededAccount(
                account_id=account_id,
                role_arn=f"arn:aws:iam::{account_id}:role/{target_role_name}",
                buckets=buckets,
                role_missing=account_id in missing,
            )

        # Threads overlap the HTTP round trips; the GIL (server and clients share it) limits the gain.
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rolechain-seed") as pool:
            seeded = tuple(pool.map(seed_account, account_ids))

        return Seed(
            endpoint_url=self.endpoint_url,
            region=region,
            hub_account=HUB_ACCOUNT,
            user_arn=user_arn,
            user_access_key_id=key["AccessKeyId"],
            user_secret_access_key=key["SecretAccessKey"],
            hub_role_arn=hub_role_arn,
            target_role_name=target_role_name,
            external_id=external_id,
            targets=seeded,
        )


def _allow(actions: list[str], resource: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def _policy_json(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _error_payload(
    request: RecordedRequest, environ: WSGIEnvironment, reply: _ErrorReply
) -> tuple[str, list[tuple[str, str]], bytes]:
    """An AWS-shaped error in the request's protocol: S3 XML, JSON (X-Amz-Target / JSON content type)
    or query-protocol XML (STS, IAM...)."""
    request_id = str(uuid.uuid4())
    status_line = f"{reply.status} {_reason(reply.status)}"
    code, message = xml_escape(reply.code), xml_escape(reply.message)
    content_type = str(environ.get("CONTENT_TYPE", ""))
    headers = [("x-amzn-RequestId", request_id), ("x-amz-request-id", request_id)]
    if request.service == "s3":
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers.append(("Content-Type", "application/xml"))
    elif environ.get("HTTP_X_AMZ_TARGET") or "json" in content_type or request.service in _REST_JSON_SERVICES:
        payload = json.dumps({"__type": reply.code, "message": reply.message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", reply.code)]
    else:
        kind = "Receiver" if reply.status >= 500 else "Sender"
        namespace = ' xmlns="https://sts.amazonaws.com/doc/2011-06-15/"' if request.service == "sts" else ""
        payload = (
            f"<ErrorResponse{namespace}><Error><Type>{kind}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
    if request.method == "HEAD":
        payload = b""
    headers.append(("Content-Length", str(len(payload))))
    return status_line, headers, payload


_REST_JSON_SERVICES = {"scheduler"}  # JSON errors even for a GET or DELETE, which has no JSON content type


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


@lru_cache(maxsize=1)
def _dispatcher_class() -> Callable[[], WSGIApplication]:
    """moto's DomainDispatcherApplication with the host -> backend lookup memoised.

    Why: moto lists its package directory (~180 ``isdir`` calls) twice per request to resolve the backend
    of a host; that was ~25% of the server's time per request. The mapping never changes.
    """
    # What moto's public ThreadedMotoServer is built from (it cannot take a middleware itself); not a
    # public API, so pyproject.toml bounds moto to the releases CI tests, lowest and newest.
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class _MemoisingDispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backend_by_host: dict[str, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host is None:
                return None
            if host not in self._backend_by_host:
                self._backend_by_host[host] = super().get_backend_for_host(host)
            return self._backend_by_host[host]

    return _MemoisingDispatcher


@lru_cache(maxsize=1)
def _request_handler_class() -> type[Any]:
    """werkzeug's request handler minus its per-request access log.

    Why werkzeug's and not moto's own (moto 5.2.3+ has one that keeps underscores in S3 metadata header
    names): that class is not public, older moto releases lack it, and rolechain sends no such header.
    """
    from werkzeug.serving import WSGIRequestHandler

    class _QuietRequestHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return None

    return _QuietRequestHandler


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``serve``: start, seed, write the Seed JSON to --seed-file and stdout (one line), then serve until
    SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m rolechain_dev.emulator", description="Local multi-account AWS emulator for rolechain."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start a seeded emulator and serve until SIGTERM/SIGINT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--targets", type=int, default=3)
    serve.add_argument("--buckets", type=int, default=3)
    serve.add_argument("--region", default="us-east-1")
    serve.add_argument("--external-id", default=DEFAULT_EXTERNAL_ID)
    serve.add_argument(
        "--missing-role", action="append", default=[], metavar="ACCOUNT", help="seed this target without R2"
    )
    serve.add_argument("--seed-file", default=None, help="write the Seed JSON here")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with Emulator(args.host, args.port, region=args.region) as emulator:
        seed = emulator.seed(
            targets=args.targets,
            buckets_per_account=args.buckets,
            region=args.region,
            external_id=args.external_id,
            missing_role_accounts=args.missing_role,
        )
        text = json.dumps(seed.to_dict(), separators=(",", ":"))
        if args.seed_file:
            with open(args.seed_file, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
