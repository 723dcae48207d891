"""Measured CPU does not depend on the sample interval: every task's CPU time counts.

Thirty CPU-bound tasks of 1 reference core-second each (0.1 to 0.4 s of CPU
on a machine faster than a Pi 4B), one after another on one node of a local
testbed (real agent and master processes on loopback), replayed live at
``sample_interval_s`` 0.5 and 5.  Each node's measured CPU seconds (``cpu_s``
in ``run.json``, from the agents' counters) must agree with the CPU time the
agents measured of each task (``cpu_s`` of its document: its rusage) within
2 %, so the two runs agree within 2 % of what their tasks used.  Sampled utilisation lost most of it: a task
that starts and ends between two samples left no trace.
"""

from __future__ import annotations

import csv
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpiaas.client.client import run_live
from rpiaas.scenario import load_scenario
from rpiaas.testbed.local import LocalTestbed, start_local_testbed

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CLUSTER = {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 2,
                         "type": "rpi4b"}]}
TASKS = [{"arrival_s": round(0.5 * k, 3), "cores": 1, "mem_mb": 64, "work_core_s": 1.0}
         for k in range(30)]


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTestbed]:
    with start_local_testbed(tmp_path_factory.mktemp("tb"), 2, poll_interval_s=0.25) as tb:
        yield tb


def _agent_tasks(tb: LocalTestbed) -> dict[str, dict[str, Any]]:
    """Every task document the agents keep, by its id."""
    docs: dict[str, dict[str, Any]] = {}
    for name, proc in tb.agents.items():
        req = urllib.request.Request(proc.url + "/tasks",
                                     headers={"Authorization": f"Bearer {tb.node_token(name)}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            docs.update({t["id"]: {**t, "node": name} for t in json.loads(r.read())["tasks"]})
    return docs


def _run(tb: LocalTestbed, tmp_path: Path, interval_s: float) -> tuple[dict[str, Any], dict[str, float]]:
    """One live run at ``interval_s``: its record, and its tasks' own CPU seconds per node."""
    path = tmp_path / f"cpu-{interval_s:g}.json"
    path.write_text(json.dumps({"name": path.stem, "seed": 3, "sample_interval_s": interval_s,
                                "cluster": CLUSTER, "workload": {"tasks": TASKS},
                                "policy": "first_fit"}))
    before = set(_agent_tasks(tb))
    _, out = run_live(load_scenario(path), tb.master_url, tb.master_token, tmp_path / path.stem,
                      task_kind="cpu", quiet=True)
    record = json.loads((out / "run.json").read_text())
    own: dict[str, float] = {name: 0.0 for name in tb.agents}
    ran = [d for i, d in _agent_tasks(tb).items() if i not in before]
    assert len(ran) == len(TASKS) and all(d["state"] == "completed" for d in ran)
    for d in ran:
        own[d["node"]] += d["cpu_s"]
    with (out / "nodes.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len({r["time_s"] for r in rows}) >= 2
    return record, own


def test_cpu_seconds_do_not_depend_on_the_sample_interval(testbed: LocalTestbed, tmp_path: Path) -> None:
    fine, own_fine = _run(testbed, tmp_path, 0.5)
    coarse, own_coarse = _run(testbed, tmp_path, 5.0)
    cpu_fine = {n["node"]: n["cpu_s"] for n in fine["nodes"]}
    cpu_coarse = {n["node"]: n["cpu_s"] for n in coarse["nodes"]}
    print(f"\nmeasured CPU s per node at 0.5 s: {cpu_fine}, at 5 s: {cpu_coarse}")
    print(f"the tasks' own CPU s: {own_fine}, {own_coarse}")
    node1 = "node1.local.rpiaas.test"
    # first fit: every task on node1 (one core each, one at a time), and they really computed
    assert own_fine[node1] > 30 * 0.05 and own_coarse[node1] > 30 * 0.05
    for name in cpu_fine:
        # each run measures its tasks' CPU time, whatever the interval
        assert cpu_fine[name] == pytest.approx(own_fine[name], rel=0.02, abs=0.05), name
        assert cpu_coarse[name] == pytest.approx(own_coarse[name], rel=0.02, abs=0.05), name
        # so the two runs agree within 2 % of what their tasks used. The same work itself takes
        # more or less CPU from one run to the next on a machine shared with other jobs (the
        # reference kernel's 75M steps took 5.5 CPU s in one run and 7.2 in the next, at one
        # commit): that measures the machine, which no sample interval can take out, so the
        # runs are compared by what each measured of its own tasks' CPU, not by raw seconds
        ratio_fine = (cpu_fine[name] + 0.05) / (own_fine[name] + 0.05)
        ratio_coarse = (cpu_coarse[name] + 0.05) / (own_coarse[name] + 0.05)
        assert ratio_fine == pytest.approx(ratio_coarse, rel=0.02), name
    for record in (fine, coarse):
        assert record["sources"]["cpu_utilization"] == "measured"
        assert record["sources"]["energy_j"] == "modelled-from-measured"
        assert {n["energy_source"] for n in record["nodes"]} == {"modelled-from-measured"}
        assert record["gaps"] == []
    # and the energy modelled on them is the idle power over the run plus the model's watts per
    # busy core for each CPU second counted: nothing of it depends on the interval either
    t = load_scenario(tmp_path / "cpu-5.json").cluster.nodes[0].type
    for record in (fine, coarse):
        for n in record["nodes"]:
            cpu_j = n["energy_j"] - t.power_idle_w * record["summary"]["duration_s"]
            assert cpu_j == pytest.approx((t.power_max_w - t.power_idle_w) / t.cores * n["cpu_s"],
                                          rel=1e-6, abs=1e-6)
