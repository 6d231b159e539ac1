"""Properties of the job file's new edges: waves cover every target once, counts and percentages,
OU ids (issue #12)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from rolechain.jobs import OrganizationTargets, Rollout, resolve_count

sizes = st.one_of(
    st.integers(min_value=1, max_value=500), st.integers(min_value=1, max_value=100).map(lambda p: f"{p}%")
)


@given(sizes, sizes, st.integers(min_value=0, max_value=5000))
def test_waves_cover_every_target_once_in_order(first: int | str, then: int | str, total: int) -> None:
    waves = Rollout(first=first, then=then).waves(total)
    assert sum(waves) == total and all(size >= 1 for size in waves)
    assert waves[:1] == ([min(total, resolve_count(first, total, at_least=1))] if total else [])
    assert all(size <= resolve_count(then, total, at_least=1) for size in waves[1:])


@given(st.integers(min_value=1, max_value=100), st.integers(min_value=0, max_value=10_000))
def test_a_percentage_rounds_up(percent: int, total: int) -> None:
    count = resolve_count(f"{percent}%", total)
    assert count * 100 >= percent * total > (count - 1) * 100 or count == 0 == total


@given(st.text(max_size=40))
def test_a_count_or_percentage_is_checked(text: str) -> None:
    valid = text.endswith("%") and text[:-1].isascii() and text[:-1].isdigit() and 1 <= int(text[:-1]) <= 100
    valid = valid and not text[:-1].startswith("0")
    if valid:
        assert Rollout(then=text).then == text
    else:
        with pytest.raises(ValidationError):
            Rollout(then=text)


@given(st.text(max_size=60))
def test_an_ou_id_is_checked(text: str) -> None:
    import re

    if re.fullmatch(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}", text, re.ASCII):
        assert OrganizationTargets(ous=[text]).ous == [text]
    else:
        with pytest.raises(ValidationError, match="is not an OU id"):
            OrganizationTargets(ous=[text])
