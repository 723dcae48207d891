"""The master's JSON API under ``/api/v1/``; errors are JSON ``{"error": ...}`` too.

Reading is open; every mutating call (POST) needs the bearer token (see
:mod:`.middlewares`).  ``openapi.py`` describes each route for clients.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from ..store import Event, Sample, StateChange
from .http import MIN_RESOLUTION_S, RECENT_STATES, body, body_number, error, float_param, int_param
from .keys import CONFIG, POLLER, REGISTRY, RUNS, STORE, STORE_READER
from .openapi import openapi_document
from .registry import NodeEntry
from .storeaccess import StoreUnavailable, store_health

__all__ = ["setup_routes"]

routes = web.RouteTableDef()

T = TypeVar("T")

def _entry(request: web.Request) -> NodeEntry:
    name = request.match_info["name"]
    entry = request.app[REGISTRY].get(name)
    if entry is None:
        raise error(404, f"no such node: {name}")
    return entry


def _sample_json(s: Sample) -> dict[str, Any]:
    out = dataclasses.asdict(s)
    out["cpu_per_core"] = list(s.cpu_per_core) if s.cpu_per_core is not None else None
    return out


def _state_json(c: StateChange) -> dict[str, Any]:
    return {"time_s": c.time_s, "online": c.online, "reason": c.reason}


def _boot_json(e: Event) -> dict[str, Any]:
    """A boot report (see ``boot.py``): when, and how long the boot took."""
    boot_s, power_on_s = e.data.get("boot_s"), e.data.get("power_on_s")
    return {"time_s": e.time_s, "boot_s": boot_s if isinstance(boot_s, (int, float)) else None,
            "power_on_s": power_on_s if isinstance(power_on_s, (int, float)) else None}


def _node_json(entry: NodeEntry, sample: Sample | None,
               placements: dict[str, list[dict[str, Any]]],
               allocated: dict[str, tuple[int, int]]) -> dict[str, Any]:
    doc = entry.to_json()
    doc["sample"] = _sample_json(sample) if sample is not None else None
    doc["tasks"] = placements.get(entry.name, [])
    cores, mem_mb = allocated.get(entry.name, (0, 0))
    doc["allocated"] = {"cores": cores, "mem_mb": mem_mb}
    return doc


def _allocated(request: web.Request) -> dict[str, tuple[int, int]]:
    """The cores and memory the master's live runs reserve on each node now."""
    runs = request.app.get(RUNS)
    return runs.allocated() if runs is not None else {}


def _placements(request: web.Request) -> dict[str, list[dict[str, Any]]]:
    """What each node runs now for the master's live runs (none before the runs start)."""
    runs = request.app.get(RUNS)
    return runs.placements() if runs is not None else {}


def _store_status(request: web.Request) -> str:
    """``ok`` or ``failing: <why>``: the history store's state (the master's memory answers anyway)."""
    return str(_store_health(request)["status"])


def _store_health(request: web.Request) -> dict[str, Any]:
    poller = request.app.get(POLLER)
    return store_health(request.app[STORE], poller.writer if poller is not None else None)


