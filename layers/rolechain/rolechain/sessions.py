"""Chained sessions: the only module that creates boto3 sessions and clients.

``ChainSessions`` turns base credentials plus a :class:`~rolechain.chain.Chain` into boto3 sessions
and clients whose credentials refresh themselves by assuming the chain's roles again before they
expire. Three things keep it cheap across thousands of accounts:

* a process-wide, thread-safe cache of hop credentials keyed by (base, chain prefix): a chain asked
  for again while valid costs no STS call, 32 threads asking at once cost one AssumeRole per hop,
  and chains sharing a prefix assume the shared hops once; it keeps the :data:`DEFAULT_CACHE_ENTRIES`
  most recently used points for at most an hour unused (:class:`CredentialCache`), so a warm Lambda or
  a long CLI run does not grow with the accounts it has seen;
* every derived botocore session shares one loader (service models parsed once) and a copy of one
  pre-built event emitter, so a new chain costs ~2 ms instead of ~20 ms for a fresh session;
* clients are cached per (chain, service, region); a target's client (any chain with a hop) is a
  clone of one prototype client per (service, region) of the ``ChainSessions``, sharing its endpoint
  rules, service model, serialiser, parser, connection pool and event hooks, and signing each request
  with the target's own credentials (:class:`_TargetClient`): ~0.1 ms instead of 3-9 ms, and no
  per-client caches to warm again on every target's first requests. Each clone keeps its own
  retry quota (standard mode), client-side rate limiter (adaptive mode: after a throttling answer it
  sends no faster than the target account accepts) and S3 Express session cache, as a client of its
  own would;
* a hop STS refused for a reason a retry cannot fix (access denied, a bad request) is remembered for
  :data:`DENIED_HOP_TTL` seconds under the same key, so 40 targets behind a broken hop cost one
  AssumeRole of it and fail at once with the same cause.

:class:`ServiceLimits` caps the requests in flight per target account and service (a job's
``service_concurrency``) while :func:`limited` holds it: every target client takes a slot of its account
and service for each call, retries and their backoff included.

Credentials AWS rejects as expired or invalid although they looked valid are dropped with
:meth:`ChainSessions.forget`, so the next use assumes the chain's roles again.

An AssumeRole failure raises :class:`~rolechain.errors.AssumeRoleError`; there is no fallback to
the caller's own credentials.
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.retries import adaptive, standard
from botocore.utils import S3ExpressIdentityCache, parse_timestamp

from rolechain.chain import Chain, Hop
from rolechain.diagnose import classify_assume_role_error
from rolechain.errors import REJECTED_CREDENTIAL_CODES, AssumeRoleError, BaseCredentialsError, HopFailure

Clock = Callable[[], datetime]
DEFAULT_REFRESH_WINDOW = 300  # seconds before expiry at which credentials are renewed
DEFAULT_REGION = "us-east-1"
# Standard retry mode (exponential backoff with jitter) absorbs brief throttling; the number of
# attempts stays botocore's (AWS_MAX_ATTEMPTS, default 3) so a Lambda does not spend its time budget
# waiting: a queued target that is still throttled goes back to SQS instead.
CLIENT_CONFIG = Config(retries={"mode": "standard"}, max_pool_connections=50)
ADAPTIVE = Config(retries={"mode": "adaptive"})
# A prototype's connection pool serves every target of its service and region at once: as many
# connections as a run's threads (rolechain.jobs.MAX_CONCURRENCY), so none is opened and discarded.
SHARED_POOL_CONNECTIONS = 256
# How long a denied hop is remembered: about one run, so a fixed trust policy is seen on the next one.
DENIED_HOP_TTL = 30
# The credential cache's bounds (CredentialCache): chain points kept, and seconds one is kept unused.
DEFAULT_CACHE_ENTRIES = 1024
DEFAULT_CACHE_IDLE = 3600.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Identity:
    """What GetCallerIdentity says at one point of a chain."""

    arn: str
    account: str
    user_id: str

    def to_dict(self) -> dict[str, str]:
        return {"arn": self.arn, "account": self.account, "user_id": self.user_id}


def fast_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, with a fast path for the form AWS sends most: ISO 8601 in UTC.

    Why: botocore parses every timestamp of a response with dateutil (~0.3 ms each); ListBuckets has one
    per bucket, which made timestamps ~15% of an inventory's client CPU. ``datetime.fromisoformat`` reads
    the same instant about 50x faster. Its tzinfo is ``datetime.UTC`` (dateutil's is ``tzutc()``, or
    ``tzlocal()`` on a host whose zone is UTC): equal, and the same in ``isoformat()``. Anything else
    (RFC 822 dates, epoch seconds, other offsets) goes to botocore's parser unchanged.
    """
    if isinstance(value, str) and (value.endswith("Z") or value.endswith("+00:00")):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.utcoffset() == timedelta(0):
                return parsed.replace(tzinfo=UTC)
    result: datetime = parse_timestamp(value)
    return result


