"""One pass over a whole trace: what it holds, whatever the cluster, and how fast it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.workload.traces import scan_trace, trace_format

from .tracefiles import swf_line, write_swf


def test_no_job_is_too_big_and_what_the_trace_holds_is_counted(tmp_path: Path) -> None:
    # the whole traced machine (MaxProcs 16) with a terabyte a processor fits; more than it does not
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0, procs=16, mem_kb=10**9), swf_line(2, 5, status=5),
                                       swf_line(3, 9, procs=17)])
    scan = scan_trace(p)
    assert (scan.report.read, scan.report.kept) == (3, 1)
    assert dict(scan.report.counts) == {"cancelled (status 5 or run time -1)": 1,
                                        "more processors than MaxProcs": 1}
    assert scan.read_s >= 0 and scan.jobs_per_s >= 0


def test_bad_lines_stop_the_pass_unless_skipped(tmp_path: Path) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0), "2 oops"])
    with pytest.raises(InputError, match="expected 18 SWF fields"):
        scan_trace(p)
    assert scan_trace(p, skip_bad_lines=True).report.counts["bad line"] == 1


def test_a_csv_trace_by_its_suffix(tmp_path: Path) -> None:
    p = tmp_path / "t.CSV"
    p.write_text("arrival_s,cores,duration_s\n0,1,10\n4,2,5\n")
    assert trace_format(p) == "csv" and trace_format(tmp_path / "t.swf") == trace_format("t") == "swf"
    assert scan_trace(p).report.kept == 2
