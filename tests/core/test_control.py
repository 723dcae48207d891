"""The control plane on its own: events in, actions out."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpiaas.core.control import ControlPlane, PolicyError
from rpiaas.core.events import (
    NodeBooted,
    NodeDown,
    NodeUp,
    Reject,
    Start,
    TaskArrived,
    TaskFailed,
    TaskFinished,
    TaskNotStarted,
)
from rpiaas.core.view import ClusterView
from rpiaas.model import PowerState, Task, TaskState
from rpiaas.policy.base import Policy, hookimpl
from rpiaas.policy.builtin.best_fit import BestFit

from ..helpers import node_type, nodes


def task(tid: int, cores: int = 1, mem: int = 100, work: float = 10.0, at: float = 0.0) -> Task:
    return Task(tid, at, cores, mem, work)


def starts(actions: list) -> dict[int, int]:
    return {a.task.id: a.node for a in actions if isinstance(a, Start)}


def test_fcfs_default_places_first_fit_and_blocks_strictly() -> None:
    cp = ControlPlane(nodes(node_type(cores=2), node_type(cores=2)))
    acts = cp.step(0.0, [TaskArrived(task(1, 2)), TaskArrived(task(2, 1)), TaskArrived(task(3, 2)),
                         TaskArrived(task(4, 1))])
    # 1 -> n0 (full), 2 -> n1, 3 needs 2 cores: blocked, so 4 waits behind it
    assert starts(acts) == {1: 0, 2: 1}
    assert [t.id for t in cp.queued()] == [3, 4]
    acts = cp.step(5.0, [TaskFinished(1)])
    assert starts(acts) == {3: 0, 4: 1}  # in order: 3 first, then 4 on n1's free core
    assert cp.queued() == []


def test_finishes_before_arrivals_at_equal_times_whatever_the_batch_order() -> None:
    cp = ControlPlane(nodes(node_type(cores=1)))
    cp.step(0.0, [TaskArrived(task(1))])
    acts = cp.step(10.0, [TaskArrived(task(2, at=10.0)), TaskFinished(1)])
    assert starts(acts) == {2: 0}


def test_same_time_arrivals_are_ordered_by_id() -> None:
    cp = ControlPlane(nodes(node_type(cores=1)))
    acts = cp.step(0.0, [TaskArrived(task(7)), TaskArrived(task(3)), TaskArrived(task(5))])
    assert starts(acts) == {3: 0}
    assert [t.id for t in cp.queued()] == [5, 7]


def test_task_fitting_no_node_is_rejected_with_reason() -> None:
    cp = ControlPlane(nodes(node_type(cores=2, mem_mb=1000)))
    acts = cp.step(0.0, [TaskArrived(task(1, cores=4)), TaskArrived(task(2, mem=2000))])
    rejects = [a for a in acts if isinstance(a, Reject)]
    assert [(r.task.id, r.reason) for r in rejects] == [(1, "fits no node"), (2, "fits no node")]
    assert all(r.task.state is TaskState.REJECTED for r in rejects)


def test_event_log_is_json_lines_with_every_event_and_action() -> None:
    log = io.StringIO()
    cp = ControlPlane(nodes(node_type(cores=1)), log=log)
    cp.step(0.0, [TaskArrived(task(1)), TaskArrived(task(2))])
    cp.step(3.5, [TaskFinished(1)])
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    kinds = [(r.get("ev") or r.get("act"), r["task"]) for r in records]
    assert kinds == [("arrive", 1), ("arrive", 2), ("start", 1), ("finish", 1), ("start", 2)]
    assert records[-1] == {"t": 3.5, "act": "start", "task": 2, "node": "n0.test"}


def test_view_arrays_are_read_only_and_updated_in_place() -> None:
    cp = ControlPlane(nodes(node_type(cores=4), node_type(cores=4)))
    view = cp.view
    free = view.cores_free
    with pytest.raises(ValueError):
        view.cores_free[0] = 0
    cp.step(0.0, [TaskArrived(task(1, cores=3))])
    assert view.cores_free is free  # the same array object, updated in place
    assert free.tolist() == [1, 4]
    assert view.tasks.tolist() == [1, 0]
    assert np.isnan(view.idle_since_s[0]) and view.idle_since_s[1] == 0.0


class _Greedy(Policy):
    NAME = "greedy-test"

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int:
        return 0  # always node 0, room or not


def test_policy_overcommitting_a_node_is_refused() -> None:
    cp = ControlPlane(nodes(node_type(cores=1), node_type(cores=1)), [_Greedy()])
    cp.step(0.0, [TaskArrived(task(1))])
    with pytest.raises(PolicyError, match="no room"):
        cp.step(0.0, [TaskArrived(task(2))])


def test_failed_task_is_retried_then_fails() -> None:
    finals: list[Task] = []
    cp = ControlPlane(nodes(node_type(cores=1)), retries=1, on_final=finals.append)
    cp.step(0.0, [TaskArrived(task(1))])
    acts = cp.step(1.0, [TaskFailed(1, "boom")])
    assert starts(acts) == {1: 0}  # retried at once
    cp.step(2.0, [TaskFailed(1, "boom")])
    assert [(t.id, t.state, t.attempts) for t in finals] == [(1, TaskState.FAILED, 2)]
    assert cp.run_figures()["retries"] == 1  # one retry; the task's own failures are no kill
    assert cp.run_figures()["kills_node_lost"] == 0


def test_node_down_fails_its_tasks_and_node_up_restores_capacity() -> None:
    finals: list[Task] = []
    cp = ControlPlane(nodes(node_type(cores=2), node_type(cores=2)), on_final=finals.append)
    cp.step(0.0, [TaskArrived(task(1, cores=2)), TaskArrived(task(2, cores=2))])
    acts = cp.step(1.0, [NodeDown(0, "agent lost"), TaskArrived(task(3, cores=2))])
    assert starts(acts) == {}
    assert [(t.id, t.state) for t in finals] == [(1, TaskState.FAILED)]
    assert cp.view.state[0] == PowerState.DOWN
    acts = cp.step(2.0, [NodeUp(0)])
    assert starts(acts) == {3: 0}
    assert cp.run_figures() == {"faults_node_down": 1, "faults_node_up": 1, "retries": 0, "kills_walltime": 0,
                                "kills_policy": 0, "kills_node_lost": 1, "power_ons": 0}


def test_a_start_that_never_happened_spends_no_retry_and_its_node_is_not_chosen_again() -> None:
    finals: list[Task] = []
    log = io.StringIO()
    cp = ControlPlane(nodes(node_type(cores=1), node_type(cores=1)), retries=0,
                      on_final=finals.append, log=log)
    assert starts(cp.step(0.0, [TaskArrived(task(1)), TaskArrived(task(2))])) == {1: 0, 2: 1}
    # the start of task 2 never reached node 1 (its agent is gone): back in the queue, node 1
    # down; in any order within the batch, the attempt is undone before the node is lost
    acts = cp.step(0.5, [NodeDown(1, "unreachable"), TaskNotStarted(2, "refused")])
    assert starts(acts) == {} and [t.id for t in cp.queued()] == [2] and finals == []
    assert cp.view.state[1] == PowerState.DOWN
    acts = cp.step(1.0, [TaskFinished(1)])
    assert starts(acts) == {2: 0}  # on the node that is up, not on the lost one
    cp.step(2.0, [TaskFinished(2)])
    assert [(t.id, t.state, t.attempts) for t in finals] == [
        (1, TaskState.COMPLETED, 1), (2, TaskState.COMPLETED, 1)]
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert {"t": 0.5, "ev": "not_started", "task": 2, "node": "n1.test", "reason": "refused"} in lines
    assert not any(rec.get("act") == "retry" for rec in lines)
    # a start that never happened was no attempt: nothing lost with the node, no retry
    assert (cp.run_figures()["kills_node_lost"], cp.run_figures()["retries"]) == (0, 0)


def test_an_attempt_lost_with_its_node_before_its_start_failed_keeps_the_retry_rule() -> None:
    finals: list[Task] = []
    log = io.StringIO()
    cp = ControlPlane(nodes(node_type(cores=1), node_type(cores=1)), retries=1,
                      on_final=finals.append, log=log)
    cp.step(0.0, [TaskArrived(task(1)), TaskArrived(task(2))])
    acts = cp.step(0.5, [NodeDown(1, "offline")])  # found down first: task 2 lost, as started
    assert starts(acts) == {} and [(t.id, t.attempts) for t in cp.queued()] == [(2, 1)]
    cp.step(0.6, [TaskNotStarted(2, "refused")])  # too late: that attempt is gone already
    assert [(t.id, t.attempts) for t in cp.queued()] == [(2, 1)]
    assert {"t": 0.6, "ev": "not_started", "task": 2, "ignored": True} in [
        json.loads(line) for line in log.getvalue().splitlines()]
    cp.step(1.0, [TaskFinished(1)])
    cp.step(2.0, [TaskFailed(2, "boom")])  # its one retry was spent when its node was lost
    assert [(t.id, t.state, t.attempts) for t in finals] == [
        (1, TaskState.COMPLETED, 1), (2, TaskState.FAILED, 2)]


def test_boot_completion_brings_node_into_service() -> None:
    cp = ControlPlane(nodes(node_type(cores=1)), initial_state=[PowerState.BOOTING])
    cp.booting = 1
    acts = cp.step(0.0, [TaskArrived(task(1))])
    assert starts(acts) == {}
    acts = cp.step(20.0, [NodeBooted(0)])
    assert starts(acts) == {1: 0}
    assert cp.booting == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4096), st.booleans()), min_size=1, max_size=60),
       st.sampled_from(["none", "best_fit"]))
def test_reservations_never_overcommit_and_add_up(ops: list[tuple[int, int, bool]], policy: str) -> None:
    """Whatever arrives and finishes, free + reserved == capacity on every node."""
    ns = nodes(node_type(cores=4, mem_mb=4096), node_type(cores=2, mem_mb=2048), node_type(cores=4, mem_mb=1024))
    cp = ControlPlane(ns, [BestFit()] if policy == "best_fit" else [])
    now = 0.0
    for i, (cores, mem, finish_one) in enumerate(ops):
        now += 1.0
        events: list = [TaskArrived(task(i, cores, mem, at=now))]
        if finish_one and cp.running():
            events.append(TaskFinished(cp.running()[0].id))
        cp.step(now, events)
        v = cp.view
        assert (v.cores_free >= 0).all() and (v.mem_free_mb >= 0).all()
        for n in range(len(ns)):
            running = cp.running_on(n).values()
            assert v.cores_free[n] + sum(t.cores for t in running) == v.cores[n]
            assert v.mem_free_mb[n] + sum(t.mem_mb for t in running) == v.mem_mb[n]
            assert v.tasks[n] == len(running)
            for k in range(v.free_index.max_cores + 1):
                assert (n in set(v.free_index.bucket(k))) == (k == v.cores_free[n])


class _OnlyNode1(Policy):
    NAME = "only-node-1"

    @hookimpl
    def rpiaas_filter(self, task: Task, view: ClusterView) -> np.ndarray:
        return np.arange(len(view)) == 1


def test_filters_constrain_what_rpiaas_place_answers() -> None:
    # best fit alone would pick node 0 (tighter); the filter forbids it
    cp = ControlPlane(nodes(node_type(cores=2), node_type(cores=4)), [_OnlyNode1(), BestFit()])
    acts = cp.step(0.0, [TaskArrived(task(1))])
    assert starts(acts) == {1: 1}


class _Recorder(Policy):
    NAME = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[int, object]] = []

    @hookimpl
    def rpiaas_blocked(self, task: Task, view: ClusterView, now: float, reservation: object) -> object:
        from rpiaas.policy.base import SKIP, Reservation

        self.seen.append((task.id, reservation))
        return Reservation(0, 100.0) if reservation is None else SKIP


def test_blocked_hook_sees_the_reservation_of_the_pass() -> None:
    rec = _Recorder()
    cp = ControlPlane(nodes(node_type(cores=1)), [rec])
    cp.step(0.0, [TaskArrived(task(1)), TaskArrived(task(2)), TaskArrived(task(3))])
    assert [tid for tid, _ in rec.seen] == [2, 3]
    assert rec.seen[0][1] is None and rec.seen[1][1] is not None
