"""The simulated twin of a live run is the simulation of its scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rpiaas.rundir.fidelity import fidelity
from rpiaas.sim import simulate
from rpiaas.sim.twin import simulate_twin

from ..helpers import cluster, read_tasks, scenario


def test_the_twin_is_the_simulation(tmp_path: Path) -> None:
    doc = {"name": "twin", "seed": 5, "policy": "best_fit", "cluster": cluster(3),
           "workload": {"generator": {"count": 60, "arrival": {"rate_per_s": 0.2}, "cores": 1,
                                      "mem_mb": 64, "work_core_s": {"dist": "exponential", "mean": 20}}}}
    summary, outcomes = simulate_twin(scenario(doc))
    written, path = simulate(scenario(doc), tmp_path / "run")
    assert path is not None and summary == written
    assert summary == json.loads((path / "run.json").read_text())["summary"]
    rows = {int(r["task_id"]): r for r in read_tasks(path)}
    assert set(outcomes) == set(rows)
    for i, o in outcomes.items():
        assert o.node == rows[i]["node"] and o.completed == (rows[i]["state"] == "completed")
        if o.response_s is not None:
            assert o.response_s == pytest.approx(float(rows[i]["response_s"]), abs=1e-9)
    same = fidelity(summary, outcomes, summary, outcomes)
    assert all(m["diff"] in (0.0, None) for m in same["metrics"].values())
    assert same["placement"]["agreement"] == 1.0
