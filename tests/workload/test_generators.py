"""Generated workloads: each distribution against theory, clipping and rounding, the generator's
streams (a seed's tasks do not depend on count or on the other fields)."""

from __future__ import annotations

import math
from itertools import islice
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rpiaas.inputs.source import Source
from rpiaas.workload import Distribution, Generator, parse_workload
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


def test_equal_memory_sizes_share_one_int() -> None:
    """A waiting task holds no int of its own for its memory: tasks of the same ``mem_mb``
    share one object, and a task costs that much less (the queue of a long run holds
    millions of them)."""
    import tracemalloc

    g = gen(count=50_000, mem_mb={"dist": "uniform", "low": 512, "high": 4096})
    tracemalloc.start()
    try:
        tasks = list(g.tasks(rng()))
        per_task_b = tracemalloc.get_traced_memory()[0] / len(tasks)
    finally:
        tracemalloc.stop()
    first: dict[int, int] = {}
    for t in tasks:
        assert t.mem_mb is first.setdefault(t.mem_mb, t.mem_mb)
    assert 3000 < len(first) <= 3585
    # Task 168 B, its id 32 B, arrival and work 24 B each, the list's pointer 8 B: 256 B, and the
    # table's and the list's slack: 272 B measured, 301 B with an int of its own for the memory
    assert per_task_b < 286, per_task_b


def test_shared_ints_are_the_values() -> None:
    """The table grows to the largest value seen; values at or past SHARED_INTS, or negative,
    come as they are (the table stays bounded); every list equals ``tolist()``."""
    from rpiaas.workload.generators import SHARED_INTS, shared_ints

    table = np.empty(0, dtype=object)
    a = np.array([5, 3, 5, 700], dtype=np.int64)
    got, table = shared_ints(a, table)
    assert got == [5, 3, 5, 700] and got[0] is got[2] and len(table) == 701
    got, table = shared_ints(np.array([2, 9], dtype=np.int64), table)
    assert got == [2, 9] and len(table) == 701 and got[1] is table[9]
    for wild in ([SHARED_INTS, 1], [-1, 4]):
        got, table = shared_ints(np.array(wild, dtype=np.int64), table)
        assert got == wild and len(table) == 701
    assert shared_ints(np.array([], dtype=np.int64), table)[0] == []
    g = gen(count=3 * CHUNK, mem_mb={"dist": "uniform", "low": 1, "high": 10**6})
    assert all(type(t.mem_mb) is int for t in g.tasks(rng()))
