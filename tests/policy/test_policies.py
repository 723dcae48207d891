"""Each built-in policy shows its defining behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rpiaas.core.control import ControlPlane
from rpiaas.core.events import Start, TaskArrived, TaskFinished
from rpiaas.core.view import ClusterView
from rpiaas.model import Task
from rpiaas.policy.base import Policy, PolicyError, hookimpl
from rpiaas.policy.builtin.best_fit import BestFit
from rpiaas.policy.builtin.first_fit import FirstFit
from rpiaas.policy.builtin.least_loaded import LeastLoaded
from rpiaas.policy.builtin.random_fit import RandomFit
from rpiaas.policy.builtin.round_robin import RoundRobin
from rpiaas.policy.builtin.worst_fit import WorstFit
from rpiaas.policy.plugins import available_policies
from rpiaas.sim import simulate

from ..helpers import cluster, node_type, nodes, read_events, read_tasks, scenario


def task(tid: int, cores: int = 1, mem: int = 100) -> Task:
    return Task(tid, 0.0, cores, mem, 10.0)


def place(cp: ControlPlane, t: Task, now: float = 0.0) -> int:
    acts = [a for a in cp.step(now, [TaskArrived(t)]) if isinstance(a, Start)]
    assert len(acts) == 1
    return acts[0].node


def loaded(policy: object) -> ControlPlane:
    """Three 4-core nodes with 1, 3 and 2 cores taken: free 3, 1, 2."""
    cp = ControlPlane(nodes(*[node_type(cores=4)] * 3), [policy])
    for tid, (n, c) in enumerate(((0, 1), (1, 3), (2, 2)), start=100):
        t = task(tid, c)
        cp.ledger.reserve(t, n, 0.0)  # as if they had started there
    return cp


def test_every_builtin_policy_is_listed_with_a_summary() -> None:
    builtins = {n: i for n, i in available_policies().items() if i.origin == "builtin"}
    assert set(builtins) >= {"first_fit", "best_fit", "worst_fit", "round_robin", "random",
                              "least_loaded", "consolidate", "fcfs", "sjf", "easy_backfill"}
    assert all(i.summary for i in builtins.values())


def test_best_fit_leaves_the_least_room() -> None:
    cp = loaded(BestFit())
    assert place(cp, task(1, 1)) == 1  # node 1 had 1 free core: left with 0
    assert place(cp, task(2, 2)) == 2  # node 2 had 2 free: left with 0 (node 0 would keep 1)


def test_best_fit_skips_nodes_without_memory() -> None:
    cp = ControlPlane(nodes(node_type(cores=2, mem_mb=100), node_type(cores=4, mem_mb=4096)), [BestFit()])
    assert place(cp, task(1, 1, mem=500)) == 1


def test_worst_fit_leaves_the_most_room() -> None:
    cp = loaded(WorstFit())
    assert place(cp, task(1, 1)) == 0  # node 0 had 3 free


def test_first_fit_takes_the_lowest_index() -> None:
    cp = loaded(FirstFit())
    assert place(cp, task(1, 2)) == 0
    assert place(cp, task(2, 2)) == 2  # node 0 has 1 left, node 1 has 1


def test_round_robin_takes_turns() -> None:
    cp = ControlPlane(nodes(*[node_type(cores=4)] * 3), [RoundRobin()])
    assert [place(cp, task(i)) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_random_is_seeded_and_spreads() -> None:
    def draws(seed: int) -> list[int]:
        cp = ControlPlane(nodes(*[node_type(cores=64)] * 4), [RandomFit(np.random.default_rng(seed))])
        return [place(cp, task(i)) for i in range(60)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert set(draws(1)) == {0, 1, 2, 3}


def test_least_loaded_follows_utilisation() -> None:
    cp = ControlPlane(nodes(*[node_type(cores=4)] * 3), [LeastLoaded()])
    cp.view.utilization_sink(measured=True)[:] = [0.9, 0.2, 0.5]  # as measured on a testbed
    assert place(cp, task(1)) == 1
    cp.view.utilization_sink(measured=True)[:] = [0.1, 0.2, 0.5]
    assert place(cp, task(2)) == 0


def run(tmp_path: Path, data: dict, name: str = "run") -> tuple[dict, Path]:
    summary, path = simulate(scenario(data), tmp_path / name)
    assert path is not None
    return summary, path


def sparse_workload() -> dict:
    # bursts of work separated by long quiet spells
    tasks = []
    for _burst, t0 in enumerate((0.0, 2000.0, 4000.0)):
        for k in range(6):
            tasks.append({"arrival_s": t0 + k, "cores": 2, "mem_mb": 256, "work_core_s": 200.0})
    return {"tasks": tasks}


def test_consolidate_switches_idle_nodes_off_and_pays_the_boot_delay(tmp_path: Path) -> None:
    base = {"name": "sparse", "cluster": cluster(4, "rpi4b"), "workload": sparse_workload()}
    plain, _ = run(tmp_path, {**base, "policy": "best_fit"}, "plain")
    data = {**base, "policy": {"name": "consolidate", "params": {"idle_timeout_s": 60.0, "min_on": 1}}}
    summary, path = run(tmp_path, data, "cons")
    events = read_events(path)
    offs = [e for e in events if e.get("act") == "power_off"]
    ons = [e for e in events if e.get("act") == "power_on"]
    booted = [e for e in events if e.get("ev") == "booted"]
    assert offs and ons and len(booted) == len(ons)
    # nodes go off only after idling idle_timeout_s
    for e in offs:
        assert e["t"] >= 60.0
    # a boot takes the node type's boot_s (rpi4b: 25 s)
    for on, up in zip(sorted(ons, key=lambda e: (e["node"], e["t"])),
                      sorted(booted, key=lambda e: (e["node"], e["t"])), strict=False):
        assert up["t"] - on["t"] == pytest.approx(25.0)
    # the second burst finds most nodes off: some of its tasks wait for a boot
    rows = [r for r in read_tasks(path) if 2000.0 <= float(r["arrival_s"]) < 3000.0]
    assert max(float(r["wait_s"]) for r in rows) >= 25.0
    assert summary["completed"] == plain["completed"] == 18
    assert summary["energy_j"] < plain["energy_j"]
    assert summary["mean_wait_s"] > plain["mean_wait_s"]


def test_consolidate_packs_tasks() -> None:
    from rpiaas.policy.builtin.consolidate import Consolidate

    cp = ControlPlane(nodes(*[node_type(cores=4)] * 3), [Consolidate()])
    assert [place(cp, task(i)) for i in range(6)] == [0, 0, 0, 0, 1, 1]


def backfill_workload() -> dict:
    rng = np.random.default_rng(3)
    tasks = []
    t = 0.0
    for _i in range(300):
        t += float(rng.exponential(8.0))
        tasks.append({"arrival_s": round(t, 3), "cores": int(rng.integers(1, 5)),
                      "mem_mb": 128, "work_core_s": round(float(rng.exponential(120.0)), 3)})
    return {"tasks": tasks}


def test_easy_never_delays_the_head_and_beats_fcfs(tmp_path: Path) -> None:
    base = {"name": "bf", "cluster": cluster(3, "rpi4b"), "workload": backfill_workload(),
            "policy": "first_fit"}
    fcfs, _ = run(tmp_path, base, "fcfs")
    easy, path = run(tmp_path, {**base, "queue": "easy_backfill"}, "easy")
    starts = {int(r["task_id"]): float(r["start_s"]) for r in read_tasks(path)}
    reservations = [e for e in read_events(path) if e.get("act") == "reserve"]
    assert reservations, "the workload is meant to block the head"
    # estimates are exact here, so the head starts no later than its reservation
    for r in reservations:
        assert starts[r["task"]] <= r["start_s"] + 1e-9
    started = sum(1 for e in read_events(path) if e.get("act") == "start")
    assert started == 300  # every task started exactly once
    assert easy["mean_wait_s"] < fcfs["mean_wait_s"]


def test_fcfs_blocks_small_tasks_behind_a_wide_one(tmp_path: Path) -> None:
    tasks = [{"id": 1, "arrival_s": 0.0, "cores": 3, "mem_mb": 10, "work_core_s": 300.0},
             {"id": 2, "arrival_s": 1.0, "cores": 4, "mem_mb": 10, "work_core_s": 40.0},
             {"id": 3, "arrival_s": 2.0, "cores": 1, "mem_mb": 10, "work_core_s": 10.0}]
    base = {"name": "hol", "cluster": cluster(1, "rpi4b"), "workload": {"tasks": tasks}, "policy": "first_fit"}
    _, path = run(tmp_path, {**base, "queue": "fcfs"}, "fcfs")
    starts = {int(r["task_id"]): float(r["start_s"]) for r in read_tasks(path)}
    assert starts[3] >= starts[2] == 100.0  # 3 fits at once but waits behind 2
    _, path = run(tmp_path, {**base, "queue": "easy_backfill"}, "easy")
    starts = {int(r["task_id"]): float(r["start_s"]) for r in read_tasks(path)}
    assert starts[3] == 2.0 and starts[2] == 100.0  # backfilled without delaying 2


def test_sjf_serves_the_shortest_first(tmp_path: Path) -> None:
    tasks = [{"id": 1, "arrival_s": 0.0, "cores": 4, "mem_mb": 10, "work_core_s": 400.0}]
    tasks += [{"id": i, "arrival_s": 1.0, "cores": 4, "mem_mb": 10, "work_core_s": w}
              for i, w in ((2, 400.0), (3, 40.0), (4, 200.0))]
    data = {"name": "sjf", "cluster": cluster(1, "rpi4b"), "workload": {"tasks": tasks},
            "policy": "first_fit", "queue": "sjf"}
    _, path = run(tmp_path, data)
    order = [int(r["task_id"]) for r in sorted(read_tasks(path), key=lambda r: float(r["start_s"]))]
    assert order == [1, 3, 4, 2]


def test_finish_then_place_uses_freed_node() -> None:
    cp = ControlPlane(nodes(node_type(cores=1), node_type(cores=1)), [BestFit()])
    place(cp, task(1))
    place(cp, task(2))
    acts = cp.step(1.0, [TaskFinished(2), TaskArrived(task(3))])
    assert [(a.task.id, a.node) for a in acts if isinstance(a, Start)] == [(3, 1)]


def test_every_declared_index_rule_is_what_the_hook_answers() -> None:
    """The built-ins that declare an index rule place as their hook does, on random clusters;
    a wrong declaration, and a subclass that overrides the hook under it, are caught."""
    from rpiaas.core import check_index_rule
    from rpiaas.policy.builtin import BUILTIN_POLICIES

    declared = [p for p in BUILTIN_POLICIES if p.declared_index_rule() is not None]
    assert {p.NAME for p in declared} == {"best_fit", "worst_fit"}
    for policy in declared:
        assert check_index_rule(policy, seed=1) == 40 * 60 * 2  # a task and a job each time

    class Wrong(WorstFit):
        index_rule = "tightest"

    with pytest.raises(AssertionError, match="declares index_rule 'tightest'"):
        check_index_rule(Wrong)

    class Overridden(BestFit):  # a new rpiaas_place under an inherited declaration: none holds
        @hookimpl
        def rpiaas_place(self, task: Task, view: ClusterView) -> int | None:
            return None

    assert Overridden.declared_index_rule() is None
    with pytest.raises(AssertionError, match="declares no index_rule"):
        check_index_rule(Overridden)


def test_a_third_party_declaration_is_answered_from_the_index() -> None:
    """Any policy may declare its index rule: its hook is then not called at all."""

    class MyBestFit(Policy):
        NAME = "my_best_fit"
        index_rule = "tightest"

        @hookimpl
        def rpiaas_place(self, task: Task, view: ClusterView) -> int | None:
            raise AssertionError("asked, though the index answers")

    cp = ControlPlane(nodes(node_type(cores=4), node_type(cores=2), node_type(cores=2)), [MyBestFit()])
    acts = cp.arrive(Task(1, 0.0, 2, 100, 5.0), 0.0)
    assert [(type(a), a.node) for a in acts] == [(Start, 1)]  # the tightest: node 1
    # a job over two nodes: the tightest two, ties by index (node 2 has 2 free, node 0 has 4)
    acts = cp.arrive(Task(2, 0.0, 2, 100, 5.0, nodes=2), 0.0)
    assert [(type(a), a.task.placed) for a in acts] == [(Start, (2, 0))]


def test_a_misspelt_index_rule_fails_when_the_policy_is_registered() -> None:
    class Typo(BestFit):
        NAME = "typo"
        index_rule = "tighest"

    with pytest.raises(PolicyError, match="policy 'typo': index_rule 'tighest' is not one of"):
        ControlPlane(nodes(node_type(cores=2)), [Typo(), LeastLoaded()])  # (a scorer: rule unused)
