"""The poller never waits on a hung node: the others are polled on time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from rpiaas.live import AgentClient
from rpiaas.master import Poller, Registry, load_master_config
from rpiaas.store import open_store

from .test_app import _agent

pytestmark = pytest.mark.integration

NAMES = ["node1.c1.test", "node2.c1.test"]


async def _hung_server() -> tuple[asyncio.Server, int, list[asyncio.StreamWriter]]:
    """A TCP server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1]), held


def test_a_hung_node_delays_nobody(tmp_path: Path) -> None:
    agent = _agent(tmp_path, NAMES[0])
    try:
        asyncio.run(_scenario(tmp_path, agent.port))
    finally:
        agent.terminate()


async def _scenario(tmp_path: Path, agent_port: int) -> None:
    server, hung_port, held = await _hung_server()
    config_file = tmp_path / "master.yaml"
    config_file.write_text(
        "cluster: {clusters: [{domain: c1.test, prefix: 127.0.1, count: 2, type: rpi4b}]}\n"
        "poll_interval_s: 0.5\npoll_timeout_s: 0.3\nstore: ':memory:'\n"
        f"agents: {{{NAMES[0]}: '127.0.0.1:{agent_port}', {NAMES[1]}: '127.0.0.1:{hung_port}'}}\n")
    config = load_master_config(config_file)
    registry = Registry(config)
    with open_store(config.store) as store:
        async with AgentClient(config.timeout_s) as client:
            poller = Poller(registry, store, client, config.poll_interval_s, config.timeout_s)
            t0 = time.monotonic()
            await poller.poll_once()
            assert time.monotonic() - t0 < 0.3 + 0.4  # one timeout, not one per node
            assert registry.get(NAMES[0]).online is True  # type: ignore[union-attr]
            hung = registry.get(NAMES[1])
            assert hung is not None and hung.online is False and hung.reason
            assert held, "the hung server never saw the poll"
            poller.start()
            await asyncio.sleep(2.0)
            await poller.stop()
        assert len(store.history(NAMES[0])) == poller.rounds and store.history(NAMES[1]) == []
        assert [c.online for c in store.states(NAMES[1])] == [False]
    server.close()
    for w in held:
        w.close()
    # a round every interval although every round waits a full timeout on the hung node
    assert 4 <= poller.rounds <= 6, poller.rounds


def test_a_node_answering_nesting_too_deep_fails_its_own_poll_only(tmp_path: Path) -> None:
    """``/info`` nested 100 000 deep: that node is offline with the reason; the round goes on."""
    agent = _agent(tmp_path, NAMES[0])
    try:
        asyncio.run(_nested_scenario(tmp_path, agent.port))
    finally:
        agent.terminate()


async def _nested_scenario(tmp_path: Path, agent_port: int) -> None:
    from aiohttp import web

    async def info(request: web.Request) -> web.Response:
        return web.Response(body=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")

    app = web.Application()
    app.router.add_get("/info", info)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    bad_port = runner.addresses[0][1]
    config_file = tmp_path / "master.yaml"
    config_file.write_text(
        "cluster: {clusters: [{domain: c1.test, prefix: 127.0.1, count: 2, type: rpi4b}]}\n"
        "poll_interval_s: 5\npoll_timeout_s: 2\nstore: ':memory:'\n"
        f"agents: {{{NAMES[0]}: '127.0.0.1:{agent_port}', {NAMES[1]}: '127.0.0.1:{bad_port}'}}\n")
    config = load_master_config(config_file)
    registry = Registry(config)
    try:
        with open_store(config.store) as store:
            async with AgentClient(config.timeout_s) as client:
                poller = Poller(registry, store, client, config.poll_interval_s, config.timeout_s)
                await poller.poll_once()
            assert registry.get(NAMES[0]).online is True  # type: ignore[union-attr]
            bad = registry.get(NAMES[1])
            assert bad is not None and bad.online is False
            assert "nested more than 32 deep" in bad.reason, bad.reason
            assert len(store.history(NAMES[0])) == 1
    finally:
        await runner.cleanup()
