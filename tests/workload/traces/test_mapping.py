"""Jobs to tasks: processors to cores, clipping, the window, load scale, filters, memory, what is
skipped; a trace as a run."""

from __future__ import annotations

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
    target_for,
)
from rpiaas.workload.traces.jobs import GO_ON
from rpiaas.workload.traces.mapping import SPANS

from .tracefiles import scenario_file, swf_line, write_swf

ROOT = Path(__file__).resolve().parents[3]


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


def test_a_trace_out_of_order_is_refused(tmp_path: Path) -> None:
    opts = TraceOptions(write_swf(tmp_path / "t.swf", [swf_line(1, 50), swf_line(2, 10)]))
    with pytest.raises(InputError, match=r"t.swf:8: submit time 10 is before the previous job's"):
        list(map_jobs(opts, target_for(opts, [(4, 4096)], 4)))


# ---------------------------------------------------------------- jobs to tasks
def test_processors_become_cores_and_wide_jobs_span_or_are_clipped_keeping_their_work(tmp_path: Path) -> None:
    lines = [swf_line(1, 100, run=10, procs=2, req_time=20), swf_line(2, 110, run=10, procs=16, req_time=20)]
    p = write_swf(tmp_path / "t.swf", lines)
    # span (the default): 16 processors on 4-core nodes, a job of four parts of 4 cores each
    sc = load_scenario(scenario_file(tmp_path, {"path": str(p)}))  # two 4-core nodes
    assert isinstance(sc.workload, Trace) and sc.workload.count == 2
    a, b = sc.workload.tasks(np.random.default_rng(0))
    assert (a.nodes, a.cores) == (1, 2)
    assert (b.arrival_s, b.cores, b.nodes, b.parts, b.work_core_s, b.walltime_s, b.mem_mb) == \
        (10, 4, 4, (), 160, 20, 4096 // 4)
    assert sc.workload.report is not None and sc.workload.report.counts == {SPANS: 1}
    sc = load_scenario(scenario_file(tmp_path, {"path": str(p), "wide_jobs": "clip"}))
    assert isinstance(sc.workload, Trace) and sc.workload.count == 2
    a, b = sc.workload.tasks(np.random.default_rng(0))
    assert (a.arrival_s, a.cores, a.work_core_s, a.walltime_s, a.mem_mb) == (0, 2, 20, 20, 512)
    # 16 processors on a 4-core node: 4 cores, the same 160 core-s, four times as long
    assert (b.arrival_s, b.cores, b.work_core_s, b.walltime_s, b.mem_mb) == (10, 4, 160, 80, 4096)
    rep = sc.workload.report
    assert rep is not None and rep.counts["clipped to the largest node's cores"] == 1
    # auto: the traced 16 processors over the cluster's 8 cores, half a core each
    sc = load_scenario(scenario_file(tmp_path, {"path": str(p), "cores_per_proc": "auto", "wide_jobs": "clip"}))
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


def test_a_product_too_large_for_a_number_is_an_input_error_on_its_line(tmp_path: Path) -> None:
    """Finite fields whose product overflows (memory per processor x processors, run time x cores) are
    the job's line's error, not an internal one; with skip_bad_lines that line is counted and left."""
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0), swf_line(2, 1, procs=2, mem_kb=1.5e308), swf_line(3, 2),
                                       swf_line(4, 3, run=1e308, procs=3)])
    with pytest.raises(InputError) as e:
        load_scenario(scenario_file(tmp_path, {"path": str(p)}))
    assert str(e.value) == (f"{p}:8: job 2: its memory (per processor x processors) is too large for a number "
                            f"{GO_ON}")
    sc = load_scenario(scenario_file(tmp_path, {"path": str(p), "skip_bad_lines": True}))
    assert [t.id for t in sc.workload.tasks(np.random.default_rng(0))] == [1, 3]
    assert sc.workload.report.counts["bad line"] == 2 and sc.workload.report.first_line["bad line"] == 8


# ---------------------------------------------------------------- real and shipped traces
def test_the_shipped_sample_trace_runs(tmp_path: Path) -> None:
    sc = load_scenario(ROOT / "scenarios" / "trace-replay.yaml", [("workload.trace.max_jobs", 40)])
    summary, _ = simulate(sc, tmp_path / "run")
    assert summary["tasks"] == summary["completed"] == 40
    assert (tmp_path / "run" / "run.json").exists()
