"""Live mode on a local testbed of real processes: the same decisions as the simulation, faults,
resume.

Each test starts a master and three agents on loopback (``start_local_testbed``)
and replays a small scenario of ``sleep`` tasks, whose durations are exact, with
``rpiaas run --live``'s code.  Tolerances are in scenario seconds (timescale 1).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.tests.helpers import clean_env
from agent.tests.test_openapi import ServedApp
from rpiaas.cli import main
from rpiaas.client.client import run_live
from rpiaas.master import create_app, load_master_config
from rpiaas.master.keys import REGISTRY
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate
from rpiaas.testbed.local import LocalTestbed, start_local_testbed

from ..helpers import check_summary

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# How far a live start or end may be from the simulated one (scenario seconds).  Measured here:
# on a quiet machine starts and ends within ~60 ms (each push and start adds a few ms
# along a chain of queued tasks); a busy one adds more.
TOLERANCE_S = 0.2
# No two simulated event times closer than this, so wall-clock jitter cannot reorder them.
SEPARATION_S = 0.099


# The local testbed's three nodes, modelled with two cores each (its agents admit a Pi 4B's four).
CLUSTER = {"node_types": {"pi2": {"base": "rpi4b", "cores": 2}},
           "clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 3,
                         "type": "pi2"}]}


def _scenario(path: Path, cluster: Path | dict[str, Any], tasks: list[dict[str, Any]],
              **extra: Any) -> Path:
    doc = {"name": path.stem, "seed": 7, "sample_interval_s": 0.5,
           "cluster": cluster if isinstance(cluster, dict) else str(cluster),
           "workload": {"tasks": tasks}, "policy": "best_fit", **extra}
    path.write_text(json.dumps(doc, indent=1))
    return path


def _rows(run: Path) -> dict[int, dict[str, str]]:
    with open(run / "tasks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    ids = [int(r["task_id"]) for r in rows]
    assert len(ids) == len(set(ids)), f"a task has more than one row: {sorted(ids)}"
    return {int(r["task_id"]): r for r in rows}


def utilization_from_tasks(run: Path, total_cores: int) -> float:
    """cores x (end - start) of every task that ran, over total cores x the run's duration."""
    record = json.loads((run / "run.json").read_text())
    busy = sum(int(r["cores"]) * (float(r["end_s"]) - float(r["start_s"]))
               for r in _rows(run).values() if r["start_s"] and r["end_s"])
    return busy / (total_cores * record["summary"]["duration_s"])


def _decisions(run: Path, name: str = "events.jsonl") -> list[tuple[Any, ...]]:
    """The control plane's events and actions (or its decision trace) without their times."""
    out = []
    for line in (run / name).read_text().splitlines():
        rec = json.loads(line)
        # (live, a decision also records the measured utilisation the policy saw)
        out.append(tuple(sorted((k, str(v)) for k, v in rec.items()
                                if k not in ("t", "reason", "utilization"))))
    return out


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTestbed]:
    with start_local_testbed(tmp_path_factory.mktemp("tb"), 3, poll_interval_s=0.25) as tb:
        yield tb


# Three nodes of two cores: ten tasks, seven of which queue; no arrival or end within 0.1 s of
# another (a start coincides with the arrival or end that caused it).
EQUIVALENCE_TASKS = [
    {"id": i + 1, "arrival_s": a, "cores": c, "mem_mb": 128, "work_core_s": w}
    for i, (a, c, w) in enumerate([(0.2, 2, 3.4), (0.6, 2, 2.28), (0.8, 2, 2.74), (1.1, 2, 3.1),
                                   (1.3, 2, 3.28), (1.6, 2, 2.54), (2.0, 1, 1.41), (2.4, 2, 3.3),
                                   (2.7, 2, 1.3), (3.1, 2, 3.54)])
]


