"""What a live run writes: start lags, the sample interval, tasks with their measured starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from rpiaas.core.control import ControlPlane
from rpiaas.core.energy import NodeUsage
from rpiaas.live.agent_client import AgentClient
from rpiaas.live.clock import RunClock
from rpiaas.live.options import LiveOptions
from rpiaas.live.result import MIN_SAMPLE_WALL_S, LiveResult, lag_figures
from rpiaas.live.shell import LiveRun
from rpiaas.master.registry import NodeEntry
from rpiaas.model import TaskState
from rpiaas.rundir import RunWriter
from rpiaas.scenario import Scenario
from rpiaas.store import open_store

from ..helpers import cluster, scenario


def test_lag_figures() -> None:
    assert lag_figures([]) == {"tasks": 0, "p50": None, "p95": None, "max": None}
    lags = [0.01 * i for i in range(1, 101)]
    assert lag_figures(lags) == {"tasks": 100, "p50": 0.51, "p95": 0.96, "max": 1.0}


def _scenario() -> Scenario:
    return scenario({"name": "t", "cluster": cluster(1), "sample_interval_s": 2.0,
                     "workload": {"tasks": [{"arrival_s": 0, "cores": 1, "mem_mb": 64,
                                             "work_core_s": 10}]},
                     "policy": "first_fit"})


def _run(tmp_path: Path, timescale: float, client: AgentClient) -> LiveRun:
    sc = _scenario()
    entries = [NodeEntry(n, "127.0.0.1", 1) for n in sc.cluster.nodes]
    return LiveRun("r", sc, entries, client, open_store(str(tmp_path / "h.db")), tmp_path,
                   LiveOptions(timescale=timescale))


def test_samples_are_never_closer_than_half_a_wall_second(tmp_path: Path) -> None:
    def interval(timescale: float) -> float:
        sc = _scenario()
        writer = RunWriter(tmp_path / "result")
        control = ControlPlane(sc.cluster.nodes, sc.policies(np.random.default_rng(0)))
        usage = NodeUsage(control, measured=True)
        result = LiveResult(sc, writer, usage, control, open_store(str(tmp_path / "h.db")),
                            RunClock(timescale))
        writer.abort()
        return result.interval()

    assert interval(1.0) == 2.0
    # at 1/100 of real time, 2 scenario seconds are 20 ms of wall time: too close
    assert interval(0.01) == pytest.approx(MIN_SAMPLE_WALL_S / 0.01)


def test_a_task_is_written_from_its_measured_start(tmp_path: Path) -> None:
    async def go() -> None:
        async with AgentClient() as client:
            run = _run(tmp_path, 1.0, client)
            run.writer = RunWriter(tmp_path / "result")
            run.writer.node_names = [n.name for n in run.nodes]
            run.control = ControlPlane(run.nodes, run.scenario.policies(np.random.default_rng(0)))
            run.usage = NodeUsage(run.control, measured=True)
            task = next(iter(run.scenario.workload.tasks(np.random.default_rng(0))))
            task.node, task.start_s, task.end_s, task.state = 0, 1.0, 11.5, TaskState.COMPLETED
            run.measured_start[task.id] = 1.5  # the agent started it half a second late
            run.task_final(task)
            assert task.start_s == 1.5 and run.start_lags == [0.5]
            assert run.outcomes[task.id].completed
            assert task.id not in run.measured_start
            run.writer.abort()

    asyncio.run(go())


def test_fidelity_boots_are_the_measured_ones_handed_over_else_the_runs_own(tmp_path: Path) -> None:
    """Boots handed over by whoever measured them (PowerOn to the agent's boot report) are
    ``measured``; without any, the boots the run had (PowerOn to NodeBooted, as the energy
    integrator counted them) keep the run's boot source (emulated power: modelled)."""
    from rpiaas.model import PowerState

    sc = scenario({"name": "t", "cluster": cluster(2), "workload": {"tasks": []}, "policy": "first_fit"})
    writer = RunWriter(tmp_path / "result")
    control = ControlPlane(sc.cluster.nodes, sc.policies(np.random.default_rng(0)))
    usage = NodeUsage(control, measured=True)
    result = LiveResult(sc, writer, usage, control, open_store(str(tmp_path / "h.db")), RunClock(1.0))
    writer.abort()
    boot_s = sc.cluster.nodes[0].type.boot_s
    booting, on = int(PowerState.BOOTING), int(PowerState.ON)
    usage.follow([(0, 10.0, 4, booting), (0, 10.0 + boot_s, 4, on)])
    own = result.boots("modelled")
    row = own["types"][sc.cluster.nodes[0].type.name]
    assert own["source"] == "modelled" and row["measured"]["count"] == 1
    assert row["measured"]["median_s"] == pytest.approx(boot_s) and row["diff_s"] == pytest.approx(0.0, abs=1e-9)
    result.boot_measured(1, boot_s + 4.0)
    result.boot_measured(0, boot_s + 2.0)
    handed = result.boots("modelled")
    row = handed["types"][sc.cluster.nodes[0].type.name]
    assert handed["source"] == "measured" and row["measured"]["count"] == 2
    assert row["measured"]["median_s"] == pytest.approx(boot_s + 3.0) and row["diff_s"] == pytest.approx(3.0)


def test_the_watch_takes_utilisation_from_the_cpu_counter() -> None:
    """A task that ran between two polls counts: the counter's difference, not the agent's
    sampled utilisation (0 here: both samples fell after the task)."""
    from rpiaas.live.watch import utilization
    from rpiaas.store import Sample

    def at(t: float, busy: float | None, util: float = 0.0) -> Sample:
        return Sample(node="n", time_s=t, cpu_util=util, mem_used_mb=0.0, mem_total_mb=1.0, load1=0.0,
                      disk_used_ratio=0.0, cpu_per_core=(util,) * 4, cpu_busy_s=busy)

    assert utilization(at(10.0, 100.0), at(12.0, 102.0)) == 0.25  # 2 CPU s over 4 cores x 2 s
    assert utilization(at(10.0, 100.0), at(12.0, 150.0)) == 1.0  # never above 1
    assert utilization(None, at(12.0, 102.0, 0.5)) == 0.5  # nothing to compare with yet
    assert utilization(at(10.0, 100.0), at(12.0, None, 0.5)) == 0.5  # an agent without counter
    assert utilization(at(10.0, 100.0), at(12.0, 3.0, 0.5)) == 0.5  # the node started again
