"""``python -m rpiaas.workload.traces FILE``: a trace's header, its jobs, what was skipped; bad lines in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rpiaas.workload.traces.__main__ import main

from .tracefiles import swf_line, write_swf


def test_header_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0), swf_line(2, 5, status=5), swf_line(3, 9)])
    assert main([str(p)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["Version: 2.2", "Computer: test machine"] and "MaxProcs: 16" in out
    assert out[-1].startswith("3 jobs read, 2 kept; 1 cancelled (status 5 or run time -1) (first at line 8) in ")


def test_a_bad_line_is_one_line_unless_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0), "2 oops"])
    assert main([str(p)]) == 2
    assert capsys.readouterr().err == f"error: {p}:8: expected 18 SWF fields, got 2 (--skip-bad-lines to go on)\n"
    assert main([str(p), "--skip-bad-lines"]) == 0
    assert "2 jobs read, 1 kept; 1 bad line (first at line 8)" in capsys.readouterr().out


def test_a_csv_trace_and_the_module_as_a_process(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,cores,duration_s\n0,1,10\n4,2,5\n")
    r = subprocess.run([sys.executable, "-m", "rpiaas.workload.traces", str(p)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("2 jobs read, 2 kept in "), r.stderr
