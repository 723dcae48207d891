"""Dependencies read from traces: SWF's preceding job (field 17) and think time (field 18), a CSV
``after`` column; located errors, dropped dependencies counted, and the release rule in a run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate
from rpiaas.workload.traces import Trace, read_csv, read_swf
from rpiaas.workload.traces.csv import BLOCK
from rpiaas.workload.traces.mapping import DROPPED_AFTER, THINK_IGNORED

from .tracefiles import scenario_file, write_swf


def swf(job: int, submit: float, run: float = 100, procs: int = 1, status: int = 1, prev: int = -1,
        think: float = -1) -> str:
    fields = [job, submit, 0, run, procs, -1, -1, procs, 200, -1, status, 1, 1, -1, 1, 1, prev, think]
    return " ".join(str(f) for f in fields)


def write_csv(path: Path, rows: list[list[object]], head: tuple[str, ...] = (
        "id", "arrival_s", "cores", "duration_s", "after")) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(rows)
    return path


def trace_of(scenario: Path) -> Trace:
    workload = load_scenario(scenario).workload
    assert isinstance(workload, Trace)
    return workload


def run_rows(scenario: Path) -> dict[int, dict[str, str]]:
    sc = load_scenario(scenario)
    out = scenario.parent / "out"
    simulate(sc, out)
    with open(out / "tasks.csv") as f:
        return {int(r["task_id"]): r for r in csv.DictReader(f)}


# ---------------------------------------------------------------- reading
def test_swf_preceding_job_and_think_time_are_read(tmp_path: Path) -> None:
    p = write_swf(tmp_path / "t.swf", [swf(1, 0), swf(2, 5, prev=1, think=30), swf(3, 6, prev=0)])
    a, b, c = read_swf(p)
    assert (a.after, a.think_s) == ((), None)
    assert (b.after, b.think_s) == ((1,), 30.0)
    assert (c.after, c.think_s) == ((), None)  # 0 names no job (numbers start at 1)


@pytest.mark.parametrize("prev", [3, 7])
def test_swf_preceding_job_must_be_an_earlier_one(tmp_path: Path, prev: int) -> None:
    p = write_swf(tmp_path / "t.swf", [swf(1, 0), swf(2, 5), swf(3, 6, prev=prev)])
    with pytest.raises(InputError) as e:
        list(read_swf(p))
    assert str(e.value).startswith(f"{p}:9: field 17 (prev_job): job 3 names {prev} as its preceding job, "
                                   "which must be an earlier job's number (-1 for none)")


def test_csv_after_column_is_read(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "t.csv", [[1, 0, 1, 10, ""], [2, 0, 1, 10, ""], [3, 1, 1, 10, "1;2"],
                                       [4, 2, 1, 10, "3"]])
    assert [j.after for j in read_csv(p)] == [(), (), (1, 2), (3,)]


@pytest.mark.parametrize("cell, message", [
    ("3", "column 'after': job 3 waits for itself"),
    ("4", "column 'after': job 3 waits for job 4, which no earlier line has (a job waits only for jobs before it)"),
    ("9", "column 'after': job 3 waits for job 9, which no earlier line has"),
    ("1;x", "column 'after': not a job id: 'x'"),
    ("1.5", "column 'after': not a job id: '1.5'"),
])
def test_csv_after_errors_name_file_line_and_column(tmp_path: Path, cell: str, message: str) -> None:
    p = write_csv(tmp_path / "t.csv", [[1, 0, 1, 10, ""], [2, 0, 1, 10, ""], [3, 1, 1, 10, cell],
                                       [4, 2, 1, 10, ""]])
    with pytest.raises(InputError) as e:
        list(read_csv(p))
    assert str(e.value).startswith(f"{p}:4: {message}")
    # the same through a scenario (the blocks' reader), before any run
    with pytest.raises(InputError) as e:
        load_scenario(scenario_file(tmp_path, {"path": str(p)}))
    assert str(e.value).startswith(f"{p}:4: {message}")


def test_a_mapped_after_column_must_exist(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "t.csv", [[1, 0, 1, 10, ""]])
    with pytest.raises(InputError, match=r":1: no column 'deps' for after \(columns: id, arrival_s"):
        list(read_csv(p, {"after": "deps"}))


def test_csv_after_in_long_plain_blocks(tmp_path: Path) -> None:
    """Blocks of plain lines with an empty after column go column-wise; their ids count as read."""
    n = 2 * BLOCK + 10
    rows: list[list[object]] = [[i, i, 1, 10, ""] for i in range(1, n + 1)]
    rows.append([n + 1, n + 1, 1, 10, f"1;{BLOCK + 3}"])
    p = write_csv(tmp_path / "t.csv", rows)
    sc = scenario_file(tmp_path, {"path": str(p)}, nodes=4)
    assert trace_of(sc).after == {n + 1: (1, BLOCK + 3)}
    assert load_scenario(sc).workflow is not None


# ---------------------------------------------------------------- runs
def test_a_swf_job_waits_for_its_preceding_job(tmp_path: Path) -> None:
    """Job 2 arrives at 5 s but its predecessor runs until 100 s: released then.  Job 4 names a
    cancelled job: that dependency is dropped and counted, and it starts at its arrival."""
    p = write_swf(tmp_path / "t.swf", [swf(1, 0, run=100), swf(2, 5, run=10, prev=1, think=20),
                                       swf(3, 6, status=5, run=-1), swf(4, 7, run=10, prev=3)])
    sc = scenario_file(tmp_path, {"path": str(p)})
    loaded = trace_of(sc)
    rep = loaded.report
    assert rep is not None
    assert rep.counts[DROPPED_AFTER] == 1 and rep.first_line[DROPPED_AFTER] == 10
    assert rep.counts[THINK_IGNORED] == 1 and rep.first_line[THINK_IGNORED] == 8
    assert loaded.after == {2: (1,)}
    rows = run_rows(sc)
    assert set(rows) == {1, 2, 4}
    assert float(rows[1]["end_s"]) == pytest.approx(100.0)
    assert float(rows[2]["start_s"]) == pytest.approx(100.0)  # not at its arrival, 5 s
    assert float(rows[4]["start_s"]) == pytest.approx(7.0)
    run = (tmp_path / "out" / "run.json").read_text()
    assert '"workflow"' in run


def test_a_csv_job_waits_for_all_it_names_and_a_failed_one_cancels(tmp_path: Path) -> None:
    """Job 3 waits for 1 (10 s) and 2 (40 s): it starts at 40 s.  Job 5 waits for 4, a job over
    16 nodes on a cluster of 2, which is rejected: 5 is cancelled, its reason names job 4."""
    p = write_csv(tmp_path / "t.csv", [[1, 0, 1, 10, ""], [2, 0, 1, 40, ""], [3, 1, 1, 10, "1;2"],
                                       [4, 2, 64, 10, ""], [5, 3, 1, 10, "4"]])
    rows = run_rows(scenario_file(tmp_path, {"path": str(p)}))
    assert float(rows[3]["start_s"]) == pytest.approx(40.0)
    assert (rows[5]["state"], rows[5]["reason"]) == ("rejected", "cancelled: predecessor 4 rejected")


def test_a_trace_without_dependencies_is_no_workflow(tmp_path: Path) -> None:
    p = write_swf(tmp_path / "t.swf", [swf(1, 0), swf(2, 5)])
    sc = scenario_file(tmp_path, {"path": str(p)})
    assert trace_of(sc).after == {} and load_scenario(sc).workflow is None


def test_a_streamed_trace_carries_its_dependencies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trace too long to keep is read again by each run: its tasks wait as a kept one's do."""
    from rpiaas.workload.traces import mapping

    p = write_swf(tmp_path / "t.swf", [swf(1, 0, run=100), swf(2, 5, run=10, prev=1), swf(3, 6, run=10)])
    monkeypatch.setattr(mapping, "KEEP_TASKS", 1)
    sc = scenario_file(tmp_path, {"path": str(p)})
    trace = trace_of(sc)
    assert trace.kept is None and trace.after == {2: (1,)}
    rows = run_rows(sc)
    assert float(rows[2]["start_s"]) == pytest.approx(100.0) and float(rows[3]["start_s"]) == pytest.approx(6.0)


def test_a_live_master_gets_the_dependencies(tmp_path: Path) -> None:
    """``payload()`` (what ``rpiaas run --live`` sends) gives a trace as its task list: with each
    task's after, and the workflow's option, so the master releases them as the simulation does."""
    p = write_swf(tmp_path / "t.swf", [swf(1, 0), swf(2, 5, prev=1), swf(3, 6, status=5, run=-1),
                                       swf(4, 7, prev=3)])
    data = load_scenario(scenario_file(tmp_path, {"path": str(p)})).payload()
    tasks = {t["id"]: t for t in data["workload"]["tasks"]}
    assert tasks[2]["after"] == [1] and "after" not in tasks[1] and "after" not in tasks[4]
    assert data["workflow"] == {"on_failure": "cancel"}