async def _read(request: web.Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A history read, answered within a second or refused with 503 and the reason."""
    try:
        return await request.app[STORE_READER].read(fn, *args, **kwargs)
    except StoreUnavailable as e:
        raise error(503, f"history store unavailable: {e.reason}") from None


@routes.get("/api/v1/nodes")
async def nodes(request: web.Request) -> web.Response:
    """Every node with its agent address, current state and the live runs' tasks on it (from the
    master's memory, whatever the store does); a page of them with ``?offset=&limit=``
    (``total`` counts every node)."""
    offset, limit = int_param(request, "offset") or 0, int_param(request, "limit")
    entries: list[NodeEntry] = [*request.app[REGISTRY]]
    page = entries[offset:] if limit is None else entries[offset:offset + limit]
    placements, allocated = _placements(request), _allocated(request)
    out = [_node_json(entry, entry.sample, placements, allocated) for entry in page]
    return web.json_response({"nodes": out, "total": len(entries), "offset": offset, "limit": limit,
                              "store": _store_status(request)})


@routes.get("/api/v1/clusters")
async def clusters(request: web.Request) -> web.Response:
    """The cluster config's clusters: domain, address prefix and node names, in order."""
    spec = request.app[CONFIG].cluster
    return web.json_response({"clusters": [
        {"domain": c.domain, "prefix": c.prefix, "nodes": [n.name for n in c.nodes]}
        for c in spec.clusters]})


async def _one_node(request: web.Request, entry: NodeEntry) -> web.Response:
    store = request.app[STORE]
    doc = _node_json(entry, entry.sample, _placements(request), _allocated(request))
    doc["store"] = _store_status(request)
    try:
        changes = await request.app[STORE_READER].read(store.states, entry.name)
        boots = await request.app[STORE_READER].read(store.events, entry.name, kind="boot")
        # a failed or timed-out power call of a live run (rpiaas.live.switching)
        errors = await request.app[STORE_READER].read(store.events, entry.name, kind="power_error")
    except StoreUnavailable as e:  # what the store holds is unknown now; the memory's part stands
        doc.update(states=None, last_boot=None, last_power_error=None,
                   store=f"failing: {e.reason}" if doc["store"] == "ok" else doc["store"])
        return web.json_response(doc)
    doc["states"] = [_state_json(c) for c in changes[-RECENT_STATES:]]
    doc["last_boot"] = _boot_json(boots[-1]) if boots else None
    doc["last_power_error"] = {"time_s": errors[-1].time_s, **errors[-1].data} if errors else None
    return web.json_response(doc)


@routes.get("/api/v1/nodes/{name}")
async def node(request: web.Request) -> web.Response:
    """One node: its current state, newest sample, last state changes and last boot report."""
    return await _one_node(request, _entry(request))


@routes.post("/api/v1/nodes/{name}/poll")
async def poll_node(request: web.Request) -> web.Response:
    """Poll one node now (token): its document afterwards, as ``GET /api/v1/nodes/{name}``."""
    entry = _entry(request)
    await body(request, ())
    if POLLER not in request.app:
        raise error(503, "the poller is not running")
    await request.app[POLLER].poll_once([entry])
    return await _one_node(request, entry)


@routes.post("/api/v1/history/compact")
async def compact(request: web.Request) -> web.Response:
    """Replace samples before ``before`` (unix s) by means over ``resolution`` s buckets (token)."""
    data = await body(request, ("before", "resolution"), ("before", "resolution"))
    before = body_number(data, "before")
    resolution = body_number(data, "resolution", MIN_RESOLUTION_S)
    result = await asyncio.to_thread(request.app[STORE].compact, before, resolution)
    return web.json_response({"replaced": result.replaced, "written": result.written})


@routes.post("/api/v1/history/purge")
async def purge(request: web.Request) -> web.Response:
    """Delete samples, power readings, state changes and events before ``before`` (unix s) (token)."""
    data = await body(request, ("before",), ("before",))
    result = await asyncio.to_thread(request.app[STORE].purge, body_number(data, "before"))
    return web.json_response(dataclasses.asdict(result))


@routes.get("/api/v1/nodes/{name}/history")
async def history(request: web.Request) -> web.Response:
    """``?start=&end=`` (unix seconds) ``&resolution=`` (bucket seconds): a node's samples."""
    name = _entry(request).name
    start = float_param(request, "start")
    end = float_param(request, "end")
    resolution = float_param(request, "resolution")
    if start is not None and end is not None and end < start:
        raise error(400, "end must not be before start")
    if resolution is not None and resolution < MIN_RESOLUTION_S:
        raise error(400, f"resolution: expected at least {MIN_RESOLUTION_S} seconds")
    try:
        samples = await _read(request, request.app[STORE].history, name, start, end, resolution)
    except ValueError as e:
        raise error(400, str(e)) from None
    return web.json_response({"node": name, "start": start, "end": end, "resolution": resolution,
                              "samples": [_sample_json(s) for s in samples]})


@routes.get("/api/v1/summary")
async def summary(request: web.Request) -> web.Response:
    """How many nodes are online, offline or not yet polled, and their mean CPU use."""
    registry = request.app[REGISTRY]
    poller = request.app.get(POLLER)
    online = [e for e in registry if e.online is True]
    utils = [e.sample.cpu_util for e in online if e.sample is not None]
    return web.json_response({
        "nodes": len(registry),
        "online": len(online),
        "offline": sum(1 for e in registry if e.online is False),
        "unknown": sum(1 for e in registry if e.online is None),
        "cpu_util_mean": sum(utils) / len(utils) if utils else None,
        "poll_rounds": poller.rounds if poller is not None else 0,
        "poll_interval_s": request.app[CONFIG].poll_interval_s,
        "poll_latency": poller.latency.to_json() if poller is not None else None,
        "poll_age": poller.poll_ages() if poller is not None else None,
        "store": _store_status(request),
    })


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Whether the master is well: ``ok``, or ``degraded`` while its history store fails (it
    still polls and answers from memory); 200 either way, the reason in ``store``."""
    health = _store_health(request)
    poller = request.app.get(POLLER)
    return web.json_response({
        "status": "ok" if health["status"] == "ok" else "degraded",
        "store": health,
        "poll_rounds": poller.rounds if poller is not None else 0,
    })


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI document."""
    return web.json_response(openapi_document())


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
