"""parse_workload: exactly one of generator, tasks or trace; every bad value located by file, line and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rpiaas.inputs.source import InputError, Source
from rpiaas.scenario import load_scenario
from rpiaas.workload import Distribution, parse_workload
from rpiaas.workload.generators import parse_distribution


def dist(data: Any, integer: bool = False, positive: bool = True) -> Distribution:
    return parse_distribution(Source({}, {}, "w.yaml"), ("d",), data, integer, positive)


def workload(data: dict[str, Any]) -> Any:
    return parse_workload(Source(data, {}, "w.yaml"), (), data)


# ---------------------------------------------------------------- bad workloads
SCENARIO = """\
cluster:
  clusters: [{count: 2, type: rpi4b}]
policy: first_fit
workload:
  generator:
    count: 10
    arrival: {rate_per_s: 0.5}
    cores: 1
    mem_mb: {dist: uniform, low: 64, high: 512}
    work_core_s: {dist: exponential, mean: 30}
"""
# lines: 5 generator, 6 count, 7 arrival, 8 cores, 9 mem_mb, 10 work_core_s
G = "workload.generator"
BAD = [
    ("cores: 1", "cores: -1", 8, f"{G}.cores", "expected a positive integer, got -1"),
    ("cores: 1", "cores: 0", 8, f"{G}.cores", "expected a positive integer, got 0"),
    ("cores: 1", "cores: 1.5", 8, f"{G}.cores", "expected a positive integer, got 1.5"),
    ("cores: 1", "cores: many", 8, f"{G}.cores",
     "expected a number or a mapping with dist: one of constant, uniform, exponential, normal, "
     "lognormal, choice, got 'many'"),
    ("cores: 1", "cores: {low: 1, high: 2}", 8, f"{G}.cores", "expected a number or a mapping with dist"),
    ("cores: 1", "cores: {dist: gauss}", 8, f"{G}.cores.dist",
     "expected one of constant, uniform, exponential, normal, lognormal, choice, got 'gauss'"),
    ("cores: 1", "cores: {dist: uniform, low: 1}", 8, f"{G}.cores", "missing key 'high' for dist uniform"),
    ("cores: 1", "cores: {dist: uniform, low: 0, high: 2}", 8, f"{G}.cores.low",
     "expected a positive integer, got 0"),
    ("cores: 1", "cores: {dist: uniform, low: 1, high: 2.5}", 8, f"{G}.cores.high",
     "expected a positive integer, got 2.5"),
    ("cores: 1", "cores: {dist: uniform, low: 3, high: 2}", 8, f"{G}.cores.high", "below low (2 < 3)"),
    ("cores: 1", "cores: {dist: uniform, low: 1, high: 2, mean: 3}", 8, f"{G}.cores.mean",
     "unknown key (expected one of: dist, low, high, min, max)"),
    ("cores: 1", "cores: {dist: normal, mean: 2, sd: 0}", 8, f"{G}.cores.sd",
     "expected a positive number, got 0"),
    ("cores: 1", "cores: {dist: normal, mean: 2, sd: 1, min: 1.5}", 8, f"{G}.cores.min",
     "expected a positive integer, got 1.5"),
    ("cores: 1", "cores: {dist: normal, mean: 2, sd: 1, min: 3, max: 2}", 8, f"{G}.cores.max",
     "below min (2 < 3)"),
    ("cores: 1", "cores: {dist: constant, value: 1.5}", 8, f"{G}.cores.value",
     "expected a positive integer, got 1.5"),
    ("cores: 1", "cores: {dist: choice, values: []}", 8, f"{G}.cores.values", "expected at least one value"),
    ("cores: 1", "cores: {dist: choice, values: [1, 0]}", 8, f"{G}.cores.values[1]",
     "expected a positive integer, got 0"),
    ("cores: 1", "cores: {dist: choice, values: [1, 2], weights: [1]}", 8, f"{G}.cores.weights",
     "expected 2 weights, one per value"),
    ("cores: 1", "cores: {dist: choice, values: [1, 2], weights: [0, 0]}", 8, f"{G}.cores.weights",
     "weights must not all be zero"),
    ("cores: 1", "cores: {dist: choice, values: [1, 2], weights: [1, -1]}", 8, f"{G}.cores.weights[1]",
     "expected a non-negative number, got -1"),
    ("cores: 1", "cores: 8", 8, f"{G}.cores", "tasks of up to 8 cores fit no node type (the largest has 4 cores)"),
    ("cores: 1", "cores: {dist: choice, values: [1, 2, 6], weights: [1, 1, 1]}", 8, f"{G}.cores",
     "tasks of up to 6 cores fit no node type"),
    ("high: 512", "high: 5000", 9, f"{G}.mem_mb", "tasks of up to 5000 MB fit no node type (the largest has 4096 MB)"),
    ("mean: 30}", "mean: -30}", 10, f"{G}.work_core_s.mean", "expected a positive number, got -30"),
    ("mean: 30}", "mean: 30, sd: 1}", 10, f"{G}.work_core_s.sd", "unknown key (expected one of: dist, mean, min, max)"),
    ("{dist: exponential, mean: 30}", "0", 10, f"{G}.work_core_s", "expected a positive number, got 0"),
    ("{dist: exponential, mean: 30}", "{dist: lognormal, mu: 1, sigma: -1}", 10, f"{G}.work_core_s.sigma",
     "expected a positive number, got -1"),
    ("count: 10", "count: 0", 6, f"{G}.count", "expected a positive integer, got 0"),
    ("count: 10", "count: ten", 6, f"{G}.count", "expected a positive integer, got 'ten'"),
    ("count: 10", "count: 10\n    cpus: 1", 7, f"{G}.cpus", "unknown key (expected one of: count, arrival,"),
    ("count: 10", "count: 10\n    kind: gpu", 7, f"{G}.kind",
     "expected one of cpu, memory, io, sleep, command, got 'gpu'"),
    ("count: 10", "count: 10\n    priority: high", 7, f"{G}.priority", "expected an integer, got 'high'"),
    ("count: 10", "count: 10\n    start_s: -1", 7, f"{G}.start_s", "expected a non-negative number, got -1"),
    ("count: 10", "count: 10\n    walltime_s: 0", 7, f"{G}.walltime_s", "expected a positive number, got 0"),
    ("{rate_per_s: 0.5}", "{rate_per_s: 0}", 7, f"{G}.arrival.rate_per_s", "expected a positive number, got 0"),
    ("{rate_per_s: 0.5}", "{rate_per_s: -2}", 7, f"{G}.arrival.rate_per_s", "expected a positive number, got -2"),
    ("{rate_per_s: 0.5}", "{}", 7, f"{G}.arrival",
     "give exactly one of rate_per_s (Poisson arrivals) or interarrival_s"),
    ("{rate_per_s: 0.5}", "{rate_per_s: 1, interarrival_s: 1}", 7, f"{G}.arrival", "give exactly one of"),
    ("{rate_per_s: 0.5}", "{interarrival_s: -1}", 7, f"{G}.arrival.interarrival_s",
     "expected a non-negative number, got -1"),
    ("{rate_per_s: 0.5}", "{rate: 0.5}", 7, f"{G}.arrival.rate",
     "unknown key (did you mean 'rate_per_s'?) (expected one of: rate_per_s, interarrival_s)"),
    ("    count: 10\n", "", 5, G, "an endless generator (no count) needs horizon_s"),
    ("    count: 10\n    arrival: {rate_per_s: 0.5}", "    arrival: {interarrival_s: 0}", 6,
     f"{G}.arrival.interarrival_s", "an endless generator needs interarrival times above zero"),
    ("    mem_mb: {dist: uniform, low: 64, high: 512}\n", "", 5, G, "missing key 'mem_mb'"),
    ("  generator:\n", "  generatr:\n", 5, "workload.generatr",
     "unknown key (did you mean 'generator'?) (expected one of: generator, tasks)"),
]


def _task_list_cases() -> list[tuple[str, int, str, str]]:
    head = SCENARIO.split("workload:")[0]
    tasks = ("workload:\n  tasks:\n"
             "    - {arrival_s: 0, cores: 1, mem_mb: 100, work_core_s: 5}\n"
             "    - {id: 7, arrival_s: 1, cores: 2, mem_mb: 100, work_core_s: 5}\n")
    # lines: 4 workload, 5 tasks, 6 item 0, 7 item 1
    T = "workload.tasks"
    return [
        (head + tasks.replace("cores: 2", "cores: 5"), 7, f"{T}[1]",
         "task 7 (5 cores, 100 MB) fits no node type"),
        (head + tasks.replace("mem_mb: 100, work_core_s: 5}\n    - {id",
                              "mem_mb: 9999, work_core_s: 5}\n    - {id"), 6, f"{T}[0]",
         "task 1 (1 cores, 9999 MB) fits no node type"),
        (head + tasks.replace("id: 7", "id: 1"), 7, f"{T}[1].id", "duplicate task id 1 (also item 0)"),
        (head + tasks.replace("id: 7", "id: -7"), 7, f"{T}[1].id", "expected a non-negative integer, got -7"),
        (head + tasks.replace("id: 7", f"id: {2**53 + 1}"), 7, f"{T}[1].id",
         f"expected a task id of at most 2**53, got {2**53 + 1}"),
        (head + tasks.replace("arrival_s: 1", "arrival_s: -1"), 7, f"{T}[1].arrival_s",
         "expected a non-negative number, got -1"),
        (head + tasks.replace("cores: 2", "cores: 0"), 7, f"{T}[1].cores", "expected a positive integer, got 0"),
        (head + tasks.replace("work_core_s: 5}\n    - {id", "work_core_s: -5}\n    - {id"), 6,
         f"{T}[0].work_core_s", "expected a non-negative number, got -5"),
        (head + tasks.replace("cores: 2,", "cores: 2, gpus: 1,"), 7, f"{T}[1].gpus", "unknown key"),
        (head + tasks.replace("cores: 2, mem_mb: 100,", "cores: 2,"), 7, f"{T}[1]", "missing key 'mem_mb'"),
        (head + "workload:\n  tasks: {a: 1}\n", 5, T, "expected a list, got a mapping"),
        (head + "workload:\n  tasks: []\n  generator: {}\n", 4, "workload",
         "give exactly one of generator, tasks, trace or wfcommons"),
    ]


def _cases() -> list[tuple[str, int, str, str]]:
    out = []
    for old, new, line, key, message in BAD:
        assert old in SCENARIO, old
        out.append((SCENARIO.replace(old, new, 1), line, key, message))
    return out + _task_list_cases()


@pytest.mark.parametrize(("text", "line", "key", "message"), _cases(),
                         ids=[f"{c[2]}:{c[3][:25]}" for c in _cases()])
def test_bad_workloads_are_located(tmp_path: Path, text: str, line: int, key: str, message: str) -> None:
    f = tmp_path / "w.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as exc:
        load_scenario(f)
    assert str(exc.value).startswith(f"{f}:{line}: {key}: {message}"), str(exc.value)


def test_the_base_of_the_bad_table_is_valid(tmp_path: Path) -> None:
    f = tmp_path / "w.yaml"
    f.write_text(SCENARIO)
    assert load_scenario(f).workload.count == 10
    for text, *_ in _task_list_cases()[:1]:
        f.write_text(text.replace("cores: 5", "cores: 2"))
        assert load_scenario(f).workload.count == 2


def test_fragments_of_the_bad_table_are_where_we_think() -> None:
    lines = SCENARIO.splitlines()
    assert lines[7].strip().startswith("cores:") and lines[9].strip().startswith("work_core_s:")
    assert lines[4] == "  generator:" and lines[6].strip().startswith("arrival:")


def test_exactly_one_source_of_tasks() -> None:
    src = Source({}, {}, "w.yaml")
    gen = {"count": 1, "arrival": {"rate_per_s": 1}, "cores": 1, "mem_mb": 1, "work_core_s": 1}
    with pytest.raises(InputError, match=r"^w.yaml: workload: give exactly one of generator, tasks, trace or "
                                         r"wfcommons$"):
        parse_workload(src, ("workload",), {"generator": gen, "tasks": []})
    with pytest.raises(InputError, match=r"^w.yaml: workload: give exactly one of generator, tasks, trace or "
                                         r"wfcommons$"):
        parse_workload(src, ("workload",), {})
    with pytest.raises(InputError, match=r"^w.yaml: workload.tasks: give exactly one of generator, "
                                         r"tasks, trace or wfcommons$"):
        parse_workload(src, ("workload",), {"trace": {"path": "t.swf"}, "tasks": []})
    with pytest.raises(InputError, match=r"^w.yaml: workload.tasks: give exactly one of generator, "
                                         r"tasks, trace or wfcommons$"):
        parse_workload(src, ("workload",), {"wfcommons": {"file": "w.json"}, "tasks": []})
