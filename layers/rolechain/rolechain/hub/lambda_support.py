"""What the Lambda handlers share: their input models and the per-container wiring.

Everything here is built once per container and reused by warm invocations: the settings (parsed
from the environment at import, failing fast with the variable's name), the chained sessions with
the function's own role R1 as base, the :class:`~rolechain.hub.Hub`, the idempotency store and the
tracer. What an invocation may never need is made when first needed, not in Lambda's Init phase: the
X-Ray SDK (:class:`LazyTracer`), boto3 clients (the hub's, the idempotency store's) and Powertools'
batch processor (:func:`process_sqs_batch`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

import boto3
from aws_lambda_powertools import Tracer
from pydantic import BaseModel, ConfigDict, Field

from rolechain.actions.plugins import load_plugins
from rolechain.hub import Caller, Hub, Settings
from rolechain.sessions import ChainSessions
from rolechain.types import AccountId, JobName, Region

LOCAL_CALLER_ARN = "arn:aws:iam::000000000000:user/sam-local"
F = TypeVar("F", bound=Callable[..., Any])


class ScheduleInput(BaseModel):
    """The constant input of an EventBridge schedule: ``{"job": "<name>"}``."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    job: JobName


class CloudTrailDetail(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)
    eventName: str = Field(min_length=1)
    eventSource: str = ""


class RemediationEvent(BaseModel):
    """An EventBridge event carrying a CloudTrail record from a member account."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    account: AccountId
    region: Region
    detail_type: str = Field(alias="detail-type", min_length=1)
    detail: CloudTrailDetail


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


def remaining_seconds(context: LambdaContextLike) -> Callable[[], float]:
    """The invocation's time budget, for the runner to stop starting targets in time."""
    return lambda: context.get_remaining_time_in_millis() / 1000


def build_hub(env: Mapping[str, str]) -> Hub:
    """The hub for this container: settings from ``env``; base credentials are the function's role."""
    load_plugins(env)
    settings = Settings.from_env(env)
    sessions = ChainSessions(boto3.Session(), region=settings.region)
    return Hub(settings, sessions)


def request_user_arn(event: Mapping[str, Any]) -> str | None:
    """``requestContext.identity.userArn`` of an API Gateway event, or None when the request context, its
    identity or the ARN is missing or not of the expected shape (a request AWS_IAM auth did not sign)."""
    context = event.get("requestContext")
    identity = context.get("identity") if isinstance(context, Mapping) else None
    arn = identity.get("userArn") if isinstance(identity, Mapping) else None
    return arn if isinstance(arn, str) and arn else None


def api_caller(user_arn: str | None, env: Mapping[str, str]) -> Caller | None:
    """The IAM caller of an API request: ``user_arn`` is ``requestContext.identity.userArn``, which
    AWS_IAM auth fills (see :func:`request_user_arn`).

    ``sam local start-api`` does not authenticate; there (``AWS_SAM_LOCAL=true``) a fixed local
    caller stands in. Anywhere else a request without an identity gets None: the API refuses it.
    """
    if user_arn:
        return Caller(str(user_arn))
    if env.get("AWS_SAM_LOCAL") == "true":
        return Caller(LOCAL_CALLER_ARN)
    return None


