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
    assert sorted(index.with_room(cores, mem)) == sorted(n for *_, n in fitting)
    assert index.count_from(cores) == sum(1 for c, _ in state.values() if c >= cores)
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


def _room_times_by_brute_force(ledger, cores: int, mem_mb: int, k: int, now: float):  # type: ignore[no-untyped-def]
    """Ledger.room_times from scratch: each node that is on and could hold the size on its own,
    its own tasks by estimated end (then id) until it has room, at that end (now if it has
    passed); fewer than k such nodes: None; k with room now: those; else every node with room
    by the k-th time (inf for the nodes that never have room when fewer than k ever do)."""
    import math

    from rpiaas.model import PowerState, part_cores

    able = [n for n in range(len(ledger.state_list)) if ledger.state_list[n] == PowerState.ON
            and int(ledger.cores[n]) >= cores and int(ledger.mem_mb[n]) >= mem_mb]
    if len(able) < k:
        return None
    when = {}
    for n in able:
        c, m = ledger.cores_free_list[n], ledger.mem_free_list[n]
        if c >= cores and m >= mem_mb:
            when[n] = now
            continue
        when[n] = math.inf
        for t in sorted(ledger.running_on[n].values(), key=lambda t: (t.est_end_s, t.id)):
            c += dict(zip(t.placed, part_cores(t), strict=True)).get(n, t.cores) if t.nodes > 1 else t.cores
            m += t.mem_mb
            if c >= cores and m >= mem_mb:
                when[n] = max(t.est_end_s, now)
                break
    ready_now = sorted(n for n in able if ledger.cores_free_list[n] >= cores and ledger.mem_free_list[n] >= mem_mb)
    if len(ready_now) >= k:
        return [(now, n) for n in ready_now]
    shadow = sorted(when.values())[k - 1]
    return sorted((t, n) for n, t in when.items() if t <= shadow)


def test_room_times_match_brute_force_while_tasks_start_end_and_nodes_switch() -> None:
    """EASY's reservation from the ledger (running tasks kept by estimated end, the last answer
    reused while nothing changed) against every node's own tasks, from scratch, at every step."""
    import numpy as np

    from rpiaas.core.ledger import Ledger
    from rpiaas.model import PowerState, Task

    from ..helpers import node_type, nodes

    for seed in range(60):
        rng = np.random.default_rng(seed)
        types = [node_type(cores=int(rng.choice([1, 2, 4, 8])), mem_mb=int(rng.choice([256, 1024])), name=f"t{i}")
                 for i in range(int(rng.integers(1, 4)))]
        cluster = nodes(*[types[int(rng.integers(len(types)))] for _ in range(int(rng.integers(1, 12)))])
        ledger = Ledger(cluster, [int(PowerState.ON)] * len(cluster))
        now, next_id, asked = 0.0, 1, 0
        size = (1, 64, 1)
        for _ in range(120):
            now += float(rng.choice([0.0, 0.5, 3.0, 10.0]))
            op = rng.random()
            on = [n for n in range(len(cluster)) if ledger.state_list[n] == PowerState.ON]
            if op < 0.35:  # a task or a job starts where it fits
                k = int(rng.integers(1, 4))
                cores, mem = int(rng.integers(1, 4)), int(rng.choice([64, 256]))
                fit = [n for n in on if ledger.cores_free_list[n] >= cores and ledger.mem_free_list[n] >= mem]
                if len(fit) >= k:
                    t = Task(next_id, now, cores, mem, 10.0, nodes=k)
                    next_id += 1
                    # estimates, some passed already (an overrun), some tied
                    t.est_end_s = now + float(rng.choice([-2.0, 0.0, 1.0, 3.0, 10.0, 25.0]))
                    chosen = [int(n) for n in rng.permutation(fit)[:k]]
                    if k == 1:
                        ledger.reserve(t, chosen[0], now)
                    else:
                        ledger.reserve_job(t, chosen, now)
            elif op < 0.6 and ledger.running:  # one ends
                running = list(ledger.running.values())
                ledger.release(running[int(rng.integers(len(running)))], now)
            elif op < 0.65:  # a node leaves or comes back (an empty one: its tasks went with it)
                n = int(rng.integers(len(cluster)))
                if ledger.state_list[n] == PowerState.ON and not ledger.running_on[n]:
                    ledger.take_off(n, int(PowerState.OFF), now)
                elif ledger.state_list[n] != PowerState.ON:
                    ledger.bring_on(n, now)
            # the size asked last step (what changed since must be seen), then a new one; each
            # asked again a little later (nothing changed: the last answer, at the new time)
            fresh = (int(rng.integers(1, 9)), int(rng.choice([64, 256, 1024])), int(rng.integers(1, 5)))
            for cores, mem, k in (size, fresh):
                for later in (0.0, float(rng.choice([0.0, 1.0, 4.0]))):
                    got = ledger.room_times(cores, mem, k, now + later)
                    assert got == _room_times_by_brute_force(ledger, cores, mem, k, now + later), (seed, now)
                    asked += 1
            size = fresh
        assert [x[1] for x in ledger.running_by_end()] == sorted(
            ledger.running, key=lambda i: (ledger.running[i].est_end_s, i))
        assert asked
