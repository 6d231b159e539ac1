"""Issue #2, the operator's edge: ``rolechain whoami`` through U1 -> R1 -> R2, in-process and as the
installed console script, with the AWS environment pointed at the emulator."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rolechain_dev.emulator import HUB_ACCOUNT, Emulator, Seed

from tests.integration.support import CliResult, assume_role_requests, assumed_roles, run_cli, run_process

pytestmark = pytest.mark.integration

Rolechain = Callable[..., CliResult]


def via_target(seed: Seed, index: int = 0) -> list[str]:
    return ["--via", seed.hub_role_arn, "--via", seed.targets[index].role_arn]


def test_whoami_json_prints_every_hop_base_first(rolechain: Rolechain, operator_env: Seed, emulator: Emulator) -> None:
    target = operator_env.targets[1]

    result = rolechain("whoami", *via_target(operator_env, 1), "--external-id", operator_env.external_id, "--json")

    assert (result.code, result.err) == (0, "")
    hops = result.json["hops"]
    assert [set(hop) for hop in hops] == [{"arn", "account", "user_id"}] * 3
    assert [hop["account"] for hop in hops] == [HUB_ACCOUNT, HUB_ACCOUNT, target.account_id]
    assert hops[0]["arn"] == operator_env.user_arn
    assert hops[1]["arn"].startswith(f"arn:aws:sts::{HUB_ACCOUNT}:assumed-role/rolechain-hub/rolechain.whoami.")
    assert hops[2]["arn"].startswith(
        f"arn:aws:sts::{target.account_id}:assumed-role/rolechain-target/rolechain.whoami."
    )
    # one run id in every hop's session name
    assert hops[1]["arn"].rsplit("/", 1)[1] == hops[2]["arn"].rsplit("/", 1)[1]
    assert assumed_roles(emulator) == [operator_env.hub_role_arn, target.role_arn]
    assert "ExternalId" not in assume_role_requests(emulator)[0].params


def test_whoami_table_without_json(rolechain: Rolechain, operator_env: Seed) -> None:
    target = operator_env.targets[0]

    result = rolechain("whoami", *via_target(operator_env), "--external-id", operator_env.external_id)

    assert result.code == 0
    header, rule, *rows = result.out.strip().splitlines()
    assert header.split() == ["hop", "account", "arn", "user_id"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert [row.split()[:2] for row in rows] == [["base", HUB_ACCOUNT], ["1", HUB_ACCOUNT], ["2", target.account_id]]
    assert operator_env.user_arn in rows[0]
    assert f"arn:aws:sts::{target.account_id}:assumed-role/rolechain-target/" in rows[2]


def test_whoami_without_via_is_the_base_identity_and_assumes_nothing(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator
) -> None:
    result = rolechain("whoami", "--json")

    assert result.code == 0
    assert [hop["arn"] for hop in result.json["hops"]] == [operator_env.user_arn]
    assert assume_role_requests(emulator) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--via", "arn:aws:iam::12345:role/rolechain-hub"], "hops[0].role_arn: must be an IAM role ARN"),
        (["--via", "arn:aws:iam::111111111111:user/rolechain-operator"], "hops[0].role_arn"),
        (["--via", "{hub}", "--via", "{target}", "--external-id", "bad id!"], "hops[1].external_id: must be 2-1224"),
        (["--via", "{hub}", "--external-id", "x"], "hops[0].external_id"),
        (["--via", "{hub}", "--session-name", "no spaces allowed"], "session_name"),
        (["--external-id", "{external_id}"], "--external-id: applies to the --via hops"),
        (["--session-name", "rolechain.me"], "--session-name: applies to the --via hops"),
        (["--source-identity", "alice"], "--source-identity: applies to the --via hops"),
        (["--via", "{hub}", "--source-identity", "alice smith"], "--source-identity: must be 2-64 characters"),
        (["--via", "{hub}", "--source-identity", "aws:me"], "--source-identity: must be 2-64 characters"),
    ],
)
def test_bad_arguments_exit_2_naming_the_field_before_any_request(
    rolechain: Rolechain, operator_env: Seed, emulator: Emulator, args: list[str], message: str
) -> None:
    names = {"hub": operator_env.hub_role_arn, "target": operator_env.targets[0].role_arn}
    argv = [a.format(external_id=operator_env.external_id, **names) for a in args]

    result = rolechain("whoami", *argv)

    assert result.code == 2
    assert result.err.startswith("rolechain: error: ")
    assert message in result.err
    assert result.out == ""
    assert assume_role_requests(emulator) == []


def test_missing_external_id_exits_1_naming_hop_2_and_the_trust_policy(
    rolechain: Rolechain, operator_env: Seed
) -> None:
    target = operator_env.targets[0]

    result = rolechain("whoami", *via_target(operator_env), "--json")

    assert (result.code, result.out) == (1, "")
    first, said, hint = result.err.splitlines()
    assert first.startswith("rolechain: hop 2 failed: arn:aws:sts::111111111111:assumed-role/rolechain-hub/")
    assert first.endswith(f" -> {target.role_arn}")
    assert said.startswith("  AWS said: AccessDenied: ")
    assert "because no resource-based policy allows" in said
    assert hint.startswith("  hint: likely condition (2): the trust policy of " + target.role_arn)
    assert f'"AWS": "{operator_env.hub_role_arn}"' in hint
    assert "none was sent: give one" in hint


def test_operator_straight_to_a_role_it_may_not_assume_exits_1_on_condition_1(
    rolechain: Rolechain, operator_env: Seed
) -> None:
    target = operator_env.targets[0]

    result = rolechain("whoami", "--via", target.role_arn, "--external-id", operator_env.external_id)

    assert result.code == 1
    assert result.err.startswith(f"rolechain: hop 1 failed: {operator_env.user_arn} -> {target.role_arn}\n")
    assert "because no identity-based policy allows the sts:AssumeRole action" in result.err
    assert f"hint: likely condition (1): {operator_env.user_arn} is not allowed sts:AssumeRole" in result.err
    assert "condition (2)" not in result.err


def test_missing_target_role_exits_1_at_hop_2(
    seed_landscape: Callable[..., Seed], as_operator: Callable[[Seed], Seed], emulator: Emulator
) -> None:
    seed = as_operator(seed_landscape(targets=2, missing_role_accounts=["200000000002"]))

    result = run_cli(["whoami", *via_target(seed, 1), "--external-id", seed.external_id])

    assert result.code == 1
    assert f"hop 2 failed: arn:aws:sts::{HUB_ACCOUNT}:assumed-role/rolechain-hub/" in result.err
    assert "or the role does not exist" in result.err


def test_console_script_whoami_json(operator_env: Seed, emulator: Emulator) -> None:
    # Given the installed `rolechain` entry point and an operator environment pointed at the emulator
    script = Path(sys.executable).with_name("rolechain")
    assert script.exists(), f"{script} missing: pip install -e . puts it there"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=operator_env.user_access_key_id,
        AWS_SECRET_ACCESS_KEY=operator_env.user_secret_access_key,
        AWS_DEFAULT_REGION=operator_env.region,
        AWS_ENDPOINT_URL=operator_env.endpoint_url,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    target = operator_env.targets[2]

    # When
    result = run_process(
        [str(script), "whoami", *via_target(operator_env, 2), "--external-id", operator_env.external_id, "--json"],
        env,
        timeout=60,
    )

    # Then
    assert result.code == 0, result.err
    hops = result.json["hops"]
    assert [hop["account"] for hop in hops] == [HUB_ACCOUNT, HUB_ACCOUNT, target.account_id]
    assert hops[0]["arn"] == operator_env.user_arn
    assert assumed_roles(emulator) == [operator_env.hub_role_arn, target.role_arn]
