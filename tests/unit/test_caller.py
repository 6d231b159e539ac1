"""The caller's identity along the chain: SourceIdentity and the requested-by session tag."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rolechain.chain import TAG_VALUE_RE, Hop
from rolechain.hub.models import Caller

HUB = "arn:aws:iam::111111111111:role/rolechain-hub"
SOURCE_IDENTITY_RE = re.compile(r"^[A-Za-z0-9_+=,.@-]{2,64}$")
ALICES = [
    "arn:aws:iam::111111111111:user/alice",
    "arn:aws:sts::111111111111:assumed-role/AnyRole/alice",
    "arn:aws:iam::222222222222:user/alice",
    "arn:aws:iam::111111111111:user/team/alice",
]


def test_callers_with_the_same_last_segment_get_different_source_identities() -> None:
    # Given four callers all named "alice" (issue 10, defect 2: all four were SourceIdentity "alice")
    identities = [Caller(arn).source_identity for arn in ALICES]
    # Then each gets its own SourceIdentity, still readable
    assert len(set(identities)) == len(ALICES)
    assert all("alice" in identity for identity in identities)
    assert identities[1].startswith("AnyRole-alice.")


def test_the_session_tag_carries_the_full_caller_arn() -> None:
    for arn in ALICES:
        assert Caller(arn).session_tags == {"requested-by": arn}


def test_session_tag_value_is_sanitised_to_sts_rules() -> None:
    tag = Caller("arn:aws:iam::111111111111:user/a,b\u0662" + "x" * 300).session_tags["requested-by"]
    assert tag.startswith("arn:aws:iam::111111111111:user/a-b-") and len(tag) == 256
    assert TAG_VALUE_RE.match(tag)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_source_identity_is_valid_and_distinct_for_distinct_arns(first: str, second: str) -> None:
    a, b = Caller(first), Caller(second)
    for caller in (a, b):
        assert SOURCE_IDENTITY_RE.match(caller.source_identity), caller.source_identity
        Hop(role_arn=HUB, source_identity=caller.source_identity, tags=caller.session_tags)  # STS's rules
    if first != second:
        assert a.source_identity != b.source_identity


@pytest.mark.parametrize("arn", ["", "x", "arn:aws:iam::111111111111:root", "aws:" + "-" * 80])
def test_source_identity_of_odd_arns_is_still_valid(arn: str) -> None:
    identity = Caller(arn).source_identity
    assert SOURCE_IDENTITY_RE.match(identity) and not identity.lower().startswith("aws:")
