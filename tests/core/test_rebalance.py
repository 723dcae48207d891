"""Moves, kills and power changes a policy asks for: carried out, or dropped and said why."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

import pytest

from rpiaas.core.control import ControlPlane, PolicyError
from rpiaas.core.events import Action, Kill, Migrate, PowerOn, Start, TaskArrived, Tick, WakeAt
from rpiaas.core.view import ClusterView
from rpiaas.model import PowerState, Task, TaskState
from rpiaas.policy.base import Policy, PowerPlan, hookimpl

from ..helpers import node_type, nodes


class Script(Policy):
    """Answers the next scripted rebalance list and power plan at each step."""

    NAME = "script"

    def __init__(self, moves: Sequence[list[object]] = (), plans: Sequence[PowerPlan | None] = ()) -> None:
        self.moves, self.plans = list(moves), list(plans)

    @hookimpl
    def rpiaas_rebalance(self, view: ClusterView, now: float) -> list[object]:
        return self.moves.pop(0) if self.moves else []

    @hookimpl
    def rpiaas_power(self, view: ClusterView, now: float) -> PowerPlan | None:
        return self.plans.pop(0) if self.plans else None


def kinds(actions: list[Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_a_move_to_a_node_with_room_is_carried_out_the_others_dropped_with_a_reason() -> None:
    t1, t2 = Task(1, 0.0, 2, 100, 10.0), Task(2, 0.0, 1, 100, 10.0)
    log, trace = io.StringIO(), io.StringIO()
    policy = Script(moves=[[], [Migrate(t1, 1), Migrate(t2, 0), Kill(Task(9, 0.0, 1, 1, 1.0))]])
    cp = ControlPlane(nodes(node_type(cores=2), node_type(cores=2)), [policy], log=log, trace=trace)
    cp.step(0.0, [TaskArrived(t1), TaskArrived(t2)])  # t1 on node 0 (full), t2 on node 1
    acts = cp.step(1.0, [Tick()])
    # t1 to node 1: one core free there, t1 needs 2 -> dropped; t2 to node 0: full -> dropped
    assert kinds(acts) == []
    records = [json.loads(x) for x in trace.getvalue().splitlines() if '"rebalance"' in x]
    assert [(r["decision"], r.get("reason")) for r in records] == [
        ("migrate", "no room"), ("migrate", "no room"), ("kill", "not running")]
    policy.moves = [[Kill(t2), Migrate(t1, 1)]]
    acts = cp.step(2.0, [Tick()])
    assert kinds(acts) == ["Kill", "Migrate"] and (t1.node, t2.state) == (1, TaskState.KILLED)
    assert t2.reason == "policy" and '"act":"kill","task":2}' in log.getvalue()
    assert cp.ledger.cores_free_list == [2, 0]
    assert '"act":"migrate","task":1,"from":"n0.test","node":"n1.test"' in log.getvalue()
    assert cp.run_figures()["kills_policy"] == 1  # the dropped kill of task 9 is none
    assert cp.run_figures()["kills_walltime"] == cp.run_figures()["kills_node_lost"] == 0


def test_a_power_plan_switches_idle_nodes_off_and_off_nodes_on() -> None:
    plan_off = PowerPlan(on=(), off=(0, 1), wake_at_s=50.0)
    cp = ControlPlane(nodes(node_type(), node_type()), [Script(plans=[plan_off, PowerPlan(on=(0,), off=())])])
    acts = cp.step(0.0, [TaskArrived(Task(1, 0.0, 1, 100, 10.0))])  # task 1 keeps node 0 busy
    assert kinds(acts) == ["Start", "PowerOff", "WakeAt"] and isinstance(acts[2], WakeAt)
    assert cp.node_states == [PowerState.ON, PowerState.OFF]
    acts = cp.step(1.0, [Tick()])  # node 0 is on: nothing to do for it
    assert kinds(acts) == [] and cp.booting == 0
    cp2 = ControlPlane(nodes(node_type()), [Script(plans=[PowerPlan(on=(0,), off=())])],
                       initial_state=[PowerState.OFF])
    acts = cp2.step(0.0, [Tick()])
    assert [type(a) for a in acts] == [PowerOn] and cp2.booting == 1
    assert cp2.node_states == [PowerState.BOOTING]
    assert cp.run_figures()["power_ons"] == 0 and cp2.run_figures()["power_ons"] == 1


def test_a_bad_answer_names_the_hook() -> None:
    cp = ControlPlane(nodes(node_type()), [Script(moves=[[Start(Task(1, 0.0, 1, 1, 1.0), 0)]])])
    with pytest.raises(PolicyError, match="rpiaas_rebalance returned Start"):
        cp.step(0.0, [Tick()])
    cp = ControlPlane(nodes(node_type()), [Script(plans=[PowerPlan(on=(5,), off=())])])
    with pytest.raises(PolicyError, match="rpiaas_power switched on node 5, out of range"):
        cp.step(0.0, [Tick()])
