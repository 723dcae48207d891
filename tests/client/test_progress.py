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
from rpiaas.testbed.local import LocalTestbed
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


class _Clock:
    """A clock the test moves: the seconds the client polls at."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def _follow(statuses: list[dict[str, Any]], poll_s: float = 0.5) -> tuple[list[str], RunProgress]:
    """Off a terminal: the lines written for ``statuses``, polled every ``poll_s``."""
    out, clock = io.StringIO(), _Clock()
    progress = RunProgress(out, clock=clock)
    for doc in statuses:
        progress.update(doc)
        clock.now_s += poll_s
    progress.close()
    assert "\r" not in out.getvalue()
    return out.getvalue().splitlines(), progress


def test_off_a_terminal_a_line_per_tenth_of_the_tasks_and_never_one_twice() -> None:
    lines, progress = _follow(STATUSES)
    # of 3 tasks, each end is another tenth; the task that arrived at 0.9 s waits for one
    assert lines == ["  t=0.0 s: 0 arrived, 0 queued, 0 running, 0 of 3 ended",
                     "  t=2.9 s: 3 arrived, 1 queued, 1 running, 1 of 3 ended",
                     "  t=3.9 s: 3 arrived, 0 queued, 1 running, 2 of 3 ended",
                     "  t=4.9 s: 3 arrived, 0 queued, 0 running, 3 of 3 ended"]
    assert progress.lines == 4
    # a workload of unknown size: no "of"
    out = io.StringIO()
    RunProgress(out).update(_doc(1.0, 2, 0, 2, 0, total=None))
    assert out.getvalue() == "  t=1.0 s: 2 arrived, 0 queued, 2 running, 0 ended\n"


def _steady(tasks: int, polls: int, total: int | None) -> list[dict[str, Any]]:
    """A run polled ``polls`` times: a task arrives on every poll until ``tasks`` have, and
    they end at the same pace two polls later; every count changes on every poll."""
    docs = []
    for k in range(polls):
        arrived, ended = min(tasks, k + 1), min(tasks, max(0, k - 1))
        docs.append(_doc(0.5 * k, arrived, 0, arrived - ended, ended, total=total))
    docs[-1]["state"] = "completed"
    return docs


def test_forty_tasks_off_a_terminal_are_a_dozen_lines_not_eighty() -> None:
    """40 tasks over 21 s, a count changing on every one of 42 polls: a line per tenth of the
    workload ended (4 tasks) or per 10 s, the first line and the last."""
    docs = _steady(40, 42, total=40)
    lines, _ = _follow(docs)
    ended = [int(ln.split(", ")[-1].split()[0]) for ln in lines]
    assert ended[0] == 0 and ended[-1] == 40 and len(lines) <= 11 + 3, lines
    # past the first line, each line is a tenth more ended than the one before it, or 10 s
    # after it (20 polls of 0.5 s)
    times = [float(ln.split("t=")[1].split(" s")[0]) for ln in lines]
    for (t0, e0), (t1, e1) in itertools.pairwise(zip(times, ended, strict=True)):
        assert e1 // 4 > e0 // 4 or t1 - t0 >= 10.0, lines
    assert len(set(lines)) == len(lines)


def test_a_workload_of_unknown_size_gets_a_line_per_10_s_and_its_last_counts() -> None:
    """Counts changing every poll for 35 s: lines at 0, 10, 20 and 30 s, then the last counts."""
    lines, _ = _follow(_steady(200, 71, total=None))
    assert [ln.split(":")[0] for ln in lines] == ["  t=0.0 s", "  t=10.0 s", "  t=20.0 s", "  t=30.0 s",
                                                  "  t=35.0 s"]
    assert lines[-1].endswith("69 ended"), lines


def test_a_change_left_unsaid_is_written_10_s_later_even_when_nothing_moves() -> None:
    quiet = [_doc(0.5 * k, 1, 0, 1, 0, total=None) for k in range(30)]
    lines, _ = _follow([_doc(0.0, 0, 0, 0, 0, total=None), *quiet])
    # the arrival at 0.5 s is written at the first poll 10 s after the first line, once
    assert lines == ["  t=0.0 s: 0 arrived, 0 queued, 0 running, 0 ended",
                     "  t=9.5 s: 1 arrived, 0 queued, 1 running, 0 ended"]


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


@pytest.mark.integration
def test_the_client_against_a_real_testbed_writes_a_dozen_lines_for_40_tasks(
        tmp_path: Path, testbed: LocalTestbed, capsys: pytest.CaptureFixture[str]) -> None:
    """``run_live`` on a one-node testbed, polling every 0.1 s: off a terminal, a line per tenth
    of the 40 tasks ended at most (the run takes seconds), none twice, the last one complete."""
    tasks = [{"id": i + 1, "arrival_s": 0.1 * i, "cores": 1, "mem_mb": 64, "work_core_s": 0.4}
             for i in range(40)]
    path = tmp_path / "progress.json"
    path.write_text(json.dumps({
        "name": "progress", "seed": 1, "sample_interval_s": 0.5, "policy": "best_fit",
        "cluster": {"clusters": [{"domain": DOMAIN, "prefix": "127.0.1", "count": 1,
                                  "type": "rpi4b"}]},
        "workload": {"tasks": tasks}}))
    summary, out = run_live(load_scenario(path), testbed.master_url, testbed.master_token,
                            tmp_path / "run", poll_s=0.1)
    assert (out / "tasks.csv").is_file() and summary
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("  t=")]
    assert lines and lines[-1].endswith("40 of 40 ended"), err
    assert len(set(lines)) == len(lines), err
    assert 2 <= len(lines) <= 11 + 1, err  # the first, one per tenth (4 tasks), a 10 s line at most
