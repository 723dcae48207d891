"""Starts that never happened are not failures: a dead node, a lost answer, on real agents.

A local testbed (a master and agents on loopback, ``start_local_testbed``)
replays small scenarios of ``sleep`` tasks while an agent is SIGKILLed before
the master's poller can notice, or while a proxy in front of an agent loses a
start request or its answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.tests.test_openapi import ServedApp
from rpiaas.client.client import run_live
from rpiaas.master import create_app, load_master_config
from rpiaas.master.keys import REGISTRY
from rpiaas.scenario import load_scenario
from rpiaas.testbed.local import start_local_testbed

from .test_shell import CLUSTER, _rows, _scenario

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _events(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


def test_a_start_on_a_killed_agent_spends_no_retry_and_its_node_is_down_at_once(
        tmp_path: Path) -> None:
    # the poller asks every 3 s and takes a node offline at its second miss: the run places
    # tasks on the killed agent's node long before the master could know it is gone
    tasks = [{"id": i + 1, "arrival_s": 0.2 + 0.1 * i, "cores": 1, "mem_mb": 64,
              "work_core_s": 1.0} for i in range(4)]
    with start_local_testbed(tmp_path / "tb", 3, poll_interval_s=3.0) as tb:
        scenario = load_scenario(_scenario(tmp_path / "dead.json", CLUSTER, tasks,
                                           policy="least_loaded", retries=2))
        victim = scenario.cluster.nodes[0].name  # all idle: least_loaded's first choice
        agent = tb.agents[victim]
        os.kill(agent.pid, signal.SIGKILL)
        time.sleep(0.2)  # its port is closed (the master polled it well within the last 3 s)
        started = time.monotonic()
        _, run_dir = run_live(scenario, tb.master_url, tb.master_token, tmp_path / "live",
                              quiet=True, poll_s=0.2)
    rows = _rows(run_dir)
    # every task ran, once, on a node that is up: no attempt of theirs counts as started
    # on the dead node, and no retry was spent
    assert {t: (r["state"], r["attempts"]) for t, r in rows.items()} == {
        t["id"]: ("completed", "1") for t in tasks}, rows
    assert all(r["node"] != victim for r in rows.values()), rows
    events = _events(run_dir)
    unstarted = [e for e in events if e.get("ev") == "not_started"]
    assert unstarted and all(e["node"] == victim for e in unstarted), events
    assert all("ClientConnectorError" in e["reason"] for e in unstarted), unstarted
    assert not any(e.get("act") == "retry" for e in events), events
    # the node is down at the first start that could not reach it, with that reason, and
    # nothing is started on it after that
    downs = [e for e in events if e.get("ev") == "node_down"]
    assert downs and downs[0]["node"] == victim, events
    assert downs[0]["reason"].startswith("unreachable: start on " + victim), downs
    assert downs[0]["t"] == unstarted[0]["t"] < 1.0, (downs, unstarted)
    assert not any(e.get("act") == "start" and e.get("node") == victim and e["t"] > downs[0]["t"]
                   for e in events), events
    record = json.loads((run_dir / "run.json").read_text())
    assert record["live"]["not_started"]["attempts"] == len(unstarted)
    assert sum(record["live"]["not_started"]["tasks"].values()) == len(unstarted)
    assert time.monotonic() - started < 30


def _agent_tasks(url: str, token: str) -> dict[str, str]:
    """The agent's tasks, by id: their states."""
    req = urllib.request.Request(url + "/tasks", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return {t["id"]: t["state"] for t in json.loads(r.read())["tasks"]}


def _losing_proxy(target: str, hold_s: float) -> web.Application:
    """Forwards every request to the agent at ``target``, but delays the first ``POST /tasks``
    by ``hold_s``, past the master's timeout (meanwhile the agent has no such task; then it
    starts, late), and the answer to the second (sent on at once, the task starts, and the
    answer comes after ``hold_s``)."""
    posts = 0

    async def forward(request: web.Request) -> web.Response:
        nonlocal posts
        body = await request.read()
        if request.method == "POST" and request.path == "/tasks":
            posts += 1
            if posts == 1:
                await asyncio.sleep(hold_s)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        async with aiohttp.ClientSession() as session, session.request(
                request.method, target + request.path_qs, data=body, headers=headers) as resp:
            answer = web.Response(body=await resp.read(), status=resp.status,
                                  content_type=resp.content_type)
        if request.method == "POST" and request.path == "/tasks" and posts == 2:
            await asyncio.sleep(hold_s)
        return answer

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def test_a_lost_start_is_asked_about_started_or_not(tmp_path: Path) -> None:
    one_node = {"node_types": CLUSTER["node_types"],
                "clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 1,
                              "type": "pi2"}]}
    # task 1's start is held on the way (asked after the master's request timed out at 5 s, the
    # agent has no such task: it never started, and goes again); task 2's start reaches the
    # agent, its answer is lost (asked, the agent has it, running: it is watched).  Task 1's
    # first start reaches the agent at 8 s, late: that attempt is stopped when found.
    tasks = [{"id": 1, "arrival_s": 0.1, "cores": 1, "mem_mb": 64, "work_core_s": 3.0},
             {"id": 2, "arrival_s": 0.3, "cores": 1, "mem_mb": 64, "work_core_s": 10.0}]
    with start_local_testbed(tmp_path / "tb", 1, poll_interval_s=0.25) as tb:
        name = next(iter(tb.agents))
        with ServedApp(_losing_proxy(tb.agents[name].url, 8.0)) as proxy:
            config = load_master_config(tb.dir / "master.yaml")
            host, port = proxy.url.removeprefix("http://").split(":")
            config = dataclasses.replace(config, agents={name: (host, int(port))},
                                         runs_dir=str(tmp_path / "runs"),
                                         store=str(tmp_path / "second-master.db"))
            with ServedApp(create_app(config)) as master:
                deadline = time.monotonic() + 10
                while not all(e.online for e in master.apps[0][REGISTRY]):
                    assert time.monotonic() < deadline, "the node did not come online"
                    time.sleep(0.05)
                scenario = load_scenario(_scenario(tmp_path / "lost.json", one_node, tasks,
                                                   policy="first_fit", retries=0))
                _, run_dir = run_live(scenario, master.url, tb.master_token, tmp_path / "live",
                                      quiet=True, poll_s=0.2)
        on_agent = _agent_tasks(tb.agents[name].url, tb.node_token(name))
    rows = _rows(run_dir)
    run_id = json.loads((run_dir / "run.json").read_text())["live"]["run"]
    # the late first attempt of task 1 was stopped; its second and task 2's one ran to the end
    assert {i: on_agent[i] for i in on_agent if i.startswith(run_id + ".")} == {
        f"{run_id}.1.1": "killed", f"{run_id}.1.3": "completed", f"{run_id}.2.1": "completed"}
    assert {t: (r["state"], r["attempts"], r["node"]) for t, r in rows.items()} == {
        1: ("completed", "1", name), 2: ("completed", "1", name)}, rows
    events = _events(run_dir)
    unstarted = [e for e in events if e.get("ev") == "not_started"]
    assert [(e["task"], e["node"]) for e in unstarted] == [(1, name)], events
    assert "the agent has no such task" in unstarted[0]["reason"], unstarted
    assert not any(e.get("ev") == "node_down" for e in events), events  # it answered
    # task 2 ran from the start its agent measured, not from when the master learnt of it
    assert float(rows[2]["start_s"]) < 1.0 and 10.0 < float(rows[2]["end_s"]) < 11.0, rows[2]
    assert float(rows[1]["start_s"]) >= 5.0, rows[1]  # again, after the lost start timed out
    record = json.loads((run_dir / "run.json").read_text())
    assert record["live"]["not_started"] == {"attempts": 1, "tasks": {"1": 1}}


