"""The history store in trouble never blinds the master (real agents and master on loopback).

Three faults on the master's ``history.db`` while it polls three agents:

- another process holds ``BEGIN EXCLUSIVE`` on the file for longer than SQLite's busy timeout;
- the file is made read-only (``chattr +i`` on it and its WAL: needs root and a file system
  that keeps the flag, else skipped with the reason);
- the file is on a tmpfs of 2 MB that fills (root only, else skipped).

During each: ``/api/v1/nodes`` and ``/api/v1/summary`` answer from memory at once with
``store: failing: ...``; a node's history answers within about a second, never 500;
``/healthz`` says ``degraded``; ``/metrics`` counts the failed writes; the poller keeps its
rounds.  After: the store is ``ok`` and the samples polled during the fault are in it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.tests.helpers import AgentProcess
from rpiaas.master import create_app, load_master_config
from rpiaas.master.config import MasterConfig
from rpiaas.master.keys import POLLER, STORE

from ..fulldisk import fill, tiny_fs, why_no_tmpfs
from .test_app import NAMES, _agent, _config_file, _until

pytestmark = pytest.mark.integration

FAST_S = 0.5  # an answer from memory takes milliseconds; this leaves room for a busy machine
READ_LIMIT_S = 1.0 + 0.5  # the store reader's second, and the same room


@pytest.fixture
def agents(tmp_path: Path) -> Any:
    started = {name: _agent(tmp_path, name) for name in NAMES}
    yield started
    for agent in started.values():
        agent.terminate()


@asynccontextmanager
async def _master(tmp_path: Path, agents: dict[str, AgentProcess],
                  ) -> AsyncIterator[tuple[TestClient[Any, Any], web.Application]]:
    config = load_master_config(_config_file(tmp_path, {n: a.port for n, a in agents.items()}))
    async with _master_of(config) as both:
        yield both


@asynccontextmanager
async def _master_of(config: MasterConfig) -> AsyncIterator[tuple[TestClient[Any, Any], web.Application]]:
    app = create_app(config)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async def all_online() -> bool:
            body = await (await client.get("/api/v1/nodes")).json()
            return all(n["online"] is True for n in body["nodes"])

        await _until("all online", all_online)
        yield client, app


async def _timed(client: TestClient[Any, Any], path: str) -> tuple[int, Any, float]:
    t0 = time.monotonic()
    resp = await client.get(path)
    body = await resp.json() if resp.content_type == "application/json" else await resp.text()
    return resp.status, body, time.monotonic() - t0


async def _during_the_fault(client: TestClient[Any, Any], app: web.Application, fault_s: float,
                            history_ok: Callable[[int], bool]) -> dict[str, Any]:
    """Ask every read the dashboard makes, over and over for ``fault_s``; what was seen."""
    rounds0 = app[POLLER].rounds
    seen: dict[str, Any] = {"store": set(), "history": set(), "health": set(), "slowest_s": 0.0,
                            "slowest_history_s": 0.0}
    end = time.monotonic() + fault_s
    while time.monotonic() < end:
        for path in ("/api/v1/nodes", "/api/v1/summary"):
            status, body, took = await _timed(client, path)
            assert status == 200, (path, body)
            assert took < FAST_S, (path, took)
            seen["slowest_s"] = max(seen["slowest_s"], took)
            seen["store"].add(body["store"].split(":")[0])
        status, body, took = await _timed(client, f"/api/v1/nodes/{NAMES[0]}/history")
        assert status != 500 and history_ok(status), (status, body)
        assert took < READ_LIMIT_S, took
        if status == 503:
            assert body["error"].startswith("history store unavailable: "), body
        seen["history"].add(status)
        seen["slowest_history_s"] = max(seen["slowest_history_s"], took)
        status, body, took = await _timed(client, f"/api/v1/nodes/{NAMES[1]}")
        assert status == 200 and took < READ_LIMIT_S, (status, took)
        status, body, _ = await _timed(client, "/healthz")
        assert status == 200
        seen["health"].add(body["status"])
        await asyncio.sleep(0.1)
    # the poller kept its rounds: at least one per two intervals
    seen["rounds"] = app[POLLER].rounds - rounds0
    assert seen["rounds"] >= fault_s / (2 * 0.5), seen
    return seen


async def _metric(client: TestClient[Any, Any], name: str) -> float:
    text = await (await client.get("/metrics")).text()
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def _recovered(client: TestClient[Any, Any], app: web.Application,
                     fault: tuple[float, float]) -> None:
    """The store is ok again, nothing waits, and every node has samples from the fault's time."""
    store = app[STORE]

    async def ok() -> bool:
        body = await (await client.get("/healthz")).json()
        return bool(body["status"] == "ok" and body["store"]["pending_samples"] == 0)

    await _until("the store recovered", ok, timeout_s=20)
    for name in NAMES:
        kept = await asyncio.to_thread(store.history, name, fault[0] + 0.5, fault[1] - 0.5)
        assert len(kept) >= 2, (name, kept)
    summary = await (await client.get("/api/v1/summary")).json()
    assert summary["store"] == "ok"
    assert (await _metric(client, "rpiaas_master_store_dropped_samples_total")) == 0


