"""The simulation shell: run a scenario in SimPy and write its run directory."""

from __future__ import annotations

import datetime as _dt
import resource
import warnings
from pathlib import Path
from typing import Any

from ..rundir import RunNote, RunWriter, run_record
from ..scenario import Scenario
from .engine import Simulation

__all__ = ["RunNote", "Simulation", "run_record", "simulate"]


def simulate(scenario: Scenario, out: str | Path | None = None,
             progress: bool = False, tables: str = "csv") -> tuple[dict[str, Any], Path | None]:
    """Run ``scenario`` in simulation; write its run directory to ``out`` if given.

    Returns the summary and the run directory.  The directory appears only
    when the run completes; with ``scenario.decision_trace`` it holds
    ``decisions.jsonl`` too.  ``tables="parquet"`` writes the task and node
    tables as Parquet (pyarrow, the ``analysis`` extra).
    """
    writer = RunWriter(out, event_log=scenario.event_log, decisions=scenario.decision_trace,
                       tables=tables, background=None) if out is not None else None
    started = _dt.datetime.now(_dt.timezone.utc)
    try:
        sim = Simulation(scenario, writer, progress=progress)
        summary = sim.run()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    for note in sim.notes:  # said as the run ends, and kept in run.json
        warnings.warn(RunNote(note), stacklevel=2)
    if writer is None:
        return summary, None
    timing = {
        "started_at": started.isoformat(timespec="seconds"),
        "wall_s": round(sim.wall_s, 3),
        "tasks_per_s": round(summary["tasks"] / sim.wall_s, 1) if sim.wall_s > 0 else None,
        "events": sim.control.events_applied,
        "events_per_s": round(sim.control.events_applied / sim.wall_s, 1) if sim.wall_s > 0 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    try:
        path = writer.commit(run_record(scenario, "sim", summary, sim.node_energy(), notes=sim.notes),
                             timing)
    except BaseException:
        writer.abort()
        raise
    return summary, path
