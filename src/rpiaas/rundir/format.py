"""The run directory's format: its file names, the columns of its tables, ``run.json`` text.

A run directory holds

- ``run.json``: scenario, mode, policy, seed, versions, the ``summary``, the
  ``sources`` of its figures (:data:`SOURCE_KEYS`) and a line per node (its
  energy and where that comes from, ``energy_source``); byte-identical for the
  same scenario and seed in simulation;
- ``tasks.csv``: one row per task (``task_id, arrival_s, start_s, end_s, node,
  state, wait_s, response_s, slowdown, ...``), written as tasks end; ``pull_s`` is the
  time a container task's image took to pull (modelled in simulation, measured live);
- ``nodes.csv``: per-node series (``time_s, node, state, cores_used,
  mem_used_mb, utilization, power_w, energy_j, tasks, cpu_utilization,
  power_source``): ``utilization`` is the allocated share of the node's cores
  (reserved / cores) in both worlds, ``cpu_utilization`` the share of its cores
  busy on CPU (measured on the testbed; in simulation modelled, equal to
  ``utilization``), ``power_source`` where ``power_w`` and ``energy_j`` come
  from (:data:`SOURCE_LABELS`);
- ``tasks.parquet``, ``nodes.parquet`` instead of the two CSV tables in a run
  written with ``--format parquet`` (same columns; ``run.json`` then says
  ``"tables": "parquet"``);
- ``events.jsonl``: the control plane's event log;
- ``decisions.jsonl``: the decision trace, one line per placement decision
  (hooks asked, nodes filtered out, scores, node chosen), only when the
  scenario sets ``decision_trace: true``;
- ``timing.json``: wall-clock facts (when, how long), kept out of ``run.json``;
- ``fidelity.json``: a live run against its simulated twin.

Simulated and live runs write the same files, so any two runs compare.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..core.energy import SOURCES

__all__ = [
    "FORMAT",
    "NODE_COLUMNS",
    "PART_COLUMNS",
    "RUN_FILES",
    "SOURCE_KEYS",
    "SOURCE_LABELS",
    "SWITCHING_LABELS",
    "TABLE_FORMATS",
    "TASK_BASE_COLUMNS",
    "TASK_COLUMNS",
    "TASK_STATES",
    "dump_run",
]

FORMAT = "rpiaas-run/1"
# every file a run directory may hold
RUN_FILES = ("run.json", "tasks.csv", "parts.csv", "nodes.csv", "events.jsonl", "decisions.jsonl", "timing.json",
             "fidelity.json")
# how the task and node tables are stored; parquet replaces the csv files by these
TABLE_FORMATS = ("csv", "parquet")
TASK_COLUMNS = ("task_id", "arrival_s", "start_s", "end_s", "node", "state", "wait_s",
                "response_s", "slowdown", "bounded_slowdown", "cores", "mem_mb", "work_core_s",
                "kind", "tenant", "attempts", "nodes", "reason", "cpu_s", "peak_mem_mb", "pull_s")
# the columns every run has had (a reader of older runs asks only these)
TASK_BASE_COLUMNS = TASK_COLUMNS[:16]
# parts.csv: one row per part of each job that spans nodes (a task on one node is its tasks.csv row)
PART_COLUMNS = ("task_id", "rank", "node", "cores", "start_s", "end_s")
NODE_COLUMNS = ("time_s", "node", "state", "cores_used", "mem_used_mb", "utilization",
                "power_w", "energy_j", "tasks", "cpu_utilization", "power_source")
# the figures run.json's ``sources`` says the origin of; ``utilization`` is always "allocated"
SOURCE_KEYS = ("utilization", "cpu_utilization", "power_w", "energy_j", "boot_s", "switching", "pull_s")
# where a figure comes from: a meter or the node itself, the power model on measured
# utilisation, the model alone (simulation); "mixed" when the nodes of a run differ
SOURCE_LABELS = (*SOURCES, "mixed")
# how PowerOn and PowerOff were carried out: by power drivers, not at all (the testbed's
# nodes stayed on), or in simulation
SWITCHING_LABELS = ("switched", "emulated", "modelled", "mixed")
# the values of tasks.csv's ``state`` column
TASK_STATES = ("queued", "running", "completed", "rejected", "failed", "killed")


_NODE_KEYS = ["node", "type", "energy_j", "busy_core_s", "energy_source"]


def _node_line(n: dict[str, Any]) -> str:
    """One node of ``run.json``: ``json.dumps`` of it, written out for the usual keys and values."""
    if list(n) == _NODE_KEYS and type(n["energy_j"]) is float and type(n["busy_core_s"]) is float \
            and math.isfinite(n["energy_j"]) and math.isfinite(n["busy_core_s"]):
        return (f'    {{"node": {json.dumps(n["node"])}, "type": {json.dumps(n["type"])}, '
                f'"energy_j": {n["energy_j"]!r}, "busy_core_s": {n["busy_core_s"]!r}, '
                f'"energy_source": {json.dumps(n["energy_source"])}}}')
    return "    " + json.dumps(n, separators=(", ", ": "))


def dump_run(run: dict[str, Any]) -> str:
    """``run.json`` text: indented, but one line per node so 10,000 nodes stay fast."""
    nodes = run.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        return json.dumps(run, indent=2) + "\n"
    rest = {k: v for k, v in run.items() if k != "nodes"}
    head = json.dumps({**rest, "nodes": []}, indent=2)  # "nodes" last
    rows = ",\n".join(map(_node_line, nodes))
    return head[: -len("[]\n}")] + "[\n" + rows + "\n  ]\n}\n"
