"""The run directory's format: run.json text, columns, file names, task states."""

from __future__ import annotations

import json
from pathlib import Path

from rpiaas.model import TaskState
from rpiaas.rundir.format import (
    FORMAT,
    NODE_COLUMNS,
    RUN_FILES,
    TASK_COLUMNS,
    TASK_STATES,
    dump_run,
)
from rpiaas.rundir.writer import RunWriter


def test_run_json_is_indented_with_one_line_per_node() -> None:
    run = {"format": FORMAT, "summary": {"tasks": 2, "mean_wait_s": None},
           "nodes": [{"node": "n0", "energy_j": 1.5}, {"node": "n1", "energy_j": 0.0}]}
    text = dump_run(run)
    assert json.loads(text) == run and text.endswith("}\n")
    lines = text.splitlines()
    assert '    {"node": "n0", "energy_j": 1.5},' in lines
    assert '    {"node": "n1", "energy_j": 0.0}' in lines
    assert lines[-2:] == ["  ]", "}"]
    assert lines[1] == f'  "format": "{FORMAT}",'  # the rest as json.dumps(indent=2) writes it


def test_run_json_without_nodes() -> None:
    for run in ({"summary": {}}, {"summary": {}, "nodes": []}):
        assert dump_run(run) == json.dumps(run, indent=2) + "\n"


def test_tables_and_names(tmp_path: Path) -> None:
    assert tuple(s.value for s in TaskState) == TASK_STATES
    assert len(set(TASK_COLUMNS)) == len(TASK_COLUMNS) and len(set(NODE_COLUMNS)) == len(NODE_COLUMNS)
    w = RunWriter(tmp_path / "r", decisions=True)
    out = w.commit({"summary": {}}, {}, extra={"fidelity.json": {}})
    assert {p.name for p in out.iterdir()} == set(RUN_FILES)
    assert (out / "tasks.csv").read_text() == ",".join(TASK_COLUMNS) + "\n"
    assert (out / "nodes.csv").read_text() == ",".join(NODE_COLUMNS) + "\n"
