"""``fidelity.json``: how far a live run was from its simulated twin.

Every live run also simulates its own scenario, seed and policy when it ends
(:func:`rpiaas.sim.twin.simulate_twin`, handed to the live shell by the
master), and writes the difference beside its results: makespan, mean and p95 wait and
response, utilisation, energy, and the share of tasks placed on the same node.
Sim-versus-testbed error is then a figure of every testbed run, not a study.

``fidelity.json``::

    {"format": "rpiaas-fidelity/1",
     "metrics": {"makespan_s": {"sim": 51.2, "live": 51.4, "diff": 0.2, "rel": 0.0039}, ...},
     "placement": {"tasks": 40, "same_node": 40, "agreement": 1.0},
     "sources": {"sim": {"energy_j": "modelled", ...}, "live": {"energy_j": "measured", ...}},
     "boots": {"source": "measured", "types": {"rpi4b": {"modelled_boot_s": 30.0,
               "measured": {"count": 5, "median_s": 27.1, "min_s": 25.9, "max_s": 29.0,
                            "iqr_s": 1.2, "values_s": [...]}, "diff_s": -2.9, "rel": -0.097}}}}

``diff`` is live minus simulated, in the metric's unit; ``rel`` is ``diff``
over the simulated value (``null`` when that is 0).  A metric whose figure has
a source (energy, power, CPU utilisation, boots) carries both sides' labels in
``source``; where neither side was measured its ``verdict`` is ``"modelled on
both sides"``: the agreement of a model with itself says nothing of the
testbed.  ``boots`` holds each node type's modelled ``boot_s`` against the
boots the run measured (PowerOn to the agent's boot report, scenario seconds);
on a testbed without power drivers a boot lasts the model's ``boot_s``
(``"source": "modelled"``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model import Task, TaskState
from .sources import both_modelled, metric_source, sim_sources

__all__ = ["BOTH_MODELLED", "FIDELITY_FILE", "FIDELITY_FORMAT", "FIDELITY_METRICS", "Outcome", "boot_fidelity",
           "fidelity", "outcome", "read_fidelity", "summary_line"]

FIDELITY_FILE = "fidelity.json"  # its name in a run directory
FIDELITY_FORMAT = "rpiaas-fidelity/1"
# (metric, unit); the ones that are not in a run's summary are computed from the tasks
FIDELITY_METRICS = (("makespan_s", "s"), ("mean_wait_s", "s"), ("p95_wait_s", "s"),
                    ("mean_response_s", "s"), ("p95_response_s", "s"), ("mean_utilization", ""),
                    ("mean_cpu_utilization", ""), ("energy_j", "J"), ("power_cycles", ""),
                    ("boots", ""), ("time_off_s", "s"))
# said instead of a verdict where neither side of a figure was measured
BOTH_MODELLED = "modelled on both sides"


@dataclass(frozen=True)
class Outcome:
    """How one task ended: its node's name ('' if it never ran), wait and response."""

    node: str
    completed: bool
    wait_s: float | None
    response_s: float | None


REL_FLOOR = 1e-6
"""The smallest figure a relative error is given against (seconds, watts, joules or a share):
below it, the difference alone."""


def relative_error(value: float, base: float) -> float | None:
    """``(value - base) / |base|``, or ``None`` where ``base`` is next to nothing (a mean wait of
    1e-16 s would read as +2e17 %): the one rule of every relative error the runs report."""
    return (value - base) / abs(base) if abs(base) >= REL_FLOOR else None

def outcome(task: Task, names: tuple[str, ...] | list[str]) -> Outcome:
    """The :class:`Outcome` of a task in its final state."""
    started = task.start_s >= 0
    done = task.state is TaskState.COMPLETED
    return Outcome(names[task.node] if task.node >= 0 else "", done,
                   task.start_s - task.arrival_s if started else None,
                   task.end_s - task.arrival_s if done else None)


def _p95(values: list[float]) -> float | None:
    return float(np.percentile(np.asarray(values), 95)) if values else None


def _figures(summary: Mapping[str, Any],
             outcomes: Mapping[int, Outcome]) -> dict[str, float | None]:
    out = {name: summary.get(name) for name, _ in FIDELITY_METRICS}
    out["p95_response_s"] = _p95([o.response_s for o in outcomes.values()
                                  if o.response_s is not None])
    return out


def _r(x: float) -> float:
    return float(f"{x:.6g}")


