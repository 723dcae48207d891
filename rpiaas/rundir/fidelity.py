"""``fidelity.json``: how far a live run was from its simulated twin.

Every live run also simulates its own scenario, seed and policy when it ends
(:func:`rpiaas.sim.twin.simulate_twin`, handed to the live shell by the
master), and writes the difference beside its results: makespan, mean and p95 wait and
response, utilisation, energy, and the share of tasks placed on the same node.
Sim-versus-testbed error is then a figure of every testbed run, not a study.

``fidelity.json``::

    {"format": "rpiaas-fidelity/1",
     "metrics": {"makespan_s": {"sim": 51.2, "live": 51.4, "diff": 0.2, "rel": 0.0039}, ...},
     "placement": {"tasks": 40, "same_node": 40, "agreement": 1.0}}

``diff`` is live minus simulated, in the metric's unit; ``rel`` is ``diff``
over the simulated value (``null`` when that is 0).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model import Task, TaskState

__all__ = ["FIDELITY_FILE", "FIDELITY_FORMAT", "FIDELITY_METRICS", "Outcome", "fidelity", "outcome",
           "read_fidelity", "summary_line"]

FIDELITY_FILE = "fidelity.json"  # its name in a run directory
FIDELITY_FORMAT = "rpiaas-fidelity/1"
# (metric, unit); the ones that are not in a run's summary are computed from the tasks
FIDELITY_METRICS = (("makespan_s", "s"), ("mean_wait_s", "s"), ("p95_wait_s", "s"),
                    ("mean_response_s", "s"), ("p95_response_s", "s"), ("mean_utilization", ""),
                    ("energy_j", "J"))


@dataclass(frozen=True)
class Outcome:
    """How one task ended: its node's name ('' if it never ran), wait and response."""

    node: str
    completed: bool
    wait_s: float | None
    response_s: float | None


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
             sim_summary: Mapping[str, Any], sim: Mapping[int, Outcome]) -> dict[str, Any]:
    """The ``fidelity.json`` document of a live run against its simulated twin."""
    a, b = _figures(sim_summary, sim), _figures(live_summary, live)
    metrics: dict[str, Any] = {}
    for name, unit in FIDELITY_METRICS:
        x, y = a[name], b[name]
        row: dict[str, Any] = {"unit": unit, "sim": x, "live": y, "diff": None, "rel": None}
        if x is not None and y is not None:
            row["diff"] = _r(y - x)
            row["rel"] = _r((y - x) / abs(x)) if x != 0 else None
        metrics[name] = row
    both = [t for t, o in live.items() if o.completed and t in sim and sim[t].completed]
    same = sum(1 for t in both if live[t].node == sim[t].node)
    return {"format": FIDELITY_FORMAT, "metrics": metrics,
            "placement": {"tasks": len(both), "same_node": same,
                          "agreement": _r(same / len(both)) if both else None}}


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
              "mean_utilization": "utilisation", "energy_j": "energy"}
    for name, label in labels.items():
        row = doc.get("metrics", {}).get(name, {})
        rel, diff = row.get("rel"), row.get("diff")
        if rel is not None and math.isfinite(rel):
            parts.append(f"{label} {rel * 100:+.1f} %")
        elif diff is not None:
            parts.append(f"{label} {diff:+.3g} {row.get('unit', '')}".rstrip())
    placement = doc.get("placement", {})
    if placement.get("agreement") is not None:
        parts.append(f"same node {placement['agreement'] * 100:.1f} % "
                     f"of {placement['tasks']} tasks")
    return "live vs its simulation: " + ", ".join(parts)
