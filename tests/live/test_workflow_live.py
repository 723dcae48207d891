"""Workflows on the local testbed: tasks are released live by the control plane's own rule.

A master and two agents run as processes on loopback (``start_local_testbed``); the
scenario's tasks wait for one another (``after``).  Live, a task is released when its
last predecessor's end is reported by its agent, and a predecessor lost with its node
cancels what waits for it, as in simulation.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.tests.helpers import clean_env
from rpiaas.client.client import run_live
from rpiaas.scenario import load_scenario
from rpiaas.testbed.local import LocalTestbed, start_local_testbed

from .test_shell import _master_cmd

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CLUSTER = {"node_types": {"pi2": {"base": "rpi4b", "cores": 2}},
           "clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 2, "type": "pi2"}]}

# 1 -> (2, 3) -> 4; 5 waits for 1 but arrives after every other task ended
DIAMOND: list[dict[str, Any]] = [
    {"id": 1, "arrival_s": 0.0, "cores": 1, "mem_mb": 64, "work_core_s": 1.5},
    {"id": 2, "arrival_s": 0.0, "cores": 2, "mem_mb": 64, "work_core_s": 2.0, "after": [1]},
    {"id": 3, "arrival_s": 0.0, "cores": 1, "mem_mb": 64, "work_core_s": 0.5, "after": [1]},
    {"id": 4, "arrival_s": 0.2, "cores": 1, "mem_mb": 64, "work_core_s": 0.5, "after": [2, 3]},
    {"id": 5, "arrival_s": 5.0, "cores": 1, "mem_mb": 64, "work_core_s": 0.3, "after": [1]},
]


def _scenario(path: Path, tasks: list[dict[str, Any]], **extra: Any) -> Path:
    doc = {"name": path.stem, "seed": 7, "sample_interval_s": 0.5, "cluster": CLUSTER,
           "workload": {"tasks": tasks}, "policy": "best_fit", **extra}
    path.write_text(json.dumps(doc, indent=1))
    return path


def _rows(run: Path) -> dict[int, dict[str, str]]:
    with open(run / "tasks.csv", newline="") as f:
        return {int(r["task_id"]): r for r in csv.DictReader(f)}


def _events(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTestbed]:
    with start_local_testbed(tmp_path_factory.mktemp("tb"), 2, poll_interval_s=0.25) as tb:
        yield tb


def test_live_tasks_are_released_when_their_predecessors_end(testbed: LocalTestbed, tmp_path: Path) -> None:
    scenario = load_scenario(_scenario(tmp_path / "diamond.json", DIAMOND))
    summary, out = run_live(scenario, testbed.master_url, testbed.master_token, tmp_path / "live", quiet=True)
    rows = _rows(out)
    assert {i: r["state"] for i, r in rows.items()} == dict.fromkeys(range(1, 6), "completed")
    for t in DIAMOND:
        start = float(rows[t["id"]]["start_s"])
        assert start >= t["arrival_s"]
        for p in t.get("after", []):
            assert float(rows[p]["end_s"]) <= start, (t["id"], p, rows)
    events = _events(out)
    # released at the end of the last predecessor reported by its agent, in that very step;
    # 5 arrived after 1 had ended: queued at its arrival, never held
    assert _check_releases(events, DIAMOND) == {2, 3, 4}
    assert float(rows[5]["start_s"]) >= 5.0
    assert summary["workflow_tasks"] == 5
    assert summary["critical_path_s"] == pytest.approx(1.5 + 2.0 / 2 + 0.5)  # 1, 2 on two cores, 4
    # from the first release (task 1's arrival, as the control plane took it in) to the last end
    arrived = {e["task"]: e["t"] for e in events if e.get("ev") == "arrive"}
    assert summary["workflow_makespan_s"] == pytest.approx(float(rows[5]["end_s"]) - arrived[1], abs=1e-6)
    # the simulated twin released them by the same rule
    twin = json.loads((out / "fidelity.json").read_text())
    assert twin["placement"]["tasks"] == 5


def test_a_predecessor_lost_with_its_node_cancels_its_descendants_live(tmp_path: Path) -> None:
    tasks: list[dict[str, Any]] = [{"id": 1, "arrival_s": 0.0, "cores": 2, "mem_mb": 64, "work_core_s": 60.0},
             {"id": 2, "arrival_s": 0.0, "cores": 1, "mem_mb": 64, "work_core_s": 0.5, "after": [1]},
             {"id": 3, "arrival_s": 0.5, "cores": 1, "mem_mb": 64, "work_core_s": 0.5, "after": [2]},
             {"id": 4, "arrival_s": 0.0, "cores": 1, "mem_mb": 64, "work_core_s": 0.5}]
    with start_local_testbed(tmp_path / "tb", 2, poll_interval_s=0.25) as tb:
        scenario = load_scenario(_scenario(tmp_path / "lost.json", tasks, workflow={"on_failure": "cancel"}))
        done: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: done.update(out=run_live(
            scenario, tb.master_url, tb.master_token, tmp_path / "live", quiet=True)))
        thread.start()
        victim = _node_running(tb, cores=2, timeout_s=15.0)
        os.kill(tb.agents[victim].pid, signal.SIGKILL)
        thread.join(90)
        assert not thread.is_alive() and "out" in done, "the run did not complete"
        out = done["out"][1]
    rows = _rows(out)
    assert rows[1]["state"] == "failed" and rows[1]["node"] == victim
    assert rows[2]["state"] == rows[3]["state"] == "rejected"
    assert rows[2]["start_s"] == rows[3]["start_s"] == ""  # never started
    assert rows[4]["state"] == "completed"
    rejects = {e["task"]: e["reason"] for e in _events(out) if e.get("act") == "reject"}
    assert rejects == {2: "cancelled: predecessor 1 failed", 3: "cancelled: predecessor 2 rejected"}


def test_a_master_resumed_mid_workflow_releases_what_ended_while_it_was_down(tmp_path: Path) -> None:
    # 1 ends while no master listens; 2 and 3 wait for it, 4 for both
    tasks: list[dict[str, Any]] = [
        {"id": 1, "arrival_s": 0.0, "cores": 1, "mem_mb": 64, "work_core_s": 1.8},
        {"id": 2, "arrival_s": 0.0, "cores": 1, "mem_mb": 64, "work_core_s": 0.6, "after": [1]},
        {"id": 3, "arrival_s": 0.3, "cores": 2, "mem_mb": 64, "work_core_s": 1.0, "after": [1]},
        {"id": 4, "arrival_s": 0.0, "cores": 1, "mem_mb": 64, "work_core_s": 0.4, "after": [2, 3]}]
    with start_local_testbed(tmp_path / "tb", 2, poll_interval_s=0.25) as tb:
        scenario = load_scenario(_scenario(tmp_path / "resume.json", tasks))
        done: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: done.update(out=run_live(
            scenario, tb.master_url, tb.master_token, tmp_path / "live", quiet=True, poll_s=0.2)))
        thread.start()
        time.sleep(1.0)
        os.kill(tb.master.pid, signal.SIGKILL)  # 1 runs, the others are held
        time.sleep(1.5)  # 1 ends while no master listens
        log = tb.dir / "logs" / "master-resumed.log"
        with log.open("wb") as out:
            master = subprocess.Popen(_master_cmd(tb, "--resume"), stdout=out, stderr=subprocess.STDOUT,
                                      env=clean_env(), start_new_session=True)
        try:
            thread.join(60)
            assert not thread.is_alive() and "out" in done, log.read_text()
            out_dir = done["out"][1]
        finally:
            master.send_signal(signal.SIGTERM)
            master.wait(20)
    assert "resumed 1 live runs" in log.read_text()
    rows = _rows(out_dir)
    assert {i: (r["state"], r["attempts"]) for i, r in rows.items()} == dict.fromkeys(range(1, 5), ("completed", "1"))
    for t in tasks:
        for p in t.get("after", []):
            assert float(rows[p]["end_s"]) <= float(rows[t["id"]]["start_s"]), (t["id"], p, rows)
    released = _check_releases(_events(out_dir), tasks)
    assert {2, 4} <= released  # (3 arrives at 0.3 s: before or after the kill, as the machine goes)


def _check_releases(events: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> set[int]:
    """Check the release rule on a run's ``events.jsonl``: a task that arrived before its
    predecessors all finished is released in the step of the last one's end; one that
    arrived after is never held.  The ids of the tasks released."""
    arrived_at = {e["task"]: i for i, e in enumerate(events) if e.get("ev") == "arrive"}
    finished_at = {e["task"]: i for i, e in enumerate(events) if e.get("ev") == "finish"}
    finished_t = {e["task"]: e["t"] for e in events if e.get("ev") == "finish"}
    released = {e["task"]: e["t"] for e in events if e.get("act") == "release"}
    for t in tasks:
        after = t.get("after", [])
        if after and arrived_at[t["id"]] < max(finished_at[p] for p in after):
            assert released.get(t["id"]) == max(finished_t[p] for p in after), (t["id"], events)
        else:
            assert t["id"] not in released, (t["id"], events)
    return set(released)


def _node_running(tb: LocalTestbed, cores: int, timeout_s: float) -> str:
    """The node whose agent runs a task of ``cores`` cores (waiting for it to start)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, proc in tb.agents.items():
            req = urllib.request.Request(proc.url + "/tasks",
                                         headers={"Authorization": f"Bearer {tb.node_token(name)}"})
            with urllib.request.urlopen(req, timeout=5) as r:
                if any(t.get("cores") == cores and t.get("state", "running") == "running"
                       for t in json.loads(r.read())["tasks"]):
                    return name
        time.sleep(0.1)
    raise AssertionError(f"no agent ran a task of {cores} cores within {timeout_s} s")
