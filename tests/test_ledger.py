"""ClusterView and its free index agree with brute force."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rpiaas.ledger import FreeCoresIndex

nodes_st = st.lists(st.tuples(st.integers(0, 8), st.integers(0, 4096)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(nodes_st, st.integers(1, 8), st.integers(1, 4096),
       st.lists(st.tuples(st.integers(0, 39), st.integers(0, 8), st.integers(0, 4096)), max_size=30))
def test_tightest_and_loosest_match_brute_force(nodes, cores, mem, moves) -> None:
    index = FreeCoresIndex(8)
    state = {}
    since = {}  # when each node reached its current level: ties go to the earliest
    clock = 0
    for n, (c, m) in enumerate(nodes):
        index.add(n, c, m)
        state[n] = (c, m)
        since[n] = clock = clock + 1
    for n, c, m in moves:  # resources change as tasks start and end
        if n in state:
            index.move(n, state[n][0], c, m)
            state[n] = (c, m)
            since[n] = clock = clock + 1
    fitting = [(c, m, since[n], n) for n, (c, m) in state.items() if c >= cores and m >= mem]
    expect_tight = min(fitting)[3] if fitting else None
    expect_loose = min(fitting, key=lambda x: (-x[0], -x[1], x[2]))[3] if fitting else None
    assert index.tightest(cores, mem) == expect_tight
    assert index.loosest(cores, mem) == expect_loose
    for k in range(9):
        assert sorted(index.bucket(k)) == sorted(n for n, (c, _) in state.items() if c == k)
        assert all(state[n][1] == m for n, m in index.items(k))
