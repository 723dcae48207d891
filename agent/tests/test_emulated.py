"""Many emulated nodes in one process: the agent's own API per node, tasks as timers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rpiaas_agent.app import create_app
from rpiaas_agent.config import ConfigError
from rpiaas_agent.emulated import TimerSampler, TimerTaskManager, load_nodes, serve_many
from rpiaas_agent.keys import CPU

from .helpers import TOKEN, InProcessAgent, clean_env, free_port, task_config

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _agent(tmp_path: Path) -> InProcessAgent:
    config = task_config(tmp_path, emulate=True, cores=4, mem_mb=1024, oversubscribe=True)
    return InProcessAgent(create_app(config, task_manager=TimerTaskManager,
                                     emulated_sampler=TimerSampler))


def _task(agent: InProcessAgent, task_id: str) -> dict[str, Any]:
    reply = agent.get(f"/tasks/{task_id}", headers=AUTH)
    assert reply.status == 200
    doc: dict[str, Any] = reply.json()
    return doc


def test_a_task_is_a_timer_with_the_agents_admission(tmp_path: Path) -> None:
    with _agent(tmp_path) as agent:
        info = agent.get("/info").json()
        assert info["tasks"]["runner"] == "timer" and info["emulated"] is True
        assert info["speed"]["relative"] == 1.0
        r = agent.request("POST", "/tasks", json={"id": "s1", "kind": "sleep", "duration_s": 0.3,
                                                  "cores": 1}, headers=AUTH)
        assert r.status == 201 and r.json()["pid"] is None and r.json()["state"] == "running"
        # the agent's own admission: more cores than free, a second task with the same id
        r = agent.request("POST", "/tasks", json={"id": "c1", "kind": "cpu", "work_core_s": 0.6,
                                                  "cores": 3}, headers=AUTH)
        assert r.status == 201
        r = agent.request("POST", "/tasks", json={"id": "x", "kind": "sleep", "duration_s": 1},
                          headers=AUTH)
        assert r.status == 409 and "not enough free" in r.json()["error"]
        r = agent.request("POST", "/tasks", json={"id": "s1", "kind": "sleep", "duration_s": 1},
                          headers=AUTH)
        assert r.status == 409
        assert agent.request("POST", "/tasks", json={"id": "y", "kind": "sleep", "duration_s": 1},
                             headers={"Authorization": "Bearer wrong-token-of-another"}).status == 401
        assert agent.get("/info").json()["tasks"]["cores_used"] == 4
        agent.sleep(0.45)
        sleep, cpu = _task(agent, "s1"), _task(agent, "c1")
        assert sleep["state"] == "completed" and sleep["exit_status"] == 0
        assert sleep["ended_s"] - sleep["started_s"] == pytest.approx(0.3, abs=0.1)
        # 0.6 core-seconds on 3 cores: 0.2 s, and 0.6 CPU seconds booked
        assert cpu["state"] == "completed" and cpu["cpu_s"] == pytest.approx(0.6, abs=0.15)
        assert sleep["cpu_s"] == 0.0
        busy = agent.get("/info").json()["cpu"]["busy_s"]
        assert busy == pytest.approx(0.6, abs=0.15)


def test_readings_follow_the_running_tasks(tmp_path: Path) -> None:
    with _agent(tmp_path) as agent:
        agent.request("POST", "/tasks", json={"id": "c", "kind": "cpu", "work_core_s": 20, "cores": 2},
                      headers=AUTH)
        agent.request("POST", "/tasks", json={"id": "m", "kind": "memory", "duration_s": 20,
                                              "mem_mb": 256}, headers=AUTH)
        agent.sleep(0.5)
        info = agent.get("/info").json()
        assert info["memory"]["used_bytes"] == 256 << 20
        # two of four emulated cores busy: the first two
        usage = info["cpu"]["usage_ratio"]
        assert usage[0] == pytest.approx(1.0, abs=0.1) and usage[1] == pytest.approx(1.0, abs=0.1)
        assert usage[2] == usage[3] == 0.0
        before = agent.app[CPU].busy_s()
        killed = agent.request("DELETE", "/tasks/c", headers=AUTH).json()
        assert killed["state"] == "killed" and killed["error"] == "killed on request"
        agent.sleep(0.3)
        assert agent.app[CPU].busy_s() == pytest.approx(before, abs=0.05)  # no more after the kill


def test_the_nodes_file_is_checked_naming_node_and_key(tmp_path: Path) -> None:
    token = tmp_path / "t.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)

    def write(doc: Any) -> Path:
        path = tmp_path / "nodes.json"
        path.write_text(json.dumps(doc))
        return path

    good = {"name": "a", "port": 1, "token_file": str(token)}
    common = {"host": "127.0.0.1", "vcgencmd": "", "work_dir": str(tmp_path)}
    configs = load_nodes(write({"common": common, "nodes": [good, {**good, "name": "b", "port": 2}]}))
    assert [c.name for c in configs] == ["a", "b"] and all(c.emulate and c.token == TOKEN for c in configs)
    for doc, message in (
            ({"nodes": []}, "nodes: expected a list"),
            ({"common": common, "nodes": [{"name": "a", "token_file": str(token)}]}, "nodes[0]: port: missing"),
            ({"common": common, "nodes": [good, good]}, "nodes[1]: name: 'a' is given twice"),
            ({"common": common, "nodes": [{**good, "port": 99999}]}, "nodes[0]: port: expected an integer"),
            ({"common": common, "nodes": [{**good, "colour": 1}]}, "nodes[0]: colour: unknown setting"),
            ({"common": common, "nodes": [{**good, "token": TOKEN}]}, "nodes[0]: token: give token_file")):
        with pytest.raises(ConfigError) as e:
            load_nodes(write(doc))
        assert message in str(e.value) and TOKEN not in str(e.value)
        assert "\n" not in str(e.value)


def test_many_nodes_in_one_process_each_with_its_own_port_and_token(tmp_path: Path) -> None:
    names = [f"n{i}" for i in range(5)]
    ports = [free_port() for _ in names]
    for name in names:
        (tmp_path / f"{name}.token").write_text(f"token-of-{name}-0123456789\n")
        (tmp_path / f"{name}.token").chmod(0o600)
    doc = {"common": {"host": "127.0.0.1", "vcgencmd": "", "work_dir": str(tmp_path), "cores": 4,
                      "oversubscribe": True, "sysfs_root": str(tmp_path)},
           "nodes": [{"name": n, "port": p, "token_file": str(tmp_path / f"{n}.token")}
                     for n, p in zip(names, ports)]}
    configs = load_nodes(_write(tmp_path / "nodes.json", doc))

    async def go() -> None:
        stop = asyncio.Event()
        server = asyncio.ensure_future(serve_many(configs, stop))
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                try:
                    async with s.get(f"http://127.0.0.1:{ports[-1]}/ping"):
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            for name, port in zip(names, ports):
                async with s.get(f"http://127.0.0.1:{port}/info") as r:
                    assert (await r.json())["node"]["name"] == name
                other = names[(names.index(name) + 1) % len(names)]
                body = {"id": "t", "kind": "sleep", "duration_s": 5}
                async with s.post(f"http://127.0.0.1:{port}/tasks", json=body,
                                  headers={"Authorization": f"Bearer token-of-{other}-0123456789"}) as r:
                    assert r.status == 401  # another node's token
                async with s.post(f"http://127.0.0.1:{port}/tasks", json=body,
                                  headers={"Authorization": f"Bearer token-of-{name}-0123456789"}) as r:
                    assert r.status == 201
        stop.set()
        await asyncio.wait_for(server, 10)

    asyncio.run(go())


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_the_command_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "nodes.json", {"nodes": [{"name": "a", "port": 1}]})
    env = clean_env(PYTHONPATH=os.pathsep.join(sys.path))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "rpiaas_agent.emulated", str(path)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and time.monotonic() - t0 < 60
    assert p.stderr.strip().splitlines() == [
        f"rpiaas-agent-emulated: error: {path}: nodes[0]: token_file: missing"]
