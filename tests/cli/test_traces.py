"""``rpiaas traces FILE``: a trace's header, its jobs, what was skipped; a bad trace is one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rpiaas.cli import main
from rpiaas.workload.traces.jobs import GO_ON

from ..workload.traces.tracefiles import swf_line, write_swf


def test_header_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0), swf_line(2, 5, status=5), swf_line(3, 9)])
    assert main(["traces", str(p)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["Version: 2.2", "Computer: test machine"] and "MaxProcs: 16" in out
    assert out[-1].startswith("3 jobs read, 2 kept; 1 cancelled (status 5 or run time -1) (first at line 8) in ")
    assert out[-1].endswith(" jobs/s)")


def test_a_bad_line_is_one_line_unless_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_swf(tmp_path / "t.swf", [swf_line(1, 0), "2 oops"])
    assert main(["traces", str(p)]) == 2
    assert capsys.readouterr().err == f"error: {p}:8: expected 18 SWF fields, got 2 {GO_ON}\n"
    assert main(["traces", str(p), "--skip-bad-lines"]) == 0
    assert "2 jobs read, 1 kept; 1 bad line (first at line 8)" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "text", "error"), [
    ("none.swf", None, "none.swf: no such trace file"),
    ("dir.swf", "<dir>", "dir.swf: cannot read trace: Is a directory"),
    ("empty.csv", "", "empty.csv:1: empty CSV trace: expected a header row"),
    ("cols.csv", "a,b\n1,2\n", "cols.csv:1: no column 'arrival_s' for arrival_s (columns: a, b)"),
    ("inf.csv", "arrival_s,cores,duration_s\n0,1,1e400\n",
     f"inf.csv:2: duration_s: not a finite number: '1e400' {GO_ON}"),
    ("bin.swf", "\xff\x00\x01", f"bin.swf:1: expected 18 SWF fields, got 1 {GO_ON}"),
])
def test_a_bad_trace_is_one_error_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  name: str, text: str | None, error: str) -> None:
    p = tmp_path / name
    if text == "<dir>":
        p.mkdir()
    elif text is not None:
        p.write_text(text, encoding="latin-1")
    assert main(["traces", str(p)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {tmp_path}/{error}\n" and captured.out == ""


def test_a_csv_trace_through_python_m_rpiaas(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,cores,duration_s\n0,1,10\n4,2,5\n")
    r = subprocess.run([sys.executable, "-m", "rpiaas", "traces", str(p)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("2 jobs read, 2 kept in "), r.stderr