def test_live_makes_the_simulations_decisions(testbed: LocalTestbed, tmp_path: Path) -> None:
    path = _scenario(tmp_path / "equivalence.json", CLUSTER, EQUIVALENCE_TASKS,
                     decision_trace=True)
    scenario = load_scenario(path)
    _, sim_dir = simulate(scenario, tmp_path / "sim")
    assert sim_dir is not None
    sim = _rows(sim_dir)
    times = sorted(float(r[k]) for r in sim.values() for k in ("arrival_s", "end_s"))
    # the test's own premise
    assert min(b - a for a, b in itertools.pairwise(times)) >= SEPARATION_S
    assert sum(float(r["wait_s"]) > 0 for r in sim.values()) >= 5  # tasks queue

    _, live_dir = run_live(scenario, testbed.master_url, testbed.master_token, tmp_path / "live",
                           quiet=True)
    live = _rows(live_dir)
    record = json.loads((live_dir / "run.json").read_text())
    assert record["mode"] == "live" and record["live"]["task_kind"] == "sleep"
    assert set(live) == set(sim)
    worst = {"start": 0.0, "end": 0.0}
    for tid, s in sim.items():
        lv = live[tid]
        assert (lv["node"], lv["state"]) == (s["node"], "completed"), (tid, lv, s)
        for key in ("start", "end"):
            diff = abs(float(lv[f"{key}_s"]) - float(s[f"{key}_s"]))
            worst[key] = max(worst[key], diff)
    print(f"largest live-vs-sim difference: start {worst['start'] * 1000:.1f} ms, "
          f"end {worst['end'] * 1000:.1f} ms")
    assert worst["start"] <= TOLERANCE_S and worst["end"] <= TOLERANCE_S, worst
    # the same control-plane events and actions, in the same order, and the same decision trace
    assert _decisions(live_dir) == _decisions(sim_dir)
    assert _decisions(live_dir, "decisions.jsonl") == _decisions(sim_dir, "decisions.jsonl")
    assert len((live_dir / "decisions.jsonl").read_text().splitlines()) >= len(EQUIVALENCE_TASKS)
    with open(live_dir / "nodes.csv", newline="") as f:
        nodes = list(csv.DictReader(f))
    assert {r["node"] for r in nodes} == {n.name for n in scenario.cluster.nodes}
    assert all(float(r["power_w"]) > 0 for r in nodes) and record["summary"]["energy_j"] > 0
    # what the policy saw is recorded: the measured utilisation of the chosen node
    placed = [json.loads(x) for x in (live_dir / "decisions.jsonl").read_text().splitlines()]
    assert all(0 <= r["utilization"][r["chosen"]] <= 1 for r in placed if r.get("chosen"))
    # the utilisation in run.json is what tasks.csv says
    assert record["summary"]["mean_utilization"] == pytest.approx(
        utilization_from_tasks(live_dir, sum(n.type.cores for n in scenario.cluster.nodes)),
        rel=0.01)
    # the simulated twin: same placements, figures within the tolerance above
    fid = json.loads((live_dir / "fidelity.json").read_text())
    assert fid["placement"] == {"tasks": 10, "same_node": 10, "agreement": 1.0}
    assert abs(fid["metrics"]["makespan_s"]["diff"]) <= TOLERANCE_S
    assert fid["metrics"]["makespan_s"]["sim"] == json.loads(
        (sim_dir / "run.json").read_text())["summary"]["makespan_s"]


def test_unknown_nodes_and_a_wrong_token_are_refused(testbed: LocalTestbed, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("clusters:\n  - {domain: elsewhere.test, prefix: 127.0.2, count: 2, "
                       "type: rpi3b}\n")
    path = _scenario(tmp_path / "unknown.json", cluster, EQUIVALENCE_TASKS[:2])
    common = ["--live", "--master", testbed.master_url, "--out", str(tmp_path / "out"), "-q"]
    assert main(["run", str(path), *common, "--token-file", str(testbed.master_token_file)]) == 2
    err = capsys.readouterr().err
    assert "nodes this master does not know: node1.elsewhere.test, node2.elsewhere.test" in err
    bad = tmp_path / "bad-token"
    bad.write_text("not-the-token")
    good = _scenario(tmp_path / "good.json", CLUSTER, EQUIVALENCE_TASKS[:2])
    assert main(["run", str(good), *common, "--token-file", str(bad)]) == 2
    assert "HTTP 401" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with urllib.request.urlopen(testbed.master_url + "/api/v1/runs", timeout=5) as r:
        runs = json.loads(r.read())["runs"]
    assert all(not r["id"].startswith("out") for r in runs)  # nothing started (a run is named as --out)


LONG_TASKS = [{"id": i + 1, "arrival_s": 0.1 * i, "cores": 1, "mem_mb": 64, "work_core_s": 2.5}
              for i in range(6)]


def test_a_killed_agent_fails_or_retries_its_tasks_and_the_run_completes(tmp_path: Path) -> None:
    with start_local_testbed(tmp_path / "tb", 3, poll_interval_s=0.25) as tb:
        path = _scenario(tmp_path / "fault.json", CLUSTER, LONG_TASKS, retries=1)
        scenario = load_scenario(path)
        victim = scenario.cluster.nodes[1].name
        done: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: done.update(out=run_live(
            scenario, tb.master_url, tb.master_token, tmp_path / "live", quiet=True)))
        thread.start()
        time.sleep(1.2)  # every task has started, none has ended
        os.kill(tb.agents[victim].pid, signal.SIGKILL)
        thread.join(60)
        assert not thread.is_alive() and "out" in done, "the run did not complete"
        run_dir = done["out"][1]
    rows = _rows(run_dir)
    assert set(rows) == {t["id"] for t in LONG_TASKS}  # exactly one final row each
    lost = [r for r in rows.values() if int(r["attempts"]) == 2]
    assert lost and all(r["node"] != victim and r["state"] == "completed" for r in lost), rows
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert any(e.get("ev") == "node_down" and e.get("node") == victim for e in events), events
    assert sum(1 for e in events if e.get("act") == "retry") == len(lost)
    # the summary counts the lost node, the attempts lost with it and their retries, as the files say
    summary = check_summary(run_dir, {n.type.name: n.type.cores for n in scenario.cluster.nodes})
    assert summary["faults_node_down"] >= 1 and summary["retries"] == summary["kills_node_lost"] == len(lost)
    assert sum(f["tasks"] for f in summary["by_node_type"].values()) == len(LONG_TASKS)


