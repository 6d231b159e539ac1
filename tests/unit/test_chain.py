"""Chain and hop validation: every STS rule is checked before any call, naming the field."""

import json

import pytest
from rolechain.chain import (
    Chain,
    Hop,
    default_session_name,
    parse_chain,
    role_arn_parts,
    sanitize_session_name,
    source_identity_of,
)
from rolechain.errors import ConfigError

HUB = "arn:aws:iam::111111111111:role/rolechain-hub"
TARGET = "arn:aws:iam::222222222222:role/rolechain-target"


def chain(**last: object) -> Chain:
    return parse_chain({"hops": [{"role_arn": HUB}, {"role_arn": TARGET, **last}]})


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/name",
        "arn:aws-cn:iam::123456789012:role/name",
        "arn:aws-us-gov:iam::123456789012:role/path/to/name",
        "arn:aws:iam::123456789012:role/a+=,.@-_b",
    ],
)
def test_role_arn_accepts_every_partition_and_paths(arn: str) -> None:
    assert Hop(role_arn=arn).role_arn == arn


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::12345678901:role/short-account",
        "arn:aws:iam::123456789012:user/not-a-role",
        "arn:aws-xx:iam::123456789012:role/bad-partition",
        "arn:aws:sts::123456789012:assumed-role/r/s",
        "rolechain-target",
        "arn:aws:iam::123456789012:role/" + "x" * 65,
    ],
)
def test_role_arn_rejects_malformed(arn: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_chain({"hops": [{"role_arn": arn}]})
    assert err.value.field == "hops[0].role_arn"
    assert "IAM role ARN" in err.value.rule


def test_role_arn_parts() -> None:
    assert role_arn_parts("arn:aws-cn:iam::123456789012:role/a/b/name") == ("aws-cn", "123456789012", "/a/b/", "name")


@pytest.mark.parametrize(
    "value,ok",
    [
        ("ab", True),
        ("a", False),
        ("x" * 64, True),
        ("x" * 65, False),
        ("a b", False),
        ("a/b", False),
        ("é-name", False),
        ("a+=,.@-_", True),
    ],
)
def test_session_name_rules(value: str, ok: bool) -> None:
    if ok:
        assert chain(session_name=value).target.session_name == value
    else:
        with pytest.raises(ConfigError) as err:
            chain(session_name=value)
        assert err.value.field == "hops[1].session_name"


@pytest.mark.parametrize(
    "value,ok",
    [
        ("ab", True),
        ("a", False),
        ("x" * 64, True),
        ("x" * 65, False),
        ("aws:me", False),
        ("AWS:me", False),
        ("awsome", True),
        ("a:b", False),
    ],
)
def test_source_identity_rules(value: str, ok: bool) -> None:
    if ok:
        assert chain(source_identity=value).target.source_identity == value
    else:
        with pytest.raises(ConfigError) as err:
            chain(source_identity=value)
        assert err.value.field == "hops[1].source_identity"


def test_source_identity_cannot_change_along_the_chain() -> None:
    with pytest.raises(ConfigError) as err:
        parse_chain(
            {"hops": [{"role_arn": HUB, "source_identity": "alice"}, {"role_arn": TARGET, "source_identity": "bob"}]}
        )
    assert "does not allow changing it" in err.value.rule


@pytest.mark.parametrize(
    "value,ok",
    [
        ("ab", True),
        ("a", False),
        ("x" * 1224, True),
        ("x" * 1225, False),
        ("a:b/c=d", True),
        ("a b", False),
        ("a#b", False),
    ],
)
def test_external_id_rules(value: str, ok: bool) -> None:
    if ok:
        assert chain(external_id=value).target.external_id == value
    else:
        with pytest.raises(ConfigError) as err:
            chain(external_id=value)
        assert err.value.field == "hops[1].external_id"
        assert "2-1224" in err.value.rule


@pytest.mark.parametrize("seconds,ok", [(899, False), (900, True), (3600, True), (3601, False)])
def test_chained_hop_duration_is_at_most_one_hour(seconds: int, ok: bool) -> None:
    if ok:
        assert chain(duration_seconds=seconds).target.duration_seconds == seconds
    else:
        with pytest.raises(ConfigError) as err:
            chain(duration_seconds=seconds)
        assert "duration_seconds" in err.value.field + err.value.rule


def test_first_hop_may_last_up_to_twelve_hours() -> None:
    assert parse_chain({"hops": [{"role_arn": HUB, "duration_seconds": 43200}]}).hops[0].duration_seconds == 43200
    with pytest.raises(ConfigError) as err:
        parse_chain({"hops": [{"role_arn": HUB, "duration_seconds": 43201}]})
    assert err.value.field == "hops[0].duration_seconds"


def test_session_policy_is_minified_and_limited_to_2048_chars() -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
    }
    hop = chain(session_policy=json.dumps(policy, indent=4)).target
    assert hop.session_policy == json.dumps(policy, separators=(",", ":"))
    big = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": [f"s3:Action{i:04d}" for i in range(150)], "Resource": "*"}],
    }
    with pytest.raises(ConfigError) as err:
        chain(session_policy=big)
    assert err.value.field == "hops[1].session_policy" and "2048" in err.value.rule