_Core = TypeVar("_Core", bound=botocore.session.Session)


def _new_core(session_class: type[_Core], template: botocore.session.Session, profile: str | None) -> _Core:
    """A botocore session sharing ``template``'s event handlers (a copy) and loader, STS endpoints
    regional, parsing timestamps with :func:`fast_timestamp`."""
    core = session_class(
        event_hooks=copy.copy(template._original_handler),  # type: ignore[attr-defined]
        include_builtin_handlers=False,
        profile=profile,
    )
    core.register_component("data_loader", template.get_component("data_loader"))
    core.set_config_variable("sts_regional_endpoints", "regional")
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=fast_timestamp)
    return core


class SessionFactory:
    """Builds boto3 sessions that share one loader and one pre-registered event emitter.

    A plain ``botocore.session.Session()`` spends ~20 ms registering its built-in handlers and
    each session parses service models again; copying a template's emitter and sharing its loader
    brings a new session to ~2 ms and a client to ~7 ms (see benchmarks/bench_sessions.py).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._template: botocore.session.Session | None = None
        self._local = threading.local()  # per thread: botocore sessions are not thread-safe

    def _get_template(self) -> botocore.session.Session:
        with self._lock:
            if self._template is None:
                self._template = botocore.session.Session()
            return self._template

    def session(self, credentials: Credentials, region: str, profile: str | None = None) -> boto3.Session:
        core = _new_core(botocore.session.Session, self._get_template(), profile)
        # botocore has no public setter for refreshable credentials on a session.
        core._credentials = credentials  # type: ignore[attr-defined]
        return self._boto3_session(core, region)

    def _boto3_session(self, core: botocore.session.Session, region: str) -> boto3.Session:
        paths = core.get_component("data_loader").search_paths
        with self._lock:
            session = boto3.Session(botocore_session=core, region_name=region)
            # boto3.Session appends its data directory to the loader's search paths, and the loader is
            # shared: without this, the list would grow by one entry per session for the process's life.
            if len(paths) > 1 and paths[-1] in paths[:-1]:
                paths.pop()
        return session

    def client(self, credentials: Credentials, service: str, region: str, profile: str | None, **kwargs: Any) -> Any:
        """A client signing with ``credentials``, made by this thread's client-making session of
        (region, profile) instead of a session of its own.

        A session costs ~1 ms and ~1,000 long-lived objects (a copy of the event emitter); when
        every target of a run gets its own, that is a third of the objects a cold run creates,
        and the cyclic garbage collector scans them again and again (see benchmarks/bench_runner.py).
        """
        makers: dict[tuple[str, str | None], tuple[_ClientMaker, boto3.Session]] | None
        makers = getattr(self._local, "makers", None)
        if makers is None:
            makers = self._local.makers = {}
        maker = makers.get((region, profile))
        if maker is None:
            core = _new_core(_ClientMaker, self._get_template(), profile)
            maker = makers[(region, profile)] = (core, self._boto3_session(core, region))
        core, session = maker
        core.client_credentials = credentials
        try:
            return session.client(service, **kwargs)  # type: ignore[call-overload]
        finally:
            core.client_credentials = None


class _ClientMaker(botocore.session.Session):
    """A botocore session that makes clients for whichever credentials :meth:`SessionFactory.client`
    sets: ``create_client`` takes a client's credentials from ``get_credentials``."""

    client_credentials: Credentials | None = None

    def get_credentials(self) -> Credentials | None:
        return self.client_credentials


_FACTORY = SessionFactory()


# The target client whose request is being made in this thread (set for the duration of each call).
_CURRENT_TARGET: ContextVar[_TargetClient | None] = ContextVar("rolechain_current_target", default=None)


def _current_target() -> _TargetClient:
    client = _CURRENT_TARGET.get()
    if client is None:
        # Only a target's own call signs: a prototype used by itself has nobody's credentials.
        raise NoCredentialsError()
    return client


