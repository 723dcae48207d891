"""examples/analysis.py runs: two policies, their Gantt charts and their comparison."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_analysis_example_runs(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    pytest.importorskip("matplotlib")
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "analysis.py"), str(tmp_path / "out")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(" best_fit: mean wait by cores {1: ")
    assert lines[1].startswith("worst_fit: mean wait by cores {1: ")
    assert f"wrote {tmp_path / 'out' / 'gantt.png'}" in lines
    assert "mean_wait_s" in r.stdout and lines[-1].endswith(" s")
    assert "of 200 tasks ran on another node" in lines[-1]
    svg = (tmp_path / "out" / "gantt.svg").read_text()
    assert svg.count('class="run"') == 2 and svg.count('class="lane"') == 24
    assert (tmp_path / "out" / "gantt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "worst_fit" / "tasks.parquet").is_file()
