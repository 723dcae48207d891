"""The SimPy shell and the run directory."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from rpiaas.core.control import ControlPlane
from rpiaas.core.events import Migrate
from rpiaas.core.view import ClusterView
from rpiaas.model import Task
from rpiaas.policy.base import Policy, hookimpl
from rpiaas.rundir.format import NODE_COLUMNS, TASK_COLUMNS
from rpiaas.sim import simulate
from rpiaas.sim.engine import Simulation

from ..helpers import check_summary, cluster, read_events, read_tasks, scenario

ROOT = Path(__file__).resolve().parents[2]


def mixed(seed: int = 5, count: int = 3000, policy: str = "best_fit") -> dict:
    return {
        "name": "mixed", "seed": seed, "sample_interval_s": 20.0,
        "cluster": {"clusters": [
            {"domain": "a.test", "prefix": "10.0.1", "count": 6, "type": "rpi4b"},
            {"domain": "b.test", "prefix": "10.0.2", "count": 3, "type": "rpi3b"}]},
        "workload": {"generator": {
            "count": count, "arrival": {"rate_per_s": 0.5},
            "cores": {"dist": "uniform", "low": 1, "high": 4},
            "mem_mb": {"dist": "lognormal", "mu": 5.5, "sigma": 0.6, "max": 1024},
            "work_core_s": {"dist": "exponential", "mean": 60.0}}},
        "policy": policy,
    }


@pytest.mark.parametrize("policy", ["best_fit", "random", "consolidate"])
def test_same_scenario_and_seed_give_identical_files(tmp_path: Path, policy: str) -> None:
    a = simulate(scenario(mixed(policy=policy)), tmp_path / "a")[1]
    b = simulate(scenario(mixed(policy=policy)), tmp_path / "b")[1]
    assert a and b
    for name in ("run.json", "tasks.csv", "nodes.csv", "events.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = simulate(scenario(mixed(seed=6, policy=policy)), tmp_path / "c")[1]
    assert c and (a / "tasks.csv").read_bytes() != (c / "tasks.csv").read_bytes()


def test_workload_does_not_depend_on_the_policy(tmp_path: Path) -> None:
    rows = {}
    for policy in ("best_fit", "random"):
        path = simulate(scenario(mixed(policy=policy, count=500)), tmp_path / policy)[1]
        assert path
        rows[policy] = sorted((r["task_id"], r["arrival_s"], r["cores"], r["work_core_s"])
                              for r in read_tasks(path))
    assert rows["best_fit"] == rows["random"]


def test_run_directory_layout(tmp_path: Path) -> None:
    summary, path = simulate(scenario(mixed(count=400)), tmp_path / "run")
    assert path == tmp_path / "run"
    run = json.loads((path / "run.json").read_text())
    assert run["mode"] == "sim" and run["policy"] == "best_fit" and run["seed"] == 5
    assert run["scenario"]["workload"]["generator"]["count"] == 400
    for key in ("tasks", "completed", "rejected", "makespan_s", "mean_wait_s", "p95_wait_s",
                "mean_response_s", "mean_bounded_slowdown", "mean_utilization", "energy_j"):
        assert key in run["summary"]
    assert run["summary"] == summary
    assert "wall_s" in json.loads((path / "timing.json").read_text())
    tasks = read_tasks(path)
    assert list(tasks[0]) == list(TASK_COLUMNS)
    assert len(tasks) == 400 and len({r["task_id"] for r in tasks}) == 400
    for r in tasks:
        assert r["state"] == "completed"
        assert float(r["wait_s"]) == pytest.approx(float(r["start_s"]) - float(r["arrival_s"]))
        assert float(r["response_s"]) == pytest.approx(float(r["end_s"]) - float(r["arrival_s"]))
        assert float(r["bounded_slowdown"]) >= 1.0
    header = (path / "nodes.csv").read_text().splitlines()[0]
    assert header == ",".join(NODE_COLUMNS)
    samples = {line.split(",")[0] for line in (path / "nodes.csv").read_text().splitlines()[1:]}
    assert len(samples) >= summary["duration_s"] // 20.0
    assert [e for e in read_events(path) if e.get("act") == "start"]
    assert not list(tmp_path.glob(".run.partial-*"))


def test_runtime_is_work_over_cores_times_speed(tmp_path: Path) -> None:
    tasks = [{"arrival_s": 0.0, "cores": 2, "mem_mb": 10, "work_core_s": 90.0}]
    data = {"name": "speed", "cluster": cluster(1, "rpi3b"), "workload": {"tasks": tasks},
            "policy": "first_fit"}
    _, path = simulate(scenario(data), tmp_path / "run")
    row = read_tasks(path)[0]
    assert float(row["end_s"]) == pytest.approx(90.0 / (2 * 0.45))


def test_horizon_cuts_the_run_and_reports_leftovers(tmp_path: Path) -> None:
    tasks = [{"arrival_s": float(i), "cores": 4, "mem_mb": 10, "work_core_s": 400.0} for i in range(5)]
    data = {"name": "cut", "horizon_s": 250.0, "cluster": cluster(1, "rpi4b"),
            "workload": {"tasks": tasks}, "policy": "first_fit"}
    summary, path = simulate(scenario(data), tmp_path / "run")
    states = [r["state"] for r in read_tasks(path)]
    assert states.count("completed") == 2 and states.count("running") == 1 and states.count("queued") == 2
    assert summary["unfinished"] == 3 and summary["duration_s"] == 250.0


def test_failed_run_leaves_no_directory(tmp_path: Path) -> None:
    class Broken(Policy):
        NAME = "broken"

        @hookimpl
        def rpiaas_place(self, task, view):  # type: ignore[no-untyped-def]
            raise RuntimeError("policy bug")

    sc = scenario(mixed(count=50))
    writer_out = tmp_path / "run"
    orig = sc.policies
    object.__setattr__(sc, "policies", lambda rng=None: [Broken()])
    with pytest.raises(RuntimeError, match="policy bug"):
        simulate(sc, writer_out)
    object.__setattr__(sc, "policies", orig)
    assert not writer_out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_run_directory_is_replaced_but_other_data_is_not(tmp_path: Path) -> None:
    out = tmp_path / "run"
    simulate(scenario(mixed(count=50)), out)
    simulate(scenario(mixed(count=60)), out)
    assert len(read_tasks(out)) == 60
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.tex").write_text("x")
    with pytest.raises(FileExistsError):
        simulate(scenario(mixed(count=50)), other)
    assert (other / "thesis.tex").read_text() == "x"


class _Drain(Policy):
    """Moves every task off node 0 as soon as node 1 has room."""

    NAME = "drain"

    @hookimpl
    def rpiaas_place(self, task, view: ClusterView):  # type: ignore[no-untyped-def]
        return 0 if view.fits_node(task, 0) else None

    @hookimpl
    def rpiaas_rebalance(self, view: ClusterView, now: float):  # type: ignore[no-untyped-def]
        return [Migrate(t, 1) for t in list(view.running(0).values()) if now >= 10.0 and view.fits_node(t, 1)]


def test_migration_carries_the_remaining_work_at_the_new_speed(tmp_path: Path) -> None:
    # node 0 is a Pi 3B (speed 0.45), node 1 a Pi 4B (speed 1.0)
    data = {"name": "mig", "cluster": {"clusters": [
        {"domain": "a.test", "prefix": "10.0.1", "nodes": [
            {"hostname": "slow", "type": "rpi3b", "suffix": 1},
            {"hostname": "fast", "type": "rpi4b", "suffix": 2}]}]},
        "workload": {"tasks": [{"arrival_s": 0.0, "cores": 1, "mem_mb": 10, "work_core_s": 45.0},
                               {"arrival_s": 10.0, "cores": 1, "mem_mb": 10, "work_core_s": 1.0}]},
        "policy": "first_fit"}
    sc = scenario(data)
    object.__setattr__(sc, "policies", lambda rng=None: [_Drain()])
    ended = {}
    sim = Simulation(sc, on_task=lambda t: ended.__setitem__(t.id, t))
    sim.run()
    # task 1 ran 10 s at 0.45 (4.5 core-s done), then 40.5 core-s on the fast node
    assert ended[1].end_s == pytest.approx(10.0 + 40.5)
    assert ended[1].node == 1


def test_quickstart_runs(tmp_path: Path) -> None:
    from rpiaas.scenario import load_scenario

    summary, _path = simulate(load_scenario(ROOT / "scenarios" / "quickstart.yaml"), tmp_path / "q")
    assert summary["completed"] == summary["tasks"] == 2000
    assert 0.5 < summary["mean_utilization"] < 0.9


def test_control_plane_has_no_shell_imports() -> None:
    import ast

    package = ROOT / "src" / "rpiaas"
    modules = sorted((package / "core").glob("*.py")) + sorted((package / "policy").rglob("*.py"))
    assert len(modules) > 15
    for module in modules:
        tree = ast.parse(module.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not names & {"simpy", "aiohttp", "time", "datetime"}, module
    policies = list((ROOT / "src" / "rpiaas" / "policy" / "builtin").glob("*.py"))
    assert len(policies) > 5
    for policy in policies:
        text = policy.read_text()
        for banned in ("import simpy", "import aiohttp", "import time", "datetime", "sleep("):
            assert banned not in text, (policy.name, banned)
    assert ControlPlane  # the control plane imports nothing of a shell


def test_event_log_can_be_turned_off(tmp_path: Path) -> None:
    data = mixed(count=200)
    _, full = simulate(scenario(data), tmp_path / "full")
    _, lean = simulate(scenario({**data, "event_log": False}), tmp_path / "lean")
    assert full and lean
    assert (full / "events.jsonl").stat().st_size > 0
    assert not (lean / "events.jsonl").exists()
    # the results themselves do not change
    assert (full / "tasks.csv").read_bytes() == (lean / "tasks.csv").read_bytes()


def fault_scenario(retries: int, down_s: float | None = 50.0) -> dict:
    tasks = [{"id": i, "arrival_s": 0.0, "cores": 2, "mem_mb": 10, "work_core_s": 200.0} for i in range(1, 5)]
    fault: dict = {"node": "node1.c.test", "at_s": 10.0, "reason": "power cut"}
    if down_s is not None:
        fault["down_s"] = down_s
    return {"name": "faults", "retries": retries, "cluster": cluster(2, "rpi4b"),
            "workload": {"tasks": tasks}, "policy": "first_fit", "faults": [fault]}


def test_injected_node_failure_fails_its_tasks(tmp_path: Path) -> None:
    summary, path = simulate(scenario(fault_scenario(retries=0)), tmp_path / "run")
    rows = {int(r["task_id"]): r for r in read_tasks(path)}
    assert len(rows) == 4  # one final row per task
    # tasks 1 and 2 ran on node1 (first fit) and failed at t=10
    assert [rows[i]["state"] for i in (1, 2)] == ["failed", "failed"]
    assert [rows[i]["state"] for i in (3, 4)] == ["completed", "completed"]
    assert float(rows[1]["end_s"]) == 10.0
    assert summary["failed"] == 2
    events = read_events(path)
    assert any(e.get("ev") == "node_down" and e["reason"] == "power cut" for e in events)
    assert any(e.get("ev") == "node_up" and e["t"] == 60.0 for e in events)


def test_failed_tasks_are_retried_when_the_scenario_says_so(tmp_path: Path) -> None:
    summary, path = simulate(scenario(fault_scenario(retries=1)), tmp_path / "run")
    rows = {int(r["task_id"]): r for r in read_tasks(path)}
    assert summary["completed"] == 4 and summary["failed"] == 0
    assert [int(rows[i]["attempts"]) for i in (1, 2, 3, 4)] == [2, 2, 1, 1]
    # retried at t=10 they wait: node2 is full until 100, node1 is back (empty) at 60
    assert float(rows[1]["start_s"]) == float(rows[2]["start_s"]) == 60.0
    assert rows[1]["node"] == "node1.c.test"
    assert float(rows[1]["end_s"]) == 160.0


def test_a_fault_naming_an_unknown_node_is_an_input_error() -> None:
    from rpiaas.inputs.source import InputError

    data = fault_scenario(retries=0)
    data["faults"][0]["node"] = "node9.c.test"
    with pytest.raises(InputError, match=r"faults\[0\]\.node: no node named 'node9.c.test'"):
        scenario(data)


@pytest.mark.parametrize(("policy", "queue", "reads"), [("best_fit", "fcfs", False), ("least_loaded", "fcfs", True),
                                                      ("best_fit", "easy_backfill", False),
                                                      ("best_fit", "sjf", True)])
def test_the_view_is_current_whenever_it_is_read(policy: str, queue: str, reads: bool) -> None:
    """Whether reservations write the view's arrays at once (a hook reads them) or the view
    catches up when read (best fit from the free index, and a queue policy that declares it
    reads no array, as easy_backfill does): what it shows is the ledger's."""
    sc = scenario({"name": "v", "seed": 3, "cluster": {"clusters": [
        {"domain": "a.test", "prefix": "10.0.1", "count": 5, "type": "rpi4b"}]},
        "workload": {"generator": {"count": 300, "arrival": {"rate_per_s": 1.0},
                                   "cores": {"dist": "choice", "values": [1, 2, 4]},
                                   "mem_mb": 512, "work_core_s": {"dist": "exponential", "mean": 10}}},
        "policy": policy, "queue": queue})

    class Watching(Simulation):
        def task_final(self, task: Task) -> None:
            super().task_final(task)
            view, control = self.view, self.control
            assert view.cores_free.tolist() == list(control.node_cores_free)
            assert view.mem_free_mb.tolist() == list(control.node_mem_free_mb)
            assert view.tasks.tolist() == [len(control.running_on(n)) for n in range(len(view))]
            used = [c - f for c, f in zip(view.cores.tolist(), view.cores_free.tolist(), strict=True)]
            if not self.control.reads_view:  # (else the shell writes it after each step)
                assert view.utilization.tolist() == [u / c for u, c in zip(used, view.cores.tolist(),
                                                                          strict=True)]

    sim = Watching(sc)
    assert sim.control.reads_view is reads
    sim.run()
    assert sim.view.utilization.tolist() == sim.usage.util