def test_a_start_a_stopped_agent_took_and_never_answered_counts_as_started(
        tmp_path: Path) -> None:
    # a SIGSTOPped agent's kernel takes the connection and the request; nothing answers, and
    # asked again the agent does not answer either: the attempt may run when the agent goes on,
    # so it is lost with its node as any running task is (a retry spent), never "not started"
    tasks = [{"id": 1, "arrival_s": 0.2, "cores": 1, "mem_mb": 64, "work_core_s": 1.0}]
    with start_local_testbed(tmp_path / "tb", 3, poll_interval_s=30.0) as tb:
        scenario = load_scenario(_scenario(tmp_path / "stopped.json", CLUSTER, tasks,
                                           policy="least_loaded", retries=1))
        victim = scenario.cluster.nodes[0].name
        pid = tb.agents[victim].pid
        os.kill(pid, signal.SIGSTOP)
        try:
            _, run_dir = run_live(scenario, tb.master_url, tb.master_token, tmp_path / "live",
                                  quiet=True, poll_s=0.2)
        finally:
            os.kill(pid, signal.SIGCONT)
    rows = _rows(run_dir)
    assert (rows[1]["state"], rows[1]["attempts"]) == ("completed", "2"), rows
    assert rows[1]["node"] != victim and float(rows[1]["start_s"]) >= 10.0, rows
    events = _events(run_dir)
    assert not any(e.get("ev") == "not_started" for e in events), events
    downs = [e for e in events if e.get("ev") == "node_down"]
    assert [d["node"] for d in downs] == [victim], events
    assert "TimeoutError" in downs[0]["reason"] and "asked again" in downs[0]["reason"], downs
    assert [e["task"] for e in events if e.get("act") == "retry"] == [1], events
    record = json.loads((run_dir / "run.json").read_text())
    assert record["live"]["not_started"] == {"attempts": 0, "tasks": {}}
