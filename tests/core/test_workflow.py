"""Workflows in the control plane: tasks held for their predecessors, released, cancelled or failed."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpiaas.core.control import ControlPlane
from rpiaas.core.events import Reject, Start, TaskArrived, TaskFailed, TaskFinished
from rpiaas.model import Task, TaskState
from rpiaas.sim import Simulation
from rpiaas.workload import WorkflowOptions

from ..helpers import cluster, node_type, nodes, scenario


def task(tid: int, after: tuple[int, ...] = (), at: float = 0.0, cores: int = 1, work: float = 10.0) -> Task:
    return Task(tid, at, cores, 100, work, after=after)


def starts(actions: list[Any]) -> dict[int, int]:
    return {a.task.id: a.node for a in actions if isinstance(a, Start)}


def plane(on_failure: str = "cancel", retries: int = 0, cores: int = 4) -> tuple[ControlPlane, list[Task]]:
    ended: list[Task] = []
    cp = ControlPlane(nodes(node_type(cores=cores)), on_final=ended.append, retries=retries,
                      workflow=WorkflowOptions(on_failure))
    return cp, ended


def test_a_task_is_released_when_its_last_predecessor_completes() -> None:
    cp, _ = plane()
    acts = cp.step(0.0, [TaskArrived(task(1)), TaskArrived(task(2)), TaskArrived(task(3, (1, 2)))])
    assert starts(acts) == {1: 0, 2: 0}  # 3 is held, not offered to the policy
    assert [t.id for t in cp.queued()] == [3] and cp.queue_length == 0
    assert starts(cp.step(10.0, [TaskFinished(1)])) == {}  # 2 still runs
    acts = cp.step(12.0, [TaskFinished(2)])
    assert starts(acts) == {3: 0}
    assert next(a.task for a in acts if isinstance(a, Start)).start_s == 12.0


def test_a_task_arriving_after_its_predecessors_ended_is_queued_at_its_arrival() -> None:
    cp, _ = plane()
    cp.step(0.0, [TaskArrived(task(1))])
    cp.step(10.0, [TaskFinished(1)])
    acts = cp.step(50.0, [TaskArrived(task(2, (1,), at=50.0))])
    assert starts(acts) == {2: 0}


def test_a_predecessor_ending_at_the_arrival_time_releases_the_task_in_that_step() -> None:
    cp, _ = plane()
    cp.step(0.0, [TaskArrived(task(1))])
    # finishes come before arrivals at equal times, whatever the batch's order
    acts = cp.step(10.0, [TaskArrived(task(2, (1,), at=10.0)), TaskFinished(1)])
    assert starts(acts) == {2: 0}


def test_cancel_rejects_the_descendants_of_a_failed_task_with_the_reason() -> None:
    cp, ended = plane("cancel")
    cp.step(0.0, [TaskArrived(task(1)), TaskArrived(task(2, (1,))), TaskArrived(task(3, (2,))),
                  TaskArrived(task(4))])
    acts = cp.step(5.0, [TaskFailed(1, "exit status 3")])
    rejected = {a.task.id: a.reason for a in acts if isinstance(a, Reject)}
    assert rejected == {2: "cancelled: predecessor 1 failed", 3: "cancelled: predecessor 2 rejected"}
    states = {t.id: (t.state, t.end_s, t.reason) for t in ended}
    assert states[2] == (TaskState.REJECTED, 5.0, "cancelled: predecessor 1 failed")
    assert states[3] == (TaskState.REJECTED, 5.0, "cancelled: predecessor 2 rejected")
    # a descendant that arrives later is cancelled at its arrival
    acts = cp.step(20.0, [TaskArrived(task(5, (3, 4), at=20.0))])
    assert [(a.task.id, a.reason) for a in acts if isinstance(a, Reject)] == [
        (5, "cancelled: predecessor 3 rejected")]
    assert cp.queued() == []


def test_fail_fails_the_descendants_of_a_failed_task() -> None:
    cp, ended = plane("fail")
    cp.step(0.0, [TaskArrived(task(1)), TaskArrived(task(2, (1,))), TaskArrived(task(3, (2,)))])
    acts = cp.step(5.0, [TaskFailed(1, "node lost")])
    assert not any(isinstance(a, Reject) for a in acts)
    states = {t.id: (t.state, t.reason) for t in ended}
    assert states == {1: (TaskState.FAILED, "node lost"), 2: (TaskState.FAILED, "predecessor 1 failed"),
                      3: (TaskState.FAILED, "predecessor 2 failed")}


def test_a_retried_predecessor_that_then_completes_releases_its_descendants() -> None:
    cp, ended = plane(retries=1)
    cp.step(0.0, [TaskArrived(task(1)), TaskArrived(task(2, (1,)))])
    acts = cp.step(5.0, [TaskFailed(1, "exit status 1")])
    assert starts(acts) == {1: 0}  # retried, and 2 still waits
    assert ended == []
    assert starts(cp.step(15.0, [TaskFinished(1)])) == {2: 0}


def test_a_rejected_predecessor_dooms_its_descendants() -> None:
    cp, _ = plane(cores=2)
    acts = cp.step(0.0, [TaskArrived(task(1, cores=8)), TaskArrived(task(2, (1,)))])
    assert {a.task.id: a.reason for a in acts if isinstance(a, Reject)} == {
        1: "fits no node", 2: "cancelled: predecessor 1 rejected"}


def test_without_dependencies_the_summary_has_no_workflow_figures() -> None:
    cp = ControlPlane(nodes(node_type()), workflow=WorkflowOptions())
    cp.step(0.0, [TaskArrived(task(1))])
    cp.step(10.0, [TaskFinished(1)])
    assert cp.workflow_figures() == {}


def test_the_summary_gives_the_workflow_makespan_and_its_critical_path() -> None:
    sc = scenario({"cluster": cluster(1), "policy": "best_fit", "workload": {"tasks": [
        {"id": 1, "arrival_s": 5, "cores": 1, "mem_mb": 10, "work_core_s": 10},
        {"id": 2, "arrival_s": 0, "cores": 2, "mem_mb": 10, "work_core_s": 40, "after": [1]},
        {"id": 3, "arrival_s": 0, "cores": 1, "mem_mb": 10, "work_core_s": 3, "after": [1]},
        {"id": 4, "arrival_s": 0, "cores": 1, "mem_mb": 10, "work_core_s": 7, "after": [2, 3]},
        {"id": 5, "arrival_s": 0, "cores": 1, "mem_mb": 10, "work_core_s": 100},  # in no workflow
    ]}})
    summary = Simulation(sc).run()
    # 1 runs 5..15; 2 (40 core-s on 2 cores) 15..35 beside 3 15..18; 4 35..42
    assert summary["workflow_tasks"] == 4
    assert summary["workflow_makespan_s"] == 42.0 - 5.0
    assert summary["critical_path_s"] == 10 + 20 + 7
    assert summary["critical_path_source"].startswith("modelled")


# ---------------------------------------------------------------- invariants, on random workflows
@st.composite
def workflows(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 25))
    tasks = []
    for i in range(1, n + 1):
        after = draw(st.lists(st.integers(1, i - 1), max_size=3, unique=True)) if i > 1 else []
        tasks.append({"id": i, "arrival_s": draw(st.sampled_from([0, 0, 3, 10, 40])),
                      "cores": draw(st.integers(1, 4)), "mem_mb": 100,
                      "work_core_s": draw(st.sampled_from([0, 1, 5, 20, 60])), "after": after})
    draw(st.randoms()).shuffle(tasks)  # ids need not follow the order of the graph
    faults = draw(st.lists(st.fixed_dictionaries({
        "node": st.sampled_from(["node1.c.test", "node2.c.test"]), "at_s": st.sampled_from([2, 7, 15, 33]),
        "down_s": st.sampled_from([5, 30])}), max_size=2))
    return {"cluster": cluster(2), "workload": {"tasks": tasks}, "faults": faults,
            "policy": draw(st.sampled_from(["best_fit", "first_fit", "worst_fit"])),
            "queue": draw(st.sampled_from([None, "easy_backfill", "sjf"])),
            "retries": draw(st.integers(0, 1)),
            "workflow": {"on_failure": draw(st.sampled_from(["cancel", "fail"]))}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=workflows())
def test_no_task_starts_before_its_predecessors_end(data: dict[str, Any]) -> None:
    if data["queue"] is None:
        del data["queue"]
    sc = scenario(data)
    seen: dict[int, Task] = {}
    Simulation(sc, on_task=lambda t: seen.__setitem__(t.id, t)).run()
    assert sorted(seen) == sorted(t["id"] for t in data["workload"]["tasks"])  # every task once
    for t in seen.values():
        preds = [seen[p] for p in t.after]
        if t.start_s >= 0:  # it ran: every predecessor completed before it started
            assert t.start_s >= t.arrival_s
            assert all(p.state is TaskState.COMPLETED and p.end_s <= t.start_s for p in preds), t
        if any(p.state not in (TaskState.COMPLETED,) for p in preds):
            # a predecessor did not complete: it was cancelled or failed, never started
            assert t.start_s < 0
            expected = TaskState.REJECTED if data["workflow"]["on_failure"] == "cancel" else TaskState.FAILED
            assert t.state is expected and "predecessor" in t.reason
        elif t.state is TaskState.COMPLETED and preds:
            assert t.start_s >= max(p.end_s for p in preds)
