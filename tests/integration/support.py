"""Helpers shared by the integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rolechain import ChainSessions, cli
from rolechain.jobs import RoleSettings
from rolechain.planning import PlanRequest, RunPlan, plan_run
from rolechain.runner import RunReport, run_plan
from rolechain_dev.emulator import HUB_ACCOUNT, Emulator, RecordedRequest, Seed

from tests.secrets_guard import GUARD

# Operations that change something; a dry run must send none of them.
CHANGING_ACTIONS = ("TagResources", "UntagResources", "PutPublicAccessBlock", "PutBucketTagging")
JUMP_ROLE_NAME = "rolechain-jump"


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(argv: Sequence[str]) -> CliResult:
    """``rolechain ARGV`` in this process, with stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    GUARD.check(out.getvalue() + err.getvalue(), f"the output of rolechain {' '.join(argv)[:60]}")
    return CliResult(code, out.getvalue(), err.getvalue())


def run_process(command: Sequence[str], env: Mapping[str, str], timeout: float = 120) -> CliResult:
    """``command`` (the CLI in a fresh process) with ``env``, stdout and stderr captured."""
    process = subprocess.run(list(command), capture_output=True, text=True, env=dict(env), timeout=timeout, check=False)
    return CliResult(process.returncode, process.stdout, process.stderr)


def assume_role_requests(emulator: Emulator, role_arn: str | None = None) -> list[RecordedRequest]:
    """The AssumeRole requests rolechain sent (admin seeding excluded), optionally for one role."""
    return [
        r
        for r in emulator.calls(service="sts", action="AssumeRole")
        if role_arn is None or r.params.get("RoleArn") == role_arn
    ]


def assumed_roles(emulator: Emulator) -> list[str]:
    return [r.params["RoleArn"] for r in assume_role_requests(emulator)]


def changing_calls(emulator: Emulator) -> list[RecordedRequest]:
    return [r for r in emulator.calls() if r.action in CHANGING_ACTIONS]


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow_operator(emulator: Emulator, seed: Seed, actions: Sequence[str], name: str = "extra") -> None:
    """Give U1 more identity permissions on R1 (e.g. sts:TagSession for session tags)."""
    emulator.admin_session(HUB_ACCOUNT).client("iam").put_user_policy(
        UserName=seed.user_arn.rsplit("/", 1)[-1],
        PolicyName=name,
        PolicyDocument=policy({"Effect": "Allow", "Action": list(actions), "Resource": seed.hub_role_arn}),
    )


def seed_jump_chain(emulator: Emulator, seed: Seed, accounts: Sequence[str], target_role: str) -> str:
    """Add a jump role between R1 and ``target_role`` in ``accounts``: hub -> jump -> target.

    The jump role lives in the hub account, trusts R1 and may assume ``target_role`` anywhere; each
    ``target_role`` trusts only the jump role. Returns the jump role's ARN.
    """
    hub_iam = emulator.admin_session(HUB_ACCOUNT).client("iam")
    jump_arn = hub_iam.create_role(
        RoleName=JUMP_ROLE_NAME,
        MaxSessionDuration=3600,
        AssumeRolePolicyDocument=policy(
            {"Effect": "Allow", "Principal": {"AWS": seed.hub_role_arn}, "Action": "sts:AssumeRole"}
        ),
    )["Role"]["Arn"]
    hub_iam.put_role_policy(
        RoleName=seed.hub_role_arn.rsplit("/", 1)[-1],
        PolicyName="assume-jump",
        PolicyDocument=policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": jump_arn}),
    )
    hub_iam.put_role_policy(
        RoleName=JUMP_ROLE_NAME,
        PolicyName="assume-targets",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::*:role/{target_role}"}
        ),
    )
    for account in accounts:
        emulator.admin_session(account).client("iam").create_role(
            RoleName=target_role,
            MaxSessionDuration=3600,
            AssumeRolePolicyDocument=policy(
                {"Effect": "Allow", "Principal": {"AWS": jump_arn}, "Action": "sts:AssumeRole"}
            ),
        )
    return str(jump_arn)


def plan_action(
    sessions: ChainSessions,
    seed: Seed,
    action: str,
    params: dict[str, Any] | None = None,
    *,
    accounts: Sequence[str] | None = None,
    **options: Any,
) -> RunPlan:
    """A plan for ``action`` through U1 -> R1 -> R2 with the seeded ExternalId (``options``: PlanRequest's)."""
    settings = RoleSettings(via=[seed.hub_role_arn], external_id=seed.external_id)
    accounts = list(accounts or seed.target_account_ids)
    request = PlanRequest(action=action, params=params or {}, accounts=accounts, **options)
    return plan_run(sessions, settings, request)


def run_action(
    sessions: ChainSessions,
    seed: Seed,
    action: str,
    params: dict[str, Any] | None = None,
    *,
    accounts: Sequence[str] | None = None,
    **options: Any,
) -> RunReport:
    """Plan (see :func:`plan_action`) and run ``action``."""
    return run_plan(sessions, plan_action(sessions, seed, action, params, accounts=accounts, **options))
