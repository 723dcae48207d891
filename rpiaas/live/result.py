"""What a live run writes beside its tasks' rows: the node series, the run's record.

The tasks' rows are written by the run as the tasks end (:mod:`.shell`, with
the starts their agents measured).  The node series (``nodes.csv``) has a row
per node every sample interval: the control plane's state and reservations,
the CPU and memory use the master's poller measured last, and the power model
on the measured utilisation (which holds until the next sample, so energy is
the model applied to what the node really did).  While a resumed run replays
its journal the rows it missed come from the stored history instead.  When
the run ends, its record (``run.json``) and, when the run has a simulated
twin, ``fidelity.json`` complete the directory."""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.control import ControlPlane
from ..core.energy import NodeUsage
from ..rundir import RunWriter, run_record
from ..rundir.fidelity import FIDELITY_FILE, Outcome, fidelity
from ..scenario import Scenario
from ..store import HistoryStore
from .clock import RunClock

__all__ = ["MIN_SAMPLE_WALL_S", "LiveResult", "Twin", "lag_figures"]

log = logging.getLogger(__name__)

# Rows closer than this in wall time would only repeat the poller's last reading.
MIN_SAMPLE_WALL_S = 0.5

# simulates a scenario: its summary and each task's outcome (a live run's twin)
Twin = Callable[[Scenario], tuple[dict[str, Any], dict[int, Outcome]]]


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
    """A live run's node series and its record, written through the run's ``writer``.

    :param scenario: the scenario replayed.
    :param writer: the run directory being written.
    :param usage: the nodes' usage, power and energy (fed measured utilisation here).
    :param control: the control plane (its view's tasks per node, its count of events).
    :param store: the master's history store (the measured readings).
    :param clock: the run's clock.
    :param twin: simulates the scenario for ``fidelity.json`` (None: no twin).
    """

    def __init__(self, scenario: Scenario, writer: RunWriter, usage: NodeUsage,
                 control: ControlPlane, store: HistoryStore, clock: RunClock,
                 twin: Twin | None = None) -> None:
        self.scenario = scenario
        self.writer = writer
        self.usage = usage
        self.control = control
        self.store = store
        self.clock = clock
        self.twin = twin
        self.nodes = scenario.cluster.nodes
        self.names = [n.name for n in self.nodes]
        self.last_sample_s: float | None = None
        self.next_sample_s = 0.0

    def interval(self) -> float:
        """The scenario's sample interval, but never below half a wall second."""
        return max(self.scenario.sample_interval_s, MIN_SAMPLE_WALL_S / self.clock.timescale)

    async def loop(self) -> None:
        """A row per node at each sample time, from the newest readings, until cancelled."""
        while True:
            at = self.next_sample_s
            await asyncio.sleep(max(0.0, self.clock.wall(at) - self.clock.unix()))
            latest = await asyncio.to_thread(self.store.latest)
            self.write(at, {name: st.sample for name, st in latest.items()})

    def until(self, now: float) -> None:
        """While replaying the journal: the rows due before ``now``, from the stored history."""
        while self.next_sample_s <= now:
            at = self.next_sample_s
            wall = self.clock.wall(at)
            readings: dict[str, Any] = {}
            for name in self.names:
                got = self.store.history(name, wall - 60.0, wall + 1e-6)
                readings[name] = got[-1] if got else None
            self.write(at, readings)

    async def last_row(self, end: float) -> None:
        """The last row, at ``end`` (or at the last sample, if later)."""
        latest = await asyncio.to_thread(self.store.latest)
        self.write(max(end, self.last_sample_s or 0.0),
                   {name: st.sample for name, st in latest.items()})

    def write(self, now: float, readings: dict[str, Any]) -> None:
        """A row per node: control-plane state and reservations, measured use, and the power
        model on the measured utilisation (which holds until the next sample)."""
        self.next_sample_s = now + self.interval()
        self.last_sample_s = now
        usage = self.usage
        mem = []
        for i, name in enumerate(self.names):
            sample = readings.get(name)
            usage.measure_cpu(i, now, float(sample.cpu_util) * usage.cores[i] * self.interval() if sample is not None else 0.0, self.interval())
            mem.append(float(sample.mem_used_mb) if sample is not None else 0.0)
        self.writer.sample(usage.sample(now, mem, self.control.view.tasks.tolist()))
        self.writer.drain()

    async def commit(self, end: float, live: dict[str, Any],
                     outcomes: dict[int, Outcome]) -> Path:
        """Write the run's record, with its ``live`` section (``live["run"]`` is the run's id),
        and its twin's fidelity to the tasks' ``outcomes``; complete the directory."""
        writer, usage, clock = self.writer, self.usage, self.clock
        capacity = float(sum(n.type.cores for n in self.nodes)) * end
        busy_core_s, energy_j = usage.totals()
        summary = writer.stats.summary(busy_core_s, capacity, energy_j, end)
        record = run_record(self.scenario, "live", summary, usage.per_node(self.nodes))
        record["live"] = live
        timing = {"started_at": _dt.datetime.fromtimestamp(clock.t0, _dt.timezone.utc)
                  .isoformat(timespec="seconds"),
                  "wall_s": round(clock.unix() - clock.t0, 3),
                  "events": self.control.events_applied}
        extra = {}
        if self.twin is not None:
            try:
                sim_summary, sim_outcomes = await asyncio.to_thread(self.twin, self.scenario)
                extra[FIDELITY_FILE] = fidelity(summary, outcomes, sim_summary, sim_outcomes)
            except Exception as e:  # the live result stands without its twin
                log.error("run %s: its simulated twin failed: %s", live.get("run"), e)
        return writer.commit(record, timing, extra)
