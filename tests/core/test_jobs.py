"""Parallel (rigid) jobs: placed all at once, started and ended together, never overcommitting a
node, failed and retried whole; every answer of ``rpiaas_place`` checked by type."""

from __future__ import annotations

import csv
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpiaas.core.control import ControlPlane, PolicyError
from rpiaas.core.events import NodeDown, Start, TaskArrived, TaskFinished
from rpiaas.core.view import ClusterView
from rpiaas.inputs.source import InputError
from rpiaas.model import PowerState, Task, TaskState, job_runtime_s
from rpiaas.policy.base import Policy, hookimpl
from rpiaas.sim import simulate
from rpiaas.workload.spread import split_procs

from ..helpers import node_type, nodes, read_tasks, scenario

PLACEMENTS = ["first_fit", "best_fit", "worst_fit", "random", "round_robin", "least_loaded", "consolidate"]


def job(tid: int, k: int, cores: int = 2, work: float = 40.0, arrival: float = 0.0) -> Task:
    return Task(tid, arrival, cores, 100, work, nodes=k)


# ---------------------------------------------------------------- the rules
def test_spread_rules_split_procs_into_parts() -> None:
    assert split_procs(10, "pack", 4) == (4, 4, 2)
    assert split_procs(8, "pack", 4) == (4, 4)
    assert split_procs(3, "spread", 4) == (1, 1, 1)
    assert split_procs(10, "exclusive", 4) == (4, 4, 4)
    with pytest.raises(ValueError, match="unknown spread rule"):
        split_procs(4, "scatter", 4)


def test_runtime_is_the_work_over_all_cores_at_the_slowest_parts_pace() -> None:
    fast, slow = node_type(speed=2.0), node_type(speed=0.5)
    assert job_runtime_s([fast, fast], 400.0, 8) == 400.0 / (8 * 2.0)
    assert job_runtime_s([fast, slow, fast], 400.0, 12) == 400.0 / (12 * 0.5)


def test_a_job_starts_on_k_nodes_at_once_and_frees_them_together() -> None:
    cp = ControlPlane(nodes(*[node_type(cores=4)] * 3))
    [start] = cp.step(0.0, [TaskArrived(job(1, 2, cores=3))])
    assert isinstance(start, Start) and start.task.placed == (0, 1) and start.node == 0
    assert list(cp.node_cores_free) == [1, 1, 4]
    assert set(cp.running_on(0)) == set(cp.running_on(1)) == {1}
    # a second job of 2 nodes of 3 cores waits: one node has room, not two
    assert cp.step(1.0, [TaskArrived(job(2, 2, cores=3))]) == []
    [start2] = cp.step(5.0, [TaskFinished(1)])
    assert isinstance(start2, Start) and start2.task.id == 2 and start2.task.placed == (0, 1)
    assert list(cp.node_cores_free) == [1, 1, 4]


def test_a_job_no_cluster_could_hold_is_rejected() -> None:
    cp = ControlPlane(nodes(node_type(cores=4), node_type(cores=2)))
    [reject] = cp.step(0.0, [TaskArrived(job(1, 2, cores=3))])
    assert reject.task.state is TaskState.REJECTED  # type: ignore[attr-defined]
    assert "1 nodes could hold one of its parts" in reject.reason  # type: ignore[attr-defined]


def test_a_lost_part_fails_the_whole_job_and_retries_retry_it_whole() -> None:
    cp = ControlPlane(nodes(*[node_type(cores=2)] * 3), retries=1)
    [start] = cp.step(0.0, [TaskArrived(job(1, 2))])
    assert isinstance(start, Start) and start.task.placed == (0, 1)
    # node 1 goes down: the job leaves node 0 too and starts again on nodes 0 and 2
    [again] = cp.step(3.0, [NodeDown(1, "test")])
    assert isinstance(again, Start) and again.task is start.task
    assert again.task.placed == (0, 2) and again.task.attempts == 2
    assert list(cp.node_cores_free) == [0, 2, 0]
    ended: list[Task] = []
    cp.on_final = ended.append
    cp.step(4.0, [NodeDown(2, "test")])  # no retry left: failed, every part freed
    assert [t.state for t in ended] == [TaskState.FAILED]
    assert cp.node_cores_free[0] == 2 and cp.running_count == 0


# ---------------------------------------------------------------- rpiaas_place's answers
class Answer(Policy):
    NAME = "answer-test"

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> Any:
        return self.answer


