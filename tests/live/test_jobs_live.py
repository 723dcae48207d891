"""Parallel jobs live, on the local testbed: one agent task per part, started at once.

A master and two agents run as processes on loopback (``start_local_testbed``).  A job
over both nodes runs a part on each: a ``command`` part finds its peers in ``RPIAAS_NODES``,
a ``cpu`` part does its share of the job's work, the job ends with its last part, and the
spread of its parts' starts is in ``run.json``.  An agent killed under a job fails the
job on both nodes: the other part is stopped on its agent.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from agent.tests.helpers import clean_env
from rpiaas.client.client import run_live
from rpiaas.scenario import load_scenario
from rpiaas.testbed.local import LocalTestbed, start_local_testbed

from .test_shell import _master_cmd

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NODES: dict[str, Any] = {"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 2, "type": "pi2"}
CLUSTER: dict[str, Any] = {"node_types": {"pi2": {"base": "rpi4b", "cores": 2}}, "clusters": [NODES]}
NODE1, NODE2 = "node1.local.rpiaas.test", "node2.local.rpiaas.test"

# each part writes what it was given to rank<RANK>.json in its first argument's directory
PEERS = ("import json, os, sys, time\n"
         "env = {k: v for k, v in os.environ.items() if k.startswith('RPIAAS_')}\n"
         "path = os.path.join(sys.argv[1], 'rank' + env['RPIAAS_RANK'] + '.json')\n"
         "open(path, 'w').write(json.dumps(env))\n"
         "time.sleep(0.3)\n")


def _scenario(path: Path, tasks: list[dict[str, Any]], **extra: Any) -> Path:
    doc = {"name": path.stem, "seed": 3, "sample_interval_s": 0.5, "cluster": CLUSTER,
           "workload": {"tasks": tasks}, "policy": "first_fit", **extra}
    path.write_text(json.dumps(doc, indent=1))
    return path


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _agent_tasks(tb: LocalTestbed, name: str) -> list[dict[str, Any]]:
    req = urllib.request.Request(tb.agents[name].url + "/tasks",
                                 headers={"Authorization": f"Bearer {tb.node_token(name)}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        tasks: list[dict[str, Any]] = json.loads(resp.read())["tasks"]
    return tasks


def test_a_command_job_finds_its_peers_and_a_cpu_job_does_its_share(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    tasks: list[dict[str, Any]] = [
        # both nodes, one part each: the parts write what they were told of each other
        {"id": 1, "arrival_s": 0.0, "nodes": 2, "cores": 2, "mem_mb": 64, "work_core_s": 1.0,
         "command": [sys.executable, "-c", PEERS, str(seen)]},
        # the reference kernel, 3 core-seconds split over two parts of one core
        {"id": 2, "arrival_s": 0.5, "nodes": 2, "cores": 1, "mem_mb": 64, "work_core_s": 3.0},
        # the same work on one node, for the CPU time the kernel takes here
        {"id": 3, "arrival_s": 0.5, "cores": 1, "mem_mb": 64, "work_core_s": 3.0},
    ]
    with start_local_testbed(tmp_path / "tb", 2, poll_interval_s=0.25, allow_commands=True) as tb:
        scenario = load_scenario(_scenario(tmp_path / "jobs.json", tasks))
        _, out = run_live(scenario, tb.master_url, tb.master_token, tmp_path / "live",
                          task_kind="scenario", quiet=True)
        # (on the local testbed every agent listens on loopback: the nodes share an address)
        address = {n: urlsplit(tb.agents[n].url).hostname for n in (NODE1, NODE2)}
    rows = {int(r["task_id"]): r for r in _csv(out / "tasks.csv")}
    assert {i: r["state"] for i, r in rows.items()} == {1: "completed", 2: "completed", 3: "completed"}
    assert rows[1]["nodes"] == rows[2]["nodes"] == f"{NODE1};{NODE2}"
    # each part saw the job, its rank and both nodes with their addresses, rank by rank
    told = {r: json.loads((seen / f"rank{r}.json").read_text()) for r in (0, 1)}
    nodes = f"{NODE1}={address[NODE1]},{NODE2}={address[NODE2]}"
    for rank in (0, 1):
        got = {k: told[rank][k] for k in ("RPIAAS_JOB", "RPIAAS_RANK", "RPIAAS_NODES")}
        assert got == {"RPIAAS_JOB": "1", "RPIAAS_RANK": str(rank), "RPIAAS_NODES": nodes}
    # each part its row, with the start and end its agent measured; the job's row starts at
    # its last part's start and ends at its last part's end
    parts = _csv(out / "parts.csv")
    by_job: dict[int, list[dict[str, str]]] = {}
    for p in parts:
        by_job.setdefault(int(p["task_id"]), []).append(p)
    assert sorted(by_job) == [1, 2]
    for job, ps in by_job.items():
        assert [(p["rank"], p["node"]) for p in ps] == [("0", NODE1), ("1", NODE2)]
        starts = [float(p["start_s"]) for p in ps]
        ends = [float(p["end_s"]) for p in ps]
        assert max(starts) == pytest.approx(float(rows[job]["start_s"]), abs=1e-6)
        assert max(ends) == pytest.approx(float(rows[job]["end_s"]), abs=1e-6)
        assert all(s < e for s, e in zip(starts, ends, strict=True))
    assert float(by_job[1][0]["end_s"]) - float(by_job[1][0]["start_s"]) >= 0.3  # the command ran
    spread = json.loads((out / "run.json").read_text())["live"]["part_start_spread_s"]
    print(f"parts' start spread (s): {spread}")
    assert spread["jobs"] == 2 and spread["max"] is not None and 0.0 <= spread["max"] < 1.0, spread
    # the cpu job's parts did half the work each: together as much CPU as the same work on one node
    job_cpu, one_cpu = float(rows[2]["cpu_s"]), float(rows[3]["cpu_s"])
    print(f"cpu job over 2 nodes: {job_cpu:.3f} CPU s; the same work on one node: {one_cpu:.3f} CPU s")
    assert 0.75 * one_cpu <= job_cpu <= 1.5 * one_cpu, (job_cpu, one_cpu)
    assert float(rows[1]["peak_mem_mb"]) > 0


def test_an_agent_killed_under_a_job_fails_it_on_both_nodes(tmp_path: Path) -> None:
    tasks: list[dict[str, Any]] = [
        {"id": 1, "arrival_s": 0.0, "nodes": 2, "cores": 1, "mem_mb": 64, "work_core_s": 120.0},
        {"id": 2, "arrival_s": 0.0, "cores": 1, "mem_mb": 64, "work_core_s": 0.5},
    ]
    with start_local_testbed(tmp_path / "tb", 2, poll_interval_s=0.25) as tb:
        scenario = load_scenario(_scenario(tmp_path / "lost.json", tasks))
        done: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: done.update(out=run_live(
            scenario, tb.master_url, tb.master_token, tmp_path / "live", quiet=True)))
        thread.start()
        parts = _parts_running(tb, job=1, timeout_s=15.0)
        assert sorted(parts) == [NODE1, NODE2]
        os.kill(tb.agents[NODE2].pid, signal.SIGKILL)  # rank 1's node
        thread.join(60)
        assert not thread.is_alive() and "out" in done, "the run did not complete"
        out = done["out"][1]
        # the part on the node that stayed was stopped on its agent
        survivor = {d["id"]: d for d in _agent_tasks(tb, NODE1)}[parts[NODE1]]
        assert survivor["state"] == "killed" and survivor["error"] == "killed on request", survivor
    rows = {int(r["task_id"]): r for r in _csv(out / "tasks.csv")}
    assert rows[1]["state"] == "failed" and rows[1]["nodes"] == f"{NODE1};{NODE2}"
    assert rows[1]["reason"].startswith(f"node lost: {NODE2}"), rows[1]["reason"]
    assert float(rows[1]["end_s"]) - float(rows[1]["start_s"]) < 30.0  # not its modelled 60 s
    assert rows[2]["state"] == "completed"
    parts_rows = _csv(out / "parts.csv")
    assert [(p["task_id"], p["rank"], p["node"]) for p in parts_rows] == [("1", "0", NODE1), ("1", "1", NODE2)]


def test_a_job_whose_node_is_lost_is_retried_whole_on_other_nodes(tmp_path: Path) -> None:
    cluster = {**CLUSTER, "clusters": [{**NODES, "count": 3}]}
    tasks: list[dict[str, Any]] = [
        {"id": 1, "arrival_s": 0.0, "nodes": 2, "cores": 1, "mem_mb": 64, "work_core_s": 6.0}]
    with start_local_testbed(tmp_path / "tb", 3, poll_interval_s=0.25) as tb:
        scenario = load_scenario(_scenario(tmp_path / "retry.json", tasks, cluster=cluster, retries=1))
        done: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: done.update(out=run_live(
            scenario, tb.master_url, tb.master_token, tmp_path / "live", quiet=True)))
        thread.start()
        first = _parts_running(tb, job=1, timeout_s=15.0, count=2)
        assert sorted(first) == [NODE1, NODE2]  # first fit
        os.kill(tb.agents[NODE1].pid, signal.SIGKILL)  # rank 0's node
        thread.join(60)
        assert not thread.is_alive() and "out" in done, "the run did not complete"
        out = done["out"][1]
        on_node2 = {d["id"]: d["state"] for d in _agent_tasks(tb, NODE2) if d["id"].split(".")[1] == "1"}
    # the first attempt's part on node2 was stopped; the retry ran rank 0 there, to its end
    assert on_node2.pop(first[NODE2]) == "killed" and first[NODE2].endswith(".r1"), on_node2
    [(retry_id, state)] = on_node2.items()
    assert retry_id.endswith(".r0") and state == "completed", on_node2
    assert int(retry_id.split(".")[2]) > int(first[NODE2].split(".")[2])  # a later epoch
    node3 = "node3.local.rpiaas.test"
    row = {int(r["task_id"]): r for r in _csv(out / "tasks.csv")}[1]
    assert (row["state"], row["attempts"], row["nodes"]) == ("completed", "2", f"{NODE2};{node3}")
    parts = _csv(out / "parts.csv")
    assert [(p["rank"], p["node"]) for p in parts] == [("0", NODE2), ("1", node3)]
    retried = [e for e in _events(out) if e.get("act") == "retry"]
    assert [e["task"] for e in retried] == [1]


def test_a_part_that_never_reached_its_agent_sends_the_whole_job_back(tmp_path: Path) -> None:
    # the poller asks every 3 s: the job is placed on the killed agent's node before the
    # master could know it is gone
    cluster = {**CLUSTER, "clusters": [{**NODES, "count": 3}]}
    tasks: list[dict[str, Any]] = [
        {"id": 1, "arrival_s": 0.2, "nodes": 2, "cores": 1, "mem_mb": 64, "work_core_s": 2.0}]
    with start_local_testbed(tmp_path / "tb", 3, poll_interval_s=3.0) as tb:
        scenario = load_scenario(_scenario(tmp_path / "dead.json", tasks, cluster=cluster))
        os.kill(tb.agents[NODE1].pid, signal.SIGKILL)  # first fit's first node
        time.sleep(0.2)
        _, out = run_live(scenario, tb.master_url, tb.master_token, tmp_path / "live", quiet=True, poll_s=0.2)
        on_node2 = {d["id"]: d["state"] for d in _agent_tasks(tb, NODE2)}
    node3 = "node3.local.rpiaas.test"
    # no retry spent (retries: 0): the attempt never happened; the job ran on the nodes up
    row = {int(r["task_id"]): r for r in _csv(out / "tasks.csv")}[1]
    assert (row["state"], row["attempts"], row["nodes"]) == ("completed", "1", f"{NODE2};{node3}"), row
    events = _events(out)
    unstarted = [e for e in events if e.get("ev") == "not_started"]
    assert [(e["task"], e["node"]) for e in unstarted] == [(1, NODE1)], events
    assert [e["node"] for e in events if e.get("ev") == "node_down"] == [NODE1]
    # the part that did start, rank 1 on node2, was stopped; the job's next attempt ran rank 0 there
    first = {i: st for i, st in on_node2.items() if i.endswith(".r1")}
    again = {i: st for i, st in on_node2.items() if i.endswith(".r0")}
    assert list(first.values()) == ["killed"] and list(again.values()) == ["completed"], on_node2
    record = json.loads((out / "run.json").read_text())
    assert record["live"]["not_started"] == {"attempts": 1, "tasks": {"1": 1}}


def test_a_master_killed_under_a_job_takes_it_up_again(tmp_path: Path) -> None:
    tasks: list[dict[str, Any]] = [
        {"id": 1, "arrival_s": 0.0, "nodes": 2, "cores": 1, "mem_mb": 64, "work_core_s": 6.0},
        {"id": 2, "arrival_s": 0.5, "nodes": 2, "cores": 1, "mem_mb": 64, "work_core_s": 1.0}]
    with start_local_testbed(tmp_path / "tb", 2, poll_interval_s=0.25) as tb:
        scenario = load_scenario(_scenario(tmp_path / "resume.json", tasks))
        done: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: done.update(out=run_live(
            scenario, tb.master_url, tb.master_token, tmp_path / "live", quiet=True, poll_s=0.2)))
        thread.start()
        _parts_running(tb, job=2, timeout_s=15.0)
        os.kill(tb.master.pid, signal.SIGKILL)  # both jobs run; job 2's parts end while it is down
        time.sleep(1.2)
        log = tb.dir / "logs" / "master-resumed.log"
        with log.open("wb") as f:
            master = subprocess.Popen(_master_cmd(tb, "--resume"), stdout=f, stderr=subprocess.STDOUT,
                                      env=clean_env(), start_new_session=True)
        try:
            thread.join(60)
            assert not thread.is_alive() and "out" in done, log.read_text()
            out = done["out"][1]
        finally:
            master.send_signal(signal.SIGTERM)
            master.wait(20)
    assert "resumed 1 live runs" in log.read_text()
    rows = {int(r["task_id"]): r for r in _csv(out / "tasks.csv")}
    assert {i: (r["state"], r["attempts"]) for i, r in rows.items()} == {1: ("completed", "1"), 2: ("completed", "1")}
    parts = _csv(out / "parts.csv")
    assert sorted((p["task_id"], p["rank"]) for p in parts) == [("1", "0"), ("1", "1"), ("2", "0"), ("2", "1")]
    for p in parts:  # each part's own start and end, from the journal and the agents
        row = rows[int(p["task_id"])]
        assert float(row["start_s"]) - 0.5 <= float(p["start_s"]) <= float(row["start_s"]) + 1e-6
        assert float(p["start_s"]) < float(p["end_s"]) <= float(row["end_s"]) + 1e-6
    spread = json.loads((out / "run.json").read_text())["live"]["part_start_spread_s"]
    assert spread["jobs"] == 2, spread


def _events(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


def _parts_running(tb: LocalTestbed, job: int, timeout_s: float, count: int = 0) -> dict[str, str]:
    """The agent ids of job ``job``'s parts once ``count`` agents (all: 0) run one, by node."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = {}
        for name in tb.agents:
            for t in _agent_tasks(tb, name):
                if t["id"].split(".")[1] == str(job) and t.get("state") == "running":
                    found[name] = t["id"]
        if len(found) == (count or len(tb.agents)):
            return found
        time.sleep(0.1)
    raise AssertionError(f"the parts of job {job} did not all run within {timeout_s} s")