def _master_cmd(tb: LocalTestbed, *extra: str) -> list[str]:
    exe = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    assert exe
    return [exe, "master", str(tb.dir / "master.yaml"), "--port", str(tb.master.port), *extra]


def _agent_task_ids(tb: LocalTestbed) -> list[str]:
    ids = []
    for name, proc in tb.agents.items():
        req = urllib.request.Request(proc.url + "/tasks",
                                     headers={"Authorization": f"Bearer {tb.node_token(name)}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            ids += [t["id"] for t in json.loads(r.read())["tasks"]]
    return ids


def test_a_killed_master_resumes_the_run_without_losing_or_repeating_a_task(tmp_path: Path) -> None:
    tasks = [{"id": i + 1, "arrival_s": 0.4 * i, "cores": 1, "mem_mb": 64,
              "work_core_s": 0.9 + 0.1 * (i % 4)} for i in range(10)]
    with start_local_testbed(tmp_path / "tb", 3, poll_interval_s=0.25) as tb:
        scenario = load_scenario(_scenario(tmp_path / "resume.json", CLUSTER, tasks))
        done: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: done.update(out=run_live(
            scenario, tb.master_url, tb.master_token, tmp_path / "live", quiet=True,
            poll_s=0.2)))
        thread.start()
        time.sleep(1.5)
        os.kill(tb.master.pid, signal.SIGKILL)  # mid-run: tasks running, tasks still to come
        time.sleep(1.5)  # some tasks end while no master listens
        log = tb.dir / "logs" / "master-resumed.log"
        with log.open("wb") as out:
            master = subprocess.Popen(_master_cmd(tb, "--resume"), stdout=out,
                                      stderr=subprocess.STDOUT, env=clean_env(),
                                      start_new_session=True)
        try:
            thread.join(60)
            assert not thread.is_alive() and "out" in done, log.read_text()
            run_dir = done["out"][1]
            started = _agent_task_ids(tb)
        finally:
            master.send_signal(signal.SIGTERM)
            master.wait(20)
    assert "resumed 1 live runs" in log.read_text()
    rows = _rows(run_dir)
    assert set(rows) == {t["id"] for t in tasks}
    assert all(r["state"] == "completed" and r["attempts"] == "1" for r in rows.values()), rows
    # every task ran once: one agent task per task, whatever the restart
    per_task = [i.rsplit(".", 2)[1] for i in started]  # RUN.TASK.EPOCH; this testbed ran one run
    assert sorted(per_task, key=int) == sorted((str(t["id"]) for t in tasks), key=int)
    for tid, r in rows.items():
        runtime = tasks[tid - 1]["work_core_s"]
        assert abs(float(r["end_s"]) - float(r["start_s"]) - runtime) < 0.1, (tid, r)
    # the resumed control plane, fed the journal, counts as the one that died would have
    summary = check_summary(run_dir, {n.type.name: n.type.cores for n in scenario.cluster.nodes})
    assert sum(f["completed"] for f in summary["by_node_type"].values()) == len(tasks)


def _slow_proxy(target: str, delay_s: float) -> web.Application:
    """Forwards every request to the agent at ``target``; ``POST /tasks`` only after ``delay_s``."""
    async def forward(request: web.Request) -> web.Response:
        if request.method == "POST" and request.path == "/tasks":
            await asyncio.sleep(delay_s)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        async with aiohttp.ClientSession() as session, session.request(
                request.method, target + request.path_qs, data=await request.read(),
                headers=headers) as resp:
            return web.Response(body=await resp.read(), status=resp.status,
                                content_type=resp.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def test_a_slow_agent_never_stalls_the_decisions_for_the_others(tmp_path: Path) -> None:
    delay_s = 1.0
    with start_local_testbed(tmp_path / "tb", 3, poll_interval_s=0.25) as tb:
        names = sorted(tb.agents)
        slow = names[2]
        with ServedApp(_slow_proxy(tb.agents[slow].url, delay_s)) as proxy:
            config = load_master_config(tb.dir / "master.yaml")
            host, port = proxy.url.removeprefix("http://").split(":")
            agents = {**config.agents, slow: (host, int(port))}
            config = dataclasses.replace(config, agents=agents, runs_dir=str(tmp_path / "runs"),
                                         store=str(tmp_path / "second-master.db"))
            with ServedApp(create_app(config)) as master:
                tasks = [{"id": i + 1, "arrival_s": 0.2 * i, "cores": 1, "mem_mb": 64,
                          "work_core_s": 0.6} for i in range(9)]
                doc = {"name": "slow", "seed": 1, "cluster": CLUSTER,
                       "workload": {"tasks": tasks}, "policy": "round_robin"}
                path = tmp_path / "slow.json"
                path.write_text(json.dumps(doc))
                deadline = time.monotonic() + 10
                while not all(e.online for e in master.apps[0][REGISTRY]):
                    assert time.monotonic() < deadline, "the nodes did not come online"
                    time.sleep(0.05)
                _, run_dir = run_live(load_scenario(path), master.url, tb.master_token,
                                      tmp_path / "live", quiet=True)
    rows = _rows(run_dir)
    assert {r["node"] for r in rows.values()} == set(names)  # round robin: every node gets some
    for r in rows.values():
        wait = float(r["wait_s"])
        if r["node"] == slow:  # its starts are late by the proxy's delay ...
            assert wait >= delay_s - 0.05, r
        else:  # ... and nobody else's are
            assert wait < 0.15, r
        assert r["state"] == "completed"


def test_the_live_local_scenario_replays_on_the_local_testbed(
        testbed: LocalTestbed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``scenarios/live-local.yaml`` as the README runs it, four times faster."""
    scenario = Path(__file__).parents[2] / "scenarios" / "live-local.yaml"
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--live", "--master", testbed.master_url, "--token-file",
                 str(testbed.master_token_file), "--timescale", "0.25", "--out", str(out)]) == 0
    assert "live-local · best_fit · queue fcfs · seed 11 · live" in capsys.readouterr().out
    rows = _rows(out)
    assert len(rows) == 40 and all(r["state"] == "completed" for r in rows.values())
    assert {p.name for p in out.iterdir()} >= {"run.json", "tasks.csv", "nodes.csv", "events.jsonl",
                                                "timing.json"}
    # every figure says where it comes from: the local testbed's nodes are switched (the process
    # driver: an agent's start is its boot), none is metered
    record = json.loads((out / "run.json").read_text())
    assert record["sources"] == {"utilization": "allocated", "cpu_utilization": "measured",
                                 "power_w": "modelled-from-measured", "energy_j": "modelled-from-measured",
                                 "boot_s": "measured", "switching": "switched", "pull_s": "measured"}
    assert {n["energy_source"] for n in record["nodes"]} == {"modelled-from-measured"}
    summary = record["summary"]
    assert summary["power_cycles"] == summary["boots"] == 0 and summary["boot_s_median"] is None
    assert 0 <= summary["mean_cpu_utilization"] <= 1
    # nodes.csv: utilization is the allocated share of the cores (reserved / cores), in both worlds
    with (out / "nodes.csv").open() as f:
        series = list(csv.DictReader(f))
    cores = {n["node"]: load_scenario(scenario).cluster.nodes[i].type.cores
             for i, n in enumerate(record["nodes"])}
    assert all(float(r["utilization"]) == int(r["cores_used"]) / cores[r["node"]] for r in series)
    assert {r["power_source"] for r in series} == {"modelled-from-measured"}
    assert any(r["cpu_utilization"] != r["utilization"] for r in series)  # measured, not allocated


def test_a_trace_scenario_is_sent_as_the_tasks_it_makes(tmp_path: Path) -> None:
    """The master need not have the trace file: it gets the tasks, and draws the same ones."""
    from rpiaas.sim.engine import rng_streams

    scenario = load_scenario(Path(__file__).parents[2] / "scenarios" / "trace-replay.yaml")
    payload = scenario.payload()
    assert set(payload["workload"]) == {"tasks"}
    path = tmp_path / "sent.json"
    path.write_text(json.dumps(payload))
    sent = load_scenario(path)

    def tasks(sc: Any) -> list[tuple[Any, ...]]:
        return [(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s, t.walltime_s)
                for t in sc.workload.tasks(rng_streams(sc.seed)["workload"])]

    assert tasks(sent) == tasks(scenario) and len(tasks(sent)) == 150
