"""``doctor.sample``: which accounts ``doctor JOB --sample N`` examines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rolechain.doctor import sample

ACCOUNTS = [f"2000000000{n:02d}" for n in range(10)]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (None, ACCOUNTS),
        (10, ACCOUNTS),
        (50, ACCOUNTS),
        (1, ACCOUNTS[:1]),
        (2, [ACCOUNTS[0], ACCOUNTS[9]]),
        (4, [ACCOUNTS[0], ACCOUNTS[3], ACCOUNTS[6], ACCOUNTS[9]]),
    ],
)
def test_sample_spreads_over_the_accounts(size: int | None, expected: list[str]) -> None:
    assert sample(ACCOUNTS, size) == expected


@given(st.lists(st.text(min_size=1), min_size=1, unique=True, max_size=200), st.integers(min_value=1, max_value=250))
def test_sample_takes_distinct_accounts_in_order_with_both_ends(accounts: list[str], size: int) -> None:
    picked = sample(accounts, size)
    assert len(picked) == min(size, len(accounts)) == len(set(picked))
    assert picked == sorted(picked, key=accounts.index)
    assert picked[0] == accounts[0]
    if size > 1:
        assert picked[-1] == accounts[-1]