def test_a_lock_held_by_another_process(tmp_path: Path, agents: dict[str, AgentProcess]) -> None:
    async def go() -> None:
        async with _master(tmp_path, agents) as (client, app):
            assert (await (await client.get("/api/v1/summary")).json())["store"] == "ok"
            assert (await (await client.get("/healthz")).json())["status"] == "ok"
            failed0 = await _metric(client, "rpiaas_master_store_failed_writes_total")
            other = sqlite3.connect(tmp_path / "history.db", isolation_level=None)
            other.execute("BEGIN EXCLUSIVE")
            t0 = time.time()
            try:
                seen = await _during_the_fault(client, app, 7.0, lambda s: s in (200, 503))
            finally:
                other.execute("ROLLBACK")
                other.close()
            fault = (t0, time.time())
            assert seen["store"] == {"ok", "failing"} or seen["store"] == {"failing"}, seen
            assert "degraded" in seen["health"], seen
            # past SQLite's busy timeout (5 s) a write failed, and /metrics counted it
            assert await _metric(client, "rpiaas_master_store_failed_writes_total") > failed0
            await _recovered(client, app, fault)

    asyncio.run(go())


def _immutable(paths: list[Path], on: bool) -> None:
    for p in paths:
        subprocess.run(["chattr", "+i" if on else "-i", str(p)], check=True, capture_output=True)


def _why_no_read_only(tmp_path: Path) -> str | None:
    """Why this machine cannot make a file read-only under a process that holds it open."""
    if shutil.which("chattr") is None:
        return "chattr is not installed (e2fsprogs)"
    if os.geteuid() != 0:
        return "chattr +i needs root (CI runs as root)"
    probe = tmp_path / "probe"
    probe.write_text("x")
    done = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, text=True)
    if done.returncode != 0:
        return f"this file system keeps no immutable flag: {done.stderr.strip()}"
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    return None


def test_a_read_only_store(tmp_path: Path, agents: dict[str, AgentProcess]) -> None:
    why = _why_no_read_only(tmp_path)
    if why is not None:
        pytest.skip(why)

    async def go() -> None:
        async with _master(tmp_path, agents) as (client, app):
            files = [tmp_path / "history.db", tmp_path / "history.db-wal"]
            failed0 = await _metric(client, "rpiaas_master_store_failed_writes_total")
            _immutable(files, True)
            t0 = time.time()
            try:
                # a read-only file still reads: the history answers from what was written
                seen = await _during_the_fault(client, app, 4.0, lambda s: s == 200)
            finally:
                _immutable(files, False)
            fault = (t0, time.time())
            assert "failing" in seen["store"] and "degraded" in seen["health"], seen
            assert await _metric(client, "rpiaas_master_store_failed_writes_total") > failed0
            await _recovered(client, app, fault)

    asyncio.run(go())


def test_a_store_on_a_full_disk(tmp_path: Path, agents: dict[str, AgentProcess]) -> None:
    why = why_no_tmpfs()
    if why is not None:
        pytest.skip(why)

    async def go() -> None:
        with tiny_fs(tmp_path / "fs", "2m") as fs:
            config = load_master_config(_config_file(tmp_path, {n: a.port for n, a in agents.items()}))
            config = dataclasses.replace(config, store=str(fs / "history.db"))
            async with _master_of(config) as (client, app):
                failed0 = await _metric(client, "rpiaas_master_store_failed_writes_total")
                filler = fill(fs)
                t0 = time.time()
                try:
                    seen = await _during_the_fault(client, app, 4.0, lambda s: s in (200, 503))
                finally:
                    filler.unlink()
                fault = (t0, time.time())
                assert "failing" in seen["store"] and "degraded" in seen["health"], seen
                assert await _metric(client, "rpiaas_master_store_failed_writes_total") > failed0
                await _recovered(client, app, fault)

    asyncio.run(go())
