"""Where a run's figures come from: ``run.json``'s ``sources`` and how two of them compare.

Every energy, power and utilisation figure of a run says whether it was

- ``measured``: read from a power meter (or, for CPU utilisation, from the node's own
  counters);
- ``modelled-from-measured``: the node type's power model applied to measured CPU
  utilisation;
- ``modelled``: the model alone, in simulation;

or ``mixed`` when the nodes of a run differ.  ``utilization`` is the allocated share of the
cores (``allocated``) in both worlds.  ``switching`` says how ``PowerOn`` and ``PowerOff``
were carried out: ``switched`` (power drivers did it), ``emulated`` (a testbed without a
driver: its nodes stayed on, a boot lasted the model's ``boot_s``) or ``modelled``
(simulation).

:func:`both_modelled` is the rule ``rpiaas compare`` and ``fidelity.json`` follow: two
figures neither of which was measured are the same model twice, and their agreement says
nothing of the testbed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.energy import MEASURED, MODELLED, MODELLED_FROM_MEASURED
from ..model import Node
from .format import SOURCE_KEYS

__all__ = ["ALLOCATED", "MEASURED", "MIXED", "MODELLED", "MODELLED_FROM_MEASURED", "SOURCED_METRICS",
           "both_modelled", "combine", "live_sources", "metric_source", "sim_sources", "sources_of",
           "switching_of"]

MIXED = "mixed"
ALLOCATED = "allocated"
SWITCHED, EMULATED = "switched", "emulated"

# summary metrics and the ``sources`` key that says where each comes from
SOURCED_METRICS = {"mean_utilization": "utilization", "mean_cpu_utilization": "cpu_utilization",
                   "energy_j": "energy_j", "mean_power_w": "power_w", "energy_per_task_j": "energy_j",
                   "boot_s_median": "boot_s", "boots": "switching", "power_cycles": "switching",
                   "time_off_s": "switching"}


def combine(labels: Iterable[str]) -> str:
    """One label for many nodes: theirs if they agree, else ``mixed`` (``modelled`` for none)."""
    seen = set(labels)
    if not seen:
        return MODELLED
    return seen.pop() if len(seen) == 1 else MIXED


def sim_sources() -> dict[str, str]:
    """A simulated run's ``sources``: every figure modelled."""
    return {"utilization": ALLOCATED, "cpu_utilization": MODELLED, "power_w": MODELLED,
            "energy_j": MODELLED, "boot_s": MODELLED, "switching": MODELLED, "pull_s": MODELLED}


def switching_of(nodes: Sequence[Node]) -> str:
    """``switched`` if every node has a power driver, ``emulated`` if none has (driver
    ``none`` or no ``power:``), else ``mixed``."""
    return combine(EMULATED if n.power is None or n.power.driver == "none" else SWITCHED for n in nodes)


def live_sources(switching: str, power_sources: Sequence[str], cpu: str = MEASURED) -> dict[str, str]:
    """A live run's ``sources``: how its power actions were carried out (``switching``: of the
    master's nodes, :func:`switching_of`), CPU utilisation as measured (``cpu``), power and
    energy as each node's (``power_sources``), boots measured where a driver switched the node
    (an emulated boot lasts the model's ``boot_s``)."""
    power = combine(power_sources)
    boot = {SWITCHED: MEASURED, EMULATED: MODELLED}.get(switching, MIXED)
    return {"utilization": ALLOCATED, "cpu_utilization": cpu, "power_w": power, "energy_j": power,
            "boot_s": boot, "switching": switching, "pull_s": MEASURED}


def sources_of(record: Mapping[str, Any]) -> dict[str, str]:
    """The ``sources`` of a run record (``run.json``); a record written before they existed
    gets what its mode meant then (live: CPU measured, power modelled from it; switching
    emulated)."""
    given = record.get("sources")
    live = record.get("mode") == "live"
    # (``pull_s`` came later than the others: a run without it pulled in its mode's way)
    if isinstance(given, dict) and all(isinstance(given.get(k), str) for k in SOURCE_KEYS if k != "pull_s"):
        out = {k: str(given[k]) for k in SOURCE_KEYS if k in given}
        out.setdefault("pull_s", MEASURED if live else MODELLED)
        return {k: out[k] for k in SOURCE_KEYS}
    if live:
        return {"utilization": ALLOCATED, "cpu_utilization": MEASURED, "power_w": MODELLED_FROM_MEASURED,
                "energy_j": MODELLED_FROM_MEASURED, "boot_s": MODELLED, "switching": EMULATED,
                "pull_s": MEASURED}
    return sim_sources()


def metric_source(sources: Mapping[str, str], metric: str) -> str | None:
    """Where the summary ``metric`` of a run with ``sources`` comes from (None: not a figure
    that has one, such as a wait)."""
    key = SOURCED_METRICS.get(metric.rsplit(".", 1)[-1])  # (a node type's figure: by_node_type.T.energy_j)
    return None if key is None else sources.get(key)


def both_modelled(a: str | None, b: str | None) -> bool:
    """Whether two figures are models on both sides: neither was measured (``modelled`` or
    ``modelled-from-measured``, the same power model on one side applied to measured
    utilisation).  ``switching`` ``emulated`` against ``modelled`` is a model twice too."""
    unmeasured = {MODELLED, MODELLED_FROM_MEASURED, EMULATED}
    return a in unmeasured and b in unmeasured
