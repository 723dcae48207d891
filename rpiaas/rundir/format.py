"""The run directory's format: its file names, the columns of its tables, ``run.json`` text.

A run directory holds

- ``run.json``: scenario, mode, policy, seed, versions and the ``summary``;
  byte-identical for the same scenario and seed in simulation;
- ``tasks.csv``: one row per task (``task_id, arrival_s, start_s, end_s, node,
  state, wait_s, response_s, slowdown, ...``), written as tasks end;
- ``nodes.csv``: per-node series (``time_s, node, state, cores_used,
  mem_used_mb, utilization, power_w, energy_j, tasks``);
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
from typing import Any

__all__ = ["FORMAT", "NODE_COLUMNS", "PARQUET_FILES", "RUN_FILES", "TABLE_FORMATS", "TASK_COLUMNS",
           "TASK_STATES", "dump_run"]

FORMAT = "rpiaas-run/1"
# every file a run directory may hold
RUN_FILES = ("run.json", "tasks.csv", "nodes.csv", "events.jsonl", "decisions.jsonl", "timing.json",
             "fidelity.json")
# how the task and node tables are stored; parquet replaces the csv files by these
TABLE_FORMATS = ("csv", "parquet")
PARQUET_FILES = ("tasks.parquet", "nodes.parquet")
TASK_COLUMNS = ("task_id", "arrival_s", "start_s", "end_s", "node", "state", "wait_s",
                "response_s", "slowdown", "bounded_slowdown", "cores", "mem_mb", "work_core_s",
                "kind", "tenant", "attempts")
NODE_COLUMNS = ("time_s", "node", "state", "cores_used", "mem_used_mb", "utilization",
                "power_w", "energy_j", "tasks")
# the values of tasks.csv's ``state`` column
TASK_STATES = ("queued", "running", "completed", "rejected", "failed", "killed")


def dump_run(run: dict[str, Any]) -> str:
    """``run.json`` text: indented, but one line per node so 10,000 nodes stay fast."""
    nodes = run.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        return json.dumps(run, indent=2) + "\n"
    rest = {k: v for k, v in run.items() if k != "nodes"}
    head = json.dumps({**rest, "nodes": []}, indent=2)  # "nodes" last
    rows = ",\n".join("    " + json.dumps(n, separators=(", ", ": ")) for n in nodes)
    return head[: -len("[]\n}")] + "[\n" + rows + "\n  ]\n}\n"
