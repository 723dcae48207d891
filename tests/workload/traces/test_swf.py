"""Reading SWF traces: the 18 fields and the header, located errors for malformed lines, streaming, a real log."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate
from rpiaas.workload.traces import (
    SkipReport,
    TraceOptions,
    map_jobs,
    read_swf,
    swf_header,
    target_for,
)

from ...helpers import shared_file
from .tracefiles import HEADER, scenario_file, swf_line, write_swf

KTH = shared_file("traces", "KTH-SP2-1996-2.1-cln.swf")


# ---------------------------------------------------------------- SWF reading
def test_reads_the_18_fields_and_the_header(tmp_path: Path) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 10, run=50, procs=4, req_time=60, mem_kb=2048, user=7),
                                       "2 20 5 -1 -1 -1 -1 2 300 -1 5 3 1 -1 1 1 -1 -1"])
    assert swf_header(p)["MaxProcs"] == "16" and swf_header(p)["UnixStartTime"] == "1000000000"
    a, b = list(read_swf(p))
    assert (a.id, a.submit_s, a.run_s, a.procs, a.req_time_s, a.user, a.line) == (1, 10, 50, 4, 60, 7, 7)
    assert a.mem_mb == pytest.approx(2048 * 4 / 1024)  # per-processor KB times processors
    assert (b.run_s, b.procs, b.status) == (None, 2, 5)  # allocated -1: the requested processors


@pytest.mark.parametrize("bad, message", [
    ("3 20 0 100 1 -1", "expected 18 SWF fields, got 6"),
    ("3 20 0 abc 1 -1 -1 1 200 -1 1 1 1 -1 1 1 -1 -1", "field 4 (run_s): not a number: 'abc'"),
    ("3 20 0 nan 1 -1 -1 1 200 -1 1 1 1 -1 1 1 -1 -1", "a field is not a finite number"),
    ("9007199254740993 20 0 100 1 -1 -1 1 200 -1 1 1 1 -1 1 1 -1 -1",
     "field 1 (job number): '9007199254740993' is 2**53 or more (ids are read exactly below it)"),
])
def test_a_malformed_line_names_the_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0), swf_line(2, 10), bad, swf_line(4, 30)])
    with pytest.raises(InputError) as e:
        list(read_swf(p))
    assert str(e.value).startswith(f"{p}:9: {message}") and "--skip-bad-lines" in str(e.value)
    rep = SkipReport()
    assert [j.id for j in read_swf(p, skip_bad_lines=True, report=rep)] == [1, 2, 4]
    assert rep.counts == {"bad line": 1} and rep.first_line["bad line"] == 9


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
