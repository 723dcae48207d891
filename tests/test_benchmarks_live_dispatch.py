"""benchmarks/live_dispatch.py runs end to end: a smoke run, its figures sane (no timing targets)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "live_dispatch.py"


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "starts/s" in run.stdout and "targets (exec workers)" in run.stdout
    r = json.loads(out.read_text())
    assert set(r) >= {"dispatch", "missed", "target_starts_per_s", "target_p50_ms"}
    assert [d["worker"] for d in r["dispatch"]] == ["exec", "python"]
    for d in r["dispatch"]:
        assert d["agents"] == 10 and d["tasks"] == 200 and d["master_rss_mb"] > 0
        assert [x["rate_per_s"] for x in d["runs"]] == [50]
        x = d["runs"][0]
        # every task arrived, started once, ran and completed
        assert x["completed"] == x["started"] == 200 and x["not_completed"] == 0
        assert 0 <= x["queued_first"] <= 200 and isinstance(x["node_down_events"], int)
        # a node lost for a moment (a loaded machine) is reported, not hidden
        assert (x["node_down_events"] > 0) == ("went offline" in run.stdout)
        assert x["starts_per_s"] > 0
        assert 0 < x["latency_p50_ms"] <= x["latency_p99_ms"] <= x["latency_max_ms"]
        # the agent's share of a start (0.0 when it rounds away) is part of its latency
        assert x["master_part_ms"]["p50"] > 0
        assert 0 <= x["agent_part_ms"]["p50"] <= x["latency_max_ms"]
        assert x["master_cpu_percent_of_one_core"] > 0
        assert x["agent_server_cpu_percent_of_one_core"] > 0
        assert d["sustained_starts_per_s"] in (0.0, x["starts_per_s"])
    # an interpreter per task costs more CPU than exec'ing /bin/sleep, and both are measured
    exec_cpu, python_cpu = (d["runs"][0]["workers_cpu_percent_of_one_core"] for d in r["dispatch"])
    assert 0 <= exec_cpu < python_cpu