def test_power_cycles_boots_and_time_off_agree_with_the_event_log(tmp_path: Path) -> None:
    """energy-consolidation switches nodes off and on: the summary's counts are what the event
    log says (a power_off action each cycle, a booted event each boot), every modelled boot
    lasts its type's boot_s, and the time off is the nodes' own from the log; nodes.csv's
    utilization is the allocated share, equal to cpu_utilization in simulation."""
    from rpiaas.scenario import load_scenario

    sc = load_scenario(ROOT / "scenarios" / "energy-consolidation.yaml")
    summary, out = simulate(sc, tmp_path / "run")
    assert out is not None
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    offs = [e for e in events if e.get("act") == "power_off"]
    ons = [e for e in events if e.get("act") == "power_on"]
    booted = [e for e in events if e.get("ev") == "booted"]
    assert summary["power_cycles"] == len(offs) > 0 and summary["boots"] == len(booted) > 0
    boot_s = {n.name: n.type.boot_s for n in sc.cluster.nodes}
    pending: dict[str, float] = {}
    off_since: dict[str, float] = {}
    durations, off_s = [], 0.0
    for e in events:
        if e.get("act") == "power_on":
            pending[e["node"]] = e["t"]
            off_s += e["t"] - off_since.pop(e["node"])
        elif e.get("act") == "power_off":
            off_since[e["node"]] = e["t"]
        elif e.get("ev") == "booted":
            durations.append(e["t"] - pending.pop(e["node"]))
            assert durations[-1] == pytest.approx(boot_s[e["node"]])
    off_s += sum(summary["duration_s"] - t for t in off_since.values())
    assert len(ons) == len(booted) and summary["time_off_s"] == pytest.approx(off_s)
    assert summary["power_ons"] == len(ons) and summary == check_summary(out, {n.type.name: n.type.cores
                                                                             for n in sc.cluster.nodes})
    assert summary["boot_s_median"] == pytest.approx(statistics.median(durations))
    assert summary["mean_cpu_utilization"] == summary["mean_utilization"]
    record = json.loads((out / "run.json").read_text())
    assert set(record["sources"].values()) == {"allocated", "modelled"}
    assert {n["energy_source"] for n in record["nodes"]} == {"modelled"}
    with open(out / "nodes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cores = {n.name: n.type.cores for n in sc.cluster.nodes}
    assert rows and all(r["cpu_utilization"] == r["utilization"] and r["power_source"] == "modelled" for r in rows)
    assert all(float(r["utilization"]) == int(r["cores_used"]) / cores[r["node"]] for r in rows)


def test_the_summary_without_a_run_directory_is_the_run_directorys(tmp_path: Path) -> None:
    """A run kept in memory (a sweep's twin, a notebook's) adds its tasks up one by one, a run
    directory's rows in bulk: the same summary, per node type too, with faults and retries."""
    data = mixed(count=1500)
    data["retries"] = 1
    data["faults"] = [{"node": "node1.a.test", "at_s": 300, "down_s": 200}, {"node": "node2.b.test", "at_s": 900}]
    sc = scenario(data)
    summary, out = simulate(sc, tmp_path / "run")
    assert out is not None and summary == json.loads((out / "run.json").read_text())["summary"]
    assert Simulation(scenario(data)).run() == summary
    assert list(summary["by_node_type"]) == ["rpi4b", "rpi3b"] and summary["retries"] > 0
    assert summary == check_summary(out, {"rpi4b": 4, "rpi3b": 4})