def test_session_policy_must_be_a_policy_document() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        chain(session_policy="{nope")
    with pytest.raises(ConfigError, match="Statement"):
        chain(session_policy={"Version": "2012-10-17"})


def test_session_tags_rules() -> None:
    assert chain(tags={"team": "platform"}).target.tags == (("team", "platform"),)
    with pytest.raises(ConfigError, match="at most 50"):
        chain(tags={f"k{i}": "v" for i in range(51)})
    with pytest.raises(ConfigError, match="1-128"):
        chain(tags={"k" * 129: "v"})
    with pytest.raises(ConfigError, match="0-256"):
        chain(tags={"k": "v" * 257})
    with pytest.raises(ConfigError, match="aws:"):
        chain(tags={"aws:owner": "v"})
    with pytest.raises(ConfigError, match="case-insensitive"):
        chain(tags=[("Team", "a"), ("team", "b")])
    with pytest.raises(ConfigError, match="transitive_tag_keys"):
        chain(tags={"team": "a"}, transitive_tag_keys=["owner"])


def test_chain_must_have_a_hop_and_forbids_unknown_fields() -> None:
    with pytest.raises(ConfigError) as err:
        parse_chain({"hops": []})
    assert err.value.field == "hops"
    with pytest.raises(ConfigError) as err:
        parse_chain({"hops": [{"role_arn": HUB, "externalid": "typo"}]})
    assert err.value.field == "hops[0].externalid"


def test_build_applies_external_id_and_policy_to_last_hop_only() -> None:
    built = Chain.build([HUB, TARGET], external_id="ext-123", session_policy={"Statement": []})
    assert built.hops[0].external_id is None and built.hops[0].session_policy is None
    assert built.target.external_id == "ext-123" and built.target.session_policy == '{"Statement":[]}'


def test_assume_role_params_carry_every_option() -> None:
    hop = chain(
        external_id="ext-1",
        source_identity="alice",
        tags={"run": "r1"},
        transitive_tag_keys=["run"],
        session_policy={"Statement": []},
        duration_seconds=900,
    ).target
    assert hop.assume_role_params("fallback-name") == {
        "RoleArn": TARGET,
        "RoleSessionName": "fallback-name",
        "DurationSeconds": 900,
        "ExternalId": "ext-1",
        "SourceIdentity": "alice",
        "Tags": [{"Key": "run", "Value": "r1"}],
        "TransitiveTagKeys": ["run"],
        "Policy": '{"Statement":[]}',
    }


@pytest.mark.parametrize(
    "purpose,run_id", [("list_buckets", "abc123"), ("x" * 500, "r" * 40), ("weird name/é!", None), ("", "run")]
)
def test_default_session_name_is_always_valid_and_keeps_the_run(purpose: str, run_id: str | None) -> None:
    name = default_session_name(purpose, run_id)
    Hop(role_arn=HUB, session_name=name)  # valid for STS
    assert name.startswith("rolechain.")
    if run_id:
        assert name.endswith("." + run_id[:24])


@pytest.mark.parametrize("raw", ["arn:aws:iam::1:user/alice", "a", "", "é" * 100, "x" * 300, "aws:bad"])
def test_sanitize_session_name_is_valid_as_source_identity(raw: str) -> None:
    Hop(role_arn=HUB, source_identity=sanitize_session_name(raw), session_name=sanitize_session_name(raw))


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:iam::111111111111:user/alice", "alice"),
        ("arn:aws:iam::111111111111:user/team/ops/alice", "alice"),
        ("arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com",
         "alice@example.com"),
        ("arn:aws:sts::111111111111:federated-user/bob", "bob"),
        ("arn:aws:sts::111111111111:assumed-role/ops/Jane Doe", "Jane-Doe"),  # a space STS refuses
        ("arn:aws:iam::111111111111:root", None),
    ],
)  # fmt: skip
def test_source_identity_of_a_caller_is_the_persons_name(arn: str, expected: str | None) -> None:
    name = source_identity_of(arn)
    assert name == expected
    if name is not None:
        Hop(role_arn=HUB, source_identity=name)  # valid as STS wants it
