"""The agent client against a real agent app on loopback: info, task start/lookup/kill, refusals."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from rpiaas_agent import create_app as agent_app

from agent.tests.helpers import TOKEN, free_port, task_config
from rpiaas.live.agent_client import AgentClient, AgentError


def _serve(app: web.Application, body: Callable[[str], Awaitable[None]]) -> None:
    async def go() -> None:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            await body(f"http://127.0.0.1:{server.port}")
        finally:
            await server.close()

    asyncio.run(go())


def test_info_and_a_task_started_looked_up_and_killed(tmp_path: Path) -> None:
    async def body(base: str) -> None:
        async with AgentClient(timeout_s=5.0, tokens={base: TOKEN}) as client:
            assert await client.ping(base)
            info = await client.info(base)
            assert info["node"]["name"] == "pi-test"
            doc = await client.start_task(base, {"id": "r.1.0", "kind": "sleep", "duration_s": 30,
                                                 "cores": 1, "mem_mb": 10})
            assert doc["id"] == "r.1.0" and doc["state"] == "running"
            assert isinstance(doc["started_s"], float)
            with pytest.raises(AgentError) as again:  # the same id twice: refused, never run twice
                await client.start_task(base, {"id": "r.1.0", "kind": "sleep", "duration_s": 1,
                                               "cores": 1, "mem_mb": 10})
            assert again.value.status == 409
            assert [t["id"] for t in await client.tasks(base)] == ["r.1.0"]
            assert (await client.task(base, "r.1.0") or {})["state"] == "running"
            assert await client.task(base, "r.2.0") is None
            killed = await client.kill_task(base, "r.1.0")
            assert killed is not None and killed["state"] == "killed"
            assert await client.kill_task(base, "r.9.0") is None

    _serve(agent_app(task_config(tmp_path)), body)


def test_task_endpoints_without_the_nodes_token_are_refused(tmp_path: Path) -> None:
    async def body(base: str) -> None:
        async with AgentClient(timeout_s=5.0, tokens={base: "not-the-token"}) as client:
            with pytest.raises(AgentError) as e:
                await client.start_task(base, {"id": "x", "kind": "sleep", "duration_s": 1,
                                               "cores": 1, "mem_mb": 10})
            assert e.value.status == 401
            assert "not-the-token" not in str(e.value)

    _serve(agent_app(task_config(tmp_path)), body)


def test_an_agent_answering_nonsense_is_an_agent_error() -> None:
    async def nested(request: web.Request) -> web.Response:
        return web.Response(text="[" * 1000 + "]" * 1000, content_type="application/json")

    async def not_a_list(request: web.Request) -> web.Response:
        return web.json_response({"tasks": "none"})

    app = web.Application()
    app.router.add_get("/info", nested)
    app.router.add_get("/tasks", not_a_list)

    async def body(base: str) -> None:
        async with AgentClient(timeout_s=5.0) as client:
            with pytest.raises(AgentError, match="nested more than 32 deep"):
                await client.info(base)
            with pytest.raises(AgentError, match="expected"):
                await client.tasks(base)

    _serve(app, body)


def test_no_agent_on_the_port() -> None:
    base = f"http://127.0.0.1:{free_port()}"

    async def go() -> None:
        async with AgentClient(timeout_s=2.0) as client:
            assert not await client.ping(base)
            with pytest.raises(AgentError, match=base):
                await client.info(base)
            with pytest.raises(AgentError) as e:
                await client.tasks(base)
            assert e.value.status is None and e.value.unsent  # nothing reached an agent

    asyncio.run(go())


def test_a_request_sent_and_not_answered_is_not_unsent() -> None:
    """An agent that takes the request and never answers: the request may have done its work."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # connections are accepted by the kernel; nobody reads or answers
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"

    async def go() -> None:
        async with AgentClient(timeout_s=0.5) as client:
            with pytest.raises(AgentError) as e:
                await client.start_task(base, {"id": "r.1.1", "kind": "sleep", "duration_s": 1})
            assert e.value.status is None and not e.value.unsent

    try:
        asyncio.run(go())
    finally:
        listener.close()