def fidelity(live_summary: Mapping[str, Any], live: Mapping[int, Outcome],
             sim_summary: Mapping[str, Any], sim: Mapping[int, Outcome],
             live_sources: Mapping[str, str] | None = None,
             boots: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``fidelity.json`` document of a live run against its simulated twin.

    :param live_sources: the live run's ``sources`` (:mod:`.sources`); the twin's are a
        simulation's.
    :param boots: the :func:`boot_fidelity` section, if the run has one.
    """
    a, b = _figures(sim_summary, sim), _figures(live_summary, live)
    src_sim = sim_sources()
    src_live = dict(live_sources) if live_sources is not None else None
    metrics: dict[str, Any] = {}
    for name, unit in FIDELITY_METRICS:
        x, y = a.get(name), b.get(name)
        row: dict[str, Any] = {"unit": unit, "sim": x, "live": y, "diff": None, "rel": None}
        if x is not None and y is not None and _num(x) and _num(y):
            row["diff"] = _r(y - x)
            rel = relative_error(y, x)
            row["rel"] = _r(rel) if rel is not None else None
        if src_live is not None and (ls := metric_source(src_live, name)) is not None:
            ss = metric_source(src_sim, name)
            row["source"] = {"sim": ss, "live": ls}
            if both_modelled(ss, ls):
                row["verdict"] = BOTH_MODELLED
        metrics[name] = row
    both = [t for t, o in live.items() if o.completed and t in sim and sim[t].completed]
    same = sum(1 for t in both if live[t].node == sim[t].node)
    doc: dict[str, Any] = {"format": FIDELITY_FORMAT, "metrics": metrics,
                           "placement": {"tasks": len(both), "same_node": same,
                                         "agreement": _r(same / len(both)) if both else None}}
    if src_live is not None:
        doc["sources"] = {"sim": src_sim, "live": src_live}
    if boots is not None:
        doc["boots"] = dict(boots)
    return doc


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def boot_fidelity(modelled_s: Mapping[str, float], measured_s: Mapping[str, Sequence[float]],
                  source: str) -> dict[str, Any]:
    """``fidelity.json``'s ``boots``: per node type, the model's ``boot_s`` against the boots
    the run had (``measured_s``, seconds from PowerOn to booted, by type name): their count,
    median, range and interquartile range, and the median's difference from the model.

    :param modelled_s: ``boot_s`` of each node type of the run.
    :param source: where the boots' durations come from: ``measured`` (a power driver
        switched the nodes and each boot ended at its agent's report) or ``modelled``
        (emulated power: a boot lasted the model's ``boot_s``).
    """
    types: dict[str, Any] = {}
    for name, model in modelled_s.items():
        values = [float(v) for v in measured_s.get(name, ())]
        row: dict[str, Any] = {"modelled_boot_s": model, "measured": None, "diff_s": None, "rel": None}
        if values:
            arr = np.asarray(values)
            q1, med, q3 = (float(v) for v in np.percentile(arr, [25, 50, 75]))
            row["measured"] = {"count": len(values), "median_s": _r(med), "min_s": _r(float(arr.min())),
                               "max_s": _r(float(arr.max())), "iqr_s": _r(q3 - q1),
                               "values_s": [_r(v) for v in values]}
            row["diff_s"] = _r(med - model)
            row["rel"] = _r((med - model) / model) if model else None
        types[name] = row
    return {"source": source, "types": types}


def read_fidelity(path: str | Path) -> dict[str, Any] | None:
    """``fidelity.json`` of the run directory ``path``; None if it has none (a simulated run)."""
    f = Path(path) / FIDELITY_FILE
    if not f.is_file():
        return None
    doc = json.loads(f.read_text(encoding="utf-8"))
    return doc if isinstance(doc, dict) else None


def summary_line(doc: Mapping[str, Any]) -> str:
    """One line for a terminal: each metric's relative error and the placement agreement."""
    parts = []
    labels = {"makespan_s": "makespan", "mean_wait_s": "mean wait",
              "mean_response_s": "mean response",
              "mean_utilization": "allocated utilisation", "mean_cpu_utilization": "CPU utilisation",
              "energy_j": "energy"}
    for name, label in labels.items():
        row = doc.get("metrics", {}).get(name, {})
        rel, diff = row.get("rel"), row.get("diff")
        both = f" ({BOTH_MODELLED})" if row.get("verdict") == BOTH_MODELLED else ""
        if rel is not None and math.isfinite(rel):
            parts.append(f"{label} {rel * 100:+.1f} %{both}")
        elif diff is not None:
            parts.append(f"{label} {diff:+.3g} {row.get('unit', '')}".rstrip() + both)
    placement = doc.get("placement", {})
    if placement.get("agreement") is not None:
        parts.append(f"same node {placement['agreement'] * 100:.1f} % "
                     f"of {placement['tasks']} tasks")
    return "live vs its simulation: " + ", ".join(parts)
