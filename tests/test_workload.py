"""Workloads: the distributions, the generator and inline task lists."""

from __future__ import annotations

import math
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rpiaas.inputs.source import InputError, Source
from rpiaas.scenario import load_scenario
from rpiaas.workload import Distribution, Generator, TaskList, parse_workload
from rpiaas.workload.generators import CHUNK, parse_distribution

N = 200_000


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def dist(data: Any, integer: bool = False, positive: bool = True) -> Distribution:
    return parse_distribution(Source({}, {}, "w.yaml"), ("d",), data, integer, positive)


def workload(data: dict[str, Any]) -> Any:
    return parse_workload(Source(data, {}, "w.yaml"), (), data)


def gen(**fields: Any) -> Generator:
    g: dict[str, Any] = {"count": 100, "arrival": {"rate_per_s": 1.0}, "cores": 1, "mem_mb": 100,
                         "work_core_s": 10}
    g.update(fields)
    w = workload({"generator": g})
    assert isinstance(w, Generator)
    return w


def close(x: float, expected: float, se: float) -> bool:
    """Within five standard errors (the draws are seeded, so this is not flaky)."""
    return abs(x - expected) <= 5 * se


# ---------------------------------------------------------------- distributions
def test_constant() -> None:
    d = dist(3.5)
    assert d == Distribution("constant", {"value": 3.5})
    assert (d.draw(rng(), 10) == 3.5).all()
    assert dist({"dist": "constant", "value": 2}).draw(rng(), 3).tolist() == [2.0, 2.0, 2.0]


def test_uniform() -> None:
    x = dist({"dist": "uniform", "low": 2, "high": 10}).draw(rng(), N)
    assert x.min() >= 2 and x.max() < 10
    assert close(x.mean(), 6, math.sqrt(64 / 12 / N))
    assert close(x.var(), 64 / 12, 64 / 12 * math.sqrt(0.8 / N))
    assert stats.kstest(x, stats.uniform(2, 8).cdf).pvalue > 1e-4


def test_uniform_integers_include_both_ends() -> None:
    x = dist({"dist": "uniform", "low": 1, "high": 4}, integer=True).draw(rng(), N)
    values, counts = np.unique(x, return_counts=True)
    assert values.tolist() == [1, 2, 3, 4]
    assert all(close(c / N, 0.25, math.sqrt(0.25 * 0.75 / N)) for c in counts)


def test_exponential() -> None:
    x = dist({"dist": "exponential", "mean": 30}).draw(rng(), N)
    assert x.min() > 0
    assert close(x.mean(), 30, 30 / math.sqrt(N))
    assert close(x.std(), 30, 30 * math.sqrt(8 / N))  # the fourth moment of Exp is 9 mean^4
    assert stats.kstest(x, stats.expon(scale=30).cdf).pvalue > 1e-4


def test_normal() -> None:
    x = dist({"dist": "normal", "mean": 5, "sd": 2}, positive=False).draw(rng(), N)
    assert close(x.mean(), 5, 2 / math.sqrt(N))
    assert close(x.std(), 2, 2 / math.sqrt(2 * N))
    assert x.min() < 0  # a field that need not be positive is not clipped


def test_lognormal() -> None:
    x = dist({"dist": "lognormal", "mu": 3, "sigma": 0.5}).draw(rng(), N)
    logs = np.log(x)
    assert close(logs.mean(), 3, 0.5 / math.sqrt(N))
    assert close(logs.std(), 0.5, 0.5 / math.sqrt(2 * N))
    assert close(float(np.median(x)), math.exp(3), 0.01 * math.exp(3))


def test_choice_with_and_without_weights() -> None:
    x = dist({"dist": "choice", "values": [1, 2, 4], "weights": [6, 3, 1]}, integer=True).draw(rng(), N)
    for value, p in ((1, 0.6), (2, 0.3), (4, 0.1)):
        assert close(float((x == value).mean()), p, math.sqrt(p * (1 - p) / N))
    y = dist({"dist": "choice", "values": [0.5, 7.25]}).draw(rng(), N)
    assert set(np.unique(y).tolist()) == {0.5, 7.25}
    assert close(float((y == 0.5).mean()), 0.5, math.sqrt(0.25 / N))


