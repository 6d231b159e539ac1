"""The shared validated types: ASCII only, one pattern per idea, used by every edge."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError
from rolechain.errors import ConfigError
from rolechain.hub import RunRequest, TargetMessage
from rolechain.hub.lambda_support import RemediationEvent
from rolechain.jobs import parse_job_file
from rolechain.types import AccountId, JobName, Region, RoleArn, RoleName, check

ARABIC_ACCOUNT = "\u0662" + "\u0660" * 10 + "\u0661"  # Arabic-Indic digits: \\d matches them, AWS does not


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (AccountId, "200000000001", ARABIC_ACCOUNT),
        (Region, "eu-west-1", "eu-west-\u0661"),
        (RoleName, "rolechain-target", "rolechain-\u0131"),  # dotless i
        (JobName, "tag-owner", "tag-öwner"),
        (RoleArn, "arn:aws:iam::200000000001:role/x", f"arn:aws:iam::{ARABIC_ACCOUNT}:role/x"),
    ],
)
def test_types_accept_ascii_and_refuse_look_alikes(kind: object, good: str, bad: str) -> None:
    adapter = TypeAdapter(kind)
    assert adapter.validate_python(good) == good
    with pytest.raises(ValidationError):
        adapter.validate_python(bad)


def test_check_names_the_field() -> None:
    assert check("account", "200000000001", "accounts") == "200000000001"
    with pytest.raises(ConfigError, match=r"^accounts: '.*' is not a 12-digit AWS account id$"):
        check("account", ARABIC_ACCOUNT, "accounts")
    with pytest.raises(ConfigError, match=r"^via: 'arn:aws:iam::٢.*' is not an IAM role ARN$"):
        check("role_arn", f"arn:aws:iam::{ARABIC_ACCOUNT}:role/x", "via")


def test_every_edge_refuses_non_ascii_digits() -> None:
    with pytest.raises(ValidationError):
        RunRequest.model_validate({"action": "whoami", "accounts": [ARABIC_ACCOUNT]})
    with pytest.raises(ValidationError):
        TargetMessage.model_validate(
            {"run_id": "r1", "action": "whoami", "account": ARABIC_ACCOUNT, "region": "us-east-1"}
        )
    with pytest.raises(ValidationError):
        RemediationEvent.model_validate(
            {"id": "e", "source": "aws.s3", "account": ARABIC_ACCOUNT, "region": "us-east-1",
             "detail-type": "x", "detail": {"eventName": "CreateBucket"}}
        )  # fmt: skip
    with pytest.raises(ConfigError, match="targets"):
        parse_job_file({"jobs": {"j": {"action": "whoami", "targets": {"accounts": [ARABIC_ACCOUNT]}}}})


def test_a_trailing_newline_is_never_valid() -> None:
    # Python's "$" matches before a final "\n": every compiled check must refuse it
    from rolechain.chain import Hop

    for kind, value in (("account", "200000000001\n"), ("region", "us-east-1\n")):
        with pytest.raises(ConfigError):
            check(kind, value, "field")
    with pytest.raises(ConfigError):
        check("role_arn", "arn:aws:iam::200000000001:role/x\n", "via")
    with pytest.raises(ValidationError):
        Hop(role_arn="arn:aws:iam::200000000001:role/x\n")
    with pytest.raises(ValidationError):
        Hop(role_arn="arn:aws:iam::200000000001:role/x", external_id="ext-123\n")
