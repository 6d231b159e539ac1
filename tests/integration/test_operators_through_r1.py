"""Issue #11 point 3, operators through R1: with template.yaml's OperatorPrincipals naming U1, R1's trust
policy (the template's own, resolved) lets U1 in only with a SourceIdentity, which then names the person
on every hop of the chain; with OperatorRequireMfa, only with MFA too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rolechain_dev.emulator import Emulator, Seed
from rolechain_dev.local import apply_hub_trust

from tests.integration.support import CliResult, allow_operator, assume_role_requests, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.mutates]


@pytest.fixture
def operators_landscape(
    seed_landscape: Callable[..., Seed], as_operator: Callable[[Seed], Seed], emulator: Emulator
) -> Seed:
    # Given R1 trusting exactly what template.yaml's HubRole trusts, with U1 among OperatorPrincipals,
    # and U1's own policy allowing it to set a SourceIdentity on R1 (condition 1 of the hop)
    seed = as_operator(seed_landscape(targets=1, buckets_per_account=0))
    allow_operator(emulator, seed, ["sts:AssumeRole", "sts:SetSourceIdentity"])
    return seed


def whoami(seed: Seed, *extra: str) -> CliResult:
    target = seed.targets[0]
    return run_cli(
        ["whoami", "--via", seed.hub_role_arn, "--via", target.role_arn, "--external-id", seed.external_id, *extra]
    )


def test_r1_refuses_an_operator_without_a_source_identity(operators_landscape: Seed, emulator: Emulator) -> None:
    apply_hub_trust(emulator, operators_landscape, {"OperatorPrincipals": operators_landscape.user_arn})

    result = whoami(operators_landscape)

    assert result.code == 1
    assert f"hop 1 failed: {operators_landscape.user_arn} -> {operators_landscape.hub_role_arn}" in result.err
    assert "AccessDenied" in result.err


def test_with_a_source_identity_the_operator_reaches_the_target_and_every_hop_names_them(
    operators_landscape: Seed, emulator: Emulator
) -> None:
    apply_hub_trust(emulator, operators_landscape, {"OperatorPrincipals": operators_landscape.user_arn})

    result = whoami(operators_landscape, "--source-identity", "alice", "--json")

    assert (result.code, result.err) == (0, "")
    assert [hop["account"] for hop in result.json["hops"]][-1] == operators_landscape.targets[0].account_id
    sent = assume_role_requests(emulator)
    assert [r.params["RoleArn"] for r in sent] == [
        operators_landscape.hub_role_arn,
        operators_landscape.targets[0].role_arn,
    ]
    assert [r.params.get("SourceIdentity") for r in sent] == ["alice", "alice"]


def test_a_bare_source_identity_flag_sends_the_operators_user_name(
    operators_landscape: Seed, emulator: Emulator
) -> None:
    apply_hub_trust(emulator, operators_landscape, {"OperatorPrincipals": operators_landscape.user_arn})

    result = whoami(operators_landscape, "--source-identity")

    assert result.code == 0, result.err
    user_name = operators_landscape.user_arn.rsplit("/", 1)[-1]
    assert [r.params.get("SourceIdentity") for r in assume_role_requests(emulator)] == [user_name, user_name]


def test_the_default_template_trusts_no_operator(operators_landscape: Seed, emulator: Emulator) -> None:
    trust = apply_hub_trust(emulator, operators_landscape)

    result = whoami(operators_landscape, "--source-identity", "alice")

    assert len(trust["Statement"]) == 1
    assert result.code == 1 and "hop 1 failed" in result.err


def test_with_operator_require_mfa_a_session_without_mfa_is_refused(
    operators_landscape: Seed, emulator: Emulator
) -> None:
    # The emulator's requests carry no MFA context (an access key alone), as a key without MFA in AWS
    parameters = {"OperatorPrincipals": operators_landscape.user_arn, "OperatorRequireMfa": "true"}
    apply_hub_trust(emulator, operators_landscape, parameters)

    result = whoami(operators_landscape, "--source-identity", "alice")

    assert result.code == 1 and "hop 1 failed" in result.err


def test_a_run_through_r1_carries_the_source_identity_to_every_target(
    operators_landscape: Seed, emulator: Emulator
) -> None:
    apply_hub_trust(emulator, operators_landscape, {"OperatorPrincipals": operators_landscape.user_arn})
    target = operators_landscape.targets[0]

    result = run_cli(
        ["run", "--action", "whoami", "--accounts", target.account_id, "--via", operators_landscape.hub_role_arn,
         "--external-id", operators_landscape.external_id, "--source-identity", "alice", "--json"]
    )  # fmt: skip

    assert result.code == 0, result.err
    assert [r["status"] for r in result.json["results"]] == ["ok"]
    to_target = assume_role_requests(emulator, target.role_arn)
    assert to_target and {r.params.get("SourceIdentity") for r in to_target} == {"alice"}


def test_with_operator_require_mfa_an_mfa_session_with_a_source_identity_gets_in(
    operators_landscape: Seed, emulator: Emulator
) -> None:
    parameters = {"OperatorPrincipals": operators_landscape.user_arn, "OperatorRequireMfa": "true"}
    apply_hub_trust(emulator, operators_landscape, parameters)
    mfa = ["--mfa-serial", "arn:aws:iam::111111111111:mfa/alice", "--mfa-code", "123456"]

    assert whoami(operators_landscape, "--source-identity", "alice", *mfa).code == 0
    assert whoami(operators_landscape, *mfa).code == 1  # MFA alone is not enough: no SourceIdentity
