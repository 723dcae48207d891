"""Differential suite: scenarios run both in simulation and on the local testbed, and agree.

Each case replays a scenario under ``scenarios/`` live (``sleep`` tasks, four
times faster than real time: well under a minute each) on a local testbed of
real agent and master processes, and checks the live run's own
``fidelity.json`` (its simulated twin) against the tolerances below, which
the test prints with the figures (``pytest -s``).  Tolerances are in the
metric's unit or relative; times are scenario seconds.

With ``sleep`` tasks a node's measured utilisation stays near 0 while its
tasks sleep, so live energy lies between the nodes' idle energy and the
simulation's (which charges reserved cores at full power).  ``least_loaded``
reads the measured utilisation, so it may place differently live: its
placement agreement is printed, and its timing tolerances are looser.
"""

from __future__ import annotations

import csv
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpiaas.client.client import run_live
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate
from rpiaas.testbed.local import LocalTestbed, start_local_testbed

from .test_shell import utilization_from_tasks

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SCENARIOS = Path(__file__).parents[2] / "scenarios"
TIMESCALE = 0.25
# a local testbed's node boots in its agent's start up to its boot report: 0.2 to 0.3 wall
# seconds on a busy 2-core machine, in scenario seconds at TIMESCALE
LOCAL_BOOT_S = 0.3 / TIMESCALE

# (scenario, policy, overrides, tolerances)
# placement: an arrival that comes within a push latency of an end is decided before the end is
# known live, so best fit breaks a tie otherwise than in simulation now and then
STRICT = {"makespan_s": 0.5, "mean_response_s": 0.03, "mean_utilization": 0.03, "placement": 0.6}
LOOSE = {"makespan_s": 2.0, "mean_response_s": 0.10, "mean_utilization": 0.10, "placement": 0.0}
CASES: list[tuple[str, str, list[tuple[str, Any]], dict[str, float]]] = [
    ("live-local", "best_fit", [], STRICT),
    # consolidate switches the agents off and on for real (the process driver): a node's boot is
    # its agent's start, a fraction of a wall second, so the model is given that boot
    ("live-local", "consolidate", [("policy.params.idle_timeout_s", 5), ("policy.params.min_on", 1),
                                   ("cluster.node_types", {"rpi4b-local": {"base": "rpi4b",
                                                                           "boot_s": LOCAL_BOOT_S}}),
                                   ("cluster.clusters.0.type", "rpi4b-local")], STRICT),
    ("live-local", "least_loaded", [], LOOSE),
]


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTestbed]:
    with start_local_testbed(tmp_path_factory.mktemp("tb"), 3, poll_interval_s=0.25) as tb:
        yield tb


