"""Walltime limits (``walltime: kill``): a task still running at its walltime is killed, in simulation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.model import Task, TaskState
from rpiaas.sim import simulate
from rpiaas.sim.engine import Simulation

from ..helpers import cluster, read_events, read_tasks, scenario


def walltime_scenario(rule: str | None, retries: int = 0) -> dict[str, Any]:
    tasks = [
        # 4 cores each on one 4-core Pi 4B: they run one after another
        {"id": 1, "arrival_s": 0, "cores": 4, "mem_mb": 10, "work_core_s": 400, "walltime_s": 50},
        {"id": 2, "arrival_s": 0, "cores": 4, "mem_mb": 10, "work_core_s": 200, "walltime_s": 50},
        {"id": 3, "arrival_s": 0, "cores": 4, "mem_mb": 10, "work_core_s": 40, "walltime_s": 50},
        {"id": 4, "arrival_s": 0, "cores": 4, "mem_mb": 10, "work_core_s": 40},
    ]
    data: dict[str, Any] = {"name": "walltime", "retries": retries, "cluster": cluster(1, "rpi4b"),
                            "workload": {"tasks": tasks}, "policy": "first_fit"}
    if rule is not None:
        data["walltime"] = rule
    return data


def ended(data: dict[str, Any]) -> dict[int, Task]:
    out: dict[int, Task] = {}
    Simulation(scenario(data), on_task=lambda t: out.__setitem__(t.id, t)).run()
    return out


def test_a_task_over_its_walltime_is_killed_at_it_and_frees_its_cores(tmp_path: Path) -> None:
    summary, path = simulate(scenario(walltime_scenario("kill")), tmp_path / "run")
    rows = {int(r["task_id"]): r for r in read_tasks(path)}
    # task 1 would run 100 s: killed at 50; task 2 runs exactly its walltime (50 s) and completes
    # (a task end comes before the wake-up at the same time); 3 and 4 run 10 s each
    assert [rows[i]["state"] for i in (1, 2, 3, 4)] == ["killed", "completed", "completed", "completed"]
    assert [float(rows[i]["end_s"]) for i in (1, 2, 3, 4)] == [50.0, 100.0, 110.0, 120.0]
    assert summary["killed"] == 1 and summary["completed"] == 3
    kills = [e for e in read_events(path) if e.get("act") == "kill"]
    assert kills == [{"t": 50.0, "act": "kill", "task": 1, "reason": "walltime"}]
    assert (summary["kills_walltime"], summary["kills_policy"], summary["retries"]) == (1, 0, 0)


def test_the_killed_task_carries_the_reason_and_is_not_retried() -> None:
    tasks = ended(walltime_scenario("kill", retries=2))
    assert tasks[1].state is TaskState.KILLED and tasks[1].reason == "walltime"
    assert tasks[1].attempts == 1
    assert all(tasks[i].reason == "" for i in (2, 3, 4))


@pytest.mark.parametrize("rule", [None, "estimate"])
def test_by_default_walltime_is_an_estimate_only(rule: str | None, tmp_path: Path) -> None:
    tasks = ended(walltime_scenario(rule))
    assert [tasks[i].state for i in (1, 2, 3, 4)] == [TaskState.COMPLETED] * 4
    assert tasks[1].end_s == 100.0
    _, path = simulate(scenario(walltime_scenario(rule)), tmp_path / "run")
    assert not any(e.get("act") == "kill" or e.get("ev") == "tick" for e in read_events(path))


def test_a_retried_task_gets_a_new_deadline_from_its_new_start() -> None:
    data = walltime_scenario("kill", retries=1)
    data["workload"]["tasks"] = [
        {"id": 1, "arrival_s": 0, "cores": 4, "mem_mb": 10, "work_core_s": 160, "walltime_s": 50}]
    data["faults"] = [{"node": "node1.c.test", "at_s": 30.0, "down_s": 10.0}]
    tasks = ended(data)
    # failed at 30 with its node, started again at 40: its first deadline (50) is no longer its
    # own, it runs its 40 s to 80, inside its new deadline (90)
    assert tasks[1].state is TaskState.COMPLETED and tasks[1].attempts == 2
    assert tasks[1].start_s == 40.0 and tasks[1].end_s == 80.0


def test_a_lost_node_names_itself_as_the_reason() -> None:
    data = walltime_scenario(None)
    data["faults"] = [{"node": "node1.c.test", "at_s": 30.0, "reason": "power cut"}]
    tasks = ended(data)
    assert tasks[1].state is TaskState.FAILED
    assert tasks[1].reason == "node lost: node1.c.test (power cut)"


def test_an_unknown_walltime_rule_is_a_located_error() -> None:
    with pytest.raises(InputError, match=r"test\.yaml.*walltime: expected one of estimate, kill, got 'slurm'"):
        scenario(walltime_scenario("slurm"))


# ---------------------------------------------------------------- the documented rules around it
class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.extend(text.splitlines())


def test_easy_takes_an_overrunning_task_to_end_now() -> None:
    """Without ``walltime: kill`` a task may run past its ``walltime_s``: EASY then takes it to
    end at the time of the pass (``now``), and the head's reservation moves with it."""
    import json

    from rpiaas.core.control import ControlPlane
    from rpiaas.core.events import TaskArrived, Tick

    sc = scenario({"name": "easy", "cluster": cluster(1, "rpi4b"), "policy": "first_fit",
                   "queue": "easy_backfill", "workload": {"tasks": []}})
    log = _Lines()
    cp = ControlPlane(sc.cluster.nodes, sc.policies(), log=log)
    # runs 100 s, says 10
    cp.step(0.0, [TaskArrived(Task(1, 0.0, 4, 10, 400.0, walltime_s=10.0))])
    cp.step(1.0, [TaskArrived(Task(2, 1.0, 4, 10, 40.0, walltime_s=10.0))])
    cp.step(20.0, [Tick()])
    cp.step(35.5, [Tick()])
    reserves = [(r["t"], r["start_s"]) for r in map(json.loads, log.lines) if r.get("act") == "reserve"]
    assert reserves == [(1.0, 10.0), (20.0, 20.0), (35.5, 35.5)]


def test_a_zero_work_task_frees_its_cores_at_its_start_and_a_pass_follows(tmp_path: Path) -> None:
    data = {"name": "zero", "cluster": cluster(1, "rpi4b"), "policy": "first_fit",
            "workload": {"tasks": [
                {"id": 1, "arrival_s": 5, "cores": 4, "mem_mb": 10, "work_core_s": 0},
                {"id": 2, "arrival_s": 5, "cores": 4, "mem_mb": 10, "work_core_s": 8}]}}
    _, path = simulate(scenario(data), tmp_path / "run")
    rows = {int(r["task_id"]): r for r in read_tasks(path)}
    assert [(float(rows[i]["start_s"]), float(rows[i]["end_s"])) for i in (1, 2)] == [(5.0, 5.0), (5.0, 7.0)]
    steps = [(e["t"], e.get("ev") or e.get("act"), e["task"]) for e in read_events(path) if "task" in e]
    assert steps == [(5.0, "arrive", 1), (5.0, "arrive", 2), (5.0, "start", 1),
                     (5.0, "finish", 1), (5.0, "start", 2), (7.0, "finish", 2)]
