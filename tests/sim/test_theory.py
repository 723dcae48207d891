"""The simulator against queueing theory (M/M/c), Little's law and exact energy.

c single-core nodes, 1-core tasks, Poisson arrivals, exponential work: an
M/M/c queue.  Waits are compared with Erlang C over seeded replications with
a warm-up cut.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rpiaas.model import Task
from rpiaas.sim import simulate
from rpiaas.sim.engine import Simulation

from ..helpers import cluster, scenario


def erlang_c(c: int, rho: float, mu: float = 1.0) -> tuple[float, float]:
    """P(wait) and mean wait Wq of an M/M/c queue at utilisation ``rho``."""
    a = c * rho
    s = sum(a**k / math.factorial(k) for k in range(c))
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (s + top)
    return p_wait, p_wait / (c * mu - c * rho * mu)


def test_erlang_c_formula_matches_the_published_values() -> None:
    p_wait, wq = erlang_c(8, 0.8)
    assert p_wait == pytest.approx(0.45764, abs=5e-6)
    assert wq == pytest.approx(0.28603, abs=5e-6)


def mmc_scenario(c: int, rho: float, count: int, seed: int) -> dict:
    unit = {"cores": 1, "mem_mb": 1024, "speed": 1.0, "power_idle_w": 1.0, "power_max_w": 2.0}
    return {
        "name": f"mm{c}", "seed": seed,
        "cluster": cluster(c, unit),
        "workload": {"generator": {
            "count": count, "arrival": {"rate_per_s": rho * c},
            "cores": 1, "mem_mb": 1, "work_core_s": {"dist": "exponential", "mean": 1.0}}},
        "policy": "first_fit",
    }


def run_waits(data: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    arrivals: list[float] = []
    waits: list[float] = []

    def collect(t: Task) -> None:
        arrivals.append(t.arrival_s)
        waits.append(t.start_s - t.arrival_s)

    sim = Simulation(scenario(data), on_task=collect)
    summary = sim.run()
    order = np.argsort(arrivals, kind="stable")
    return np.asarray(arrivals)[order], np.asarray(waits)[order], summary


@pytest.mark.slow
def test_mmc_waits_match_erlang_c() -> None:
    c, rho = 8, 0.8
    p_theory, wq_theory = erlang_c(c, rho)
    warmup = 5_000
    reps = [run_waits(mmc_scenario(c, rho, 205_000, seed))[1][warmup:] for seed in range(1, 6)]
    waits = np.concatenate(reps)  # 1M tasks after the warm-up cut
    p_wait = float((waits > 0).mean())
    wq = float(waits.mean())
    # tolerances: at 1M tasks a run lands within about 2% for P(wait), 5% for Wq
    assert p_wait == pytest.approx(p_theory, rel=0.02)
    assert wq == pytest.approx(wq_theory, rel=0.05)
    # and the replications scatter around theory like independent estimates should
    means = np.array([r.mean() for r in reps])
    half_width = 2.776 * means.std(ddof=1) / math.sqrt(len(means))  # t(4) 95%
    assert abs(means.mean() - wq_theory) <= max(half_width, 0.03 * wq_theory)


def test_mm1_and_mm2_utilisation_and_littles_law() -> None:
    for c, rho in ((1, 0.5), (2, 0.7)):
        arrivals, waits, summary = run_waits(mmc_scenario(c, rho, 100_000, seed=7))
        # utilisation law: the busy share of cores (integrated by the power meter) is rho
        assert summary["mean_utilization"] == pytest.approx(rho, rel=0.02)
        p_theory, wq_theory = erlang_c(c, rho)
        assert float(waits[2000:].mean()) == pytest.approx(wq_theory, rel=0.08)
        # Little's law for the waiting line: L_q = lambda W_q, with L_q measured
        # as the time average of the queue length (a sweep over arrival/start)
        starts = arrivals + waits
        times = np.concatenate([arrivals, starts])
        steps = np.concatenate([np.ones_like(arrivals), -np.ones_like(starts)])
        order = np.lexsort((steps, times))
        t, s = times[order], steps[order]
        length = np.cumsum(s)[:-1]
        horizon = t[-1] - t[0]
        lq = float(np.sum(length * np.diff(t)) / horizon)
        lam = len(arrivals) / (arrivals[-1] - arrivals[0])
        assert lq == pytest.approx(lam * float(waits.mean()), rel=0.01)
        assert lq == pytest.approx(p_theory * rho / (1 - rho), rel=0.1)


def test_idle_cluster_energy_is_idle_power_times_time_exactly(tmp_path) -> None:
    data = {"name": "idle", "horizon_s": 3600.0,
            "cluster": {"clusters": [{"count": 3, "type": "rpi4b", "domain": "a.test", "prefix": "10.0.1"},
                                     {"count": 2, "type": "rpi3b", "domain": "b.test", "prefix": "10.0.2"}]},
            "workload": {"tasks": []}, "policy": "best_fit"}
    summary, run = simulate(scenario(data), tmp_path / "run")
    per_node = [n["energy_j"] for n in json.loads((run / "run.json").read_text())["nodes"]]
    assert per_node == [2.7 * 3600.0] * 3 + [1.4 * 3600.0] * 2  # each node exactly
    assert summary["energy_j"] == pytest.approx((3 * 2.7 + 2 * 1.4) * 3600.0, rel=1e-15)
    assert summary["duration_s"] == 3600.0
    assert summary["mean_utilization"] == 0.0


def test_energy_of_one_task_is_integrated_exactly(tmp_path) -> None:
    # rpi4b: idle 2.7 W, max 6.4 W, 4 cores, speed 1.  A 2-core task of 100
    # core-seconds runs 50 s at half utilisation.
    data = {"name": "one", "horizon_s": 100.0, "cluster": cluster(1, "rpi4b"),
            "workload": {"tasks": [{"arrival_s": 10.0, "cores": 2, "mem_mb": 100, "work_core_s": 100.0}]},
            "policy": "first_fit"}
    summary, _run = simulate(scenario(data), tmp_path / "run")
    expected = 2.7 * 100 + (6.4 - 2.7) * 0.5 * 50
    assert summary["energy_j"] == pytest.approx(expected, rel=1e-12)
    assert summary["mean_response_s"] == 50.0
    assert summary["mean_utilization"] == pytest.approx(2 * 50 / (4 * 100), rel=1e-12)
