"""planning.RoleSpec: which role ARN a plan reaches in each account, and the hop it sends there.

Written for mutants of benchmarks/mutation.py that survived the tiers: each assertion names the one it kills.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from rolechain.planning import RoleSpec


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
