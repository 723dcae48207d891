"""Summary metrics against a hand computation; the run record."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rpiaas.model import Task, TaskState
from rpiaas.rundir.format import FORMAT
from rpiaas.rundir.metrics import Stats, bounded_slowdown, flat_summary, run_record, versions

from ..helpers import cluster, node_type, nodes, scenario


def _ended(id_: int, state: TaskState, arrival_s: float, start_s: float = -1.0,
           end_s: float = -1.0) -> Task:
    t = Task(id_, arrival_s, cores=1, mem_mb=1, work_core_s=1.0)
    t.state, t.start_s, t.end_s = state, start_s, end_s
    return t


def test_bounded_slowdown() -> None:
    assert bounded_slowdown(5.0, 1.0) == 1.0  # short tasks cannot inflate it
    assert bounded_slowdown(100.0, 20.0) == 5.0
    assert bounded_slowdown(35.0, 5.0) == 3.5  # run under 10 s counts as 10 s


def test_summary_by_hand() -> None:
    st = Stats()
    assert st.add(_ended(1, TaskState.COMPLETED, 0.0, 0.0, 20.0)) == 1.0  # 20 / 20
    assert st.add(_ended(2, TaskState.COMPLETED, 0.0, 30.0, 35.0)) == 3.5  # 35 / max(5, 10)
    assert st.add(_ended(3, TaskState.REJECTED, 7.0)) is None
    assert st.add(_ended(4, TaskState.KILLED, 1.0, 2.0)) is None
    assert st.ended == 4
    s = st.summary(busy_core_s=30.0, capacity_core_s=100.0, energy_j=500.0, duration_s=50.0)
    # waits 0, 30, 1: p95 by linear interpolation 1 + 0.9 * 29
    assert s == {"tasks": 4, "completed": 2, "rejected": 1, "failed": 0, "killed": 1,
                 "unfinished": 0, "makespan_s": 35.0, "duration_s": 50.0,
                 "mean_wait_s": pytest.approx(31 / 3), "p95_wait_s": pytest.approx(27.1),
                 "max_wait_s": 30.0, "mean_response_s": 27.5, "mean_bounded_slowdown": 2.25,
                 "mean_utilization": 0.3, "mean_cpu_utilization": 0.3, "energy_j": 500.0,
                 "mean_power_w": 10.0, "energy_per_task_j": 250.0, "power_cycles": 0, "boots": 0,
                 "boot_s_median": None, "time_off_s": 0.0, "faults_node_down": 0, "faults_node_up": 0,
                 "retries": 0, "kills_walltime": 0, "kills_policy": 0, "kills_node_lost": 0, "power_ons": 0,
                 "by_node_type": {}}
    assert s["mean_wait_s"] == float(f"{31 / 3:.12g}")  # rounded to 12 significant digits


def test_summary_by_node_type_by_hand() -> None:
    big, small = node_type(cores=4, name="big"), node_type(cores=2, name="small")
    st = Stats()
    st.set_nodes(nodes(big, small, big))
    for t, node in ((_ended(1, TaskState.COMPLETED, 0.0, 2.0, 20.0), 0),  # big: wait 2, response 20
                    (_ended(2, TaskState.COMPLETED, 1.0, 5.0, 11.0), 2),  # big: wait 4, response 10
                    (_ended(3, TaskState.KILLED, 0.0, 1.0, 9.0), 1),  # small: wait 1, no response
                    (_ended(4, TaskState.REJECTED, 3.0), -1)):  # no node: in no type
        t.node = node
        st.add(t)
    per_node = [{"busy_core_s": 40.0, "energy_j": 100.0, "energy_source": "modelled"},
                {"busy_core_s": 5.0, "energy_j": 30.0, "energy_source": "measured"},
                {"busy_core_s": 20.0, "energy_j": 50.0, "energy_source": "measured"}]
    s = st.summary(65.0, 200.0, 180.0, 20.0, run_figures={"retries": 3, "kills_policy": 1}, nodes=per_node)
    assert s["by_node_type"] == {
        "big": {"nodes": 2, "tasks": 2, "completed": 2, "mean_wait_s": 3.0, "mean_response_s": 15.0,
                "mean_utilization": 60.0 / 160.0, "energy_j": 150.0, "energy_source": "mixed"},
        "small": {"nodes": 1, "tasks": 1, "completed": 0, "mean_wait_s": 1.0, "mean_response_s": None,
                  "mean_utilization": 5.0 / 40.0, "energy_j": 30.0, "energy_source": "measured"}}
    assert (s["retries"], s["kills_policy"], s["kills_walltime"]) == (3, 1, 0)
    flat = flat_summary(s)
    assert flat["by_node_type.big.mean_wait_s"] == 3.0 and "by_node_type" not in flat
    assert flat["retries"] == 3 and list(flat)[:3] == ["tasks", "completed", "rejected"]


def test_the_writer_process_carries_the_per_type_totals() -> None:
    """The totals a writer process goes on from and answers with keep each type's sums."""
    st = Stats()
    st.set_nodes(nodes(node_type(name="a"), node_type(name="b")))
    t = _ended(1, TaskState.COMPLETED, 0.0, 1.0, 4.0)
    t.node = 1
    st.add(t)
    other = Stats()
    other.load(st.state(figures=False), st.waits.tobytes())
    assert other.group_figures() == st.group_figures() == {
        "a": {"tasks": 0, "completed": 0, "mean_wait_s": None, "mean_response_s": None},
        "b": {"tasks": 1, "completed": 1, "mean_wait_s": 1.0, "mean_response_s": 4.0}}


