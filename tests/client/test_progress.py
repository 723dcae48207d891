"""The live client's progress: a line per change off a terminal, a tqdm bar on one."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from rpiaas.client.client import run_live
from rpiaas.client.progress import RunProgress
from rpiaas.scenario import load_scenario
from rpiaas.testbed.local import start_local_testbed
from rpiaas.testbed.plan import DOMAIN


def _doc(now_s: float, arrived: int, queued: int, running: int, ended: int,
         state: str = "running", total: int | None = 3) -> dict[str, Any]:
    return {"id": "r", "state": state, "now_s": now_s, "arrived": arrived, "queued": queued,
            "running": running, "ended": ended, "tasks_total": total}


# What the master answers twice a second: long stretches where only the clock moves.
STATUSES = [_doc(0.0, 0, 0, 0, 0), _doc(0.4, 0, 0, 0, 0), _doc(0.9, 1, 0, 1, 0),
            _doc(1.4, 1, 0, 1, 0), _doc(1.9, 1, 0, 1, 0), _doc(2.4, 1, 0, 1, 0),
            _doc(2.9, 3, 1, 1, 1), _doc(3.4, 3, 1, 1, 1), _doc(3.9, 3, 0, 1, 2),
            _doc(4.4, 3, 0, 1, 2), _doc(4.9, 3, 0, 0, 3, "completed")]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_line_per_change_and_never_one_twice() -> None:
    out = io.StringIO()
    progress = RunProgress(out)
    for doc in STATUSES:
        progress.update(doc)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines == ["  t=0.0 s: 0 arrived, 0 queued, 0 running, 0 of 3 ended",
                     "  t=0.9 s: 1 arrived, 0 queued, 1 running, 0 of 3 ended",
                     "  t=2.9 s: 3 arrived, 1 queued, 1 running, 1 of 3 ended",
                     "  t=3.9 s: 3 arrived, 0 queued, 1 running, 2 of 3 ended",
                     "  t=4.9 s: 3 arrived, 0 queued, 0 running, 3 of 3 ended"]
    assert progress.lines == 5 and "\r" not in out.getvalue()
    # a workload of unknown size: no "of"
    out = io.StringIO()
    RunProgress(out).update(_doc(1.0, 2, 0, 2, 0, total=None))
    assert out.getvalue() == "  t=1.0 s: 2 arrived, 0 queued, 2 running, 0 ended\n"


def test_on_a_terminal_a_bar() -> None:
    out = _Terminal()
    progress = RunProgress(out)
    assert progress.tty
    for doc in STATUSES:
        progress.update(doc)
    progress.close()
    text = out.getvalue()
    assert "\r" in text and progress.lines == 0
    final = text.rstrip("\n").split("\r")[-1]
    assert "3/3" in final and "100%" in final and "0 queued, 0 running" in final


def test_the_client_against_a_real_testbed_prints_no_line_twice(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``run_live`` on a one-node testbed: each progress line differs from the one before."""
    tasks = [{"id": i + 1, "arrival_s": 0.3 * i, "cores": 1, "mem_mb": 64, "work_core_s": 1.5}
             for i in range(5)]
    path = tmp_path / "progress.json"
    path.write_text(json.dumps({
        "name": "progress", "seed": 1, "sample_interval_s": 0.5, "policy": "best_fit",
        "cluster": {"clusters": [{"domain": DOMAIN, "prefix": "127.0.1", "count": 1,
                                  "type": "rpi4b"}]},
        "workload": {"tasks": tasks}}))
    with start_local_testbed(tmp_path / "tb", 1, poll_interval_s=0.25) as tb:
        summary, out = run_live(load_scenario(path), tb.master_url, tb.master_token,
                                tmp_path / "run", poll_s=0.1)
    assert (out / "tasks.csv").is_file() and summary
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("  t=")]
    assert lines and lines[-1].endswith("5 of 5 ended"), err
    counts = [ln.split(": ", 1)[1] for ln in lines]
    # polled every 0.1 s for several seconds: many polls, yet no repeated line
    assert all(a != b for a, b in itertools.pairwise(counts)), err
    assert len(lines) <= 4 * len(tasks) + 1, err
