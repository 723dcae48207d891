"""The master's node and history routes: nodes, one node, poll now, compact, purge."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rpiaas.master.keys import STORE

from .test_middlewares import AUTH, NAMES, Client, _config, _samples, _with_master

pytestmark = pytest.mark.integration


def test_nodes_and_clusters_in_cluster_order(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        nodes = (await (await client.get("/api/v1/nodes")).json())["nodes"]
        assert [n["name"] for n in nodes] == NAMES
        assert all(n["online"] is not True and n["sample"] is None and n["tasks"] == [] for n in nodes)
        clusters = (await (await client.get("/api/v1/clusters")).json())["clusters"]
        assert clusters == [{"domain": "c1.rpiaas.test", "prefix": "127.0.1", "nodes": NAMES}]
        resp = await client.get("/api/v1/nodes/nope.c1.rpiaas.test")
        assert resp.status == 404
        assert await resp.json() == {"error": "no such node: nope.c1.rpiaas.test"}
        resp = await client.get(f"/api/v1/nodes/{NAMES[0]}/history?start=5&end=1")
        assert resp.status == 400 and (await resp.json())["error"] == "end must not be before start"
        resp = await client.get(f"/api/v1/nodes/{NAMES[0]}/history?resolution=0.0001")
        assert resp.status == 400 and "resolution: expected at least" in (await resp.json())["error"]
        spec = await (await client.get("/api/v1/openapi.json")).json()
        assert spec["openapi"].startswith("3.1")

    _with_master(_config(tmp_path), body)


def test_compact_and_purge_through_the_api(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        store = app[STORE]
        await asyncio.to_thread(store.add_samples, _samples(NAMES[0], range(0, 600, 10)))
        await asyncio.to_thread(store.flush)
        resp = await client.post("/api/v1/history/compact", json={"before": 300, "resolution": 60},
                                 headers=AUTH)
        assert resp.status == 200 and await resp.json() == {"replaced": 30, "written": 5}
        history = (await (await client.get(f"/api/v1/nodes/{NAMES[0]}/history")).json())["samples"]
        assert [s["count"] for s in history[:6]] == [6, 6, 6, 6, 6, 1]
        resp = await client.post("/api/v1/history/purge", json={"before": 300}, headers=AUTH)
        assert (await resp.json())["samples"] == 5
        history = (await (await client.get(f"/api/v1/nodes/{NAMES[0]}/history")).json())["samples"]
        assert len(history) == 30 and history[0]["time_s"] == 300

    _with_master(_config(tmp_path), body)


def test_poll_now_and_the_node_document(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        resp = await client.post(f"/api/v1/nodes/{NAMES[1]}/poll", headers=AUTH)
        assert resp.status == 200
        doc = await resp.json()
        assert doc["name"] == NAMES[1] and doc["online"] is False and doc["reason"]
        assert [s["online"] for s in doc["states"]] == [False]
        resp = await client.get(f"/api/v1/nodes/{NAMES[1]}")
        assert (await resp.json())["states"] == doc["states"]
        latency = (await (await client.get("/api/v1/summary")).json())["poll_latency"]
        assert latency["failed"] >= 1

    _with_master(_config(tmp_path), body)


def test_the_node_list_pages(tmp_path: Path) -> None:
    """``?offset=&limit=``: a page of the nodes in cluster order, ``total`` counting them all;
    a bad value is one 400 line naming the parameter."""
    async def body(client: Client, app: Any) -> None:
        whole = await (await client.get("/api/v1/nodes")).json()
        assert [n["name"] for n in whole["nodes"]] == NAMES
        assert (whole["total"], whole["offset"], whole["limit"]) == (len(NAMES), 0, None)
        for query, names in (("?limit=1", NAMES[:1]), ("?offset=1", NAMES[1:]),
                             ("?offset=1&limit=5", NAMES[1:]), ("?offset=2&limit=1", []),
                             ("?offset=&limit=", NAMES), ("?limit=0", [])):
            page = await (await client.get("/api/v1/nodes" + query)).json()
            assert [n["name"] for n in page["nodes"]] == names, query
            assert page["total"] == len(NAMES)
        for query, message in (("?offset=-1", "offset: expected a whole number >= 0, got '-1'"),
                               ("?limit=1.5", "limit: expected a whole number >= 0, got '1.5'"),
                               ("?limit=x", "limit: expected a whole number >= 0, got 'x'"),
                               ("?limit=1&limit=2", "limit: expected at most one value, got 2")):
            resp = await client.get("/api/v1/nodes" + query)
            assert resp.status == 400 and await resp.json() == {"error": message}, query

    _with_master(_config(tmp_path), body)