def test_clipping() -> None:
    d = dist({"dist": "normal", "mean": 10, "sd": 5, "min": 8, "max": 12})
    x = d.draw(rng(), N)
    assert x.min() == 8 and x.max() == 12
    p_low = stats.norm(10, 5).cdf(8)  # everything below min sits at min
    assert close(float((x == 8).mean()), p_low, math.sqrt(p_low * (1 - p_low) / N))


def test_positive_fields_are_clipped_at_zero_or_one() -> None:
    work = dist({"dist": "normal", "mean": 1, "sd": 5})
    assert work.min == 0.0 and work.draw(rng(), 1000).min() == 0.0
    cores = dist({"dist": "normal", "mean": 1, "sd": 5}, integer=True)
    assert cores.min == 1.0 and cores.draw(rng(), 1000).min() == 1.0


def test_integer_fields_round_half_up() -> None:
    x = dist({"dist": "normal", "mean": 20, "sd": 4}, integer=True).draw(rng(), N)
    assert (x == np.floor(x)).all()
    assert close(x.mean(), 20, 4 / math.sqrt(N))  # rounding does not bias the mean
    halves = Distribution("choice", {"values": [1.5, 2.5]}, integer=True)
    assert set(halves.draw(rng(), 100).tolist()) == {2.0, 3.0}


def test_integer_draws_stay_finite_integers_for_wild_parameters() -> None:
    d = dist({"dist": "lognormal", "mu": 700, "sigma": 50}, integer=True)
    x = d.draw(rng(), 1000)
    assert np.isfinite(x).all() and x.min() >= 1
    assert (x.astype(np.int64) >= 1).all()  # no overflow to negative numbers


@pytest.mark.parametrize(("data", "integer", "bound"), [
    (3, True, 3.0),
    ({"dist": "uniform", "low": 1, "high": 8}, True, 8.0),
    ({"dist": "choice", "values": [1, 2, 16]}, True, 16.0),
    ({"dist": "choice", "values": [1, 2, 16], "weights": [1, 1, 0]}, True, 2.0),
    ({"dist": "exponential", "mean": 5}, False, None),
    ({"dist": "exponential", "mean": 5, "max": 30}, False, 30.0),
    ({"dist": "uniform", "low": 1, "high": 8, "max": 4}, True, 4.0),
    ({"dist": "normal", "mean": 3, "sd": 1}, True, None),
])
def test_upper_bound(data: Any, integer: bool, bound: float | None) -> None:
    d = dist(data, integer=integer)
    assert d.upper_bound() == bound
    if bound is not None:
        assert d.draw(rng(), 10_000).max() <= bound


def test_upper_bound_counts_the_lift_to_min() -> None:
    d = Distribution("uniform", {"low": -5, "high": -1}, min=0.0)
    assert d.upper_bound() == 0.0 and d.draw(rng(), 100).max() == 0.0


# ---------------------------------------------------------------- the generator
def test_the_same_seed_gives_the_same_tasks() -> None:
    g = gen(cores={"dist": "uniform", "low": 1, "high": 4}, mem_mb={"dist": "exponential", "mean": 300},
            work_core_s={"dist": "lognormal", "mu": 3, "sigma": 1})
    a = [(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s) for t in g.tasks(rng(5))]
    b = [(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s) for t in g.tasks(rng(5))]
    c = [(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s) for t in g.tasks(rng(6))]
    assert a == b
    assert a != c
    assert [t[0] for t in a] == list(range(1, 101))


@pytest.mark.parametrize(("short", "long"), [(1, 50), (10, CHUNK + 5), (CHUNK + 1, 2 * CHUNK + 3)])
def test_a_longer_run_extends_a_shorter_one(short: int, long: int) -> None:
    fields = {"cores": {"dist": "uniform", "low": 1, "high": 4},
              "mem_mb": {"dist": "choice", "values": [64, 128, 256]},
              "work_core_s": {"dist": "exponential", "mean": 60}}
    a = [(t.arrival_s, t.cores, t.mem_mb, t.work_core_s) for t in gen(count=short, **fields).tasks(rng(3))]
    b = [(t.arrival_s, t.cores, t.mem_mb, t.work_core_s) for t in gen(count=long, **fields).tasks(rng(3))]
    assert len(a) == short and len(b) == long
    assert a == b[:short]