@pytest.mark.parametrize(("name", "policy", "overrides", "tol"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_live_and_simulated_runs_agree(testbed: LocalTestbed, tmp_path: Path, name: str,
                                       policy: str, overrides: list[tuple[str, Any]],
                                       tol: dict[str, float]) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml", overrides=overrides, policy=policy)
    _, out = run_live(scenario, testbed.master_url, testbed.master_token, tmp_path / "live",
                      timescale=TIMESCALE, quiet=True)
    record = json.loads((out / "run.json").read_text())
    fid = json.loads((out / "fidelity.json").read_text())
    m = fid["metrics"]
    placement = fid["placement"]
    # the least energy the nodes could use: idle all along (or off, for a policy that switches
    # nodes off); sleeping tasks use no CPU, so live lies between that and the simulation
    floor_w = sum(n.type.power_off_w if scenario.policy.name == "consolidate" else n.type.power_idle_w
                  for n in scenario.cluster.nodes)
    idle_j = floor_w * record["summary"]["duration_s"]
    print(f"\n{name} / {policy} (sleep tasks, timescale {TIMESCALE}):")
    print(f"  {'metric':<18}{'sim':>12}{'live':>12}{'diff':>10}{'rel':>9}  tolerance")
    for key in ("makespan_s", "mean_wait_s", "p95_wait_s", "mean_response_s", "p95_response_s",
                "mean_utilization", "energy_j"):
        row = m[key]
        rel = "—" if row["rel"] is None else f"{row['rel'] * 100:+.2f}%"
        limit = {"makespan_s": f"|diff| <= {tol['makespan_s']} s",
                 "mean_response_s": f"|rel| <= {tol['mean_response_s']:.0%} or 2 x p95 lag",
                 "mean_utilization": f"|rel| <= {tol['mean_utilization']:.0%}",
                 "energy_j": f"floor {idle_j:.0f} J <= live <= sim"}.get(key, "(shown)")
        print(f"  {key:<18}{row['sim']:>12.5g}{row['live']:>12.5g}{row['diff']:>10.4g}{rel:>9}  {limit}")
    print(f"  placement: {placement['same_node']} of {placement['tasks']} tasks on the same node "
          f"(tolerance >= {tol['placement']:.0%})")

    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    on_at = {e["node"]: e["t"] for e in events if e.get("act") == "power_on"}
    boots = [e["t"] - on_at[e["node"]] for e in events if e.get("ev") == "booted"]
    if boots:
        print(f"  boots (scenario s): {', '.join(f'{b:.2f}' for b in boots)}; modelled "
              f"{scenario.cluster.nodes[0].type.boot_s:g}")
    assert record["summary"]["completed"] == record["summary"]["tasks"] == 40
    assert placement["tasks"] == 40
    assert abs(m["makespan_s"]["diff"]) <= tol["makespan_s"]
    # a response may also be off by the testbed's own jitter (its p95 start lag, measured in
    # this run): a loaded machine delays every start, and that is no error of the model
    jitter_s = record["live"]["start_lag_s"]["p95"] or 0.0
    allowed_s = max(tol["mean_response_s"] * m["mean_response_s"]["sim"], 2 * jitter_s)
    print(f"  mean response: |diff| {abs(m['mean_response_s']['diff']):.4f} s, allowed {allowed_s:.4f} s "
          f"(p95 start lag {jitter_s:.4f} s)")
    assert abs(m["mean_response_s"]["diff"]) <= allowed_s
    assert abs(m["mean_utilization"]["rel"]) <= tol["mean_utilization"]
    assert idle_j * 0.98 <= m["energy_j"]["live"] <= m["energy_j"]["sim"] * 1.02
    assert placement["agreement"] >= tol["placement"]
    # the run's own figures agree with its own tasks.csv
    cores = sum(n.type.cores for n in scenario.cluster.nodes)
    assert record["summary"]["mean_utilization"] == pytest.approx(
        utilization_from_tasks(out, cores), rel=0.01)


def _start_on_agent(tb: LocalTestbed, node: str, spec: dict[str, Any]) -> None:
    """A task started on one agent behind the master's back: load the run does not know of."""
    body = json.dumps(spec).encode()
    req = urllib.request.Request(tb.agents[node].url + "/tasks", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {tb.node_token(node)}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201


def _measured_cpu(tb: LocalTestbed, node: str) -> float:
    with urllib.request.urlopen(f"{tb.master_url}/api/v1/nodes/{node}", timeout=10) as r:
        sample = json.load(r)["sample"]
    return float(sample["cpu_util"]) if sample else 0.0


def test_least_loaded_sees_the_measured_load_live(testbed: LocalTestbed, tmp_path: Path) -> None:
    """Node 1 is kept busy by work the run does not know of: in simulation least_loaded sees
    every node idle and takes node 1 (the first); live it sees node 1's measured CPU and
    goes elsewhere, and the decision trace says what it saw."""
    busy = sorted(testbed.agents)[0]
    _start_on_agent(testbed, busy, {"id": "outside-load", "kind": "cpu", "cores": 2,
                                    "work_core_s": 120})
    deadline = time.monotonic() + 30
    while _measured_cpu(testbed, busy) < 0.05:  # (a loaded machine gives the task less CPU)
        assert time.monotonic() < deadline, "the outside load never showed on the master"
        time.sleep(0.25)
    tasks = [{"id": i + 1, "arrival_s": 1.0 * i, "cores": 1, "mem_mb": 64, "work_core_s": 0.5}
             for i in range(5)]
    path = tmp_path / "ll.json"
    path.write_text(json.dumps({
        "name": "least-loaded", "seed": 3, "decision_trace": True,
        "cluster": {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 3,
                                  "type": "rpi4b"}]},
        "workload": {"tasks": tasks}, "policy": "least_loaded"}))
    scenario = load_scenario(path)
    _, sim_dir = simulate(scenario, tmp_path / "sim")
    _, live_dir = run_live(scenario, testbed.master_url, testbed.master_token, tmp_path / "live",
                           quiet=True)
    assert sim_dir is not None
    with open(sim_dir / "tasks.csv") as f:
        sim_nodes = {r["node"] for r in csv.DictReader(f)}
    with open(live_dir / "tasks.csv") as f:
        live_nodes = [r["node"] for r in csv.DictReader(f)]
    assert sim_nodes == {busy}  # every node idle in the model: the first one
    assert busy not in live_nodes and len(live_nodes) == 5, live_nodes
    seen = [json.loads(x)["utilization"] for x in (live_dir / "decisions.jsonl").read_text().splitlines()]
    assert all(u[busy] > max(v for k, v in u.items() if k != busy) for u in seen), seen
