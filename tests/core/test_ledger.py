"""The ledger: its free index agrees with brute force; reservations keep every figure in step."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rpiaas.core.ledger import FreeCoresIndex

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
            index.move(n, *state[n], c, m)
            state[n] = (c, m)
            since[n] = clock = clock + 1
    fitting = [(c, m, since[n], n) for n, (c, m) in state.items() if c >= cores and m >= mem]
    expect_tight = min(fitting)[3] if fitting else None
    expect_loose = min(fitting, key=lambda x: (-x[0], -x[1], x[2]))[3] if fitting else None
    assert index.tightest(cores, mem) == expect_tight
    assert index.loosest(cores, mem) == expect_loose
    assert index.fits(cores, mem) is bool(fitting)
    for k in range(len(state) + 2):  # at least k nodes with room: what a job of k parts needs
        assert index.has_room(k, cores, mem) is (len(fitting) >= k)
    assert index.present == sorted({c for c, _ in state.values()})
    assert index.most_free() == max(c for c, _ in state.values())
    for k in range(9):
        assert sorted(index.bucket(k)) == sorted(n for n, (c, _) in state.items() if c == k)
        assert all(state[n][1] == m for n, m in index.items(k))
    for n in list(state):  # emptied, the index answers "none" to every question
        index.remove(n, *state.pop(n))
    assert (index.present, index.most_free(), index.fits(0, 0)) == ([], -1, False)
    assert index.tightest(0, 0) is None and index.loosest(0, 0) is None


def _ledger(states: tuple[int, ...] = (2, 2, 0)):  # type: ignore[no-untyped-def]
    from rpiaas.core.ledger import Ledger

    from ..helpers import node_type, nodes

    return Ledger(nodes(*[node_type(cores=4, mem_mb=1000)] * len(states)), states)


def test_a_reservation_and_its_release_keep_arrays_lists_and_index_in_step() -> None:
    import math

    from rpiaas.model import PowerState, Task

    ledger = _ledger()
    assert ledger.changes == []  # the states at time 0 are no change
    assert math.isnan(ledger.idle_since_s[2]) and ledger.idle_since_s[0] == 0.0
    t = Task(1, 0.0, 3, 600, 10.0)
    ledger.reserve(t, 1, 2.0)
    assert (t.node, ledger.cores_free_list[1], ledger.mem_free_list[1]) == (1, 1, 400)
    assert (int(ledger.cores_free[1]), int(ledger.mem_free_mb[1]), int(ledger.tasks[1])) == (1, 400, 1)
    assert ledger.index.tightest(1, 400) == 1 and ledger.index.tightest(2, 1) == 0
    assert ledger.running == {1: t} and ledger.running_on[1] == {1: t}
    assert math.isnan(ledger.idle_since_s[1])
    ledger.release(t, 7.5)
    assert (ledger.cores_free_list[1], ledger.mem_free_list[1]) == (4, 1000)
    assert (int(ledger.tasks[1]), ledger.running) == (0, {})
    assert ledger.idle_since_s[1] == 7.5  # idle from its last task's end
    assert ledger.changes == [(1, 2.0, 1, PowerState.ON), (1, 7.5, 4, PowerState.ON)]
    # a node that leaves the on state leaves the index; one that comes back rejoins it
    ledger.take_off(0, int(PowerState.OFF), 8.0)
    assert ledger.index.tightest(1, 1) == 1 and ledger.state_list[0] == PowerState.OFF
    ledger.bring_on(2, 9.0)
    assert ledger.state_list[2] == PowerState.ON and ledger.idle_since_s[2] == 9.0
    assert sorted(ledger.index.bucket(4)) == [1, 2]
    assert ledger.changes[2:] == [(0, 8.0, 4, PowerState.OFF), (2, 9.0, 4, PowerState.ON)]