class _TargetCredentials(Credentials):
    """A prototype's credentials: those of the target client whose call is running in this thread.

    The prototype's RequestSigner (shared by its clones) signs with these, so each request is signed
    with the credentials of the clone that made it, refreshed as they refresh.
    """

    method = "rolechain-target"  # botocore reads it when the prototype is made (no target is current then)

    def __init__(self) -> None:  # nothing else of its own: every attribute is the current target's
        pass

    @staticmethod
    def _target() -> Credentials:
        credentials = _current_target().rolechain_credentials
        assert credentials is not None  # a clone always has credentials
        return credentials

    @property
    def access_key(self) -> str:  # type: ignore[override]
        return str(self._target().access_key)

    @property
    def secret_key(self) -> str:  # type: ignore[override]
        return str(self._target().secret_key)

    @property
    def token(self) -> str | None:  # type: ignore[override]
        token: str | None = self._target().token
        return token

    @property
    def account_id(self) -> str | None:
        account: str | None = getattr(self._target(), "account_id", None)
        return account

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        return self._target().get_frozen_credentials()

    def get_deferred_property(self, property_name: str) -> Callable[[], Any]:
        # Endpoint rules read the account id when a request is made, i.e. the current target's.
        return lambda: getattr(self._target(), property_name, None)


_TARGET_CREDENTIALS = _TargetCredentials()


class ServiceLimits:
    """At most ``caps[service]`` requests in flight at once per target account to each service named
    (boto3 service names: ``s3``, ``ec2``...), across the regions and threads of a run; services not
    named are not capped. A call made while the same thread holds a slot of that account and service (an
    S3 Express session made while signing) does not take a second one."""

    def __init__(self, caps: Mapping[str, int]) -> None:
        self.caps = dict(caps)
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, str], threading.BoundedSemaphore] = {}
        self._held: ContextVar[frozenset[tuple[str, str]]] = ContextVar("rolechain_held_slots", default=frozenset())
        self.waits = 0  # calls that found every slot of their account and service taken (tests read it)

    @contextmanager
    def slot(self, account: str, service: str) -> Iterator[None]:
        cap = self.caps.get(service)
        key = (account, service)
        held = self._held.get()
        if cap is None or key in held:
            yield
            return
        with self._lock:
            semaphore = self._slots.get(key)
            if semaphore is None:
                semaphore = self._slots[key] = threading.BoundedSemaphore(cap)
        if not semaphore.acquire(blocking=False):
            with self._lock:
                self.waits += 1
            semaphore.acquire()
        token = self._held.set(held | {key})
        try:
            yield
        finally:
            self._held.reset(token)
            semaphore.release()


_LIMITS: ContextVar[ServiceLimits | None] = ContextVar("rolechain_service_limits", default=None)


@contextmanager
def limited(limits: ServiceLimits | None) -> Iterator[None]:
    """Target clients called in this context (this thread) take ``limits``' slots."""
    token = _LIMITS.set(limits)
    try:
        yield
    finally:
        _LIMITS.reset(token)


class _AccountClient(BaseClient):
    """Mixed into every target's client: each call takes a slot of the account's :class:`ServiceLimits`."""

    rolechain_account: str | None = None  # None: not a target's client (a prototype)

    def _make_api_call(self, operation_name: str, api_params: dict[str, Any]) -> Any:
        limits = _LIMITS.get()
        account = self.rolechain_account
        slot = nullcontext() if limits is None or account is None else limits.slot(account, self._service_name())
        with slot:
            return super()._make_api_call(operation_name, api_params)  # type: ignore[misc]

    def _service_name(self) -> str:
        name: str = self.meta.service_model.service_name
        return name


_ACCOUNT_CLASSES: dict[type, type] = {}


def _account_client(client: Any, account: str) -> Any:
    """``client`` (a target's own client, not a clone) taking its account's slots on each call."""
    cls = type(client)
    with _TARGET_CLASSES_LOCK:
        limited_cls = _ACCOUNT_CLASSES.get(cls)
        if limited_cls is None:
            limited_cls = _ACCOUNT_CLASSES[cls] = type(cls.__name__, (_AccountClient, cls), {})
    client.__class__ = limited_cls
    client.rolechain_account = account
    return client


