"""Property-based test of the bounded credential cache: any sequence of uses, any bounds, behaves as a
reference LRU with an idle limit (the node handed out, what it holds, what it evicted)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rolechain import CredentialCache


class Maker:
    """A cache's ``make``: records the node it makes."""

    def __init__(self) -> None:
        self.made: list[Any] = []

    def __call__(self) -> Any:
        self.made.append(object())
        return self.made[-1]


USES = st.lists(st.tuples(st.integers(min_value=0, max_value=7), st.floats(min_value=0, max_value=50)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    uses=USES,
    max_entries=st.integers(min_value=1, max_value=6),
    max_idle=st.floats(min_value=0.5, max_value=200),
)
def test_the_cache_is_an_lru_with_an_idle_limit(
    uses: list[tuple[int, float]], max_entries: int, max_idle: float
) -> None:
    now = [0.0]
    cache = CredentialCache(max_entries=max_entries, max_idle=max_idle, clock=lambda: now[0])
    model: OrderedDict[int, tuple[object, float]] = OrderedDict()
    evictions = 0
    for key, wait in uses:
        now[0] += wait
        maker = Maker()
        node = cache.node(key, maker)
        made = maker.made
        entry = model.pop(key, None)
        hit = entry is not None and now[0] - entry[1] < max_idle
        assert (not made) == hit  # a fresh entry is reused, a stale or missing one made anew
        assert node is (entry[0] if hit and entry else made[0])
        model[key] = (node, now[0])
        while model and (len(model) > max_entries or now[0] - next(iter(model.values()))[1] >= max_idle):
            model.popitem(last=False)
            evictions += 1
        assert len(cache) == len(model) <= max_entries
        assert cache.nodes() == [n for n, _ in model.values()]
        assert cache.evictions == evictions
