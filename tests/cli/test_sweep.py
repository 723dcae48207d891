"""rpiaas sweep: a grid run in process and aggregated; bad arguments in one line; a trace's skips reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rpiaas.cli import main

from ..workload.traces.tracefiles import scenario_file, swf_line, write_swf


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


@pytest.mark.slow
def test_a_grid_runs_once_and_is_aggregated(
        tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sw"
    args = ["sweep", str(tiny), "--policy", "first_fit", "--policy", "best_fit", "--seeds", "1-2",
            "--workers", "1", "-q", "-o", str(out)]
    assert main(args) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("4 runs (4 run now, 0 already done, 0 failed) in ") and last.endswith(f": {out}")
    assert (out / "summary.csv").is_file() and len(list((out / "runs").iterdir())) == 4
    assert main(args) == 0  # the same command again reuses every run
    assert "(0 run now, 4 already done, 0 failed)" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0"], "error: --workers: expected a positive number of workers, got 0\n"),
    (["--seeds", "3-1"], "error: --seeds: expected a range low-high with 0 <= low <= high, got '3-1'\n"),
])
def test_bad_arguments_are_one_line(tmp_path: Path, tiny: Path, args: list[str], message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", str(tiny), "-q", "-o", str(tmp_path / "sw"), *args]) == 2
    assert capsys.readouterr().err == message
    assert not (tmp_path / "sw").exists()
