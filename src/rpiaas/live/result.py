"""What a live run writes beside its tasks' rows: the node series, the run's record.

The tasks' rows are written by the run as the tasks end (:mod:`.shell`, with
the starts their agents measured).  The node series (``nodes.csv``) has a row
per node every sample interval: the control plane's state and reservations
(``utilization``: the allocated share of the cores, as in simulation), the
memory the master's poller measured last, and what the node used and drew
(``cpu_utilization``, power, energy and ``power_source``).

**CPU** comes from the node's counter of busy CPU seconds (``cpu_busy_s`` of
each sample: ``/proc/stat`` on a node, its tasks' rusage on an emulated one):
the CPU seconds between two rows are the difference of the counter at the
newest samples before them, so every task's CPU time counts, however short,
and the CPU seconds of a node over the run do not depend on the sample
interval.  (An agent that gives no counter falls back on its sampled
utilisation, which does; a counter that goes down means the node started
again, and counts from 0.)  Wall CPU seconds are divided by the timescale:
a run at 0.25 ran its work four times faster.

**Power and energy** of a node with a meter (``meter:`` in the cluster file,
or readings in the history: an agent's ``hwmon`` or ``pmic``, a master-side
meter) are its readings': the newest at each row, and the energy integrated
over the readings' own times (:func:`rpiaas.power.integrate_energy`, the
trapezoid) from the run's start; the run's record says ``measured`` and
lists the gaps in the readings (``gaps``), which are not filled.  Any other
node's power is its type's model on the measured CPU seconds
(``modelled-from-measured``, :meth:`NodeUsage.measure_cpu
<rpiaas.core.energy.NodeUsage.measure_cpu>`).

The last row waits (a few poll intervals at most) for a sample and a power
reading from after the run's end, so the last task's CPU and power count.
While a resumed run replays its journal the rows it missed come from the
stored history instead.  When the run ends, its record (``run.json``, with
its ``sources``) and, when the run has a simulated twin, ``fidelity.json``
(with the boots measured, :meth:`LiveResult.boot_measured`) complete the
directory."""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.control import ControlPlane
from ..core.energy import NodeUsage
from ..power import MeteredEnergy, integrate_energy
from ..rundir import RunWriter, run_record
from ..rundir.fidelity import FIDELITY_FILE, Outcome, boot_fidelity, fidelity
from ..rundir.metrics import rounded
from ..rundir.sources import MEASURED, MODELLED_FROM_MEASURED, live_sources
from ..scenario import Scenario
from ..store import HistoryStore, PowerReading, Sample
from .clock import RunClock
from .hold import is_no_space

__all__ = ["MIN_SAMPLE_WALL_S", "LiveResult", "Twin", "lag_figures", "metered_energy",
           "not_started_figures"]

log = logging.getLogger(__name__)

# Rows closer than this in wall time would only repeat the poller's last reading.
MIN_SAMPLE_WALL_S = 0.5

# Readings this long before the run's start are looked at for the one that cuts its first interval.
LOOKBACK_S = 300.0
# The last row waits at most this many of the poller's intervals (as seen) for readings after the end.
FINAL_WAIT_POLLS = 3.0

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


def not_started_figures(per_task: dict[int, int]) -> dict[str, Any]:
    """The attempts whose start never reached their agent (``TaskNotStarted``): how many in
    all, and per task id (a key of JSON: text).  ``tasks.csv``'s ``attempts`` counts none of
    them."""
    return {"attempts": sum(per_task.values()),
            "tasks": {str(t): n for t, n in sorted(per_task.items())}}


