"""The run writer: nothing in place until commit, abort leaves nothing, partials cleared, rows exact."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rpiaas.model import Task, TaskState
from rpiaas.rundir.format import NODE_COLUMNS, TASK_COLUMNS
from rpiaas.rundir.writer import Lines, RunWriter, remove_partials_of, remove_stale_partials


def _task(id_: int, state: TaskState, arrival_s: float, start_s: float = -1.0, end_s: float = -1.0,
          node: int = -1, tenant: str = "") -> Task:
    t = Task(id_, arrival_s, cores=2, mem_mb=100, work_core_s=8.0, tenant=tenant)
    t.state, t.start_s, t.end_s, t.node = state, start_s, end_s, node
    return t


def _writer(out: Path, **kw: bool) -> RunWriter:
    w = RunWriter(out, **kw)
    w.node_names = ["n0", "n1"]
    return w


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_nothing_is_in_place_until_commit(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "r"
    w = _writer(out)
    assert w.tmp == tmp_path / "runs" / f".r.partial-{os.getpid()}"
    assert not out.exists() and sorted(p.name for p in w.tmp.iterdir()) == [
        "events.jsonl", "nodes.csv", "parts.csv", "tasks.csv"]
    w.task_ended(_task(1, TaskState.COMPLETED, 0.0, 1.0, 5.0, node=1))
    w.drain()
    path = w.commit({"format": "x", "summary": {}, "nodes": [{"node": "n0"}]}, {"wall_s": 0.5},
                    extra={"fidelity.json": {"format": "f"}})
    assert path == out and not w.tmp.exists()
    assert sorted(p.name for p in out.iterdir()) == ["events.jsonl", "fidelity.json", "nodes.csv",
                                                     "parts.csv", "run.json", "tasks.csv", "timing.json"]
    assert json.loads((out / "run.json").read_text())["nodes"] == [{"node": "n0"}]
    assert json.loads((out / "timing.json").read_text()) == {"wall_s": 0.5}
    assert json.loads((out / "fidelity.json").read_text()) == {"format": "f"}
    assert list(out.parent.iterdir()) == [out]
    assert (out / "tasks.csv").read_text().splitlines()[0] == ",".join(TASK_COLUMNS)
    assert (out / "nodes.csv").read_text() == ",".join(NODE_COLUMNS) + "\n"


def test_optional_files(tmp_path: Path) -> None:
    w = _writer(tmp_path / "r", event_log=False, decisions=True)
    assert w.events is None and w.decisions is not None
    out = w.commit({"summary": {}}, {})
    assert sorted(p.name for p in out.iterdir()) == ["decisions.jsonl", "nodes.csv", "parts.csv",
                                                     "run.json", "tasks.csv", "timing.json"]


def test_a_file_outside_the_format_is_refused(tmp_path: Path) -> None:
    w = _writer(tmp_path / "r")
    with pytest.raises(AssertionError):
        w.commit({"summary": {}}, {}, extra={"notes.json": {}})


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    w = _writer(tmp_path / "r")
    w.task_ended(_task(1, TaskState.COMPLETED, 0.0, 1.0, 5.0, node=0))
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_run_replaces_a_run_and_refuses_anything_else(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _writer(out).commit({"summary": {"n": 1}}, {})
    _writer(out).commit({"summary": {"n": 2}}, {})
    assert json.loads((out / "run.json").read_text())["summary"] == {"n": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no old copy left
    (tmp_path / "empty").mkdir()
    _writer(tmp_path / "empty").abort()  # an empty directory is fine
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "thesis.tex").write_text("x")
    (tmp_path / "file").write_text("x")
    for name in ("data", "file"):
        with pytest.raises(FileExistsError, match="not a run directory; not overwriting it"):
            RunWriter(tmp_path / name)
    assert (tmp_path / "data" / "thesis.tex").read_text() == "x"


def test_task_rows(tmp_path: Path) -> None:
    w = _writer(tmp_path / "r")
    w.task_ended(_task(1, TaskState.COMPLETED, 0.5, 2.5, 22.5, node=1, tenant='a, "b"'))
    w.task_ended(_task(2, TaskState.REJECTED, 3.0, end_s=3.0))
    w.task_ended(_task(3, TaskState.KILLED, 4.0, 6.0, node=0))
    w.task_ended(_task(4, TaskState.QUEUED, 7.0))
    w.task_ended(_task(5, TaskState.FAILED, 1.0, 2.0, 2.0, node=0))
    out = w.commit({"summary": {}}, {})
    with open(out / "tasks.csv", newline="") as f:
        rows = {r["task_id"]: r for r in csv.DictReader(f)}
    # response 22, run 20: slowdown 1.1, bounded max(1, 22 / 20) = 1.1
    assert rows["1"] == {"task_id": "1", "arrival_s": "0.5", "start_s": "2.5", "end_s": "22.5",
                         "node": "n1", "state": "completed", "wait_s": "2.0", "response_s": "22.0",
                         "slowdown": "1.1", "bounded_slowdown": "1.1", "cores": "2", "mem_mb": "100",
                         "work_core_s": "8.0", "kind": "cpu", "tenant": 'a, "b"', "attempts": "0",
                         "nodes": "n1", "reason": "", "cpu_s": "", "peak_mem_mb": "", "pull_s": ""}
    r = rows["2"]
    assert (r["state"], r["start_s"], r["end_s"], r["node"], r["wait_s"]) == ("rejected", "", "3.0", "", "")
    r = rows["3"]  # killed while running: started, never ended
    assert (r["start_s"], r["end_s"], r["node"], r["wait_s"], r["response_s"]) == ("6.0", "", "n0", "2.0", "")
    r = rows["4"]
    assert (r["state"], r["start_s"], r["end_s"], r["node"]) == ("queued", "", "", "")
    r = rows["5"]  # failed at once: run 0, no slowdown, bounded slowdown still defined
    assert (r["response_s"], r["slowdown"], r["bounded_slowdown"]) == ("1.0", "", "1.0")
    assert w.stats.ended == 5 and w.stats.counts[TaskState.COMPLETED] == 1


def test_stale_partials_of_dead_processes_only(tmp_path: Path) -> None:
    dead = tmp_path / f".old.partial-{_dead_pid()}"
    (dead / "sub").mkdir(parents=True)
    mine = tmp_path / f".busy.partial-{os.getpid()}"
    mine.mkdir()
    other = tmp_path / ".notes.partial-x"
    other.mkdir()
    not_dir = tmp_path / f".file.partial-{_dead_pid()}"
    not_dir.write_text("x")
    assert remove_stale_partials(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name, not_dir.name])
    assert remove_stale_partials(tmp_path / "missing") == []


def test_partials_of_complete_runs_go_whoever_left_them(tmp_path: Path) -> None:
    done = tmp_path / f".a-s1.partial-{os.getpid()}"  # a live process: still removed
    done.mkdir()
    running = tmp_path / f".a-s2.partial-{os.getpid()}"
    running.mkdir()
    assert remove_partials_of(tmp_path, {"a-s1", "b-s1"}) == [done]
    assert [p.name for p in tmp_path.iterdir()] == [running.name]


def test_lines_reach_the_file_only_when_drained() -> None:
    f = io.StringIO()
    lines = Lines(f)
    lines.write("a\n")
    lines.write("b\n")
    assert f.getvalue() == ""
    lines.drain()
    assert f.getvalue() == "a\nb\n"
    lines.drain()  # nothing new: nothing written
    assert f.getvalue() == "a\nb\n"
    lines.write("c\n")
    f.close = lambda: None  # type: ignore[method-assign]  # keep it readable after close()
    lines.close()
    assert f.getvalue() == "a\nb\nc\n"
