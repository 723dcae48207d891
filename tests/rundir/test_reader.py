"""The run reader: a run read back as written, and every kind of bad file named with its line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rpiaas.model import Task, TaskState
from rpiaas.rundir.reader import (
    COMPLETED,
    RunFileError,
    is_complete,
    load_run,
    read_run,
    read_timing,
)
from rpiaas.rundir.writer import RunWriter


def _run(out: Path) -> Path:
    """A hand-made run of four tasks (written in the order they end) on nodes n0 and n1."""
    w = RunWriter(out)
    w.node_names = ["n0", "n1"]
    for id_, state, a, s, e, node in ((3, TaskState.COMPLETED, 1.0, 2.0, 6.0, 1),
                                      (1, TaskState.COMPLETED, 0.0, 0.0, 4.0, 0),
                                      (2, TaskState.REJECTED, 0.5, -1.0, 0.5, -1),
                                      (4, TaskState.RUNNING, 2.0, 3.0, -1.0, 1)):
        t = Task(id_, a, cores=id_, mem_mb=10, work_core_s=float(id_ * 10), tenant="t, 1")
        t.state, t.start_s, t.end_s, t.node = state, s, e, node
        w.task_ended(t)
    w.nodes.write("0.0,n0,on,1,10,0.25,3.0,0.0,1,0.125,measured\n"
                  "10.0,n1,booting,0,0,0.0,0.5,5.0,0,0.0,modelled-from-measured\n")
    return w.commit({"summary": {"tasks": 4}, "nodes": [{"node": "n0", "type": "rpi4b"},
                                                        {"node": "n1", "type": "rpi3b"}]},
                    {"wall_s": 0.25})


def test_a_run_reads_back_sorted_by_task_id(tmp_path: Path) -> None:
    run = load_run(_run(tmp_path / "r"))
    assert run.task_id.tolist() == [1, 2, 3, 4]
    assert run.cores.tolist() == [1, 2, 3, 4] and run.work_core_s.tolist() == [10.0, 20.0, 30.0, 40.0]
    assert [run.node_names[i] if i >= 0 else None for i in run.node] == ["n0", None, "n1", "n1"]
    assert run.completed.tolist() == [True, False, True, False]
    assert run.state.tolist()[0] == COMPLETED
    assert run.wait_s[0] == 0.0 and np.isnan(run.wait_s[1]) and run.wait_s[3] == 1.0
    assert run.response_s[2] == 5.0 and np.isnan(run.response_s[3])
    assert run.node_types == {"n0": "rpi4b", "n1": "rpi3b"}
    assert run.record["summary"] == {"tasks": 4}
    s = run.series
    assert s is not None
    assert s.time_s.tolist() == [0.0, 10.0] and s.on.tolist() == [True, False]
    assert s.utilization.tolist() == [0.25, 0.0] and s.cpu_utilization.tolist() == [0.125, 0.0]
    assert s.power_measured.tolist() == [True, False] and s.booting.tolist() == [False, True]
    assert [run.node_names[i] for i in s.node] == ["n0", "n1"] and s.power_w.tolist() == [3.0, 0.5]
    assert load_run(tmp_path / "r", series=False).series is None


def test_a_node_table_from_before_the_cpu_and_source_columns_still_reads(tmp_path: Path) -> None:
    """Nine columns (no cpu_utilization, no power_source): the CPU share is the one column there
    was, and no power reads as measured."""
    out = _run(tmp_path / "r")
    f = out / "nodes.csv"
    lines = f.read_text().splitlines()
    f.write_text("".join(",".join(x.split(",")[:9]) + "\n" for x in lines))
    s = load_run(out).series
    assert s is not None
    assert s.cpu_utilization.tolist() == s.utilization.tolist() == [0.25, 0.0]
    assert s.power_measured.tolist() == [False, False]


def test_complete_and_timing(tmp_path: Path) -> None:
    assert not is_complete(tmp_path / "r")
    out = _run(tmp_path / "r")
    assert is_complete(out) and read_timing(out) == {"wall_s": 0.25}
    (out / "timing.json").write_text("[1]")
    assert read_timing(out) is None
    (out / "timing.json").write_text("{")
    assert read_timing(out) is None
    (out / "timing.json").unlink()
    assert read_timing(out) is None
    (out / "nodes.csv").unlink()  # optional
    assert load_run(out).series is None


@pytest.mark.parametrize("content,message", [
    (None, r"/run\.json: no such file \(not a run directory\?\)$"),
    ('{\n "a": 1,\n}', r"/run\.json:3: not valid JSON: "),
    ("[1, 2]", r"/run\.json: expected a JSON object, got list$"),
    ('{"summary": 3}', r"/run\.json: no 'summary' object \(not a run record\?\)$"),
    (b"\xff\xfe", r"/run\.json: cannot read it: "),
])
def test_bad_run_json(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    f = _run(tmp_path / "r") / "run.json"
    if content is None:
        f.unlink()
    elif isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content)
    for read in (read_run, load_run):
        with pytest.raises(RunFileError, match=message):
            read(f.parent)


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match=r"/nowhere: no such run directory$"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "f").write_text("")
    with pytest.raises(RunFileError, match=r"/f: not a directory \(expected a run directory\)$"):
        load_run(tmp_path / "f")


@pytest.mark.parametrize("edit,message", [
    (lambda lines: lines[:0], r"/tasks\.csv: empty file \(expected a header line\)$"),
    (lambda lines: ["id,when", *lines[1:]], r"/tasks\.csv:1: unexpected header \(expected task_id,"),
    (lambda lines: [*lines[:3], "1,2", *lines[3:]], r"/tasks\.csv:4: expected 21 fields, got 2$"),
    (lambda lines: [*lines[:3], lines[3].replace("2,0.5", "x,0.5", 1), *lines[4:]],
     r"/tasks\.csv:4: task_id: not an integer: 'x'$"),
    (lambda lines: [*lines[:3], lines[3].replace(",rejected,", ",lost,"), *lines[4:]],
     r"/tasks\.csv:4: state: unknown task state 'lost'$"),
    (lambda lines: [*lines, lines[1]], r"/tasks\.csv: task 3 has more than one row$"),
    (lambda lines: [*lines[:1], '"1,2', *lines[1:]], r"/tasks\.csv:\d+: "),
])
def test_bad_task_tables(tmp_path: Path, edit: object, message: str) -> None:
    out = _run(tmp_path / "r")
    f = out / "tasks.csv"
    lines = f.read_text().splitlines()
    f.write_text("".join(x + "\n" for x in edit(lines)))  # type: ignore[operator]
    with pytest.raises(RunFileError, match=message):
        load_run(out)


def test_bad_node_series_and_missing_task_table(tmp_path: Path) -> None:
    out = _run(tmp_path / "r")
    f = out / "nodes.csv"
    f.write_text(f.read_text().replace("0.5,5.0", "watts,5.0"))
    with pytest.raises(RunFileError, match=r"/nodes\.csv:3: power_w: not a number: 'watts'$"):
        load_run(out)
    assert load_run(out, series=False).task_id.size == 4
    (out / "tasks.csv").unlink()
    with pytest.raises(RunFileError, match=r"/tasks\.csv: no such file$"):
        load_run(out)


def test_read_run_is_the_record(tmp_path: Path) -> None:
    out = _run(tmp_path / "r")
    assert read_run(out) == json.loads((out / "run.json").read_text())
