"""benchmarks/load_run.py runs end to end: a smoke run, its figures printed (no timing targets)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "load_run.py"


def test_smoke_run_prints_times_and_sizes(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    run = subprocess.run([sys.executable, str(SCRIPT), "--count", "2000", "--runs-dir",
                          str(tmp_path / "runs")], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("2,000 tasks, ") and "conversion to Parquet" in lines[0]
    for name in ("tasks s", "nodes s", "tasks MB", "nodes MB"):
        row = next(line for line in lines if line.startswith(name))
        assert re.fullmatch(rf"{name} +[0-9.]+ +[0-9.]+ +[0-9.]+x", row), row
    assert (tmp_path / "runs" / "parquet-2000" / "tasks.parquet").is_file()
