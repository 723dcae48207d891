"""The decision trace (``decisions.jsonl``): what each placement decision asked and chose."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from rpiaas.core.control import TRACE_TOP_K, ControlPlane
from rpiaas.core.events import Kill, Migrate, Reject, Start, TaskArrived, TaskFinished
from rpiaas.core.view import ClusterView
from rpiaas.model import Task
from rpiaas.policy.base import SKIP, Policy, Reservation, hookimpl
from rpiaas.policy.builtin.best_fit import BestFit
from rpiaas.policy.builtin.easy_backfill import EasyBackfill
from rpiaas.policy.builtin.least_loaded import LeastLoaded
from rpiaas.scenario import load_scenario, parse_overrides
from rpiaas.sim import engine, simulate

from ..helpers import cluster, node_type, nodes, scenario

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "scenario.md"


def task(tid: int, cores: int = 1, mem: int = 100, work: float = 10.0, at: float = 0.0) -> Task:
    return Task(tid, at, cores, mem, work)


def traced(*policies: Policy, cores: tuple[int, ...] = (2, 2)) -> tuple[ControlPlane, io.StringIO]:
    sink = io.StringIO()
    cp = ControlPlane(nodes(*(node_type(cores=c) for c in cores)), policies, trace=sink)
    return cp, sink


def records(sink: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.getvalue().splitlines()]


class NotOn(Policy):
    """Keeps tasks off the given nodes (a filter)."""

    NAME = "not_on"

    def __init__(self, banned: tuple[int, ...] = (1,)) -> None:
        self.banned = banned

    @hookimpl
    def rpiaas_filter(self, task: Task, view: ClusterView) -> npt.NDArray[np.bool_]:
        mask = np.ones(len(view), dtype=bool)
        mask[list(self.banned)] = False
        return mask


class Always(Policy):
    """Places every task on one node when it has room."""

    NAME = "always"

    def __init__(self, node: int = 0) -> None:
        self.node = node

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | None:
        return self.node if view.fits_node(task, self.node) else None


class Skip(Policy):
    """Lets later tasks overtake a blocked one."""

    NAME = "skip"

    @hookimpl
    def rpiaas_blocked(self, task: Task, view: ClusterView, now: float,
                       reservation: Reservation | None) -> Any:
        return SKIP


# ---------------------------------------------------------------- one record per hook style
def test_default_first_fit_and_a_task_that_fits_nowhere_this_pass() -> None:
    cp, sink = traced()
    cp.step(0.0, [TaskArrived(task(1, 2)), TaskArrived(task(2, 1))])
    cp.step(1.0, [TaskArrived(task(3, 2, at=1.0)), TaskArrived(task(4, 1, at=1.0))])
    assert records(sink) == [
        {"t": 0.0, "decision": "place", "task": 1, "hook": "default", "chosen": "n0.test",
         "candidates": 2, "feasible": 2},
        {"t": 0.0, "decision": "place", "task": 2, "hook": "default", "chosen": "n1.test",
         "candidates": 1, "feasible": 1},
        # strict order without rpiaas_blocked: the pass ends here, task 4 is not tried
        {"t": 1.0, "decision": "place", "task": 3, "hook": "default", "chosen": None,
         "reason": "no room", "candidates": 0, "feasible": 0, "blocked": "wait"},
    ]
    cp.step(2.0, [TaskFinished(1)])
    assert [(r["task"], r["chosen"]) for r in records(sink)[3:]] == [(3, "n0.test"), (4, "n1.test")]


def test_filter_and_score() -> None:
    cp, sink = traced(LeastLoaded(), NotOn((1,)), cores=(4, 4, 4))
    cp.view.utilization_sink(measured=False)[:] = [0.5, 0.0, 0.25]
    cp.step(1.5, [TaskArrived(task(1))])
    [rec] = records(sink)
    assert rec == {"t": 1.5, "decision": "place", "task": 1, "hook": "filter+score", "chosen": "n2.test",
                   "candidates": 3, "feasible": 2,
                   "filtered": {"not_on": {"count": 1, "nodes": ["n1.test"]}},
                   "scores": {"n2.test": -0.25 + 1e-6, "n0.test": -0.5 + 1e-6}}
    assert list(rec) == ["t", "decision", "task", "hook", "chosen", "candidates", "feasible",
                         "filtered", "scores"]  # fixed key order
    assert list(rec["scores"]) == ["n2.test", "n0.test"]  # best first


def test_filters_that_leave_nothing() -> None:
    cp, sink = traced(NotOn((0, 1)))
    cp.step(0.0, [TaskArrived(task(1))])
    [rec] = records(sink)
    assert rec["hook"] == "filter" and rec["chosen"] is None and rec["reason"] == "filtered"
    assert rec["filtered"] == {"not_on": {"count": 2, "nodes": ["n0.test", "n1.test"]}}
    assert (rec["candidates"], rec["feasible"], rec["blocked"]) == (2, 0, "wait")


def test_place_policy_and_the_index_answering_for_later_tasks() -> None:
    cp, sink = traced(BestFit(), Skip(), cores=(4, 2))
    cp.step(0.0, [TaskArrived(task(1, 2)), TaskArrived(task(2, 4)), TaskArrived(task(3, 4)),
                  TaskArrived(task(4, 1))])
    assert records(sink) == [
        {"t": 0.0, "decision": "place", "task": 1, "hook": "place", "chosen": "n1.test", "candidates": 2},
        {"t": 0.0, "decision": "place", "task": 2, "hook": "place", "chosen": "n0.test", "candidates": 1},
        # past the first task of a pass, the free index says "no room" without asking the policy
        {"t": 0.0, "decision": "place", "task": 3, "hook": "index", "chosen": None, "reason": "no room",
         "candidates": 0, "blocked": "skip"},
        {"t": 0.0, "decision": "place", "task": 4, "hook": "index", "chosen": None, "reason": "no room",
         "candidates": 0, "blocked": "skip"},
    ]


def test_place_declining_and_place_overruled_by_a_filter() -> None:
    cp, sink = traced(NotOn((0,)), Always(0))
    cp.step(0.0, [TaskArrived(task(1))])
    [rec] = records(sink)
    assert rec == {"t": 0.0, "decision": "place", "task": 1, "hook": "filter", "chosen": "n1.test",
                   "candidates": 2, "feasible": 1, "place": {"node": "n0.test", "overruled": "not_on"},
                   "filtered": {"not_on": {"count": 1, "nodes": ["n0.test"]}}}

    cp, sink = traced(Always(0))
    cp.step(0.0, [TaskArrived(task(1, 2)), TaskArrived(task(2, 1))])
    assert records(sink)[1] == {"t": 0.0, "decision": "place", "task": 2, "hook": "place", "chosen": None,
                                "reason": "declined", "candidates": 1, "blocked": "wait"}


def test_reservation_and_backfilling() -> None:
    sink = io.StringIO()
    cp = ControlPlane(nodes(node_type(cores=4), node_type(cores=4)), [EasyBackfill(), BestFit()],
                      trace=sink)
    cp.step(0.0, [TaskArrived(task(1, 2, work=200.0)), TaskArrived(task(2, 4, work=800.0))])
    cp.step(5.0, [TaskArrived(task(3, 4, work=400.0, at=5.0)), TaskArrived(task(4, 2, work=1000.0, at=5.0)),
                  TaskArrived(task(5, 1, work=50.0, at=5.0))])
    _, _, head, late, short = records(sink)
    assert head == {"t": 5.0, "decision": "place", "task": 3, "hook": "place", "chosen": None,
                    "reason": "no room", "candidates": 0, "blocked": "reserve",
                    "reservation": {"node": "n0.test", "start_s": 100.0}}
    # task 4 would end after the reservation starts and leave too little room: kept off n0
    assert late == {"t": 5.0, "decision": "place", "task": 4, "hook": "default", "chosen": None,
                    "reason": "reservation", "candidates": 1, "feasible": 0,
                    "place": {"node": "n0.test", "overruled": "(reservation)"},
                    "filtered": {"(reservation)": {"count": 1, "nodes": ["n0.test"]}}, "blocked": "skip"}
    assert short["chosen"] == "n0.test" and short["hook"] == "place"  # ends before the reservation starts


def test_admission_rejections() -> None:
    class TooWide(Policy):
        NAME = "too_wide"

        @hookimpl
        def rpiaas_admit(self, task: Task, view: ClusterView) -> str | None:
            return "too wide" if task.cores > 1 else None

    cp, sink = traced(TooWide())
    acts = cp.step(2.0, [TaskArrived(task(1, cores=8)), TaskArrived(task(2, cores=2))])
    assert [a.task.id for a in acts if isinstance(a, Reject)] == [1, 2]
    assert records(sink) == [
        {"t": 2.0, "decision": "reject", "task": 1, "hook": "capacity", "reason": "fits no node"},
        {"t": 2.0, "decision": "reject", "task": 2, "hook": "admit", "reason": "too wide"},
    ]


def test_rebalance_migrations_and_kills() -> None:
    class Shuffle(Policy):
        NAME = "shuffle"

        @hookimpl
        def rpiaas_rebalance(self, view: ClusterView, now: float) -> list[Any]:
            if now != 1.0:
                return []
            t1, t2 = view.running(0)[1], view.running(0)[2]
            return [Migrate(t1, 1), Migrate(t2, 0), Kill(t2), Kill(t2), Migrate(t1, 1)]

    cp, sink = traced(Shuffle())
    cp.step(0.0, [TaskArrived(task(1)), TaskArrived(task(2))])
    acts = cp.step(1.0, [TaskFinished(99)])
    assert [type(a).__name__ for a in acts] == ["Migrate", "Kill"]
    assert records(sink)[2:] == [
        {"t": 1.0, "decision": "migrate", "task": 1, "hook": "rebalance", "chosen": "n1.test", "from": "n0.test"},
        {"t": 1.0, "decision": "migrate", "task": 2, "hook": "rebalance", "chosen": "n0.test",
         "reason": "already there", "from": "n0.test"},
        {"t": 1.0, "decision": "kill", "task": 2, "hook": "rebalance", "from": "n0.test"},
        {"t": 1.0, "decision": "kill", "task": 2, "hook": "rebalance", "reason": "not running"},
        {"t": 1.0, "decision": "migrate", "task": 1, "hook": "rebalance", "chosen": "n1.test",
         "reason": "already there", "from": "n1.test"},
    ]


def test_lists_are_bounded_and_non_finite_scores_are_strings() -> None:
    class Scores(Policy):
        NAME = "scores"

        @hookimpl
        def rpiaas_score(self, task: Task, view: ClusterView) -> npt.NDArray[np.float64]:
            s = np.arange(len(view), dtype=np.float64) % 7
            s[3] = np.inf
            return s

    n = 40
    banned = tuple(range(0, n, 2))
    cp, sink = traced(Scores(), NotOn(banned), cores=(1,) * n)
    cp.step(0.0, [TaskArrived(task(1))])
    [rec] = records(sink)
    assert rec["filtered"]["not_on"] == {"count": 20, "nodes": [f"n{i}.test" for i in banned[:TRACE_TOP_K]]}
    assert rec["chosen"] == "n3.test" and rec["scores"]["n3.test"] == "inf"
    assert len(rec["scores"]) == TRACE_TOP_K and list(rec["scores"])[:3] == ["n3.test", "n13.test", "n27.test"]
    ranked = [v for k, v in rec["scores"].items() if k != "n3.test"]
    assert ranked == sorted(ranked, reverse=True)


def test_tracing_asks_the_same_hooks_and_changes_no_decision() -> None:
    calls: list[str] = []

    class Counting(Policy):
        NAME = "counting"

        @hookimpl
        def rpiaas_place(self, task: Task, view: ClusterView) -> int | None:
            calls.append("place")
            return 0 if view.fits_node(task, 0) else None

        @hookimpl
        def rpiaas_filter(self, task: Task, view: ClusterView) -> npt.NDArray[np.bool_] | None:
            calls.append("filter")
            return None if task.id % 3 else np.array([task.id % 2 == 0, True, True])

        @hookimpl
        def rpiaas_score(self, task: Task, view: ClusterView) -> npt.NDArray[np.float64] | None:
            calls.append("score")
            return None if task.id % 4 == 0 else -view.cores_free.astype(np.float64)

    def run(trace: bool) -> tuple[list[str], str, list[Any]]:
        calls.clear()
        log = io.StringIO()
        cp = ControlPlane(nodes(*(node_type(cores=3) for _ in range(3))), [EasyBackfill(), Counting()],
                          log=log, trace=io.StringIO() if trace else None)
        out: list[Any] = []
        for t in range(30):
            evs: list[Any] = [TaskArrived(task(t + 1, cores=1 + t % 3, work=5.0 + t % 7, at=float(t)))]
            evs += [TaskFinished(a.task.id) for a in out if isinstance(a, Start) and a.task.id % 2 == t % 2]
            out = cp.step(float(t), evs)
        return list(calls), log.getvalue(), [(type(a).__name__, getattr(a, "node", None)) for a in out]

    assert run(False) == run(True)


# ---------------------------------------------------------------- the run directory
def small(**extra: Any) -> dict[str, Any]:
    return {"name": "trace", "seed": 3, "cluster": cluster(4),
            "workload": {"generator": {"count": 80, "arrival": {"rate_per_s": 0.05},
                                       "cores": {"dist": "uniform", "low": 1, "high": 4},
                                       "mem_mb": 512, "work_core_s": {"dist": "exponential", "mean": 200}}},
            "policy": "best_fit", "queue": "easy_backfill", **extra}


def files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.name != "timing.json"}


@pytest.mark.parametrize("policy", ["best_fit", "least_loaded", "first_fit"])
def test_same_seed_same_trace_and_trace_off_changes_nothing_else(tmp_path: Path, policy: str) -> None:
    _, a = simulate(scenario(small(policy=policy, decision_trace=True)), tmp_path / "a")
    _, b = simulate(scenario(small(policy=policy, decision_trace=True)), tmp_path / "b")
    _, off = simulate(scenario(small(policy=policy)), tmp_path / "off")
    assert a is not None and b is not None and off is not None
    on_files, off_files = files(a), files(b)
    assert on_files == off_files  # byte-identical, decisions.jsonl included
    lines = [json.loads(line) for line in on_files["decisions.jsonl"].splitlines()]
    assert {r["task"] for r in lines if r["chosen"] is not None} == set(range(1, 81))
    assert any(r.get("blocked") == "reserve" for r in lines)
    plain = files(off)
    assert "decisions.jsonl" not in plain
    for name in ("events.jsonl", "tasks.csv", "nodes.csv"):
        assert plain[name] == on_files[name], name
    run_on, run_off = json.loads(on_files["run.json"]), json.loads(plain["run.json"])
    assert run_on["scenario"].pop("decision_trace") is True and run_off["scenario"].pop("decision_trace") is False
    assert run_on == run_off


def test_a_failed_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ended = 0
    final = engine.Simulation.task_final

    def failing(self: engine.Simulation, task: Task) -> None:
        nonlocal ended
        ended += 1
        if ended == 40:
            raise RuntimeError("lost the node")
        final(self, task)

    monkeypatch.setattr(engine.Simulation, "task_final", failing)
    out = tmp_path / "runs" / "t"
    with pytest.raises(RuntimeError, match="lost the node"):
        simulate(scenario(small(decision_trace=True)), out)
    assert list((tmp_path / "runs").iterdir()) == []


def test_the_set_override_turns_it_on(tmp_path: Path) -> None:
    quick = ROOT / "scenarios" / "quickstart.yaml"
    sc = load_scenario(quick, parse_overrides(["decision_trace=true", "workload.generator.count=20"]))
    assert sc.decision_trace and sc.data["decision_trace"] is True
    assert not load_scenario(quick).decision_trace
    r = subprocess.run([sys.executable, "-m", "rpiaas", "run", str(quick), "--out", str(tmp_path / "r"),
                        "--quiet", "--set", "decision_trace=true", "--set", "workload.generator.count=20"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len((tmp_path / "r" / "decisions.jsonl").read_text().splitlines()) >= 20


# ---------------------------------------------------------------- the documented example
def _doc_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n## Decision trace\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def test_the_docs_example_is_what_the_scenario_writes(tmp_path: Path) -> None:
    section = _doc_section()
    blocks = dict(re.findall(r"```(yaml|jsonl)\n(.*?)^```", section, re.S | re.M))
    path = tmp_path / "trace-demo.yaml"
    path.write_text(blocks["yaml"])
    _, run = simulate(load_scenario(path), tmp_path / "out")
    assert run is not None
    documented = blocks["jsonl"]
    for line in documented.splitlines():
        json.loads(line)  # each line is JSON
    assert (run / "decisions.jsonl").read_text() == documented