def placed(answer: Any, task: Task, now: float = 7.0, off: int = -1) -> Start:
    states = [PowerState.OFF if i == off else PowerState.ON for i in range(4)]
    cp = ControlPlane(nodes(*[node_type(cores=4)] * 4), [Answer(answer)], initial_state=states)
    [start] = [a for a in cp.step(now, [TaskArrived(task)]) if isinstance(a, Start)]
    return start


@pytest.mark.parametrize("answer", [2, np.int64(2), np.int32(2)])
def test_ints_and_numpy_integers_place_a_task(answer: Any) -> None:
    assert placed(answer, Task(1, 0.0, 1, 100, 10.0)).node == 2


@pytest.mark.parametrize("answer", [[1, 3], (np.int64(1), 3), np.array([1, 3]).tolist()])
def test_a_list_of_node_indices_places_a_job(answer: Any) -> None:
    assert placed(answer, job(1, 2)).task.placed == (1, 3)


@pytest.mark.parametrize(("answer", "task", "said"), [
    (3.7, Task(1, 0.0, 1, 100, 10.0), "on 3.7 (float), which is not a node index"),
    (True, Task(1, 0.0, 1, 100, 10.0), "on True (bool), which is not a node index"),
    ("2", Task(1, 0.0, 1, 100, 10.0), "on '2' (str), which is not a node index"),
    ([1, 2], Task(1, 0.0, 1, 100, 10.0), "on [1, 2] (list), which is not a node index"),
    (2, job(1, 2), "answered 2 (int) for task 1, a job over 2 nodes: expected a list of 2 node indices"),
    ([1, 2, 3], job(1, 2), "answered 3 nodes for task 1, a job over 2 nodes"),
    ([1, 1], job(1, 2), "put two parts of task 1 on node 1"),
    ([1, 2.0], job(1, 2), "put a part of task 1 on 2.0 (float), which is not a node index"),
    ([1, 9], job(1, 2), "put a part of task 1 on node 9, out of range"),
])
def test_a_wrong_answer_is_one_located_error(answer: Any, task: Task, said: str) -> None:
    with pytest.raises(PolicyError) as e:
        placed(answer, task)
    msg = str(e.value)
    assert msg.startswith("policy 'answer-test': rpiaas_place") and said in msg, msg
    assert msg.endswith("(at simulated time 7 s)") and "task 1" in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("task", [Task(1, 0.0, 2, 100, 10.0), job(1, 2)])
def test_no_room_says_off_or_full_and_what_was_asked_and_free(task: Task) -> None:
    answer = 1 if task.nodes == 1 else [2, 1]
    with pytest.raises(PolicyError) as e:
        placed(answer, task, off=1)
    assert "put task 1 on node 1 (n1.test), which has no room: it is off, not on" in str(e.value)
    assert str(e.value).startswith("policy 'answer-test'") and "at simulated time 7 s" in str(e.value)

    class Full(Answer):
        NAME = "full-test"

        @hookimpl
        def rpiaas_place(self, task: Task, view: ClusterView) -> Any:
            if task.id == 99:
                return 1
            return self.answer

    cp = ControlPlane(nodes(*[node_type(cores=4)] * 4), [Full(answer)])
    cp.step(0.0, [TaskArrived(Task(99, 0.0, 3, 100, 1000.0))])
    with pytest.raises(PolicyError) as e:
        cp.step(2.5, [TaskArrived(task)])
    msg = str(e.value)
    assert msg.startswith("policy 'full-test': rpiaas_place put task 1 on node 1 (n1.test), which has no room: "
                          "it is full; the task asks 2 cores and 100 MB there, the node has 1 cores and 3996 MB "
                          "free (at simulated time 2.5 s)"), msg


# ---------------------------------------------------------------- every built-in places jobs
@pytest.mark.parametrize("policy", PLACEMENTS)
@pytest.mark.parametrize("queue", ["fcfs", "easy_backfill", "sjf"])
def test_every_built_in_places_jobs(tmp_path: Path, policy: str, queue: str) -> None:
    data = _jobs_scenario(policy, queue, [(0.0, 2, 1, 100.0), (1.0, 4, 3, 600.0), (2.0, 1, 1, 50.0),
                                          (3.0, 2, 4, 400.0), (4.0, 3, 2, 90.0)])
    out = simulate(scenario(data), tmp_path / "r")[1]
    assert out is not None
    rows = {int(r["task_id"]): r for r in read_tasks(out)}
    assert all(r["state"] == "completed" for r in rows.values())
    assert len(rows[2]["nodes"].split(";")) == 3 and len(rows[4]["nodes"].split(";")) == 4
    _check_run(out, {1: 1, 2: 3, 3: 1, 4: 4, 5: 2})


