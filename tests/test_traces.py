"""Trace workloads: SWF and CSV readers, the job-to-task mapping, skip reports, bad lines."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rpiaas.inputs.source import InputError
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate
from rpiaas.workload import Trace
from rpiaas.workload.traces import (
    SkipReport,
    TraceOptions,
    map_jobs,
    read_csv,
    read_swf,
    swf_header,
    target_for,
)

from .helpers import shared_file

ROOT = Path(__file__).resolve().parents[1]

KTH = shared_file("traces", "KTH-SP2-1996-2.1-cln.swf")
HEADER = """\
; Version: 2.2
; Computer: test machine
; UnixStartTime: 1000000000
; MaxNodes: 4
; MaxProcs: 16
;
"""


def swf_line(job: int, submit: float, run: float = 100, procs: int = 1, req_time: float = 200,
             status: int = 1, user: int = 1, mem_kb: float = -1, queue: int = 1) -> str:
    fields = [job, submit, 0, run, procs, -1, -1, procs, req_time, mem_kb, status, user, 1, -1,
              queue, 1, -1, -1]
    return " ".join(str(f) for f in fields)


def write_swf(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def scenario_file(tmp_path: Path, trace: dict[str, Any], nodes: int = 2, type_: str = "rpi4b") -> Path:
    import yaml

    data = {"name": "t", "cluster": {"clusters": [
                {"domain": "lab.test", "prefix": "10.0.1", "count": nodes, "type": type_}]},
            "workload": {"trace": trace}, "policy": "best_fit"}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


# ---------------------------------------------------------------- SWF reading
def test_reads_the_18_fields_and_the_header(tmp_path: Path) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 10, run=50, procs=4, req_time=60, mem_kb=2048, user=7),
                                       "2 20 5 -1 -1 -1 -1 2 300 -1 5 3 1 -1 1 1 -1 -1"])
    assert swf_header(p)["MaxProcs"] == "16" and swf_header(p)["UnixStartTime"] == "1000000000"
    a, b = list(read_swf(p))
    assert (a.id, a.submit_s, a.run_s, a.procs, a.req_time_s, a.user, a.line) == (1, 10, 50, 4, 60, 7, 7)
    assert a.mem_mb == pytest.approx(2048 * 4 / 1024)  # per-processor KB times processors
    assert (b.run_s, b.procs, b.status) == (None, 2, 5)  # allocated -1: the requested processors


def test_cancelled_and_unusable_jobs_are_skipped_and_reported(tmp_path: Path) -> None:
    lines = [swf_line(1, 0), swf_line(2, 5, run=-1, status=5), swf_line(3, 6, status=5, run=30),
             swf_line(4, 7, procs=-1), swf_line(5, 8, procs=32), swf_line(6, 9)]
    opts = TraceOptions(write_swf(tmp_path / "t.swf", lines))
    rep = SkipReport()
    tasks = list(map_jobs(opts, target_for(opts, [(4, 4096)], 16), rep))
    assert [t.id for t in tasks] == [1, 6]
    assert rep.counts == {"cancelled (status 5 or run time -1)": 2, "no processor count": 1,
                          "more processors than MaxProcs": 1}
    assert rep.first_line["cancelled (status 5 or run time -1)"] == 8 and rep.read == 6 and rep.kept == 2
    assert "6 jobs read, 2 kept" in rep.describe()
    # kept when asked: a cancelled job that ran for a while; one without a run time still cannot run
    opts = TraceOptions(opts.path, skip_cancelled=False)
    rep = SkipReport()
    assert [t.id for t in map_jobs(opts, target_for(opts, [(4, 4096)], 16), rep)] == [1, 3, 6]
    assert rep.counts["no run time"] == 1


@pytest.mark.parametrize("bad, message", [
    ("3 20 0 100 1 -1", "expected 18 SWF fields, got 6"),
    ("3 20 0 abc 1 -1 -1 1 200 -1 1 1 1 -1 1 1 -1 -1", "field 4 (run_s): not a number: 'abc'"),
    ("3 20 0 nan 1 -1 -1 1 200 -1 1 1 1 -1 1 1 -1 -1", "a field is not a finite number"),
])
def test_a_malformed_line_names_the_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0), swf_line(2, 10), bad, swf_line(4, 30)])
    with pytest.raises(InputError) as e:
        list(read_swf(p))
    assert str(e.value).startswith(f"{p}:9: {message}") and "--skip-bad-lines" in str(e.value)
    rep = SkipReport()
    assert [j.id for j in read_swf(p, skip_bad_lines=True, report=rep)] == [1, 2, 4]
    assert rep.counts == {"bad line": 1} and rep.first_line["bad line"] == 9


def test_a_trace_out_of_order_is_refused(tmp_path: Path) -> None:
    opts = TraceOptions(write_swf(tmp_path / "t.swf", [swf_line(1, 50), swf_line(2, 10)]))
    with pytest.raises(InputError, match=r"t.swf:8: submit time 10 is before the previous job's"):
        list(map_jobs(opts, target_for(opts, [(4, 4096)], 4)))


def test_reading_is_streamed(tmp_path: Path) -> None:
    """Memory does not grow with the trace: 60,000 jobs in a few hundred kB."""
    p = tmp_path / "big.swf"
    with open(p, "w") as f:
        f.write(HEADER)
        for i in range(60_000):
            f.write(swf_line(i + 1, i * 10, procs=1 + i % 16) + "\n")
    opts = TraceOptions(p)
    target = target_for(opts, [(16, 65536)], 16)
    tracemalloc.start()
    n = sum(1 for _ in map_jobs(opts, target))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 60_000 and peak < 1_000_000


# ---------------------------------------------------------------- jobs to tasks
def test_processors_become_cores_and_wide_jobs_are_clipped_keeping_their_work(tmp_path: Path) -> None:
    lines = [swf_line(1, 100, run=10, procs=2, req_time=20), swf_line(2, 110, run=10, procs=16, req_time=20)]
    p = write_swf(tmp_path / "t.swf", lines)
    sc = load_scenario(scenario_file(tmp_path, {"path": str(p)}))  # two 4-core nodes
    assert isinstance(sc.workload, Trace) and sc.workload.count == 2
    a, b = sc.workload.tasks(np.random.default_rng(0))
    assert (a.arrival_s, a.cores, a.work_core_s, a.walltime_s, a.mem_mb) == (0, 2, 20, 20, 512)
    # 16 processors on a 4-core node: 4 cores, the same 160 core-s, four times as long
    assert (b.arrival_s, b.cores, b.work_core_s, b.walltime_s, b.mem_mb) == (10, 4, 160, 80, 4096)
    rep = sc.workload.report
    assert rep is not None and rep.counts["clipped to the largest node's cores"] == 1
    # auto: the traced 16 processors over the cluster's 8 cores, half a core each
    sc = load_scenario(scenario_file(tmp_path, {"path": str(p), "cores_per_proc": "auto"}))
    a, b = sc.workload.tasks(np.random.default_rng(0))
    assert (a.cores, a.work_core_s, b.cores, b.work_core_s) == (1, 10, 4, 80)
    # skip: wide jobs are left out and counted
    sc = load_scenario(scenario_file(tmp_path, {"path": str(p), "wide_jobs": "skip"}))
    assert sc.workload.count == 1
    assert sc.workload.report.counts == {"wider than the largest node": 1}  # type: ignore[attr-defined]


def test_window_load_scale_max_jobs_and_filters(tmp_path: Path) -> None:
    lines = [swf_line(i, 1000 + 100 * i, user=i % 3, run=10 * i, queue=1 + i % 2) for i in range(1, 21)]
    p = write_swf(tmp_path / "t.swf", lines)

    def arrivals(**trace: Any) -> list[float]:
        sc = load_scenario(scenario_file(tmp_path, {"path": str(p), **trace}))
        return [t.arrival_s for t in sc.workload.tasks(np.random.default_rng(0))]

    assert arrivals()[:3] == [0, 100, 200]  # from the first job's submit time
    assert arrivals(start_s=1500, end_s=2000) == [0, 100, 200, 300, 400]  # jobs 5-9
    assert arrivals(start_s=1450, max_jobs=2) == [50, 150]
    assert arrivals(load_scale=2, max_jobs=3) == [0, 50, 100]
    # ISO date-times count from the UnixStartTime header (1000000000 = 2001-09-09T01:46:40Z)
    assert arrivals(start_time="2001-09-09T02:11:40Z", max_jobs=1) == [0]  # 1500 s in: job 5
    assert len(arrivals(filters={"users": [1]})) == 7
    assert len(arrivals(filters={"users": 1, "queues": [2]})) == 4
    assert len(arrivals(filters={"min_run_s": 50, "max_run_s": 100})) == 6


def test_memory_from_the_trace_or_per_core(tmp_path: Path) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0, procs=2, mem_kb=1024 * 300), swf_line(2, 1, procs=3),
                                       swf_line(3, 2, procs=1, mem_kb=1024 * 9000)])
    sc = load_scenario(scenario_file(tmp_path, {"path": str(p), "mem_mb_per_core": 100}))
    assert [t.mem_mb for t in sc.workload.tasks(np.random.default_rng(0))] == [600, 300, 4096]


BAD_TRACE_KEYS = [
    ({"path": "missing.swf"}, "workload.trace.path", "no such trace file"),
    ({"wide_jobs": "split"}, "workload.trace.wide_jobs", "expected one of"),
    ({"load_scale": 0}, "workload.trace.load_scale", "positive"),
    ({"start_s": 10, "end_s": 5}, "workload.trace.end_s", "the window ends before it starts"),
    ({"start_time": "yesterday"}, "workload.trace.start_time", "ISO 8601"),
    ({"columns": {"cores": "procs"}}, "workload.trace.columns", "only CSV traces"),
    ({"filters": {"user": [1]}}, "workload.trace.filters.user", "unknown key"),
    ({"cores_per_proc": "auto", "path": "plain.swf"}, "workload.trace.cores_per_proc",
     "auto needs an SWF header with MaxProcs or MaxNodes (plain.swf has none)"),
]


@pytest.mark.parametrize("extra, key, message", BAD_TRACE_KEYS)
def test_bad_trace_keys_are_located(tmp_path: Path, extra: dict[str, Any], key: str, message: str) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0)])
    write_swf(tmp_path / "plain.swf", [swf_line(1, 0)], header="")
    with pytest.raises(InputError) as e:
        load_scenario(scenario_file(tmp_path, {"path": str(p), **extra}))
    assert e.value.path == key and message in e.value.message and e.value.line is not None


def test_the_cli_reports_a_bad_line_in_one_line_and_skip_bad_lines_goes_on(tmp_path: Path) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0), "2 oops", swf_line(3, 20)])
    s = scenario_file(tmp_path, {"path": "t.swf"})
    r = subprocess.run([sys.executable, "-m", "rpiaas", "validate", str(s)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr == f"error: {p}:8: expected 18 SWF fields, got 2 " \
                                             "(--skip-bad-lines to go on)\n"
    r = subprocess.run([sys.executable, "-m", "rpiaas", "validate", str(s),
                        "--set", "workload.trace.skip_bad_lines=true"], capture_output=True, text=True)
    assert r.returncode == 0 and "2 tasks" in r.stdout, r.stderr


def test_a_sweep_reports_what_the_trace_skipped_and_can_skip_bad_lines(tmp_path: Path) -> None:
    write_swf(tmp_path / "t.swf", [swf_line(1, 0), "2 oops", swf_line(3, 20, status=5)])
    s = scenario_file(tmp_path, {"path": "t.swf", "skip_cancelled": True})
    sweep = [sys.executable, "-m", "rpiaas", "sweep", str(s), "--seeds", "1-2", "-q", "--out", str(tmp_path / "sw")]
    r = subprocess.run(sweep, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith(f"error: {tmp_path / 't.swf'}:8: expected 18 SWF fields")
    r = subprocess.run([*sweep, "--skip-bad-lines"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "t: trace t.swf: 3 jobs read, 1 kept; 1 bad line (first at line 8), " \
           "1 cancelled (status 5 or run time -1) (first at line 9)" in r.stderr


# ---------------------------------------------------------------- CSV
def test_csv_with_a_column_mapping(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("submit,ncpu,mem,runtime,job\n0,2,512,30,7\n5,1,,10,8\n\n9,4,100,,9\n")
    sc = load_scenario(scenario_file(tmp_path, {"path": "t.csv", "skip_cancelled": True, "columns": {
        "arrival_s": "submit", "cores": "ncpu", "mem_mb": "mem", "duration_s": "runtime", "id": "job"}}))
    tasks = list(sc.workload.tasks(np.random.default_rng(0)))
    assert [(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s) for t in tasks] == [
        (7, 0, 2, 512, 60), (8, 5, 1, 256, 10)]  # job 9 has no duration: skipped like a cancelled job
    assert sc.workload.report.counts == {"cancelled (status 5 or run time -1)": 1}  # type: ignore[attr-defined]
    q = tmp_path / "w.csv"
    q.write_text("arrival_s,cores,work_core_s\n0,2,100\n1,x,5\n")
    assert [j.work_core_s for j in read_csv(q, skip_bad_lines=True)] == [100]
    with pytest.raises(InputError, match=r"w.csv:3: cores: not a number: 'x'"):
        list(read_csv(q))
    with pytest.raises(InputError, match=r"w.csv:1: no column 'start' for arrival_s"):
        list(read_csv(q, {"arrival_s": "start"}))


# ---------------------------------------------------------------- real and shipped traces
def test_the_shipped_sample_trace_runs(tmp_path: Path) -> None:
    sc = load_scenario(ROOT / "scenarios" / "trace-replay.yaml", [("workload.trace.max_jobs", 40)])
    summary, _ = simulate(sc, tmp_path / "run")
    assert summary["tasks"] == summary["completed"] == 40
    assert (tmp_path / "run" / "run.json").exists()


@pytest.mark.skipif(not KTH.exists(), reason=f"the KTH SP2 log is not there: {KTH} (set RPIAAS_SHARED_DIR)")
def test_the_kth_sp2_log(tmp_path: Path) -> None:
    opts = TraceOptions(KTH)
    rep = SkipReport()
    n = sum(1 for _ in map_jobs(opts, target_for(opts, [(100, 10**6)], 100), rep))
    assert rep.read == 28_476 and n == 28_475
    assert rep.counts == {"no processor count": 1} and rep.first_line["no processor count"] == 27_323
    sc = load_scenario(scenario_file(tmp_path, {"path": str(KTH), "start_time": "1996-10-01T00:00:00Z",
                                                "max_jobs": 200, "cores_per_proc": "auto"}, nodes=25))
    summary, _ = simulate(sc, None)
    assert summary["tasks"] == 200 and summary["completed"] == 200