def idempotency_store(hub: Hub) -> Any:
    """Powertools' DynamoDB idempotency store in the runs table (pk/sk, TTL attribute ``ttl``).

    Its client is the hub's DynamoDB client, made on the store's first request rather than here at import
    (a client loads its service model: a tenth of a handler's import, and the API's read-only routes never
    use the store). Powertools' own user-agent hook goes on the client when it is made.
    """
    from aws_lambda_powertools.shared.user_agent import register_feature_to_client
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    class ClientOnFirstUse(DynamoDBPersistenceLayer):
        def __init__(self, **kwargs: Any) -> None:
            self._made: Any = None
            self._initialised = False
            super().__init__(boto3_client=_NO_CLIENT_YET, **kwargs)
            self._initialised = True

        @property
        def client(self) -> Any:
            if not self._initialised:
                # Powertools' __init__ hooks its user agent on the client it was given: on the placeholder,
                # which has no event system (the hook skips it); the real client gets the hook when made.
                return _NO_CLIENT_YET
            if self._made is None:
                self._made = hub.sessions.client(None, "dynamodb")
                register_feature_to_client(client=self._made, feature="idempotency")  # type: ignore[no-untyped-call]
            return self._made

        @client.setter
        def client(self, value: Any) -> None:
            if value is not _NO_CLIENT_YET:  # Powertools' __init__ assigns the placeholder it was given
                raise TypeError("this store makes its own DynamoDB client (the hub's) on first use")

    return ClientOnFirstUse(
        table_name=hub.settings.runs_table,
        key_attr="pk",
        sort_key_attr="sk",
        expiry_attr="ttl",
    )


# What Powertools' store is given instead of a client: ``ClientOnFirstUse.client`` makes the real one.
_NO_CLIENT_YET: Any = object()


def process_sqs_batch(
    event: dict[str, Any], record_handler: Callable[..., Any], context: LambdaContextLike
) -> dict[str, Any]:
    """Powertools' partial batch response to an SQS event: each record through ``record_handler``, only the
    failed ones answered (SQS redelivers them, then the DLQ keeps them). A batch whose every record failed
    answers every record as a failure instead of failing the invocation: one unparseable message must not
    look like a worker crash. The processor is made by the first call, once per container: Powertools'
    batch utility imports the event models of every batch source, no part of what the import needs."""
    from aws_lambda_powertools.utilities.batch import process_partial_response

    answer = process_partial_response(
        event=event, record_handler=record_handler, processor=_sqs_batch_processor(), context=cast(Any, context)
    )
    return cast(dict[str, Any], answer)  # a TypedDict: {"batchItemFailures": [...]}


@functools.cache
def _sqs_batch_processor() -> Any:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class LazyTracer:
    """Powertools' :class:`Tracer`, made when a decorated function first runs instead of at import, and
    only where tracing is on.

    ``Tracer()`` imports the X-Ray SDK (its recorder, wrapt, asyncio) and patches botocore even when
    tracing is off (``POWERTOOLS_TRACE_DISABLED``, ``sam local``, outside Lambda), a third of a handler's
    import. Here that happens on the first traced call of a container where tracing is on, which then
    runs under the real Tracer's decorator exactly as before (subsegment ``## <name>``, ColdStart and
    Service annotations, response and error metadata, botocore patched before the first AWS call); where
    tracing is off the decorated function runs as it is and the X-Ray SDK is never imported.
    """

    def __init__(self) -> None:
        self._tracer: Tracer | None = None

    @staticmethod
    def enabled() -> bool:
        """Tracing is on: Powertools' own rule (POWERTOOLS_TRACE_DISABLED, in Lambda, not in sam local)."""
        return not Tracer._is_tracer_disabled()

    @property
    def tracer(self) -> Tracer:
        """The Powertools Tracer (made on first use: imports the X-Ray SDK and patches botocore)."""
        if self._tracer is None:
            self._tracer = Tracer()
        return self._tracer

    def capture_lambda_handler(self, handler: F) -> F:
        """``Tracer.capture_lambda_handler``, applied on the handler's first call."""
        return self._on_first_call(handler, lambda: self.tracer.capture_lambda_handler(handler))

    def capture_method(self, method: F) -> F:
        """``Tracer.capture_method``, applied on the method's first call."""
        return self._on_first_call(method, lambda: self.tracer.capture_method(method))

    def _on_first_call(self, function: F, traced: Callable[[], Callable[..., Any]]) -> F:
        chosen: list[Callable[..., Any]] = []

        @functools.wraps(function)  # keeps the signature Powertools inspects (a record handler's lambda_context)
        def call(*args: Any, **kwargs: Any) -> Any:
            if not chosen:
                chosen.append(traced() if self.enabled() else function)
            return chosen[0](*args, **kwargs)

        return cast(F, call)