def test_easy_reserves_across_nodes_for_a_wide_head_job(tmp_path: Path) -> None:
    # node 0 busy until 100, node 1 until 200, node 2 free: the 2-node head job is promised
    # 100 on nodes 2 and 0; a short task (ends before 100) backfills on node 2, a long one waits
    tasks = [(0.0, 4, 1, 400.0), (0.0, 4, 1, 800.0), (1.0, 4, 2, 80.0), (2.0, 4, 1, 200.0),
             (3.0, 4, 1, 1200.0)]
    data = _jobs_scenario("first_fit", "easy_backfill", tasks, count=3)
    out = simulate(scenario(data), tmp_path / "r")[1]
    assert out is not None
    rows = {int(r["task_id"]): r for r in read_tasks(out)}
    assert float(rows[3]["start_s"]) == 100.0 and rows[3]["nodes"] == "node1.c.test;node3.c.test"
    assert float(rows[4]["start_s"]) == 2.0  # backfilled on node 2, ends at 52
    assert float(rows[5]["start_s"]) >= 100.0
    reserve = [e for e in _events(out) if e.get("act") == "reserve" and e["task"] == 3]
    assert reserve and reserve[0]["nodes"] == ["node3.c.test", "node1.c.test"] and reserve[0]["start_s"] == 100.0


def test_easy_leaves_the_extra_nodes_of_a_wide_head_job_to_backfilling(tmp_path: Path) -> None:
    # five 1-core nodes, three busy until 10: the 3-node head job is promised 10, when all
    # five have room; two of them are spare (the extra nodes of textbook EASY), so the two
    # free now take a 2-node job at once even though it ends after 10
    tasks = [(0.0, 1, 1, 10.0), (0.0, 1, 1, 10.0), (0.0, 1, 1, 10.0), (1.0, 1, 3, 30.0), (2.0, 1, 2, 100.0)]
    out = simulate(scenario(_jobs_scenario("first_fit", "easy_backfill", tasks, count=5, cores=1)),
                   tmp_path / "r")[1]
    assert out is not None
    rows = {int(r["task_id"]): r for r in read_tasks(out)}
    assert float(rows[5]["start_s"]) == 2.0 and rows[5]["nodes"] == "node4.c.test;node5.c.test"
    assert float(rows[4]["start_s"]) == 10.0 and rows[4]["nodes"] == "node1.c.test;node2.c.test;node3.c.test"
    reserve = [e for e in _events(out) if e.get("act") == "reserve" and e["task"] == 4]
    assert reserve[0]["nodes"] == ["node4.c.test", "node5.c.test", "node1.c.test", "node2.c.test", "node3.c.test"]
    assert reserve[0]["start_s"] == 10.0


def test_easy_spends_the_spare_nodes_only_once(tmp_path: Path) -> None:
    # as above, but two 1-node long tasks want the two spare nodes, then a third: it waits
    tasks = [(0.0, 1, 1, 10.0), (0.0, 1, 1, 10.0), (0.0, 1, 1, 10.0), (1.0, 1, 4, 30.0), (2.0, 1, 1, 100.0),
             (2.0, 1, 1, 100.0), (3.0, 1, 1, 100.0)]
    out = simulate(scenario(_jobs_scenario("first_fit", "easy_backfill", tasks, count=5, cores=1)),
                   tmp_path / "r")[1]
    assert out is not None
    rows = {int(r["task_id"]): r for r in read_tasks(out)}
    # the 4-node head needs 4 of the 5 nodes at 10: one spare, which task 5 takes; 6 and 7 wait
    assert float(rows[5]["start_s"]) == 2.0
    assert float(rows[4]["start_s"]) == 10.0
    assert float(rows[6]["start_s"]) >= 10.0 and float(rows[7]["start_s"]) >= 10.0


