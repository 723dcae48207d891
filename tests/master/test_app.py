"""The master against real agent processes on loopback: polling, offline/online, the JSON API."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.tests.helpers import AgentProcess, clean_env, free_port, start_agent
from rpiaas.master import create_app, load_master_config
from rpiaas.master.keys import REGISTRY, STORE

pytestmark = pytest.mark.integration

INTERVAL_S = 0.5
NAMES = [f"node{i}.c1.rpiaas.test" for i in (1, 2, 3)]


def _agent(tmp_path: Path, name: str, port: int | None = None) -> AgentProcess:
    empty = tmp_path / "sysfs-empty"
    empty.mkdir(exist_ok=True)
    agent = start_agent(tmp_path, "--name", name, "--sysfs-root", str(empty), "--vcgencmd", "",
                        "--sample-interval-s", "0.2", "--disk-path", str(tmp_path), port=port)
    agent.wait_up()
    return agent


def _config_file(tmp_path: Path, ports: dict[str, int]) -> Path:
    agents = "".join(f'  {name}: "127.0.0.1:{port}"\n' for name, port in ports.items())
    path = tmp_path / "master.yaml"
    path.write_text(
        "cluster:\n"
        "  clusters:\n"
        "    - {domain: c1.rpiaas.test, prefix: 127.0.1, count: 3, type: rpi4b}\n"
        f"poll_interval_s: {INTERVAL_S}\n"
        "store: history.db\n"
        f"agents:\n{agents}"
        "listen: 127.0.0.1:0\n")
    return path


async def _until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> float:
    """Wait until ``check()`` holds; the seconds it took."""
    t0 = time.monotonic()
    while not await check():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"not {what} after {timeout_s} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


def test_polls_agents_and_tracks_a_node_that_dies_and_comes_back(tmp_path: Path) -> None:
    agents = {name: _agent(tmp_path, name) for name in NAMES}
    try:
        config = load_master_config(_config_file(tmp_path, {n: a.port for n, a in agents.items()}))
        assert config.store == str(tmp_path / "history.db")
        asyncio.run(_scenario(tmp_path, config, agents))
    finally:
        for agent in agents.values():
            agent.terminate()


async def _scenario(tmp_path: Path, config: Any, agents: dict[str, AgentProcess]) -> None:
    app = create_app(config)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        registry, store = app[REGISTRY], app[STORE]

        async def nodes() -> dict[str, dict[str, Any]]:
            resp = await client.get("/api/v1/nodes")
            assert resp.status == 200
            return {n["name"]: n for n in (await resp.json())["nodes"]}

        async def all_online() -> bool:
            return all(n["online"] is True for n in (await nodes()).values())

        async def counts() -> dict[str, int]:
            return {n: len(await asyncio.to_thread(store.history, n)) for n in NAMES}

        await _until("all online", all_online)
        listed = await nodes()
        assert list(listed) == NAMES
        port = agents[NAMES[1]].port
        assert listed[NAMES[1]]["agent"] == f"http://127.0.0.1:{port}"
        assert listed[NAMES[1]]["sample"]["mem_total_mb"] > 0
        await _until("sampled", lambda: _all_positive(counts))
        summary = await (await client.get("/api/v1/summary")).json()
        assert summary["nodes"] == 3 and summary["online"] == 3 and summary["offline"] == 0

        # SIGKILL one agent: offline within two intervals (a little grace for a busy machine)
        dead = NAMES[1]
        agents[dead].proc.kill()
        agents[dead].proc.wait()
        before = await counts()
        took = await _until("offline", lambda: _state(registry, dead, False))
        assert took <= 2 * INTERVAL_S + 0.25, took
        entry = registry.get(dead)
        assert entry is not None and entry.reason
        changes = await asyncio.to_thread(store.states, dead)
        assert changes[-1].online is False and changes[-1].reason == entry.reason
        assert (await nodes())[dead]["online"] is False
        summary = await (await client.get("/api/v1/summary")).json()
        assert summary["online"] == 2 and summary["offline"] == 1

        # the others keep reporting; the dead one does not
        await asyncio.sleep(2 * INTERVAL_S + 0.1)
        after = await counts()
        assert all(after[n] > before[n] for n in NAMES if n != dead), (before, after)
        assert after[dead] <= before[dead] + 1  # at most a round that was already under way

        # restart it on the same port: online again
        agents[dead] = await asyncio.to_thread(_agent, tmp_path, dead, port)
        await _until("online again", lambda: _state(registry, dead, True))
        changes = await asyncio.to_thread(store.states, dead)
        assert [c.online for c in changes[-2:]] == [False, True]

        # the history API
        resp = await client.get(f"/api/v1/nodes/{NAMES[0]}/history")
        body = await resp.json()
        assert resp.status == 200 and len(body["samples"]) >= 3
        assert {"cpu_util", "mem_used_mb", "time_s", "cpu_per_core"} <= set(body["samples"][0])
        resp = await client.get(f"/api/v1/nodes/{NAMES[0]}/history",
                                params={"start": "0", "resolution": "3600"})
        body = await resp.json()
        assert resp.status == 200 and len(body["samples"]) in (1, 2)
        assert sum(s["count"] for s in body["samples"]) >= 3


async def _all_positive(counts: Callable[[], Awaitable[dict[str, int]]]) -> bool:
    return all(c > 0 for c in (await counts()).values())


async def _state(registry: Any, name: str, online: bool) -> bool:
    return bool(registry.get(name).online is online)


def test_bad_parameters_are_400_json(tmp_path: Path) -> None:
    # no agent listens on these ports: the API answers all the same
    config = load_master_config(_config_file(tmp_path, {n: free_port() for n in NAMES}))

    async def go() -> None:
        async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as client:
            base = f"/api/v1/nodes/{NAMES[0]}/history"
            for params in ({"start": "abc"}, {"end": "nan"}, {"start": "-1"},
                           {"start": "10", "end": "5"}, {"resolution": "0"},
                           {"resolution": "1e-9"}):
                resp = await client.get(base, params=params)
                assert resp.status == 400, params
                assert resp.content_type == "application/json"
                assert isinstance((await resp.json())["error"], str)
            resp = await client.get("/api/v1/nodes/nope.test/history")
            assert resp.status == 404 and "error" in await resp.json()
            resp = await client.get("/api/v1/nope")
            assert resp.status == 404 and (await resp.json())["error"] == "Not Found"
            resp = await client.post("/api/v1/summary")
            assert resp.status == 405 and "error" in await resp.json() and "GET" in resp.headers["Allow"]
            resp = await client.get(base, params={"start": "0", "end": "1"})
            assert resp.status == 200 and (await resp.json())["samples"] == []

    asyncio.run(go())


def test_rpiaas_master_as_a_process(tmp_path: Path) -> None:
    """``rpiaas master CONFIG --port N --store PATH`` serves the API and stops cleanly on SIGTERM."""
    agent = _agent(tmp_path, NAMES[0])
    port = free_port()
    path = _config_file(tmp_path, {NAMES[0]: agent.port})
    log = tmp_path / "master.log"
    script = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    assert script, "rpiaas is not installed beside sys.executable"
    with log.open("wb") as out:
        proc = subprocess.Popen([script, "master", str(path), "--port", str(port),
                                 "--store", str(tmp_path / "other.db")],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=clean_env(), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/summary", timeout=5) as r:
                    summary = json.loads(r.read())
                if summary["online"] == 1:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert summary["nodes"] == 3 and summary["offline"] == 2  # 127.0.1.x:8081 (loopback): nothing listens there
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        agent.terminate()
    assert code == 0, log.read_text()
    assert (tmp_path / "other.db").exists() and not (tmp_path / "history.db").exists()
    assert "Traceback" not in log.read_text()


def test_the_masters_log_hides_the_switches_and_meters_credentials(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An SNMP community and a plug's password from the cluster file never reach the log,
    whatever logs them (here a record made on purpose while the master runs)."""
    community, password = "c0mmunity-" + "x" * 12, "plug-pass-" + "y" * 12
    path = tmp_path / "master.yaml"
    path.write_text(
        "cluster:\n"
        "  clusters:\n"
        "    - domain: c1.rpiaas.test\n"
        "      prefix: 127.0.1\n"
        "      nodes:\n"
        "        - {hostname: node1, type: rpi4b, suffix: 1, power: {driver: snmp, host: 192.0.2.9, port: 1,\n"
        f"           community: {community}}}}}\n"
        "        - {hostname: node2, type: rpi4b, suffix: 2, meter: {source: http, flavour: tasmota,\n"
        f"           url: 'http://192.0.2.10', user: admin, password: {password}}}}}\n"
        "store: history.db\n"
        "listen: 127.0.0.1:0\n")
    config = load_master_config(path)
    log = logging.getLogger("rpiaas.master")

    async def go() -> None:
        async with TestClient(TestServer(create_app(config), host="127.0.0.1")):
            log.warning("switch said %s, plug said %s", community, password)

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "switch said" in text and community not in text and password not in text
