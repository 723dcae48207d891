"""Workflow inputs: ``after`` in inline tasks and WfCommons WfFormat instances, checked as a graph."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rpiaas.inputs.source import InputError, LimitError
from rpiaas.model import TaskState
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate
from rpiaas.workload.wfcommons import WfInstance, read_wfformat
from rpiaas.workload.workflow import critical_path_s

from ..helpers import scenario

ROOT = Path(__file__).resolve().parents[2]
MONTAGE = ROOT / "scenarios" / "workflows" / "montage-58.json"

HEAD = """\
name: dag
cluster:
  clusters:
    - {domain: a.test, prefix: 10.0.1, count: 2, type: rpi4b}
policy: best_fit
workload:
  tasks:
"""
# line 8 is the first task


def scenario_file(tmp_path: Path, tasks: list[str], tail: str = "") -> Path:
    f = tmp_path / "dag.yaml"
    f.write_text(HEAD + "".join(f"    - {t}\n" for t in tasks) + tail)
    return f


def refused(f: Path) -> str:
    with pytest.raises(InputError) as exc:
        load_scenario(f)
    assert "\n" not in str(exc.value)
    return str(exc.value)


# ---------------------------------------------------------------- inline tasks
def test_after_is_read_and_a_single_id_is_a_list_of_one(tmp_path: Path) -> None:
    sc = load_scenario(scenario_file(tmp_path, [
        "{id: 1, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5}",
        "{id: 2, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5, after: 1}",
        "{id: 3, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5, after: [1, 2]}"]))
    tasks = list(sc.workload.tasks(np.random.default_rng(0)))
    assert [t.after for t in tasks] == [(), (1,), (1, 2)]
    assert sc.workflow is not None and sc.workflow.on_failure == "cancel"
    assert sc.data["workflow"] == {"on_failure": "cancel"}
    # a master is given the dependencies with the tasks
    again = scenario(sc.payload())
    assert [t.after for t in again.workload.tasks(np.random.default_rng(0))] == [(), (1,), (1, 2)]
    assert again.workflow == sc.workflow


def test_a_workload_without_dependencies_has_no_workflow(tmp_path: Path) -> None:
    sc = load_scenario(scenario_file(tmp_path, ["{id: 1, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5}"],
                                     "workflow: {on_failure: fail}\n"))
    assert sc.workflow is None


def test_a_cycle_is_refused_at_the_after_that_closes_it(tmp_path: Path) -> None:
    f = scenario_file(tmp_path, [
        "{id: 1, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5}",
        "{id: 2, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5, after: [1, 4]}",
        "{id: 3, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5, after: [2]}",
        "{id: 4, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5, after: [3]}"])
    assert refused(f) == (f"{f}:9: workload.tasks[1].after[1]: the tasks' after entries close a cycle: "
                          "2 -> 4 -> 3 -> 2 (each waits for the next), so none could start")


def test_an_unknown_id_is_refused_with_its_location(tmp_path: Path) -> None:
    f = scenario_file(tmp_path, [
        "{id: 1, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5}",
        "{id: 2, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5, after: [1, 7]}"])
    assert refused(f) == f"{f}:9: workload.tasks[1].after[1]: task 2 waits for task 7, which the workload does not have"


def test_a_task_waiting_for_itself_is_refused(tmp_path: Path) -> None:
    f = scenario_file(tmp_path, ["{id: 5, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5, after: [5]}"])
    assert refused(f) == f"{f}:8: workload.tasks[0].after[0]: task 5 waits for itself"


@pytest.mark.parametrize(("tail", "message"), [
    ("workflow: {on_failure: retry}\n", "workflow.on_failure: expected one of"),
    ("workflow: {on_fail: cancel}\n", "workflow.on_fail: unknown key"),
])
def test_bad_workflow_options_are_located(tmp_path: Path, tail: str, message: str) -> None:
    f = scenario_file(tmp_path, ["{id: 1, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5}"], tail)
    assert refused(f).startswith(f"{f}:9: {message}")


def test_a_bad_after_entry_is_located(tmp_path: Path) -> None:
    f = scenario_file(tmp_path, ["{id: 1, arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5, after: [x]}"])
    assert refused(f) == f"{f}:8: workload.tasks[0].after[0]: expected a non-negative integer, got 'x'"


def test_critical_path_is_the_longest_chain() -> None:
    # 1 -> 2 -> 4 and 1 -> 3 -> 4, 5 alone
    runtime = {1: 1.0, 2: 5.0, 3: 2.0, 4: 1.0, 5: 6.5}
    after = {2: (1,), 3: (1,), 4: (2, 3)}
    assert critical_path_s(runtime, after) == 7.0
    chain = {i: 1.0 for i in range(100_000)}  # no recursion limit
    assert critical_path_s(chain, {i: (i - 1,) for i in range(1, 100_000)}) == 100_000.0


# ---------------------------------------------------------------- WfCommons WfFormat
def test_the_committed_montage_instance_is_read_as_its_graph() -> None:
    wf = read_wfformat(MONTAGE, arrival_s=2.0, work_scale=0.5, mem_mb=64)
    doc = json.loads(MONTAGE.read_text())
    spec = doc["workflow"]["specification"]["tasks"]
    runs = {t["id"]: t for t in doc["workflow"]["execution"]["tasks"]}
    assert isinstance(wf, WfInstance) and wf.count == len(spec) == 58
    by_id = {t.id: t for t in wf.items}
    for i, s in enumerate(spec, start=1):
        t = by_id[i]
        assert wf.names[i] == s["id"]
        assert sorted(wf.names[p] for p in t.after) == sorted(s["parents"])
        r = runs[s["id"]]
        assert t.cores == r["coreCount"]
        assert t.work_core_s == pytest.approx(r["runtimeInSeconds"] * r["coreCount"] * 0.5)
        assert (t.arrival_s, t.mem_mb) == (2.0, 64)


def _instance(tmp_path: Path, doc: dict[str, Any], name: str = "wf.json") -> Path:
    f = tmp_path / name
    f.write_text(json.dumps(doc, indent=1))
    return f


def _doc(tasks: list[dict[str, Any]], runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "w", "schemaVersion": "1.5",
            "workflow": {"specification": {"tasks": tasks}, "execution": {"tasks": runs}}}


def _line_of(f: Path, text: str) -> int:
    return next(i for i, line in enumerate(f.read_text().splitlines(), start=1) if text in line)


def test_an_unknown_parent_is_refused_at_its_line_in_the_json(tmp_path: Path) -> None:
    f = _instance(tmp_path, _doc([{"id": "a", "parents": []}, {"id": "b", "parents": ["a", "zz"]}],
                                 [{"id": "a", "runtimeInSeconds": 1}, {"id": "b", "runtimeInSeconds": 1}]))
    with pytest.raises(InputError) as exc:
        read_wfformat(f)
    assert str(exc.value) == (f"{f}:{_line_of(f, 'zz')}: workflow.specification.tasks[1].parents[1]: "
                              "task 'b' waits for 'zz', which the file does not have")


def test_a_cycle_in_a_wfformat_file_is_refused(tmp_path: Path) -> None:
    f = _instance(tmp_path, _doc([{"id": "a", "parents": ["b"]}, {"id": "b", "parents": ["a"]}],
                                 [{"id": "a", "runtimeInSeconds": 1}, {"id": "b", "runtimeInSeconds": 1}]))
    with pytest.raises(InputError, match=re.escape(
            "workflow.specification.tasks[0].parents[0]: the tasks' after entries close a cycle: 1 -> 2 -> 1")):
        read_wfformat(f)


def test_a_task_without_a_runtime_is_refused(tmp_path: Path) -> None:
    f = _instance(tmp_path, _doc([{"id": "a", "parents": []}], [{"id": "a", "coreCount": 2}]))
    with pytest.raises(InputError, match=re.escape("workflow.execution.tasks[0]: task 'a' has no runtimeInSeconds")):
        read_wfformat(f)


def test_the_older_flat_layout_is_read(tmp_path: Path) -> None:
    f = _instance(tmp_path, {"workflow": {"tasks": [
        {"name": "a", "parents": [], "runtime": 10, "cores": 2, "memory": 2048},
        {"name": "b", "parents": ["a"], "runtimeInSeconds": 4, "memoryInBytes": 3 * 1024 * 1024 + 1}]}})
    wf = read_wfformat(f)
    assert [(t.id, t.cores, t.mem_mb, t.work_core_s, t.after) for t in wf.items] == [
        (1, 2, 2, 20.0, ()), (2, 1, 4, 4.0, (1,))]


def test_a_wfformat_file_is_bounded_in_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPIAAS_MAX_INPUT_MB", "0.01")
    with pytest.raises(LimitError, match="RPIAAS_MAX_INPUT_MB"):
        read_wfformat(MONTAGE)


def test_not_json_is_one_located_error(tmp_path: Path) -> None:
    f = tmp_path / "wf.json"
    f.write_text('{"workflow": {"tasks": [}\n')
    with pytest.raises(InputError, match=re.escape(f"{f}:1: not valid JSON")):
        read_wfformat(f)


def test_a_missing_instance_is_refused_at_the_scenario_key(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(HEAD.replace("  tasks:\n", "  wfcommons: {file: nowhere.json}\n"))
    assert refused(f) == f"{f}:7: workload.wfcommons.file: no such file: {str(tmp_path / 'nowhere.json')!r}"


def test_the_montage_scenario_runs_every_task_after_its_parents(tmp_path: Path) -> None:
    sc = load_scenario(ROOT / "scenarios" / "workflow-montage.yaml")
    summary, out = simulate(sc, tmp_path / "run")
    assert summary["tasks"] == summary["completed"] == summary["workflow_tasks"] == 58
    assert out is not None
    rows = {int(r["task_id"]): r for r in _csv(out / "tasks.csv")}
    assert isinstance(sc.workload, WfInstance)
    items = {t.id: t for t in sc.workload.items}
    for tid, t in items.items():
        assert rows[tid]["state"] == TaskState.COMPLETED.value
        for p in t.after:
            assert float(rows[p]["end_s"]) <= float(rows[tid]["start_s"])
    # the critical path: the longest chain of work / cores on reference cores, worked out here
    longest: dict[int, float] = {}
    for tid in sorted(items, key=lambda i: _depth(items, i)):
        t = items[tid]
        longest[tid] = max((longest[p] for p in t.after), default=0.0) + t.work_core_s / t.cores
    assert summary["critical_path_s"] == pytest.approx(max(longest.values()))
    assert summary["critical_path_s"] <= summary["workflow_makespan_s"] <= summary["makespan_s"]
    # a WfCommons instance goes to a master as the tasks it makes, dependencies with them
    again = scenario(sc.payload())
    assert [t.after for t in again.workload.tasks(np.random.default_rng(0))] == [
        t.after for t in sc.workload.tasks(np.random.default_rng(0))]
    releases = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()
                if '"release"' in line]
    assert len(releases) == sum(1 for t in items.values() if t.after)


def _depth(items: dict[int, Any], tid: int) -> int:
    after = items[tid].after
    return 1 + max((_depth(items, p) for p in after), default=0)


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open() as f:
        return list(csv.DictReader(f))
