"""What a live run writes into its run directory: tasks, node series, the run's record.

Tasks are written as they end, with the start their agent measured (the
decision's time until then: the cores were reserved from it on).  The node
series (``nodes.csv``) has a row per node every sample interval: the control
plane's state and reservations, the CPU and memory use the master's poller
measured last, and the power model on the measured utilisation (which holds
until the next sample, so energy is the model applied to what the node really
did).  While a resumed run replays its journal the rows it missed come from
the stored history instead.  When the run ends, its record (``run.json``) and, when the
run has a simulated twin, ``fidelity.json`` complete the directory.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model import Task, TaskState
from ..rundir import run_record
from ..rundir.fidelity import Outcome, fidelity, outcome

if TYPE_CHECKING:
    from .shell import LiveRun

__all__ = ["MIN_SAMPLE_WALL_S", "LiveResult", "lag_figures"]

log = logging.getLogger(__name__)

# Rows closer than this in wall time would only repeat the poller's last reading.
MIN_SAMPLE_WALL_S = 0.5


def lag_figures(lags: list[float]) -> dict[str, Any]:
    """How long after its decision a task started on its agent (scenario seconds): the
    testbed's timing jitter, which ``rpiaas compare`` takes as its default tolerance."""
    if not lags:
        return {"tasks": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(lags)

    def q(p: float) -> float:
        return float(f"{ordered[min(len(ordered) - 1, int(p * len(ordered)))]:.6g}")

    return {"tasks": len(ordered), "p50": q(0.5), "p95": q(0.95), "max": q(1.0)}


class LiveResult:
    """The run directory of ``run``: its tasks as they end, its node series, its record."""

    def __init__(self, run: LiveRun) -> None:
        self.run = run
        self.last_sample_s: float | None = None
        self.next_sample_s = 0.0
        self.outcomes: dict[int, Outcome] = {}
        self.start_lags: list[float] = []  # measured start - decision, scenario seconds
        self.names = [n.name for n in run.nodes]

    def task_ended(self, task: Task) -> None:
        """Write a task that reached its final state (the control plane's ``on_final``)."""
        run = self.run
        measured = run.agents.measured_start.pop(task.id, None)
        if measured is not None and task.start_s >= 0 and task.state is not TaskState.QUEUED:
            end = task.end_s if task.end_s >= 0 else max(run.last_now, task.start_s)
            start = min(max(task.start_s, measured), end)
            # the cores were reserved from the decision on, the task ran from its measured
            # start: busy time is the task's own, as tasks.csv says
            run.usage.unbusy(task.node, task.cores * (start - task.start_s))
            self.start_lags.append(start - task.start_s)
            task.start_s = start
        assert run.writer is not None
        run.writer.task_ended(task)
        self.outcomes[task.id] = outcome(task, self.names)

    def interval(self) -> float:
        """The scenario's sample interval, but never below half a wall second."""
        run = self.run
        return max(run.scenario.sample_interval_s, MIN_SAMPLE_WALL_S / run.options.timescale)

    async def loop(self) -> None:
        """A row per node at each sample time, from the newest readings, until cancelled."""
        run = self.run
        while True:
            at = self.next_sample_s
            await asyncio.sleep(max(0.0, run.wall(at) - run.clock()))
            latest = await asyncio.to_thread(run.store.latest)
            self.write(at, {name: st.sample for name, st in latest.items()})

    def until(self, now: float) -> None:
        """While replaying the journal: the rows due before ``now``, from the stored history."""
        run = self.run
        while self.next_sample_s <= now:
            at = self.next_sample_s
            wall = run.wall(at)
            readings: dict[str, Any] = {}
            for node in run.nodes:
                got = run.store.history(node.name, wall - 60.0, wall + 1e-6)
                readings[node.name] = got[-1] if got else None
            self.write(at, readings)

    async def last_row(self, end: float) -> None:
        """The last row, at ``end`` (or at the last sample, if later)."""
        latest = await asyncio.to_thread(self.run.store.latest)
        self.write(max(end, self.last_sample_s or 0.0),
                   {name: st.sample for name, st in latest.items()})

    def write(self, now: float, readings: dict[str, Any]) -> None:
        """A row per node: control-plane state and reservations, measured use, and the power
        model on the measured utilisation (which holds until the next sample)."""
        run = self.run
        assert run.writer is not None
        self.next_sample_s = now + self.interval()
        self.last_sample_s = now
        mem = []
        for i, name in enumerate(self.names):
            sample = readings.get(name)
            run.usage.measure(i, now, float(sample.cpu_util) if sample is not None else 0.0)
            mem.append(float(sample.mem_used_mb) if sample is not None else 0.0)
        run.writer.sample(run.usage.sample(now, mem, run.control.view.tasks.tolist()))
        run.writer.drain()

    async def commit(self, end: float) -> Path:
        """Write the run's record (with its twin's fidelity) and complete the directory."""
        run = self.run
        assert run.writer is not None
        capacity = float(sum(n.type.cores for n in run.nodes)) * end
        busy_core_s, energy_j = run.usage.totals()
        summary = run.writer.stats.summary(busy_core_s, capacity, energy_j, end)
        record = run_record(run.scenario, "live", summary, run.usage.per_node(run.nodes))
        record["live"] = {"run": run.id, "timescale": run.options.timescale,
                          "task_kind": run.options.task_kind,
                          "agents": {e.name: e.base_url for e in run.entries},
                          "start_lag_s": lag_figures(self.start_lags)}
        timing = {"started_at": _dt.datetime.fromtimestamp(run.t0, _dt.timezone.utc)
                  .isoformat(timespec="seconds"),
                  "wall_s": round(run.clock() - run.t0, 3),
                  "events": run.control.events_applied}
        extra = {}
        if run.twin is not None:
            try:
                sim_summary, sim_outcomes = await asyncio.to_thread(run.twin, run.scenario)
                extra["fidelity.json"] = fidelity(summary, self.outcomes, sim_summary, sim_outcomes)
            except Exception as e:  # the live result stands without its twin
                log.error("run %s: its simulated twin failed: %s", run.id, e)
        return run.writer.commit(record, timing, extra)