def metered_energy(readings: Sequence[PowerReading], start_s: float, end_s: float
                   ) -> MeteredEnergy:
    """The energy of a node's ``readings`` (sorted, unix times) between unix times ``start_s`` and
    ``end_s``: the trapezoid over the readings' own times, gaps reported
    (:func:`rpiaas.power.integrate_energy`).  Of the readings before the window only the
    last counts (it cuts the window's first interval), as of those after it only the first."""
    before = [r for r in readings if r.time_s < start_s][-1:]
    after = [r for r in readings if r.time_s > end_s][:1]
    inside = [r for r in readings if start_s <= r.time_s <= end_s]
    used = before + inside + after
    return integrate_energy([r.time_s for r in used], [r.watts for r in used], start_s, end_s)


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
        # what to do when the tables find no space (the live shell holds the run); None: raise
        self.on_full: Callable[[OSError], None] | None = None
        n = len(self.nodes)
        # per node: the (time, counter) of the sample the CPU was last counted to
        self.counted: list[tuple[float, float] | None] = [None] * n
        # power readings of the run so far, per node (from the history, unix times)
        self.power: list[list[PowerReading]] = [[] for _ in range(n)]
        self.metered = [n.meter is not None for n in self.nodes]
        self.energy: list[MeteredEnergy | None] = [None] * n  # each metered node's, at the end
        self.ending = False  # the last row is under way

    def interval(self) -> float:
        """The scenario's sample interval, but never below half a wall second."""
        return max(self.scenario.sample_interval_s, MIN_SAMPLE_WALL_S / self.clock.timescale)

    def read(self) -> dict[str, Sample | None]:
        """The newest sample of each node, and the power readings stored since the last read
        (blocking: the store)."""
        latest = self.store.latest()
        for i, name in enumerate(self.names):
            got = self.power[i]
            since = got[-1].time_s if got else self.clock.t0 - LOOKBACK_S
            new = [r for r in self.store.power(name, since, None) if not got or r.time_s > since]
            if new:
                got.extend(new)
                self.metered[i] = True
        return {name: st.sample for name, st in latest.items()}

    async def loop(self) -> None:
        """A row per node at each sample time, from the newest readings, until cancelled."""
        while True:
            at = self.next_sample_s
            await asyncio.sleep(max(0.0, self.clock.wall(at) - self.clock.unix()))
            readings = await asyncio.to_thread(self.read)
            if self.ending:  # the last row is being made: no row after the run's end
                return
            self.write(at, readings)

    def until(self, now: float) -> None:
        """While replaying the journal: the rows due before ``now``, from the stored history."""
        while self.next_sample_s <= now:
            at = self.next_sample_s
            wall = self.clock.wall(at)
            readings: dict[str, Any] = {}
            for i, name in enumerate(self.names):
                got = self.store.history(name, wall - 60.0, wall + 1e-6)
                readings[name] = got[-1] if got else None
                self.power[i] = self.store.power(name, self.clock.t0 - LOOKBACK_S, wall + 1e-6)
                self.metered[i] = self.metered[i] or bool(self.power[i])
            self.write(at, readings)

    def _poll_spacing(self, at_wall: float) -> float:
        """The poller's interval as the samples and power readings before the unix time
        ``at_wall`` show it (the median spacing of a node's last ones; 5 s if there are too few)."""
        spacings: list[float] = []
        for i, name in enumerate(self.names):
            for times in ([x.time_s for x in self.store.history(name, at_wall - 60.0, at_wall)][-20:],
                          [r.time_s for r in self.power[i] if r.time_s < at_wall][-20:]):
                spacings += [b - a for a, b in itertools.pairwise(times) if b > a]
        return max(0.05, statistics.median(spacings)) if spacings else 5.0

    def _caught_up(self, samples: dict[str, Sample | None], at_wall: float, spacing: float) -> bool:
        """Whether every node still reporting has a sample (and, metered, a power reading)
        from after the unix time ``at_wall``."""
        recent = at_wall - FINAL_WAIT_POLLS * spacing - 1.0
        for i, name in enumerate(self.names):
            sample = samples.get(name)
            if sample is not None and recent < sample.time_s < at_wall:
                return False
            got = self.power[i]
            if got and recent < got[-1].time_s < at_wall:
                return False
        return True

    async def last_row(self, end: float) -> None:
        """The last row, at ``end`` (or at the last sample, if later), once the poller has
        read every node after it (at most a few poll intervals)."""
        self.ending = True
        at = self.clock.wall(end)
        spacing = await asyncio.to_thread(self._poll_spacing, at)
        deadline = time.monotonic() + FINAL_WAIT_POLLS * spacing + 1.0
        samples = await asyncio.to_thread(self.read)
        while not self._caught_up(samples, at, spacing) and time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, spacing / 4))
            samples = await asyncio.to_thread(self.read)
        self.write(max(end, self.last_sample_s or 0.0), samples)

    def _cpu_since(self, i: int, sample: Sample | None, span_s: float) -> tuple[float, float]:
        """Node ``i``'s CPU seconds since it was last counted and the wall span they cover."""
        if sample is None:
            return 0.0, 0.0
        busy = sample.cpu_busy_s
        if busy is None:  # an agent without the counter: its sampled utilisation
            return sample.cpu_util * self.usage.cores[i] * span_s, span_s
        last, self.counted[i] = self.counted[i], (sample.time_s, busy)
        if last is None or sample.time_s <= last[0]:  # the reference, or no new sample
            if last is not None:
                self.counted[i] = last
            return 0.0, 0.0
        cpu = busy - last[1] if busy >= last[1] else busy  # gone down: the node started again
        return cpu, sample.time_s - last[0]

    def boot_measured(self, i: int, boot_s: float) -> None:
        """Node ``i`` booted in ``boot_s`` scenario seconds, from its PowerOn to its agent's
        boot report: a measured boot for ``fidelity.json``'s ``boots``."""
        self.boots_measured.append((self.names[i], boot_s))

    def write(self, now: float, readings: dict[str, Any]) -> None:
        """A row per node: control-plane state and reservations, measured memory and CPU, and
        power and energy: metered, or the model on the measured CPU seconds."""
        span_wall = (now - self.last_sample_s) * self.clock.timescale \
            if self.last_sample_s is not None else 0.0
        self.next_sample_s = now + self.interval()
        self.last_sample_s = now
        usage, scale = self.usage, self.clock.timescale
        mem = []
        for i, name in enumerate(self.names):
            sample = readings.get(name)
            cpu_s, span_s = self._cpu_since(i, sample, span_wall)
            usage.measure_cpu(i, now, cpu_s / scale, span_s / scale)
            mem.append(float(sample.mem_used_mb) if sample is not None else 0.0)
        row = usage.sample(now, mem, self.control.view.tasks.tolist())
        if any(self.metered):
            row = self._metered_row(now, row)
        self.writer.sample(row)
        try:
            self.writer.drain()
        except OSError as err:  # the rows wait in the writer; the run is held until they fit
            if not is_no_space(err) or self.on_full is None:
                raise
            self.on_full(err)

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

    def _metered_row(self, now: float, row: Any) -> Any:
        """``row`` with each metered node's power and energy from its readings: the newest
        reading by ``now``, the energy from the run's start to ``now`` (what lies after the
        newest reading is a gap until the next one comes: the last row waits for it)."""
        power, energy, source = list(row[6]), list(row[7]), list(row[9])
        start, at = self.clock.t0, self.clock.wall(now)
        for i, got in enumerate(self.power):
            if not self.metered[i] or not got:
                continue
            upto = [r for r in got if r.time_s <= at]
            power[i] = (upto[-1] if upto else got[0]).watts
            metered = metered_energy(got, start, max(start, at))
            energy[i] = metered.energy_j
            self.energy[i] = metered
            if metered.covered_s > 0:
                source[i] = MEASURED
        return (*row[:6], power, energy, row[8], source)

    @property
    def energy_sources(self) -> list[str]:
        """Per node: ``measured`` (a meter's readings cover some of the run) or
        ``modelled-from-measured`` (no meter, or none of its readings in the run)."""
        return [MEASURED if e is not None and e.covered_s > 0 else MODELLED_FROM_MEASURED
                for e in self.energy]

    def gaps(self, end: float) -> list[dict[str, Any]]:
        """The gaps in each metered node's readings over the run (scenario seconds); a node
        whose meter gave no reading at all is one gap, the whole run (its energy modelled)."""
        out: list[dict[str, Any]] = []
        for node, metered in zip(self.nodes, self.energy, strict=True):
            name = node.name
            if metered is None and node.meter is not None:  # a meter that never answered
                out.append({"node": name, "start_s": 0.0, "end_s": end, "duration_s": end})
            for gap in metered.gaps if metered is not None else ():
                a, b = self.clock.scenario_time(gap.start_s), self.clock.scenario_time(gap.end_s)
                out.append({"node": name, "start_s": round(a, 6), "end_s": round(min(b, end), 6),
                            "duration_s": round(min(b, end) - a, 6)})
        return out

    def per_node(self) -> list[dict[str, Any]]:
        """``run.json``'s nodes: energy (metered where a meter is), its source, the reserved
        core-seconds and the measured CPU seconds (scenario seconds)."""
        out = self.usage.per_node(self.nodes)
        for i, entry in enumerate(out):
            metered = self.energy[i]
            if self.energy_sources[i] == MEASURED and metered is not None:
                entry["energy_j"] = float(f"{metered.energy_j:.12g}")
                entry["metered_s"] = round(metered.covered_s / self.clock.timescale, 6)
            entry["cpu_s"] = float(f"{self.usage.cpu_s[i]:.12g}")
        return out

    async def commit(self, end: float, live: dict[str, Any],
                     outcomes: dict[int, Outcome]) -> Path:
        """Write the run's record, with its ``live`` section (``live["run"]`` is the run's id),
        and its twin's fidelity to the tasks' ``outcomes``; complete the directory."""
        writer, usage, clock = self.writer, self.usage, self.clock
        capacity = float(sum(n.type.cores for n in self.nodes)) * end
        busy_core_s, _ = usage.totals()
        for i, source in enumerate(self.energy_sources):
            usage.set_power_source(i, source)
        nodes = self.per_node()
        energy_j = sum(float(n["energy_j"]) for n in nodes)
        summary = writer.stats.summary(busy_core_s, capacity, energy_j, end, cpu_core_s=usage.cpu_totals(),
                                       power=usage.power_figures(), run_figures=self.control.run_figures(),
                                       nodes=nodes)
        summary.update(rounded(self.control.workflow_figures()))  # (only when a task waits for another)
        sources = live_sources(self.switching, usage.power_source)
        record = run_record(self.scenario, "live", summary, nodes, sources)
        record["gaps"] = self.gaps(end)
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
