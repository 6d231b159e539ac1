"""The emulator enforces IAM on every request, as AWS would: each built-in action runs only with the
permissions it declares (the session policy of its last hop), a missing one fails the target with an
AccessDenied naming it, and ``enforce_iam = False`` is the switch for tests that do not need it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rolechain import ChainSessions
from rolechain.actions import ActionContext, Params, register, target_role_policy
from rolechain.runner import Status
from rolechain_dev.emulator import Emulator, Seed

from tests.integration.support import run_action

pytestmark = [pytest.mark.integration, pytest.mark.mutates]


@pytest.fixture
def seeded(
    seed_landscape: Callable[..., Seed], operator_sessions_for: Callable[[Seed], ChainSessions]
) -> tuple[Seed, ChainSessions]:
    seed = seed_landscape(targets=2, buckets_per_account=1)
    return seed, operator_sessions_for(seed)


@pytest.fixture
def enforcing(emulator: Emulator) -> Iterator[Emulator]:
    previous = emulator.enforce_iam
    emulator.enforce_iam = True
    yield emulator
    emulator.enforce_iam = previous


def set_target_policy(emulator: Emulator, seed: Seed, document: dict[str, Any]) -> None:
    target = seed.targets[0]
    emulator.admin_session(target.account_id).client("iam").put_role_policy(
        RoleName=target.role_arn.rsplit("/", 1)[-1],
        PolicyName="rolechain-target-permissions",
        PolicyDocument=json.dumps(document),
    )


@pytest.mark.parametrize("action", ["list_buckets", "whoami", "block_s3_public_access"])
def test_every_built_in_action_runs_with_exactly_what_it_declares(
    enforcing: Emulator, seeded: tuple[Seed, ChainSessions], action: str
) -> None:
    seed, sessions = seeded
    report = run_action(sessions, seed, action, {}, accounts=[seed.targets[0].account_id], dry_run=False)
    (result,) = report.results
    assert result.status == Status.OK, result.error
    assert not [c for c in enforcing.calls() if c.emulator_error and "AccessDenied" in c.emulator_error]


def test_a_permission_removed_from_r2_fails_the_target_naming_it(
    enforcing: Emulator, seeded: tuple[Seed, ChainSessions]
) -> None:
    # Given R2 without s3:ListAllMyBuckets (everything else the registry needs, kept)
    seed, sessions = seeded
    document = target_role_policy()
    statement = document["Statement"][0]
    statement["Action"] = [a for a in statement["Action"] if a != "s3:ListAllMyBuckets"]
    set_target_policy(enforcing, seed, document)
    # When list_buckets runs there, then the target fails with AWS's AccessDenied naming the permission
    (result,) = run_action(sessions, seed, "list_buckets", accounts=[seed.targets[0].account_id]).results
    assert result.status == Status.FAILED and result.error is not None
    assert result.error["code"] == "AccessDenied"
    assert "not authorized to perform: s3:ListAllMyBuckets" in result.error["message"]
    assert "because no identity-based policy allows the s3:ListAllMyBuckets action" in result.error["message"]


def test_an_action_calling_what_it_does_not_declare_fails_like_in_aws(
    enforcing: Emulator, seeded: tuple[Seed, ChainSessions], isolated_registry: dict[str, Any]
) -> None:
    # Given an action that declares s3:ListAllMyBuckets but also calls iam:ListUsers, and an R2 whose
    # own policy even allows iam:ListUsers: the session policy (the declared permissions) still refuses
    @register("lists_users_undeclared", params=Params, iam_actions=["s3:ListAllMyBuckets"], changes=False)
    def lists_users(ctx: ActionContext, params: Params) -> dict[str, Any]:
        return {"users": len(ctx.client("iam").list_users()["Users"])}

    seed, sessions = seeded
    document = target_role_policy()
    document["Statement"].append({"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"})
    set_target_policy(enforcing, seed, document)
    (result,) = run_action(sessions, seed, "lists_users_undeclared", accounts=[seed.targets[0].account_id]).results
    assert result.status == Status.FAILED and result.error is not None
    assert "not authorized to perform: iam:ListUsers" in result.error["message"]
    assert "because no session policy allows the iam:ListUsers action" in result.error["message"]
    # And with enforcement switched off the same call goes through (moto alone enforces nothing)
    enforcing.enforce_iam = False
    (result,) = run_action(sessions, seed, "lists_users_undeclared", accounts=[seed.targets[0].account_id]).results
    assert result.status == Status.OK


def test_an_explicit_deny_in_a_permissions_boundary_wins(
    enforcing: Emulator, seeded: tuple[Seed, ChainSessions]
) -> None:
    seed, sessions = seeded
    target = seed.targets[0]
    target_iam = enforcing.admin_session(target.account_id).client("iam")
    boundary = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
        ],
    }
    arn = target_iam.create_policy(PolicyName="boundary", PolicyDocument=json.dumps(boundary))["Policy"]["Arn"]
    target_iam.put_role_permissions_boundary(RoleName=target.role_arn.rsplit("/", 1)[-1], PermissionsBoundary=arn)
    (result,) = run_action(sessions, seed, "list_buckets", accounts=[target.account_id]).results
    assert result.status == Status.FAILED and result.error is not None
    assert "with an explicit deny in a permissions boundary" in result.error["message"]
