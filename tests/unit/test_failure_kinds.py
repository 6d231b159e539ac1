"""Each way a target can fail gets a typed kind, and the runner decides there whether a retry may help."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, NoCredentialsError
from rolechain.actions import ActionContext, ActionFailed, DryRunViolation, Params, register
from rolechain.errors import AssumeRoleError, ConfigError, HopFailure
from rolechain.hub import is_transient
from rolechain.jobs import RoleSettings
from rolechain.planning import PlanRequest, plan_run
from rolechain.runner import FailureKind, Status, run_plan


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "ListBuckets")


def hop_failure(cause: str) -> AssumeRoleError:
    failure = HopFailure(
        hop=1,
        role_arn="arn:aws:iam::200000000001:role/r",
        caller_arn="arn:aws:sts::111111111111:assumed-role/rolechain-hub/s",
        code="Throttling" if cause == "transient" else "AccessDenied",
        message="m",
        likely_cause=cause,  # type: ignore[arg-type]
        hint="h",
    )
    return AssumeRoleError(failure)


CASES = [
    (hop_failure("transient"), FailureKind.ASSUME_ROLE, True),
    (hop_failure("trust_policy"), FailureKind.ASSUME_ROLE, False),
    (client_error("Throttling"), FailureKind.AWS, True),
    (client_error("InternalError"), FailureKind.AWS, True),
    (client_error("AccessDenied"), FailureKind.AWS, False),
    (ActionFailed("1 of 2 failed", {"done": 1}), FailureKind.ACTION, False),
    (DryRunViolation("refused"), FailureKind.DRY_RUN_VIOLATION, False),
    (ConfigError("params.x", "bad"), FailureKind.CONFIG, False),
    (EndpointConnectionError(endpoint_url="https://s3"), FailureKind.NETWORK, True),
    (ConnectTimeoutError(endpoint_url="https://s3"), FailureKind.NETWORK, True),
    (NoCredentialsError(), FailureKind.CLIENT, False),
    (ZeroDivisionError("bug"), FailureKind.UNEXPECTED, False),
]


@pytest.mark.parametrize(("raised", "kind", "retryable"), CASES, ids=[type(c[0]).__name__ + "-" + c[1] for c in CASES])
def test_each_failure_has_a_kind_and_a_retry_decision(
    isolated_registry: dict[str, Any], raised: Exception, kind: FailureKind, retryable: bool
) -> None:
    # Given an action that raises (it never calls AWS, so no session is needed)
    @register("raises_for_test", params=Params, iam_actions=["s3:ListAllMyBuckets"], changes=False)
    def _raises(ctx: ActionContext, params: Params) -> dict[str, Any]:
        raise raised

    plan = plan_run(None, RoleSettings(), PlanRequest(action="raises_for_test", accounts=["200000000001"]))  # type: ignore[arg-type]
    # When it runs, then the result is failed with the kind as its error type, retryable as decided
    (result,) = run_plan(None, plan).results  # type: ignore[arg-type]
    assert result.status == Status.FAILED
    assert result.kind == kind and result.error is not None and result.error["type"] == str(kind)
    assert result.retryable is retryable
    assert is_transient(result) is retryable


def test_an_ok_result_is_never_transient(isolated_registry: dict[str, Any]) -> None:
    @register("ok_for_test", params=Params, iam_actions=["s3:ListAllMyBuckets"], changes=False)
    def _ok(ctx: ActionContext, params: Params) -> dict[str, Any]:
        return {}

    plan = plan_run(None, RoleSettings(), PlanRequest(action="ok_for_test", accounts=["200000000001"]))  # type: ignore[arg-type]
    (result,) = run_plan(None, plan).results  # type: ignore[arg-type]
    assert result.status == Status.OK and result.kind is None and not is_transient(result)
