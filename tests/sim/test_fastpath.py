"""The fast path and the writer process change nothing a run writes.

Every scenario in ``scenarios/`` and a set made to reach the fast path's
corners (a queue, node failures, walltime estimates, start overheads, worst
fit, a scoring policy, a placing policy, mixed node types, retries) is run
with the fast path and without it (every step through
``ControlPlane.step``), and with the writer process and without it: the run
directories must be the same, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rpiaas.rundir import RunWriter, run_record
from rpiaas.rundir.format import RUN_FILES
from rpiaas.scenario import Scenario, load_scenario
from rpiaas.sim import Simulation, engine

from ..helpers import check_summary, scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def run(sc: Scenario, out: Path, fast: bool = True, background: bool | None = False,
        handed_over: bool | None = None) -> dict[str, bytes]:
    writer = RunWriter(out, event_log=sc.event_log, decisions=sc.decision_trace, background=background)
    sim = Simulation(sc, writer, fast=fast)
    summary = sim.run()
    writer.commit(run_record(sc, "sim", summary, sim.node_energy()), {})
    if handed_over is not None:
        assert writer.handed_over == handed_over
    return {name: (out / name).read_bytes() for name in RUN_FILES if (out / name).exists() and name != "timing.json"}


def _same(a: dict[str, bytes], b: dict[str, bytes]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], f"{name} differs"


def _generated(policy: Any = "best_fit", count: int = 3000, rate: float = 2.0, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "corners", "seed": 7, "sample_interval_s": 50,
        "cluster": {"clusters": [{"domain": "a.test", "prefix": "10.0.1", "count": 6, "type": "rpi4b"},
                                 {"domain": "b.test", "prefix": "10.0.2", "count": 4, "type": "rpi3b"}]},
        "workload": {"generator": {
            "count": count, "arrival": {"rate_per_s": rate},
            "cores": {"dist": "choice", "values": [1, 2, 4], "weights": [0.5, 0.3, 0.2]},
            "mem_mb": {"dist": "uniform", "low": 64, "high": 3000},
            "work_core_s": {"dist": "exponential", "mean": 30}}},
        "policy": policy,
    }
    data.update(extra)
    return data


CORNERS = {
    # a long queue: the FIFO pass from the fast path's arrivals and task ends
    "queue": _generated(rate=4.0),
    # nodes fail and come back: tasks lost and retried, steps through the general path between
    "failures": _generated(rate=1.0, retries=2, faults=[
        {"node": "node1.a.test", "at_s": 100, "down_s": 300},
        {"node": "node2.b.test", "at_s": 400},
        {"node": "node3.a.test", "at_s": 500, "down_s": 50}]),
    "walltime": _generated(workload={"generator": {
        "count": 2000, "arrival": {"rate_per_s": 2.0}, "cores": {"dist": "choice", "values": [1, 2]},
        "mem_mb": {"dist": "uniform", "low": 64, "high": 900}, "work_core_s": {"dist": "exponential", "mean": 40},
        "walltime_s": {"dist": "uniform", "low": 30, "high": 90}}}),
    # the same, with kills at walltime: wake-ups through the general path, kills among the ends
    "walltime_kill": _generated(walltime="kill", workload={"generator": {
        "count": 2000, "arrival": {"rate_per_s": 2.0}, "cores": {"dist": "choice", "values": [1, 2]},
        "mem_mb": {"dist": "uniform", "low": 64, "high": 900}, "work_core_s": {"dist": "exponential", "mean": 40},
        "walltime_s": {"dist": "uniform", "low": 30, "high": 90}}}),
    "worst_fit": _generated("worst_fit"),
    "least_loaded": _generated("least_loaded", count=1500),  # a policy that scores: the view is read
    "horizon": _generated(rate=4.0, horizon_s=600),
}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenarios_write_the_same_with_and_without_the_fast_path(path: Path, tmp_path: Path) -> None:
    sc = load_scenario(path)
    _same(run(sc, tmp_path / "fast"), run(sc, tmp_path / "general", fast=False))


@pytest.mark.parametrize("name", sorted(CORNERS))
def test_corners_write_the_same_with_and_without_the_fast_path(name: str, tmp_path: Path) -> None:
    sc = scenario(CORNERS[name])
    assert Simulation(sc).control.single_event  # arrive() and finish() take one event
    fast = run(sc, tmp_path / "fast")
    _same(fast, run(sc, tmp_path / "general", fast=False))
    assert json.loads(fast["run.json"])["summary"]["completed"] > 0
    if name == "walltime_kill":
        assert json.loads(fast["run.json"])["summary"]["killed"] > 100
    # the summary's counts and per-type figures are what the run's own files say
    summary = check_summary(tmp_path / "fast", {n.type.name: n.type.cores for n in sc.cluster.nodes})
    assert list(summary["by_node_type"]) == ["rpi4b", "rpi3b"]
    if name == "walltime_kill":
        assert summary["kills_walltime"] == summary["killed"] > 100
    if name == "failures":
        assert (summary["faults_node_down"], summary["faults_node_up"]) == (3, 2)
        assert summary["kills_node_lost"] > 0 and summary["retries"] > 0


def test_start_overheads_and_several_capacities(tmp_path: Path) -> None:
    """A node type with a start overhead; then two largest capacities (no fast path at all)."""
    slow = {"cores": 4, "mem_mb": 2048, "speed": 0.7, "power_idle_w": 2.0, "power_max_w": 5.0,
            "start_overhead_s": 1.25}
    data = _generated(rate=3.0)
    data["cluster"] = {"node_types": {"slow": slow},
                       "clusters": [{"domain": "a.test", "prefix": "10.0.1", "count": 5, "type": "rpi4b"},
                                    {"domain": "s.test", "prefix": "10.0.3", "count": 3, "type": "slow"}]}
    sc = scenario(data)
    _same(run(sc, tmp_path / "fast"), run(sc, tmp_path / "general", fast=False))
    wide = {**slow, "cores": 8, "mem_mb": 1024}  # more cores, less memory: two largest capacities
    data["cluster"]["node_types"]["slow"] = wide
    data["workload"]["generator"]["mem_mb"] = {"dist": "uniform", "low": 64, "high": 1000}
    sc = scenario(data)
    assert not Simulation(sc).control.single_event
    _same(run(sc, tmp_path / "fast2"), run(sc, tmp_path / "general2", fast=False))


@pytest.mark.parametrize(("event_log", "count", "by_count"), [(True, 25_000, False), (False, 20_000, True)])
def test_the_writer_process_writes_the_same_bytes(event_log: bool, count: int, by_count: bool, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """From the start (20,000 tasks: a long run by its count, the threshold set to it), and from
    a later drain (25,000 tasks and their event records, the count not looked at: a workload of
    unknown length), when rows made here already count in the totals it goes on from."""
    monkeypatch.setattr(engine, "_LONG_RUN_TASKS", count if by_count else 10**9)
    sc = scenario(_generated(count=count, rate=1.0, event_log=event_log))
    inline = run(sc, tmp_path / "inline", background=False, handed_over=False)
    _same(inline, run(sc, tmp_path / "process", background=True, handed_over=True))
    _same(inline, run(sc, tmp_path / "auto", background=None, handed_over=True))
    assert ("events.jsonl" in inline) == event_log


def test_a_writer_process_that_dies_fails_the_run_and_leaves_nothing(tmp_path: Path) -> None:
    sc = scenario(_generated(count=12_000, rate=4.0))
    out = tmp_path / "run"
    writer = RunWriter(out, background=True)
    sim = Simulation(sc, writer)
    real_drain = writer.drain

    def drain_then_kill() -> None:
        real_drain()
        if writer._proc is not None:
            writer._proc._proc.kill()
            writer._proc._proc.wait()

    writer.drain = drain_then_kill  # type: ignore[method-assign]
    with pytest.raises(OSError, match="writer process"):
        sim.run()
    writer.abort()
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_writer_process_that_cannot_start_leaves_the_run_to_write_its_tables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rpiaas.rundir.writer as writer_module

    def cannot(*args: Any, **kwargs: Any) -> None:
        raise OSError("no more processes")

    sc = scenario(_generated(count=3000, rate=2.0))
    inline = run(sc, tmp_path / "inline", background=False)
    monkeypatch.setattr(writer_module, "WriterProcess", cannot)
    _same(inline, run(sc, tmp_path / "fallback", background=True, handed_over=False))


def test_a_trace_kept_at_load_runs_as_the_file_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rpiaas.workload.traces.mapping as mapping

    path = ROOT / "scenarios" / "trace-replay.yaml"
    kept = load_scenario(path)
    assert kept.workload.kept is not None  # type: ignore[attr-defined]
    monkeypatch.setattr(mapping, "KEEP_TASKS", 10)
    streamed = load_scenario(path)
    assert streamed.workload.kept is None  # type: ignore[attr-defined]
    assert kept.workload.count == streamed.workload.count
    _same(run(kept, tmp_path / "kept"), run(streamed, tmp_path / "streamed"))
