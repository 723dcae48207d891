"""The routes' HTTP helpers: JSON bodies with allowed and required fields, numbers, query values."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rpiaas.master.http import body, body_number, error, float_param, json_error


async def _echo(request: web.Request) -> web.Response:
    data = await body(request, ("before", "resolution"), ("before",))
    out = {"before": body_number(data, "before")}
    if "resolution" in data:
        out["resolution"] = body_number(data, "resolution", 0.001, positive=True)
    return web.json_response(out)


async def _query(request: web.Request) -> web.Response:
    return web.json_response({"start": float_param(request, "start")})


async def _missing(request: web.Request) -> web.Response:
    raise error(404, "no such thing")


def _with_app(check: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    app = web.Application()
    app.router.add_post("/echo", _echo)
    app.router.add_get("/query", _query)
    app.router.add_get("/missing", _missing)

    async def go() -> None:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await check(client)

    asyncio.run(go())


@pytest.mark.parametrize(("sent", "headers", "status", "message"), [
    ({"before": 5, "resolution": 60}, {}, 200, None),
    ({}, {}, 400, "before: missing field"),
    ({"before": 5, "after": 1}, {}, 400, "after: unknown field (expected before, resolution)"),
    ({"before": -1}, {}, 400, "before: expected a finite number >= 0, got -1"),
    ({"before": True}, {}, 400, "before: expected a finite number >= 0, got True"),
    ({"before": 1, "resolution": 0}, {}, 400, "resolution: expected a positive number, got 0"),
    ([1, 2], {}, 400, "body: expected a JSON object, got list"),
    ("{", {"Content-Type": "application/json"}, 400, "body: not valid JSON"),
    ("x=1", {"Content-Type": "text/plain"}, 415, "expected a JSON body"),
])
def test_bodies(sent: Any, headers: dict[str, str], status: int, message: str | None) -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        if isinstance(sent, str):
            resp = await client.post("/echo", data=sent, headers=headers)
        else:
            resp = await client.post("/echo", json=sent)
        assert resp.status == status
        doc = await resp.json()
        if message is None:
            assert doc == {"before": 5.0, "resolution": 60.0}
        else:
            assert resp.content_type == "application/json" and message in doc["error"]

    _with_app(check)


def test_query_numbers_and_errors() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        assert await (await client.get("/query")).json() == {"start": None}
        assert await (await client.get("/query?start=")).json() == {"start": None}
        assert await (await client.get("/query?start=2.5")).json() == {"start": 2.5}
        for query, message in [("start=x", "start: expected a number, got 'x'"),
                               ("start=-1", "start: expected a finite number >= 0"),
                               ("start=inf", "start: expected a finite number >= 0"),
                               ("start=1&start=2", "start: expected at most one value, got 2")]:
            resp = await client.get(f"/query?{query}")
            assert resp.status == 400 and message in (await resp.json())["error"], query
        resp = await client.get("/missing")
        assert resp.status == 404 and await resp.json() == {"error": "no such thing"}

    _with_app(check)


def test_json_error_response() -> None:
    resp = json_error(413, "too large", {"Allow": "GET"})
    assert resp.status == 413 and resp.content_type == "application/json"
    assert resp.text == '{"error": "too large"}' and resp.headers["Allow"] == "GET"