def _events(out: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def _jobs_scenario(policy: str, queue: str, tasks: list[tuple[float, int, int, float]],
                   count: int = 4, cores: int = 4, retries: int = 0,
                   faults: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A cluster of ``count`` nodes of ``cores`` cores and tasks (arrival, cores, nodes, work)."""
    items = [{"id": i + 1, "arrival_s": a, "cores": c, "mem_mb": 100, "work_core_s": w,
              **({"nodes": k} if k != 1 else {})} for i, (a, c, k, w) in enumerate(tasks)]
    data: dict[str, Any] = {
        "name": "jobs", "seed": 3, "retries": retries,
        "cluster": {"node_types": {"n": {"cores": cores, "mem_mb": 4096, "speed": 1.0, "power_idle_w": 1,
                                         "power_max_w": 2, "power_off_w": 0, "boot_s": 1}},
                    "clusters": [{"domain": "c.test", "prefix": "10.0.1", "count": count, "type": "n"}]},
        "workload": {"tasks": items}, "policy": policy, "queue": queue,
    }
    if faults:
        data["faults"] = faults
    return data


def _check_run(out: Path, spans: dict[int, int]) -> None:
    """The invariants of a run directory with jobs: every task once; a job's parts on distinct
    nodes, as many as it asked, all starting and ending with its row; no node over capacity."""
    rows = read_tasks(out)
    assert sorted(int(r["task_id"]) for r in rows) == sorted(spans)
    with open(out / "parts.csv", newline="") as f:
        parts = list(csv.DictReader(f))
    by_job: dict[int, list[dict[str, str]]] = defaultdict(list)
    for p in parts:
        by_job[int(p["task_id"])].append(p)
    use: list[tuple[str, float, float, int]] = []  # node, start, end, cores
    for r in rows:
        tid = int(r["task_id"])
        if not r["start_s"]:
            assert tid not in by_job
            continue
        end = float(r["end_s"]) if r["end_s"] else float("inf")
        if spans[tid] == 1:
            assert tid not in by_job and r["nodes"] == r["node"]
            use.append((r["node"], float(r["start_s"]), end, int(r["cores"])))
            continue
        ps = sorted(by_job[tid], key=lambda p: int(p["rank"]))
        assert [int(p["rank"]) for p in ps] == list(range(spans[tid]))
        assert [p["node"] for p in ps] == r["nodes"].split(";") and ps[0]["node"] == r["node"]
        assert len({p["node"] for p in ps}) == spans[tid]
        assert {(p["start_s"], p["end_s"]) for p in ps} == {(r["start_s"], r["end_s"])}
        use.extend((p["node"], float(p["start_s"]), end, int(p["cores"])) for p in ps)
    for node in {u[0] for u in use}:
        changes = sorted([(s, c) for n, s, _, c in use if n == node] + [(e, -c) for n, _, e, c in use if n == node],
                         key=lambda x: (x[0], x[1]))  # ends before starts at the same instant
        level = 0
        for _, c in changes:
            level += c
            assert level <= 4, f"{node} over capacity"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks=st.lists(st.tuples(st.floats(0, 50), st.integers(1, 4), st.integers(1, 3), st.floats(1, 300)),
                      min_size=1, max_size=14),
       policy=st.sampled_from(PLACEMENTS), queue=st.sampled_from(["fcfs", "easy_backfill", "sjf"]))
def test_no_node_over_capacity_parts_together_every_job_once(tasks: list[tuple[float, int, int, float]],
                                                           policy: str, queue: str) -> None:
    data = _jobs_scenario(policy, queue, tasks)
    with tempfile.TemporaryDirectory() as tmp:
        out = simulate(scenario(data), Path(tmp) / "r")[1]
        assert out is not None
        _check_run(out, {i + 1: k for i, (_, _, k, _) in enumerate(tasks)})
        assert all(r["state"] == "completed" for r in read_tasks(out))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks=st.lists(st.tuples(st.floats(0, 50), st.integers(1, 4), st.integers(1, 3), st.floats(1, 300)),
                      min_size=1, max_size=10),
       at=st.floats(0, 60))
def test_a_lost_node_fails_whole_jobs_and_they_retry_whole(tasks: list[tuple[float, int, int, float]],
                                                           at: float) -> None:
    data = _jobs_scenario("first_fit", "fcfs", tasks, retries=2,
                          faults=[{"node": "node2.c.test", "at_s": at, "down_s": 30}])
    with tempfile.TemporaryDirectory() as tmp:
        out = simulate(scenario(data), Path(tmp) / "r")[1]
        assert out is not None
        _check_run(out, {i + 1: k for i, (_, _, k, _) in enumerate(tasks)})


# ---------------------------------------------------------------- scenario input
@pytest.mark.parametrize(("task", "key", "said"), [
    ({"nodes": 2, "procs": 4}, "procs", "give nodes (cores on each node) or procs"),
    ({"spread": "pack"}, "spread", "spread splits procs: give procs too"),
    ({"procs": 4, "spread": "scatter"}, "spread", "scatter"),
    ({"nodes": 5}, "nodes", "spans 5 nodes, but only 4 nodes of the cluster could hold one of its parts"),
    ({"nodes": 0}, "nodes", "0"),
])
def test_bad_job_keys_are_located(task: dict[str, Any], key: str, said: str) -> None:
    data = _jobs_scenario("first_fit", "fcfs", [(0.0, 2, 1, 10.0)])
    data["workload"]["tasks"][0].update(task)
    with pytest.raises(InputError) as e:
        scenario(data)
    assert f"workload.tasks[0].{key}" in str(e.value) and said in str(e.value), str(e.value)


def test_procs_become_parts_by_the_spread_rule() -> None:
    data = _jobs_scenario("first_fit", "fcfs", [(0.0, 4, 1, 10.0)] * 3)
    data["workload"]["tasks"][0].update(procs=10)
    data["workload"]["tasks"][1].update(procs=3, spread="spread")
    data["workload"]["tasks"][2].update(procs=6, spread="exclusive")
    a, b, c = scenario(data).workload.tasks(np.random.default_rng(0))
    assert (a.cores, a.nodes, a.parts, a.procs) == (4, 3, (4, 4, 2), 0)
    assert (b.cores, b.nodes, b.parts, b.procs) == (1, 3, (), 0)
    assert (c.cores, c.nodes, c.parts, c.procs) == (4, 2, (), 6)


# ---------------------------------------------------------------- results, traces, live
def test_the_report_the_comparison_and_calibration_understand_jobs(tmp_path: Path) -> None:
    from rpiaas.analysis.compare import compare_tasks
    from rpiaas.analysis.gantt import gantt_model
    from rpiaas.rundir.reader import load_run

    data = _jobs_scenario("first_fit", "fcfs", [(0.0, 1, 1, 100.0), (1.0, 3, 3, 900.0), (2.0, 1, 1, 50.0)])
    out = simulate(scenario(data), tmp_path / "a")[1]
    other = simulate(scenario({**data, "policy": "worst_fit"}), tmp_path / "b")[1]
    assert out is not None and other is not None
    run = load_run(out)
    assert run.parts()[2] == [("node1.c.test", 3), ("node2.c.test", 3), ("node3.c.test", 3)]
    assert run.single_node().tolist() == [True, False, True]
    model = gantt_model(run)
    job_bars = [b for b in model["bars"] if b[1] == float(read_tasks(out)[-1]["start_s"]) and b[4] == 3]
    assert sorted(b[0] for b in job_bars) == [0, 1, 2]  # one bar in each of its three nodes' lanes
    # the same job on the same nodes agrees; worst fit puts it on nodes 2 to 4, not 1 to 3
    same = compare_tasks(run, load_run(out))["placement"]
    assert same["same_node"] == same["both_placed"] == 3
    moved = compare_tasks(run, load_run(other))["placement"]
    assert moved["both_placed"] == 3 and moved["same_node"] < 3
    # calibration leaves the job out of the speed fit, and says so
    from rpiaas.analysis.calibrate import _notes, fit_node_types

    assert _notes(run, {})[0].startswith("speed: 1 parallel jobs over several nodes left out of the fit")
    assert fit_node_types(run)["n"].tasks == 2  # the two single-node tasks only


def test_trace_jobs_wider_than_a_node_span_clip_or_skip_and_are_counted(tmp_path: Path) -> None:
    import json

    from rpiaas.workload.traces.mapping import SPANS

    swf = tmp_path / "t.swf"
    # id submit wait run procs cpu mem req_procs req_time req_mem status user group exe queue part prev think
    lines = [f"{i} {10 * i} 0 100 {p} -1 -1 {p} 200 -1 1 1 1 1 1 1 -1 -1" for i, p in enumerate((2, 8, 6, 4), 1)]
    swf.write_text("; MaxProcs: 16\n" + "\n".join(lines) + "\n")
    counts = {}
    for wide in ("span", "clip", "skip"):
        data = _jobs_scenario("best_fit", "easy_backfill", [(0.0, 1, 1, 1.0)])
        data["workload"] = {"trace": {"path": str(swf), "wide_jobs": wide}}
        out = simulate(scenario(data), tmp_path / wide)[1]
        assert out is not None
        counts[wide] = json.loads((out / "run.json").read_text())["trace"]
        rows = {int(r["task_id"]): r for r in read_tasks(out)}
        if wide == "span":
            assert rows[2]["nodes"].count(";") == 1 and rows[3]["nodes"].count(";") == 1
            assert float(rows[2]["end_s"]) - float(rows[2]["start_s"]) == 100.0  # as long as it ran
    assert counts["span"] == {"read": 4, "kept": 4, "changed": {SPANS: 2}}
    assert counts["clip"] == {"read": 4, "kept": 4, "changed": {"clipped to the largest node's cores": 2}}
    assert counts["skip"] == {"read": 4, "kept": 2, "changed": {"wider than the largest node": 2}}


# ---------------------------------------------------------------- EASY from the index or the hooks
def test_easy_backfilling_is_the_same_from_the_free_index_as_from_the_hooks() -> None:
    """best_fit answered from the free index (its declared index_rule: the reservation's
    counts, remembered per task size in a pass, may refuse a job before any node is ranked)
    and the same policy asked through its hooks (no declaration: every answer checked node by
    node) start every task and job at the same time on the same nodes, on clusters of mixed
    node types, with estimates that overrun and jobs that need the reservation's spare nodes."""
    import heapq

    from rpiaas.policy.builtin.best_fit import BestFit
    from rpiaas.policy.builtin.easy_backfill import EasyBackfill

    class AskedBestFit(BestFit):
        index_rule = None  # type: ignore[assignment]  # the same rpiaas_place, asked as a hook

    for seed in range(40):
        rng = np.random.default_rng(seed)
        types = [node_type(cores=int(rng.choice([1, 2, 4])), mem_mb=int(rng.choice([512, 1024])),
                           speed=float(rng.choice([0.5, 1.0])), name=f"t{i}") for i in range(int(rng.integers(1, 4)))]
        cluster = nodes(*[types[int(rng.integers(len(types)))] for _ in range(int(rng.integers(3, 12)))])
        fit_all = min(n.type.cores for n in cluster)
        widest = max(n.type.cores for n in cluster)
        planes = [ControlPlane(cluster, [p, EasyBackfill()]) for p in (BestFit(), AskedBestFit())]
        arrivals = []
        t = 0.0
        for i in range(int(rng.integers(20, 60))):
            t += float(rng.choice([0.0, 1.0, 5.0]))
            k = int(rng.integers(2, min(4, len(cluster)) + 1)) if rng.random() < 0.4 else 1
            cores = int(rng.integers(1, fit_all + 1)) if k > 1 else int(rng.integers(1, 5))
            work = float(rng.choice([5.0, 20.0, 60.0]))
            wall = float(rng.choice([2.0, 30.0, 100.0])) if rng.random() < 0.7 else None
            arrivals.append((t, i + 1, cores, int(rng.choice([64, 256])), work, k, wall))
        events: list[tuple[float, int, int]] = [(a[0], 1, a[1]) for a in arrivals]  # (time, 0 end / 1 arrival, id)
        heapq.heapify(events)
        by_id = {a[1]: a for a in arrivals}
        starts: list[list[tuple[float, int, tuple[int, ...]]]] = [[], []]
        while events:
            now = events[0][0]
            batch = []
            while events and events[0][0] == now:
                batch.append(heapq.heappop(events))
            ends_at: dict[int, float] = {}
            for j, cp in enumerate(planes):
                evs: list[Any] = []
                for _, kind, tid in batch:
                    if kind == 0:
                        evs.append(TaskFinished(tid))
                    else:
                        _, _, c, m, w, k, wall = by_id[tid]
                        c = c if c <= widest else 1
                        evs.append(TaskArrived(Task(tid, now, c, m, w, nodes=k, walltime_s=wall)))
                for act in cp.step(now, evs):
                    if isinstance(act, Start):
                        placed = act.task.placed if act.task.nodes > 1 else (act.node,)
                        starts[j].append((now, act.task.id, tuple(placed)))
                        ends_at[act.task.id] = now + act.task.work_core_s  # the same end for both
            assert starts[0] == starts[1], seed
            for tid, end in ends_at.items():
                heapq.heappush(events, (end, 0, tid))
        assert len(starts[0]) == len(arrivals), seed