def test_changing_one_field_leaves_the_others_as_they_were() -> None:
    rest = {"mem_mb": {"dist": "uniform", "low": 64, "high": 512},
            "work_core_s": {"dist": "exponential", "mean": 20}}
    a = list(gen(cores=1, **rest).tasks(rng(9)))
    b = list(gen(cores={"dist": "uniform", "low": 1, "high": 4},
                 walltime_s={"dist": "uniform", "low": 10, "high": 20}, **rest).tasks(rng(9)))
    assert [(t.arrival_s, t.mem_mb, t.work_core_s) for t in a] == [
        (t.arrival_s, t.mem_mb, t.work_core_s) for t in b]
    assert {t.cores for t in a} == {1} and len({t.cores for t in b}) == 4


def test_poisson_arrivals() -> None:
    tasks = list(gen(count=50_000, arrival={"rate_per_s": 0.5}, start_s=100).tasks(rng(2)))
    gaps = np.diff([100.0] + [t.arrival_s for t in tasks])
    assert gaps.min() >= 0
    assert close(gaps.mean(), 2.0, 2.0 / math.sqrt(len(gaps)))
    assert tasks[0].arrival_s > 100  # one interarrival time after start_s


def test_interarrival_distribution_and_other_fields() -> None:
    g = gen(count=5, arrival={"interarrival_s": 10}, start_s=5, kind="memory", tenant="lab",
            priority=-2, walltime_s=99)
    tasks = list(g.tasks(rng()))
    assert [t.arrival_s for t in tasks] == [15, 25, 35, 45, 55]
    assert {(t.kind, t.tenant, t.priority, t.walltime_s) for t in tasks} == {("memory", "lab", -2, 99.0)}


def test_an_endless_generator_keeps_going() -> None:
    g = gen(count=None, arrival={"rate_per_s": 10})
    assert g.count is None
    tasks = list(islice(g.tasks(rng()), 3 * CHUNK + 7))
    assert [t.id for t in tasks] == list(range(1, 3 * CHUNK + 8))
    arrivals = [t.arrival_s for t in tasks]
    assert arrivals == sorted(arrivals)


def test_zero_interarrival_means_a_batch_at_start() -> None:
    tasks = list(gen(count=4, arrival={"interarrival_s": 0}, start_s=7).tasks(rng()))
    assert [t.arrival_s for t in tasks] == [7.0] * 4


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 600),
       rate=st.floats(1e-3, 1e3), lo=st.integers(1, 8), span=st.integers(0, 8),
       mem=st.lists(st.integers(1, 1 << 20), min_size=1, max_size=5),
       sd=st.floats(0.01, 100), start=st.floats(0, 1e6))
def test_generated_tasks_are_in_order_and_within_bounds(seed: int, count: int, rate: float, lo: int,
                                                       span: int, mem: list[int], sd: float,
                                                       start: float) -> None:
    g = gen(count=count, arrival={"rate_per_s": rate}, start_s=start,
            cores={"dist": "uniform", "low": lo, "high": lo + span},
            mem_mb={"dist": "choice", "values": mem},
            work_core_s={"dist": "normal", "mean": 5, "sd": sd, "max": 50})
    tasks = list(g.tasks(rng(seed)))
    assert [t.id for t in tasks] == list(range(1, count + 1))
    arrivals = [t.arrival_s for t in tasks]
    assert arrivals == sorted(arrivals) and arrivals[0] >= start
    assert all(lo <= t.cores <= lo + span and isinstance(t.cores, int) for t in tasks)
    assert all(t.mem_mb in mem for t in tasks)
    assert all(0 <= t.work_core_s <= 50 for t in tasks)
    cores_max, mem_max = g.max_request()
    assert max(t.cores for t in tasks) <= cores_max and max(t.mem_mb for t in tasks) <= mem_max


