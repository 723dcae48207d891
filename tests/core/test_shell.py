"""The shell base: one dispatch of actions; NodeUsage integrates energy and busy time exactly."""

from __future__ import annotations

import pytest

from rpiaas.core.control import ControlPlane
from rpiaas.core.energy import STATE_NAMES, NodeUsage
from rpiaas.core.events import (
    Kill,
    Migrate,
    PowerOff,
    PowerOn,
    Reject,
    Start,
    TaskArrived,
    TaskFinished,
    WakeAt,
)
from rpiaas.core.shell import Shell
from rpiaas.model import PowerState, Task
from rpiaas.rundir.stream import node_rows
from rpiaas.scenario import rng_streams

from ..helpers import node_type, nodes


class Recorder(Shell):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, float]] = []

    def start(self, action: Start, now: float) -> None:
        self.seen.append(("start", now))

    def migrate(self, action: Migrate, now: float) -> None:
        self.seen.append(("migrate", now))

    def power_on(self, action: PowerOn, now: float) -> None:
        self.seen.append(("power_on", now))

    def wake_at(self, action: WakeAt, now: float) -> None:
        self.seen.append(("wake_at", action.time_s))


def test_every_action_goes_to_its_method_in_order() -> None:
    t = Task(1, 0.0, 1, 10, 1.0)
    shell = Recorder()
    shell.carry_out([Start(t, 0), Reject(t, "x"), WakeAt(9.0), Kill(t), Migrate(t, 1, 0),
                     PowerOn(2), PowerOff(3)], 4.0)
    assert shell.seen == [("start", 4.0), ("wake_at", 9.0), ("migrate", 4.0), ("power_on", 4.0)]
    with pytest.raises(NotImplementedError):
        Shell().carry_out([Start(t, 0)], 0.0)


def test_usage_integrates_power_and_busy_time_exactly_between_changes() -> None:
    """One 4-core node (2 W idle, 6 W at full): a 2-core task from 10 s to 30 s, the run to 50 s."""
    ns = nodes(node_type(cores=4, idle_w=2.0, max_w=6.0))
    cp = ControlPlane(ns)
    usage = NodeUsage(ns, [int(PowerState.ON)])
    cp.step(10.0, [TaskArrived(Task(1, 10.0, 2, 10, 40.0))])
    assert usage.follow(cp, 10.0) == [0]
    assert usage.util == [0.5] and usage.power_w == [4.0]
    cp.step(30.0, [TaskFinished(1)])
    usage.follow(cp, 30.0)
    usage.close(50.0)
    assert usage.energy_j == [2.0 * 10 + 4.0 * 20 + 2.0 * 20]
    assert usage.busy_core_s == [2 * 20.0]
    assert usage.totals() == (40.0, 140.0)
    assert usage.per_node(ns) == [{"node": "n0.test", "type": "t", "energy_j": 140.0, "busy_core_s": 40.0}]
    assert node_rows(usage.names, usage.sample(50.0, [0], [0])) == "50.0,n0.test,on,0,0,0.0,2.0,140.0,0\n"


def test_measured_usage_follows_the_measurement_and_busy_time_the_tasks() -> None:
    ns = nodes(node_type(cores=4, idle_w=2.0, max_w=6.0))
    usage = NodeUsage(ns, [int(PowerState.ON)], measured=True)
    usage.update(0, 0.0, int(PowerState.ON), 4)  # all cores reserved ...
    usage.measure(0, 0.0, 0.25)  # ... but a quarter of the CPU busy (tasks that sleep)
    usage.measure(0, 10.0, 1.0)
    usage.unbusy(0, 4 * 0.5)  # the tasks began half a second after their cores were reserved
    usage.close(20.0)
    assert usage.energy_j == [3.0 * 10 + 6.0 * 10]
    assert usage.busy_core_s == [4 * 20.0 - 2.0]


def test_states_and_streams() -> None:
    assert STATE_NAMES == {0: "off", 1: "booting", 2: "on", 3: "down"}
    a, b = rng_streams(5), rng_streams(5)
    assert a["workload"].random() == b["workload"].random()
    assert rng_streams(5)["workload"].random() != rng_streams(5)["policy"].random()
