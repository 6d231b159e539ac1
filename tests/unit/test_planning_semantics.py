"""planning: which role ARN a plan reaches in each account, the hops it sends there, what a job refuses.

Written for mutants of benchmarks/mutation.py that survived the tiers: each assertion names the one it kills.
"""

from __future__ import annotations

from typing import cast

import pytest
from botocore.exceptions import EndpointConnectionError
from pydantic import ValidationError
from rolechain import ChainSessions
from rolechain.errors import ConfigError, RolechainError
from rolechain.jobs import SsmParameter, load_job_file
from rolechain.planning import PlanRequest, RoleSpec, plan_job, resolve_external_id

from tests.hub_support import ROOT

EXAMPLE_JOBS = ROOT / "dev" / "rolechain_dev" / "examples" / "jobs.yaml"


def test_a_role_arn_template_names_the_role_in_each_account_and_partition() -> None:
    # kills: the template's result replaced by None (role_arn_parts would refuse it, or the default ARN win)
    spec = RoleSpec(role_arn_template="arn:{partition}:iam::{account}:role/custom/ops", partition="aws-us-gov")
    assert spec.role_arn("200000000001") == "arn:aws-us-gov:iam::200000000001:role/custom/ops"
    assert spec.role_arn("200000000002") == "arn:aws-us-gov:iam::200000000002:role/custom/ops"


def test_without_a_template_the_arn_is_built_from_path_and_name() -> None:
    spec = RoleSpec(role_name="rolechain-target", role_path="/automation/")
    assert spec.role_arn("200000000001") == "arn:aws:iam::200000000001:role/automation/rolechain-target"


@pytest.mark.parametrize("seconds", [900, 3600])
def test_session_duration_accepts_sts_limits_for_a_chained_role(seconds: int) -> None:
    # kills: ge=900 -> 901 and le=3600 -> 3601 (STS: at least 900 s; a chained session at most 1 h)
    assert RoleSpec(duration_seconds=seconds).chain("200000000001", session_name="run-1").hops[-1].duration_seconds == (
        seconds
    )


@pytest.mark.parametrize("seconds", [899, 3601])
def test_session_duration_outside_sts_limits_is_refused_before_any_call(seconds: int) -> None:
    with pytest.raises(ValidationError, match="duration_seconds"):
        RoleSpec(duration_seconds=seconds)


def test_without_an_external_id_the_target_hop_sends_none() -> None:
    # kills: external_id defaulting to "" (STS refuses an empty ExternalId: at least 2 characters)
    (hop,) = RoleSpec().chain("200000000001", session_name="run-1").hops
    assert RoleSpec().external_id is None and hop.external_id is None


def test_the_default_session_lasts_the_hour_a_chained_role_allows() -> None:
    # kills: the default 3600 -> 3599 (sessions renewed more often than AWS requires)
    assert RoleSpec().chain("200000000001", session_name="run-1").hops[-1].duration_seconds == 3600


def test_the_callers_source_identity_and_tags_go_on_every_hop() -> None:
    # kills: `if source_identity:` -> `if not source_identity:` (the caller would vanish from CloudTrail)
    spec = RoleSpec(via=("arn:aws:iam::111111111111:role/rolechain-hub",))
    chain = spec.chain("200000000001", session_name="run-1", source_identity="alice", tags={"requested-by": "a"})
    assert [(h.source_identity, dict(h.tags or ())) for h in chain.hops] == [("alice", {"requested-by": "a"})] * 2
    assert all(h.source_identity is None for h in spec.chain("200000000001", session_name="run-1").hops)


@pytest.mark.parametrize("request_", [PlanRequest(action="tag_resources"), PlanRequest(params={"tags": {"a": "b"}})])
def test_a_job_refuses_an_action_or_params_of_the_request(request_: PlanRequest) -> None:
    # kills: `action is not None or params is not None` -> `and` (a job would run what it does not name)
    job_file = load_job_file(EXAMPLE_JOBS)
    with pytest.raises(ConfigError, match="runs its own action and params"):
        plan_job(cast(ChainSessions, None), job_file, "inventory", request_)


class FailingSsm:
    def client(self, credentials: object, service: str) -> object:
        raise EndpointConnectionError(endpoint_url="https://ssm.us-east-1.amazonaws.com")


def test_an_unreadable_external_id_parameter_is_a_rolechain_error_naming_it() -> None:
    # kills: `except Exception` -> another class (a raw botocore error would escape the run's handling)
    with pytest.raises(RolechainError, match="/rolechain/external-id"):
        resolve_external_id(cast(ChainSessions, FailingSsm()), SsmParameter(ssm_parameter="/rolechain/external-id"))