def test_summary_carries_the_cpu_share_and_the_power_counts_it_is_given() -> None:
    s = Stats().summary(30.0, 100.0, 500.0, 50.0, cpu_core_s=7.5,
                        power={"power_cycles": 2, "boots": 1, "boot_s_median": 4.5, "time_off_s": 12.0})
    assert s["mean_utilization"] == 0.3 and s["mean_cpu_utilization"] == 0.075
    assert (s["power_cycles"], s["boots"], s["boot_s_median"], s["time_off_s"]) == (2, 1, 4.5, 12.0)


def test_summary_of_nothing() -> None:
    s = Stats().summary(0.0, 0.0, 0.0, 0.0)
    assert s["tasks"] == s["completed"] == 0 and s["makespan_s"] == 0.0
    assert s["mean_wait_s"] is s["mean_response_s"] is s["mean_power_w"] is None
    assert s["mean_utilization"] == 0.0


def test_run_record() -> None:
    sc = scenario({"name": "rec", "seed": 9, "cluster": cluster(2), "policy": "first_fit",
                   "workload": {"tasks": [{"arrival_s": 0, "cores": 1, "mem_mb": 1, "work_core_s": 1}]}})
    rec = run_record(sc, "sim", {"tasks": 1}, [{"node": "n0"}])
    assert list(rec) == ["format", "mode", "name", "policy", "policy_params", "queue", "seed",
                         "scenario_file", "scenario", "versions", "summary", "sources", "nodes", "notes"]
    assert rec["sources"] == {"utilization": "allocated", "cpu_utilization": "modelled", "power_w": "modelled",
                              "energy_j": "modelled", "boot_s": "modelled", "switching": "modelled",
                              "pull_s": "modelled"}
    assert (rec["format"], rec["mode"], rec["name"], rec["seed"], rec["queue"]) == (
        FORMAT, "sim", "rec", 9, "fcfs")
    assert rec["summary"] == {"tasks": 1} and rec["nodes"] == [{"node": "n0"}]
    v = versions()
    assert v["python"] == ".".join(map(str, sys.version_info[:3]))
    assert set(v) - {"rpiaas_commit"} == {"python", "rpiaas", "numpy", "simpy", "pluggy"}
    # the run's policies: where each comes from and its version; the checkout's commit
    assert rec["versions"]["policies"] == {"first_fit": {"origin": "builtin", "version": v["rpiaas"]}}
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        assert rec["versions"]["rpiaas_commit"] == head
