"""The energy integrator: power and busy time integrated exactly between changes."""

from __future__ import annotations

import pytest

from rpiaas.core.control import ControlPlane
from rpiaas.core.energy import NodeUsage
from rpiaas.core.events import NodeBooted, NodeDown, NodeUp, TaskArrived, TaskFinished
from rpiaas.model import PowerState, Task
from rpiaas.rundir.stream import node_rows

from ..helpers import node_type, nodes


def test_usage_integrates_power_and_busy_time_exactly_between_changes() -> None:
    """One 4-core node (2 W idle, 6 W at full): a 2-core task from 10 s to 30 s, the run to 50 s."""
    ns = nodes(node_type(cores=4, idle_w=2.0, max_w=6.0))
    cp = ControlPlane(ns)
    usage = NodeUsage(cp)
    cp.step(10.0, [TaskArrived(Task(1, 10.0, 2, 10, 40.0))])
    assert cp.changes == [(0, 10.0, 2, PowerState.ON)]
    usage.follow()
    assert cp.changes == []  # taken in
    assert usage.util == [0.5] and usage.power_w == [4.0]
    cp.step(30.0, [TaskFinished(1)])
    usage.follow()
    usage.close(50.0)
    assert usage.energy_j == [2.0 * 10 + 4.0 * 20 + 2.0 * 20]
    assert usage.busy_core_s == [2 * 20.0]
    assert usage.totals() == (40.0, 140.0)
    assert usage.per_node(ns) == [{"node": "n0.test", "type": "t", "energy_j": 140.0, "busy_core_s": 40.0,
                                   "energy_source": "modelled"}]
    assert node_rows(usage.names, usage.sample(50.0, [0], [0])) == \
        "50.0,n0.test,on,0,0,0.0,2.0,140.0,0,0.0,modelled\n"


def test_measured_usage_follows_the_measurement_and_busy_time_the_tasks() -> None:
    ns = nodes(node_type(cores=4, idle_w=2.0, max_w=6.0))
    cp = ControlPlane(ns)
    usage = NodeUsage(cp, measured=True)
    cp.step(0.0, [TaskArrived(Task(1, 0.0, 4, 10, 40.0))])
    usage.follow()  # all cores reserved ...
    usage.measure_cpu(0, 10.0, 10.0, 10.0)  # ... but a quarter of the CPU busy (tasks that sleep)
    assert usage.util == [0.25] and usage.sample(10.0, [0], [1])[6] == [3.0]
    usage.measure_cpu(0, 20.0, 40.0, 10.0)
    usage.unbusy(0, 4 * 0.5)  # the tasks began half a second after their cores were reserved
    usage.close(20.0)
    assert usage.energy_j == [3.0 * 10 + 6.0 * 10]
    assert usage.busy_core_s == [4 * 20.0 - 2.0]
    assert usage.cpu_s == [50.0]
    assert usage.cpu_totals() == 50.0  # the measured CPU, not the reservation
    # nodes.csv: utilization is the allocated share (all 4 cores), cpu_utilization the measured one
    usage.measure_cpu(0, 30.0, 20.0, 10.0)
    assert node_rows(usage.names, usage.sample(30.0, [0], [1])) == \
        "30.0,n0.test,on,4,0,1.0,4.0,130.0,1,0.5,modelled-from-measured\n"
    usage.set_power_source(0, "measured")  # a meter gives this node's power
    assert usage.per_node(ns)[0]["energy_source"] == "measured"
    with pytest.raises(ValueError, match="power source"):
        usage.set_power_source(0, "guessed")


def test_measured_energy_does_not_depend_on_how_often_the_cpu_is_read() -> None:
    """The same CPU seconds read once or in ten pieces give the same energy: the model is
    linear in utilisation, so a span's CPU energy is its CPU seconds' whatever their spread."""
    def energy(reads: int) -> float:
        cp = ControlPlane(nodes(node_type(cores=4, idle_w=2.0, max_w=6.0)))
        usage = NodeUsage(cp, measured=True)
        for k in range(1, reads + 1):
            usage.measure_cpu(0, 30.0 * k / reads, 12.0 / reads, 30.0 / reads)
        usage.close(30.0)
        return usage.energy_j[0]

    assert energy(1) == pytest.approx(energy(10)) == pytest.approx(2.0 * 30 + 1.0 * 12)


def test_every_power_state_draws_its_types_model() -> None:
    """Off, booting, on (idle and busy) and down: the node type's figures, integrated."""
    t = node_type(cores=2, idle_w=2.0, max_w=4.0)
    ns = nodes(t, t)
    cp = ControlPlane(ns, initial_state=[PowerState.OFF, PowerState.BOOTING])
    usage = NodeUsage(cp)
    assert usage.power_w == [t.power_off_w, t.power_boot_w]
    cp.step(5.0, [NodeBooted(1), NodeUp(0)])
    usage.follow()
    assert usage.power_w == [2.0, 2.0]
    usage.close(10.0)
    assert usage.energy_j == [t.power_off_w * 5 + 2.0 * 5, t.power_boot_w * 5 + 2.0 * 5]


def test_power_cycles_boots_and_time_off_are_counted_at_each_power_change() -> None:
    """Two switch-offs, a boot of 7 s after a PowerOn, and the node-seconds spent off: counted
    from the changes alone (the changes are those a control plane hands over)."""
    t = node_type(cores=2, idle_w=2.0, max_w=4.0)
    ns = nodes(t, t)
    cp = ControlPlane(ns)
    usage = NodeUsage(cp)
    on, off, booting = int(PowerState.ON), int(PowerState.OFF), int(PowerState.BOOTING)
    usage.follow([(0, 10.0, 2, off), (1, 12.0, 2, off)])  # both switched off
    usage.follow([(0, 20.0, 2, booting), (0, 27.0, 2, on)])  # node 0 boots in 7 s
    usage.follow([(0, 30.0, 1, on)])  # a task: no power change
    usage.close(50.0)  # node 1 stays off to the end
    figures = usage.power_figures()
    assert figures == {"power_cycles": 2, "boots": 1, "boot_s_median": 7.0,
                       "time_off_s": (20.0 - 10.0) + (50.0 - 12.0)}
    assert usage.boots_s == [(0, 7.0)]
    energy = 2.0 * 10 + t.power_off_w * 10 + t.power_boot_w * 7 + 2.0 * 3 + 3.0 * 20
    assert usage.energy_j[0] == pytest.approx(energy)


def test_a_node_that_fails_and_comes_back_is_no_power_cycle() -> None:
    ns = nodes(node_type(cores=2))
    cp = ControlPlane(ns)
    usage = NodeUsage(cp)
    cp.step(5.0, [NodeDown(0, "lost")])
    cp.step(9.0, [NodeUp(0)])
    usage.close(10.0)
    assert usage.power_figures() == {"power_cycles": 0, "boots": 0, "boot_s_median": None, "time_off_s": 0.0}