# ---------------------------------------------------------------- task lists
def test_a_task_list_is_sorted_by_arrival_then_id() -> None:
    w = workload({"tasks": [
        {"arrival_s": 5, "cores": 1, "mem_mb": 10, "work_core_s": 1},
        {"id": 10, "arrival_s": 0, "cores": 2, "mem_mb": 20, "work_core_s": 2, "walltime_s": 9},
        {"arrival_s": 0, "cores": 1, "mem_mb": 30, "work_core_s": 0, "kind": "sleep", "tenant": "x"},
    ]})
    assert isinstance(w, TaskList) and w.count == 3
    assert [(t.id, t.arrival_s) for t in w.items] == [(3, 0.0), (10, 0.0), (1, 5.0)]
    assert w.positions == {1: 0, 10: 1, 3: 2}
    assert w.max_request() == (2, 30)
    first = list(w.tasks(rng()))
    first[0].start_s = 99.0  # a run mutates its tasks ...
    assert next(iter(w.tasks(rng()))).start_s == -1.0  # ... the next run starts afresh


def test_an_empty_task_list() -> None:
    w = workload({"tasks": []})
    assert w.count == 0 and list(w.tasks(rng())) == [] and w.max_request() == (0, 0)


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
    ("count: 10", "count: 10\n    kind: gpu", 7, f"{G}.kind", "expected one of cpu, memory, io, sleep, command, got 'gpu'"),
    ("count: 10", "count: 10\n    priority: high", 7, f"{G}.priority", "expected an integer, got 'high'"),
    ("count: 10", "count: 10\n    start_s: -1", 7, f"{G}.start_s", "expected a non-negative number, got -1"),
    ("count: 10", "count: 10\n    walltime_s: 0", 7, f"{G}.walltime_s", "expected a positive number, got 0"),
    ("{rate_per_s: 0.5}", "{rate_per_s: 0}", 7, f"{G}.arrival.rate_per_s", "expected a positive number, got 0"),
    ("{rate_per_s: 0.5}", "{rate_per_s: -2}", 7, f"{G}.arrival.rate_per_s", "expected a positive number, got -2"),
    ("{rate_per_s: 0.5}", "{}", 7, f"{G}.arrival", "give exactly one of rate_per_s (Poisson arrivals) or interarrival_s"),
    ("{rate_per_s: 0.5}", "{rate_per_s: 1, interarrival_s: 1}", 7, f"{G}.arrival", "give exactly one of"),
    ("{rate_per_s: 0.5}", "{interarrival_s: -1}", 7, f"{G}.arrival.interarrival_s",
     "expected a non-negative number, got -1"),
    ("{rate_per_s: 0.5}", "{rate: 0.5}", 7, f"{G}.arrival.rate", "unknown key (expected one of: rate_per_s, interarrival_s)"),
    ("    count: 10\n", "", 5, G, "an endless generator (no count) needs horizon_s"),
    ("    count: 10\n    arrival: {rate_per_s: 0.5}", "    arrival: {interarrival_s: 0}", 6,
     f"{G}.arrival.interarrival_s", "an endless generator needs interarrival times above zero"),
    ("    mem_mb: {dist: uniform, low: 64, high: 512}\n", "", 5, G, "missing key 'mem_mb'"),
    ("  generator:\n", "  generatr:\n", 5, "workload.generatr", "unknown key (expected one of: generator, tasks)"),
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
        (head + tasks.replace("arrival_s: 1", "arrival_s: -1"), 7, f"{T}[1].arrival_s",
         "expected a non-negative number, got -1"),
        (head + tasks.replace("cores: 2", "cores: 0"), 7, f"{T}[1].cores", "expected a positive integer, got 0"),
        (head + tasks.replace("work_core_s: 5}\n    - {id", "work_core_s: -5}\n    - {id"), 6,
         f"{T}[0].work_core_s", "expected a non-negative number, got -5"),
        (head + tasks.replace("cores: 2,", "cores: 2, gpus: 1,"), 7, f"{T}[1].gpus", "unknown key"),
        (head + tasks.replace("cores: 2, mem_mb: 100,", "cores: 2,"), 7, f"{T}[1]", "missing key 'mem_mb'"),
        (head + "workload:\n  tasks: {a: 1}\n", 5, T, "expected a list, got a mapping"),
        (head + "workload:\n  tasks: []\n  generator: {}\n", 4, "workload", "give exactly one of generator or tasks"),
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
