"""Which of the two conditions of a hop most likely failed, from what STS answered."""

import pytest
from rolechain.chain import Hop
from rolechain.diagnose import classify_assume_role_error

U1 = "arn:aws:iam::111111111111:user/rolechain-operator"
R1_SESSION = "arn:aws:sts::111111111111:assumed-role/rolechain-hub/rolechain.run.abc"
R1 = "arn:aws:iam::111111111111:role/rolechain-hub"
R2 = "arn:aws:iam::200000000001:role/rolechain-target"


def classify(code: str, message: str, caller: str = R1_SESSION, **hop: object):  # type: ignore[no-untyped-def]
    return classify_assume_role_error(
        hop=2, hop_spec=Hop(role_arn=R2, **hop), caller_arn=caller, code=code, message=message
    )


def test_identity_side_denial_names_condition_1() -> None:
    f = classify(
        "AccessDenied",
        f"User: {R1_SESSION} is not authorized to perform: sts:AssumeRole on resource: "
        f"{R2} because no identity-based policy allows the sts:AssumeRole action",
    )
    assert f.likely_cause == "caller_permission"
    assert "condition (1)" in f.hint and "condition (2)" not in f.hint
    assert f.hop == 2 and f.role_arn == R2 and f.caller_arn == R1_SESSION


def test_trust_side_denial_names_condition_2_with_principal_and_external_id() -> None:
    f = classify(
        "AccessDenied",
        f"User: {R1_SESSION} is not authorized to perform: sts:AssumeRole on resource: "
        f"{R2} because no resource-based policy allows the sts:AssumeRole action",
        external_id="ext-1",
    )
    assert f.likely_cause == "trust_policy"
    assert "condition (2)" in f.hint and "condition (1)" not in f.hint
    assert R1 in f.hint  # the principal a trust policy must name is the role, not the session
    assert "sts:ExternalId" in f.hint


def test_plain_cross_account_denial_puts_trust_first() -> None:
    f = classify("AccessDenied", "not authorized", external_id="ext-1")
    assert f.likely_cause == "either"
    assert f.hint.index("condition (2)") < f.hint.index("condition (1)")


def test_plain_same_account_denial_puts_caller_permission_first() -> None:
    f = classify_assume_role_error(
        hop=1, hop_spec=Hop(role_arn=R1), caller_arn=U1, code="AccessDenied", message="not authorized"
    )
    assert f.hint.index("condition (1)") < f.hint.index("condition (2)")


@pytest.mark.parametrize(
    "code,message,cause,needle",
    [
        ("ExpiredToken", "The security token included in the request is expired", "caller_credentials", "expired"),
        ("InvalidClientTokenId", "bad", "caller_credentials", "invalid"),
        ("Throttling", "Rate exceeded", "transient", "throttled"),
        ("EndpointConnectionError", "Could not connect", "transient", "reach the STS endpoint"),
        (
            "ValidationError",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            "request",
            "DurationSeconds",
        ),
        ("RegionDisabledException", "STS is not activated", "request", "not activated"),
        ("PackedPolicyTooLarge", "too large", "request", "too large"),
    ],
)
def test_other_failures(code: str, message: str, cause: str, needle: str) -> None:
    f = classify(code, message)
    assert f.likely_cause == cause
    assert needle in f.hint
    assert f.to_dict()["code"] == code


@pytest.mark.parametrize(
    "code,message",
    [
        ("AccessDenied", f"User: {R1_SESSION} is not authorized to perform: sts:AssumeRole on resource: {R2}"),
        ("AccessDenied", "because no resource-based policy allows the sts:AssumeRole action"),
        ("SomethingElse", "unexpected"),
    ],
)
def test_hint_says_an_external_id_was_given_but_never_its_value(code: str, message: str) -> None:
    # Given a hop with a distinctive ExternalId (issue 10, defect 1: it was quoted in the hint)
    secret = "xid-s3cr3t-7f1e2d"
    # When the failure is explained, then the hint says one was sent and never shows it
    f = classify(code, message, external_id=secret)
    assert "ExternalId" in f.hint and secret not in f.hint
    assert secret not in str(f.to_dict())


def test_no_model_holding_an_external_id_shows_it_in_its_repr() -> None:
    from rolechain.jobs import RoleSettings
    from rolechain.planning import RoleSpec

    secret = "xid-s3cr3t-7f1e2d"
    for model in (Hop(role_arn=R2, external_id=secret), RoleSpec(external_id=secret), RoleSettings(external_id=secret)):
        assert secret not in repr(model) and secret not in str(model)
        assert model.external_id == secret  # still there to send


@pytest.mark.parametrize(
    ("code", "status"),
    [("InternalError", 500), ("ServiceUnavailable", 503), ("InternalFailure", 500), ("Unknown", 504)],
)
def test_an_sts_server_error_is_transient_not_a_policy_problem(code: str, status: int) -> None:
    f = classify_assume_role_error(
        hop=2, hop_spec=Hop(role_arn=R2), caller_arn=R1_SESSION, code=code, message="try later", status=status
    )
    assert f.likely_cause == "transient"
    assert "condition" not in f.hint and "retry" in f.hint


def test_a_caller_that_already_is_the_role_is_told_to_drop_the_hop() -> None:
    # Given a profile that already is R1 (a session of it) and --via R1 (issue 13: the hint advised
    # adding sts:AssumeRole on R1 to R1's own policies)
    denied = f"User: {R1_SESSION} is not authorized to perform: sts:AssumeRole on resource: {R1}"
    f = classify_assume_role_error(hop=1, hop_spec=Hop(role_arn=R1), caller_arn=R1_SESSION, code="AccessDenied",
                                   message=denied)  # fmt: skip
    assert f.likely_cause == "request"
    assert "already is" in f.hint and f"drop this hop from the chain (--via {R1})" in f.hint
    assert "Allow sts:AssumeRole" not in f.hint and "add a statement" not in f.hint


def test_a_same_account_hop_gets_no_external_id_advice() -> None:
    # Given a typo in hop 1's ARN (a role that does not exist, same account as the caller; issue 13:
    # the hint said "give an ExternalId")
    typo = "arn:aws:iam::111111111111:role/rolechain-hbu"
    denied = f"User: {U1} is not authorized to perform: sts:AssumeRole on resource: {typo}"
    f = classify_assume_role_error(hop=1, hop_spec=Hop(role_arn=typo), caller_arn=U1, code="AccessDenied",
                                   message=denied)  # fmt: skip
    assert "ExternalId" not in f.hint
    assert "does not exist (check its ARN: account, path and name)" in f.hint
    # a cross-account hop without one still gets the advice
    cross = classify(
        "AccessDenied", f"User: {R1_SESSION} is not authorized to perform: sts:AssumeRole on resource: {R2}"
    )
    assert "none was sent: give one" in cross.hint
