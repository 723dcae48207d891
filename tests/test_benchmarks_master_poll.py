"""benchmarks/master_poll.py runs end to end: a smoke run, its figures sane (no timing targets)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "master_poll.py"


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "poll latency" in run.stdout and "samples/s" in run.stdout
    r = json.loads(out.read_text())
    assert set(r) >= {"poll", "insert", "missed", "target_insert_samples_per_s"}

    p = r["poll"]
    assert p["agents"] == 20 and p["online"] == 20 and p["offline"] == 0
    assert p["polls_failed"] == 0 and p["polls_failed_since_start"] == 0
    assert p["rounds"] >= 1 and p["polls_answered"] >= p["agents"]
    assert 0 < p["latency_p50_ms"] <= p["latency_p99_ms"] <= p["latency_max_ms"]
    assert p["last_round_ms"] > 0
    assert p["master_cpu_percent_of_one_core"] > 0 and p["master_rss_mb"] > 0
    assert p["agent_server_rss_mb"] > 0
    # every answered poll of the window left one sample in the history file
    assert p["samples_stored"] > 0 and p["samples_stored_per_s"] > 0
    assert p["master_exit_code_on_sigterm"] == 0

    assert [row["batch_size"] for row in r["insert"]] == [200, 1000]
    for row in r["insert"]:
        assert row["samples"] == 20_000 and row["samples_per_s"] > 0 and row["ratio_to_target"] > 0