class _TargetClient(_AccountClient):
    """Mixed into a prototype client's class: its clones are the targets' clients.

    A clone shares the prototype's attributes (endpoint and connection pool, endpoint rules and their
    cache, service model, serialiser, parser, signer, event hooks) and has its own credentials, retry
    quota and S3 Express session cache. Every request a clone makes runs with the clone as the current
    target (:data:`_CURRENT_TARGET`, per thread), which the shared signer and hooks read.
    """

    rolechain_credentials: Credentials | None = None  # None: the prototype itself
    # The standard retry mode's handlers of this clone: needs-retry and after-call (its own quota).
    rolechain_retry: tuple[Callable[..., Any], Callable[..., Any]] | None = None
    # The adaptive mode's client-side rate limiter of this clone (before-send, needs-retry): its own, so a
    # throttled account slows only its own requests.
    rolechain_rate: tuple[Callable[..., Any], Callable[..., Any]] | None = None
    rolechain_adaptive = False  # whether clones get a rate limiter
    rolechain_express_cache: S3ExpressIdentityCache | None = None
    _cache: dict[str, Any]  # botocore's per-client cache (paginator models), shared with the clones

    def _make_api_call(self, operation_name: str, api_params: dict[str, Any]) -> Any:
        if self.rolechain_credentials is None:
            # The prototype called by one of its hooks (the S3 region redirector) inside a target's call:
            # that call's target stays current.
            return super()._make_api_call(operation_name, api_params)
        token = _CURRENT_TARGET.set(self)
        try:
            return super()._make_api_call(operation_name, api_params)
        finally:
            _CURRENT_TARGET.reset(token)

    def generate_presigned_url(self, *args: Any, **kwargs: Any) -> str:
        token = _CURRENT_TARGET.set(self)
        try:
            url: str = super().generate_presigned_url(*args, **kwargs)  # type: ignore[misc]
            return url
        finally:
            _CURRENT_TARGET.reset(token)

    def generate_presigned_post(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        token = _CURRENT_TARGET.set(self)
        try:
            post: dict[str, Any] = super().generate_presigned_post(*args, **kwargs)  # type: ignore[misc]
            return post
        finally:
            _CURRENT_TARGET.reset(token)

    def can_paginate(self, operation_name: str) -> bool:
        """botocore's, with its first call serialised: it loads the service's paginator models into
        ``_cache``, which the clones share, and botocore's loader caches without a lock. Unserialised, the
        first clones of 20 threads paginating at once each listed botocore's data directories (~400
        services) to find them: ~1 s of a CLI run's CPU. A run that never paginates never loads them."""
        if "page_config" not in self._cache:
            with _PAGE_CONFIG_LOCK:
                return bool(super().can_paginate(operation_name))
        return bool(super().can_paginate(operation_name))

    def clone(self, credentials: Credentials, account: str) -> _TargetClient:
        """A client like this prototype that signs with ``credentials`` for ``account``: a shallow copy."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.rolechain_credentials = credentials
        clone.rolechain_account = account
        clone.rolechain_retry = _retry_handlers(clone)
        if self.rolechain_adaptive:
            clone.rolechain_rate = _rate_handlers(clone)
        return clone


_TARGET_CLASSES: dict[type, type] = {}
_TARGET_CLASSES_LOCK = threading.Lock()
_PAGE_CONFIG_LOCK = threading.Lock()  # the first load of a service's paginator models (``can_paginate``)


def _service_event(client: Any) -> str:
    name: str = client.meta.service_model.service_id.hyphenize()
    return name


class _RetryRecorder:
    """Stands in for a client while botocore builds a standard retry handler: records what it registers."""

    def __init__(self, client: Any) -> None:
        self.meta = self
        self.service_model = client.meta.service_model
        self.events = self
        self.handlers: dict[str, Callable[..., Any]] = {}

    def register(self, event_name: str, handler: Callable[..., Any], *_args: Any, **_kwargs: Any) -> None:
        self.handlers[event_name.split(".", 1)[0]] = handler


def _recorded(client: Any, register: Callable[[Any], Any], *events: str) -> tuple[Callable[..., Any], ...]:
    """The handlers ``register`` (a botocore retry mode's registration) gives a client for ``events``: a
    new set of its own, as botocore gives every client."""
    recorder = _RetryRecorder(client)
    fake: Any = recorder  # stands in for the client botocore expects
    register(fake)
    return tuple(recorder.handlers[event] for event in events)


def _retry_handlers(client: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A new standard retry handler and quota, as botocore gives every client: (needs-retry, after-call)."""
    max_attempts = client.meta.config.retries.get("total_max_attempts")
    register = standard.register_retry_handler
    if max_attempts is not None:
        register = functools.partial(standard.register_retry_handler, max_attempts=max_attempts)
    needs_retry, after_call = _recorded(client, register, "needs-retry", "after-call")
    return needs_retry, after_call


def _rate_handlers(client: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A new adaptive-mode rate limiter, as botocore gives every adaptive client: (before-send, needs-retry)."""
    before_send, needs_retry = _recorded(client, adaptive.register_retry_handler, "before-send", "needs-retry")
    return before_send, needs_retry


def _rate_before_send(**kwargs: Any) -> Any:
    rate = _current_target().rolechain_rate
    return None if rate is None else rate[0](**kwargs)


def _rate_on_response(**kwargs: Any) -> Any:
    rate = _current_target().rolechain_rate
    return None if rate is None else rate[1](**kwargs)


def _needs_retry(**kwargs: Any) -> Any:
    retry = _current_target().rolechain_retry
    assert retry is not None
    return retry[0](**kwargs)


def _release_retry_quota(**kwargs: Any) -> Any:
    retry = _current_target().rolechain_retry
    assert retry is not None
    return retry[1](**kwargs)


def _own_express_cache(request: Any, **_kwargs: Any) -> None:
    """Registered last on before-sign.s3: an S3 Express session comes from the current target's cache
    (made through the target's own client), never from a session another target created."""
    signing = request.context.get("signing", {})
    if signing.get("identity_cache") is None:
        return
    target = _current_target()
    if target.rolechain_express_cache is None:
        target.rolechain_express_cache = S3ExpressIdentityCache(target, RefreshableCredentials)
    signing["identity_cache"] = target.rolechain_express_cache


def make_prototype(client: Any, *, adaptive: bool = False) -> _TargetClient | None:
    """Turn a client made with :data:`_TARGET_CREDENTIALS` into the prototype of targets' clients;
    ``adaptive``: each clone gets a client-side rate limiter of its own (botocore's adaptive mode).

    Returns ``None`` (the caller then makes a client per target as before) when its retry mode is not
    botocore's standard one (the per-clone retry quota is built for that mode only), or when the service
    uses endpoint discovery (Timestream...): discovered endpoints are cached per client and per account.
    """
    if client.meta.config.retries.get("mode") != "standard":
        return None
    if client.meta.service_model.endpoint_discovery_operation is not None:
        return None
    cls = type(client)
    with _TARGET_CLASSES_LOCK:
        target_cls = _TARGET_CLASSES.get(cls)
        if target_cls is None:
            target_cls = _TARGET_CLASSES[cls] = type(cls.__name__, (_TargetClient, cls), {})
    client.__class__ = target_cls
    event = _service_event(client)
    events = client.meta.events
    # The prototype's own retry handler would share one quota among every target: dispatch to the clone's.
    events.unregister(f"needs-retry.{event}", unique_id=f"retry-config-{event}")
    events.register(f"needs-retry.{event}", _needs_retry, unique_id=f"retry-config-{event}")
    events.register(f"after-call.{event}", _release_retry_quota)
    if adaptive:
        client.rolechain_adaptive = True
        events.register(f"before-send.{event}", _rate_before_send)
        events.register(f"needs-retry.{event}", _rate_on_response)
    if event == "s3":
        events.register_last("before-sign.s3", _own_express_cache)
    prototype: _TargetClient = client
    return prototype


class _Node:
    """Credentials at one point of a chain (the base, or after a hop), with its own clients."""

    def __init__(
        self, broker: ChainSessions, parent: _Node | None, hop: Hop | None, index: int, session_name: str = ""
    ) -> None:
        self.broker = broker
        # Fixed when the credentials are first made: reused credentials keep the name of the run
        # that created them (the cache key leaves it out so a warm run reuses them).
        self.session_name = session_name
        self.parent = parent
        self.hop = hop
        self.index = index  # 0 = base, 1 = after the first hop, ...
        self.lock = threading.Lock()
        self.assumed_arn: str | None = None
        self._credentials: Credentials | None = None
        self._denied: tuple[HopFailure, datetime] | None = None  # the remembered refusal, and when
        self._sessions: dict[str, boto3.Session] = {}
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()

    # -- credentials -------------------------------------------------------------------------
    def credentials(self) -> Credentials:
        if self._credentials is not None:
            return self._credentials
        with self.lock:  # one AssumeRole however many threads arrive together
            if self._credentials is None:
                self._raise_if_denied()
                try:
                    self._credentials = self._load()
                except AssumeRoleError as exc:
                    if _remembered(exc.failure):
                        self._denied = (exc.failure, self.broker.clock())
                    raise
            return self._credentials

    def _raise_if_denied(self) -> None:
        """Raise the refusal STS gave this hop less than :data:`DENIED_HOP_TTL` seconds ago, if any."""
        if self._denied is None:
            return
        failure, at = self._denied
        if self.broker.clock() - at < timedelta(seconds=DENIED_HOP_TTL):
            raise AssumeRoleError(failure)
        self._denied = None

    def forget(self) -> None:
        """Drop this point's credentials, clients and any remembered refusal: the next use assumes again."""
        # One lock after the other, never nested: session() takes them in the opposite order.
        with self.lock:
            self._credentials = None
            self._denied = None
            self.assumed_arn = None
        with self._clients_lock:
            self._sessions.clear()
            self._clients.clear()

    def _load(self) -> Credentials:
        if self.hop is None:
            creds = self.broker.base_session.get_credentials()
            if creds is None:
                raise BaseCredentialsError(
                    "no base AWS credentials found (set a profile, AWS_* environment variables, or run "
                    "where an execution role provides them)"
                )
            return creds
        metadata = self._assume()
        return RefreshableCredentials(
            access_key=metadata["access_key"],
            secret_key=metadata["secret_key"],
            token=metadata["token"],
            expiry_time=datetime.fromisoformat(metadata["expiry_time"]),
            refresh_using=self._assume,
            method="rolechain-assume-role",
            time_fetcher=self.broker.clock,
            # Advisory: renew early but keep using valid credentials if STS is briefly unavailable;
            # mandatory: renew or fail, never sign with credentials about to expire.
            advisory_timeout=self.broker.refresh_window,
            mandatory_timeout=max(1, self.broker.refresh_window // 5),
        )

    def _assume(self) -> dict[str, str]:
        assert self.parent is not None and self.hop is not None
        params = self.hop.assume_role_params(self.session_name)
        sts = self.parent.client("sts", self.broker.sts_region)
        try:
            response = sts.assume_role(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            failure = classify_assume_role_error(
                hop=self.index,
                hop_spec=self.hop,
                caller_arn=self.parent.caller_arn(),
                code=code,
                message=exc.response.get("Error", {}).get("Message", str(exc)),
                status=exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            )
            if code in REJECTED_CREDENTIAL_CODES and self.parent.hop is not None:
                self.parent.forget()  # the previous hop's credentials were rejected: assume it again next time
            if self.broker.explain_denials:
                from rolechain.doctor import explain  # the doctor builds on sessions: imported when needed

                parent = self.parent
                failure = explain(
                    failure,
                    self.hop,
                    self.session_name,
                    lambda service: parent.client(service, self.broker.sts_region),
                    self.broker.facts,
                )
            raise AssumeRoleError(failure) from exc
        except (BotoCoreError, NoCredentialsError) as exc:
            raise AssumeRoleError(
                classify_assume_role_error(
                    hop=self.index,
                    hop_spec=self.hop,
                    caller_arn=self.parent.caller_arn(),
                    code=type(exc).__name__,
                    message=str(exc),
                )
            ) from exc
        self.assumed_arn = response["AssumedRoleUser"]["Arn"]
        self.broker.cache.record_assume()
        creds = response["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].astimezone(UTC).isoformat(),
        }

    def caller_arn(self) -> str:
        """ARN of this node's identity, for error messages. Never raises."""
        if self.assumed_arn is not None:
            return self.assumed_arn
        try:
            arn: str = self.client("sts", self.broker.sts_region).get_caller_identity()["Arn"]
        except Exception:  # only used to explain another failure; never mask it
            return "the base credentials (identity unknown)"
        self.assumed_arn = arn
        return arn

    # -- sessions and clients ----------------------------------------------------------------
    def session(self, region: str) -> boto3.Session:
        with self._clients_lock:
            session = self._sessions.get(region)
            if session is None:
                # The base too goes through the factory, so every session shares one loader.
                session = _FACTORY.session(self.credentials(), region, self.broker.profile)
                self._sessions[region] = session
            return session

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        client = self._clients.get(key)
        if client is not None:
            return client
        credentials = self.credentials()  # AssumeRole outside the lock
        prototype = self.broker.prototype(service, region) if self.hop is not None else None
        with self._clients_lock:
            client = self._clients.get(key)
            account = self.account()
            if client is None and prototype is not None and account is not None:
                client = self._clients[key] = prototype.clone(credentials, account)
            if client is None:
                # A copy: botocore writes the resolved attempts (AWS_MAX_ATTEMPTS) into the config's retries
                # dict, which would freeze the first client's value for every later client of the process.
                config = copy.deepcopy(CLIENT_CONFIG)
                if account is not None and self.broker.adaptive_retries:
                    config = config.merge(ADAPTIVE)  # a target's own client: its own rate limiter
                # Not self.session(region).client(...): a session per target is a third of a cold run's cost.
                client = _FACTORY.client(
                    credentials,
                    service,
                    region,
                    self.broker.profile,
                    endpoint_url=self.broker.endpoint_url,
                    config=config,
                )
                if account is not None:
                    client = _account_client(client, account)
                self._clients[key] = client
            return client

    def account(self) -> str | None:
        """The account this point's credentials act in (its role's), ``None`` for the base."""
        return None if self.hop is None else self.hop.role_arn.split(":")[4]


class Memo:
    """A small, thread-safe map whose entries last ``ttl`` seconds by ``clock``, at most ``size`` of them
    (the oldest goes first): facts read to explain a denial, reused while they are fresh."""

    def __init__(self, clock: Clock, *, ttl: float = 300.0, size: int = 64) -> None:
        self._clock, self._ttl, self._size = clock, timedelta(seconds=ttl), size
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[datetime, Any]] = {}

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or self._clock() - hit[0] >= self._ttl:
                return None
            return hit[1]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries.pop(key, None)
            if len(self._entries) >= self._size:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (self._clock(), value)


def _remembered(failure: HopFailure) -> bool:
    """Whether a refusal is worth remembering: not when a retry or fresh credentials may fix it."""
    return failure.likely_cause not in ("transient", "caller_credentials")


class CredentialCache:
    """Map from (base, chain prefix) to the node holding its credentials and clients; one per process by
    default, bounded so that a warm process's memory does not grow with the targets it has seen.

    Args:
        max_entries: chain points kept at most (a target behind the hub's role is one, the hub's role one
            more, shared); past it the least recently used goes. A run over at most this many targets,
            run again while its credentials are valid, sends no AssumeRole.
        max_idle: seconds an entry is kept unused; a chained session lasts at most an hour, so by default
            an entry goes when it could no longer have been reused without calling STS.
        clock: monotonic seconds (tests control it).

    An evicted point is assumed again when next asked for; a client handed out earlier keeps working (it
    holds its own credentials). ``assume_role_calls`` counts the AssumeRole calls made through the cache
    and ``evictions`` the entries dropped (tests and benchmarks read them).
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_CACHE_ENTRIES,
        max_idle: float = DEFAULT_CACHE_IDLE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_idle <= 0:
            raise ValueError("a credential cache keeps at least 1 entry for more than 0 seconds")
        self.max_entries, self.max_idle, self._clock = max_entries, max_idle, clock
        self._lock = threading.Lock()
        # key -> (node, when last used); least recently used first
        self._entries: OrderedDict[Hashable, tuple[_Node, float]] = OrderedDict()
        self.assume_role_calls = 0
        self.evictions = 0

    def record_assume(self) -> None:
        with self._lock:
            self.assume_role_calls += 1

    def node(self, key: Hashable, make: Callable[[], _Node]) -> _Node:
        now = self._clock()
        with self._lock:
            entry = self._entries.pop(key, None)
            node = entry[0] if entry is not None and now - entry[1] < self.max_idle else make()
            self._entries[key] = (node, now)  # the most recently used: last
            self._evict(now)
            return node

    def _evict(self, now: float) -> None:
        while self._entries:
            _, used = next(iter(self._entries.values()))
            if len(self._entries) <= self.max_entries and now - used < self.max_idle:
                return
            self._entries.popitem(last=False)
            self.evictions += 1

    def get(self, key: Hashable) -> _Node | None:
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry[0]

    def nodes(self) -> list[_Node]:
        """The nodes held now, least recently used first (a snapshot)."""
        with self._lock:
            return [node for node, _ in self._entries.values()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.assume_role_calls = 0
            self.evictions = 0


CACHE = CredentialCache()


class ChainSessions:
    """Sessions and clients at the end of chains that start from one set of base credentials.

    Args:
        base_session: where the base credentials come from (the Lambda's own role R1, or an
            operator's profile/environment as U1). Defaults to ``boto3.Session()``.
        region: region of the sessions and of the (regional) STS endpoint.
        endpoint_url: send every call there (an emulator); otherwise botocore's normal endpoint
            resolution applies, ``AWS_ENDPOINT_URL`` included.
        refresh_window: renew credentials this many seconds before they expire.
        clock: returns the current time (tests control it).
        cache: the credential cache; the process-wide one unless a test isolates itself.
        explain_denials: explain an AccessDenied hop from the caller's own policies where it may read them
            (:func:`rolechain.doctor.explain`: a few IAM reads per caller, cached), instead of a guess.
        adaptive_retries: give each target's client (per account, service and region) botocore's adaptive
            client-side rate limiter on top of the standard retries: once an account throttles, its
            requests slow to the rate it accepts, and other accounts' do not.
    """

    def __init__(
        self,
        base_session: boto3.Session | None = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        refresh_window: int = DEFAULT_REFRESH_WINDOW,
        clock: Clock = utc_now,
        cache: CredentialCache | None = None,
        explain_denials: bool = True,
        adaptive_retries: bool = True,
    ) -> None:
        self.base_session = base_session or boto3.Session()
        self.region = region or self.base_session.region_name or DEFAULT_REGION
        self.sts_region = self.region
        self.endpoint_url = endpoint_url
        self.refresh_window = refresh_window
        self.clock = clock
        self.profile = self.base_session.profile_name if self.base_session.profile_name != "default" else None
        self.cache = cache if cache is not None else CACHE
        self.explain_denials = explain_denials
        self.adaptive_retries = adaptive_retries
        self.facts = Memo(clock)  # what explained a denial (a caller's policies), reused for 5 minutes
        self._base_node = _Node(self, None, None, 0)
        # (service, region) -> the prototype of the targets' clients (None: its retry mode is not standard)
        self._prototypes: dict[tuple[str, str], _TargetClient | None] = {}
        self._prototypes_lock = threading.Lock()

    def prototype(self, service: str, region: str) -> _TargetClient | None:
        """The client the targets' clients of ``service`` in ``region`` are cloned from (made once)."""
        key = (service, region)
        if key in self._prototypes:
            return self._prototypes[key]
        with self._prototypes_lock:
            if key not in self._prototypes:
                config = copy.deepcopy(CLIENT_CONFIG.merge(Config(max_pool_connections=SHARED_POOL_CONNECTIONS)))
                client = _FACTORY.client(
                    _TARGET_CREDENTIALS, service, region, self.profile, endpoint_url=self.endpoint_url, config=config
                )
                self._prototypes[key] = make_prototype(client, adaptive=self.adaptive_retries)
            return self._prototypes[key]

    def _base_key(self) -> Hashable:
        creds = self._base_node.credentials()
        # Frozen once: a refreshable base (SSO, profile role) keeps its entries as its keys rotate.
        return ("base", creds.access_key, self.endpoint_url, self.sts_region, self.refresh_window, self.clock)

    def _node(self, chain: Chain | None) -> _Node:
        node = self._base_node
        if chain is None:
            return node
        base_key = self._base_key()
        for index, hop in enumerate(chain.hops, start=1):
            parent = node
            key = (base_key, chain.hops[:index])
            node = self.cache.node(key, functools.partial(_Node, self, parent, hop, index, chain.session_name))
        return node

    def forget(self, chain: Chain, *, last_only: bool = False) -> None:
        """Drop the cached credentials of every hop of ``chain`` (AWS rejected them as expired or invalid
        though they looked valid), so the next use assumes each role again. Other chains sharing a
        prefix re-assume it too: their copy was the same. ``last_only``: only the last hop's."""
        base_key = self._base_key()
        for index in range(len(chain.hops) if last_only else 1, len(chain.hops) + 1):
            node = self.cache.get((base_key, chain.hops[:index]))
            if node is not None:
                node.forget()

    def credentials(self, chain: Chain | None) -> Credentials:
        """Credentials at the end of ``chain`` (the base credentials for ``None``).

        Raises:
            AssumeRoleError: a hop failed; carries hop, role, caller, AWS code and a hint.
            BaseCredentialsError: there are no base credentials.
        """
        return self._node(chain).credentials()

    def session(self, chain: Chain | None, region: str | None = None) -> boto3.Session:
        """A boto3 session at the end of ``chain`` whose credentials refresh themselves."""
        return self._node(chain).session(region or self.region)

    def client(self, chain: Chain | None, service: str, region: str | None = None) -> Any:
        """A client at the end of ``chain``, cached per (chain, service, region).

        A chain's clients are clones of one prototype per (service, region): they share its event hooks,
        so a handler (or a ``Stubber``) registered on one target's ``client.meta.events`` applies to every
        target's client of that service and region; the base's clients (``chain=None``) are their own.
        """
        return self._node(chain).client(service, region or self.region)

    def identity(self, chain: Chain | None) -> Identity:
        """GetCallerIdentity at the end of ``chain``."""
        response = self.client(chain, "sts").get_caller_identity()
        return Identity(arn=response["Arn"], account=response["Account"], user_id=response["UserId"])

    def identities(self, chain: Chain) -> list[Identity]:
        """The identity at every point of ``chain``, base first."""
        return [self.identity(None)] + [self.identity(chain.prefix(i)) for i in range(1, len(chain.hops) + 1)]
