"""What a live run writes beside its tasks' rows: the node series, the run's record.

The tasks' rows are written by the run as the tasks end (:mod:`.shell`, with
the starts their agents measured).  The node series (``nodes.csv``) has a row
per node every sample interval: the control plane's state and reservations
(``utilization``: the allocated share of the cores), the measured CPU share
(``cpu_utilization``, :meth:`LiveResult.cpu_share`) and memory use, and the
power model on the measured CPU share (which holds until the next sample, so
energy is the model applied to what the node really did: ``power_source``
``modelled-from-measured``, or ``measured`` for a node whose power a meter
gives).  While a resumed run replays its journal the rows it missed come from
the stored history instead.  When the run ends, its record (``run.json``, with
its ``sources``) and, when the run has a simulated twin, ``fidelity.json``
(with the boots measured, :meth:`LiveResult.boot_measured`) complete the
directory."""

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
from ..rundir.fidelity import FIDELITY_FILE, Outcome, boot_fidelity, fidelity
from ..rundir.sources import MEASURED, live_sources
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
        # how the run's power actions were carried out (``switched`` by the nodes' drivers,
        # ``emulated`` or ``mixed``: run.json's sources.switching) and each measured boot, node name
        # and PowerOn to boot report in scenario seconds (fidelity.json's boots): the live
        # shell's switch (rpiaas.live.switching) hands them over
        self.switching = "emulated"
        self.boots_measured: list[tuple[str, float]] = []

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

    def cpu_share(self, i: int, now: float, reading: Any) -> float:
        """Node ``i``'s measured CPU share (0 to 1 of its cores) over the interval that ends at
        ``now``: the CPU use in its newest reading from the master's poller (``reading``, or
        None: none yet).  The one place the run takes a node's CPU measurement from."""
        return float(reading.cpu_util) if reading is not None else 0.0

    def boot_measured(self, i: int, boot_s: float) -> None:
        """Node ``i`` booted in ``boot_s`` scenario seconds, from its PowerOn to its agent's
        boot report: a measured boot for ``fidelity.json``'s ``boots``."""
        self.boots_measured.append((self.names[i], boot_s))

    def write(self, now: float, readings: dict[str, Any]) -> None:
        """A row per node: control-plane state and reservations, measured use, and the power
        model on the measured utilisation (which holds until the next sample)."""
        self.next_sample_s = now + self.interval()
        self.last_sample_s = now
        usage = self.usage
        mem = []
        for i, name in enumerate(self.names):
            sample = readings.get(name)
            usage.measure(i, now, self.cpu_share(i, now, sample))
            mem.append(float(sample.mem_used_mb) if sample is not None else 0.0)
        self.writer.sample(usage.sample(now, mem, self.control.view.tasks.tolist()))
        self.writer.drain()

    def boots(self, source: str) -> dict[str, Any]:
        """``fidelity.json``'s ``boots``: each node type's ``boot_s`` against the boots handed to
        :meth:`boot_measured`, or, without any, the boots the run had (PowerOn to
        ``NodeBooted``, counted by the energy integrator) labelled ``source``."""
        handed = self.boots_measured
        boots, label = ((handed, MEASURED) if handed else
                        ([(self.names[i], d) for i, d in self.usage.boots_s], source))
        type_of = {n.name: n.type.name for n in self.nodes}
        by_type: dict[str, list[float]] = {}
        for name, d in boots:
            by_type.setdefault(type_of[name], []).append(d)
        modelled = {n.type.name: n.type.boot_s for n in self.nodes}
        return boot_fidelity(modelled, by_type, label)

    async def commit(self, end: float, live: dict[str, Any],
                     outcomes: dict[int, Outcome]) -> Path:
        """Write the run's record, with its ``live`` section (``live["run"]`` is the run's id),
        and its twin's fidelity to the tasks' ``outcomes``; complete the directory."""
        writer, usage, clock = self.writer, self.usage, self.clock
        capacity = float(sum(n.type.cores for n in self.nodes)) * end
        busy_core_s, energy_j = usage.totals()
        summary = writer.stats.summary(busy_core_s, capacity, energy_j, end, cpu_core_s=usage.cpu_totals(),
                                       power=usage.power_figures())
        sources = live_sources(self.switching, usage.power_source)
        record = run_record(self.scenario, "live", summary, usage.per_node(self.nodes), sources)
        record["live"] = live
        timing = {"started_at": _dt.datetime.fromtimestamp(clock.t0, _dt.timezone.utc)
                  .isoformat(timespec="seconds"),
                  "wall_s": round(clock.unix() - clock.t0, 3),
                  "events": self.control.events_applied}
        extra = {}
        if self.twin is not None:
            try:
                sim_summary, sim_outcomes = await asyncio.to_thread(self.twin, self.scenario)
                extra[FIDELITY_FILE] = fidelity(summary, outcomes, sim_summary, sim_outcomes, sources,
                                                self.boots(sources["boot_s"]))
            except Exception as e:  # the live result stands without its twin
                log.error("run %s: its simulated twin failed: %s", live.get("run"), e)
        return writer.commit(record, timing, extra)
