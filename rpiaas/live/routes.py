"""The master's JSON API under ``/api/v1/``; errors are JSON ``{"error": ...}`` too.

Reading is open; every mutating call (POST) needs the bearer token (see
:mod:`.middlewares`).  ``openapi.py`` describes each route for clients.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from ..store import Event, Sample, StateChange
from . import bodies
from .keys import CONFIG, POLLER, REGISTRY, RUNS, STORE
from .registry import NodeEntry

__all__ = ["setup_routes"]

routes = web.RouteTableDef()

# Finer buckets than this are not a downsampling (and overflow the store's integer bucket index).
MIN_RESOLUTION_S = 0.001


# State changes a node's own document lists, newest last.
RECENT_STATES = 50


def _error(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound, 415: web.HTTPUnsupportedMediaType,
           503: web.HTTPServiceUnavailable}[status]
    return cls(text=web.json_response({"error": message}).text, content_type="application/json")


def _entry(request: web.Request) -> NodeEntry:
    name = request.match_info["name"]
    entry = request.app[REGISTRY].get(name)
    if entry is None:
        raise _error(404, f"no such node: {name}")
    return entry


async def _body(request: web.Request, allowed: Sequence[str], required: Sequence[str] = ()
                ) -> dict[str, Any]:
    """The request's JSON object, with only ``allowed`` fields and every ``required`` one."""
    if not request.can_read_body:
        data: Any = {}
    else:
        if request.content_type != "application/json":
            raise _error(415, f"expected a JSON body (Content-Type: application/json), "
                              f"got {request.content_type}")
        data = await json_body(request)
    if not isinstance(data, dict):
        raise _error(400, f"body: expected a JSON object, got {type(data).__name__}")
    for key in data:
        if key not in allowed:
            raise _error(400, f"{key}: unknown field (expected {', '.join(allowed)})")
    for key in required:
        if key not in data:
            raise _error(400, f"{key}: missing field")
    return data


async def json_body(request: web.Request) -> Any:
    """The request's body as JSON, bounded in size (the app's limit) and depth, else 400."""
    try:
        return bodies.loads(await request.read())
    except ValueError as e:
        raise _error(400, f"body: {e}") from None


def _body_number(data: dict[str, Any], name: str, minimum: float = 0.0,
                 positive: bool = False) -> float:
    """Field ``name``: a finite number >= ``minimum`` (> 0 if ``positive``), else 400."""
    value = data[name]
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            or value < minimum or (positive and value <= 0)):
        what = "a positive number" if positive else f"a finite number >= {minimum:g}"
        raise _error(400, f"{name}: expected {what}, got {value!r}")
    return float(value)


def _float_param(request: web.Request, name: str) -> float | None:
    given = request.query.getall(name, [])
    if len(given) > 1:  # not silently the first of several
        raise _error(400, f"{name}: expected at most one value, got {len(given)}")
    text = given[0] if given else None
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise _error(400, f"{name}: expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise _error(400, f"{name}: expected a finite number >= 0, got {text!r}")
    return value


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
               placements: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    doc = entry.to_json()
    doc["sample"] = _sample_json(sample) if sample is not None else None
    doc["tasks"] = placements.get(entry.name, [])
    return doc


def _placements(request: web.Request) -> dict[str, list[dict[str, Any]]]:
    """What each node runs now for the master's live runs (none before the runs start)."""
    runs = request.app.get(RUNS)
    return runs.placements() if runs is not None else {}


@routes.get("/api/v1/nodes")
async def nodes(request: web.Request) -> web.Response:
    """Every node with its agent address, current state and the live runs' tasks on it."""
    latest = await asyncio.to_thread(request.app[STORE].latest)
    placements = _placements(request)
    out = []
    for entry in request.app[REGISTRY]:
        status = latest.get(entry.name)
        out.append(_node_json(entry, status.sample if status is not None else None, placements))
    return web.json_response({"nodes": out})


@routes.get("/api/v1/clusters")
async def clusters(request: web.Request) -> web.Response:
    """The cluster config's clusters: domain, address prefix and node names, in order."""
    spec = request.app[CONFIG].cluster
    return web.json_response({"clusters": [
        {"domain": c.domain, "prefix": c.prefix, "nodes": [n.name for n in c.nodes]}
        for c in spec.clusters]})


async def _one_node(request: web.Request, entry: NodeEntry) -> web.Response:
    store = request.app[STORE]
    latest = await asyncio.to_thread(store.latest, entry.name)
    changes = await asyncio.to_thread(store.states, entry.name)
    status = latest.get(entry.name)
    doc = _node_json(entry, status.sample if status is not None else None, _placements(request))
    doc["states"] = [_state_json(c) for c in changes[-RECENT_STATES:]]
    boots = await asyncio.to_thread(store.events, entry.name, kind="boot")
    doc["last_boot"] = _boot_json(boots[-1]) if boots else None
    return web.json_response(doc)


@routes.get("/api/v1/nodes/{name}")
async def node(request: web.Request) -> web.Response:
    """One node: its current state, newest sample, last state changes and last boot report."""
    return await _one_node(request, _entry(request))


@routes.post("/api/v1/nodes/{name}/poll")
async def poll_node(request: web.Request) -> web.Response:
    """Poll one node now (token): its document afterwards, as ``GET /api/v1/nodes/{name}``."""
    entry = _entry(request)
    await _body(request, ())
    if POLLER not in request.app:
        raise _error(503, "the poller is not running")
    await request.app[POLLER].poll_once([entry])
    return await _one_node(request, entry)


@routes.post("/api/v1/history/compact")
async def compact(request: web.Request) -> web.Response:
    """Replace samples before ``before`` (unix s) by means over ``resolution`` s buckets (token)."""
    data = await _body(request, ("before", "resolution"), ("before", "resolution"))
    before = _body_number(data, "before")
    resolution = _body_number(data, "resolution", MIN_RESOLUTION_S)
    result = await asyncio.to_thread(request.app[STORE].compact, before, resolution)
    return web.json_response({"replaced": result.replaced, "written": result.written})


@routes.post("/api/v1/history/purge")
async def purge(request: web.Request) -> web.Response:
    """Delete samples, state changes and events before ``before`` (unix s) (token)."""
    data = await _body(request, ("before",), ("before",))
    result = await asyncio.to_thread(request.app[STORE].purge, _body_number(data, "before"))
    return web.json_response(dataclasses.asdict(result))


@routes.get("/api/v1/nodes/{name}/history")
async def history(request: web.Request) -> web.Response:
    """``?start=&end=`` (unix seconds) ``&resolution=`` (bucket seconds): a node's samples."""
    name = _entry(request).name
    start = _float_param(request, "start")
    end = _float_param(request, "end")
    resolution = _float_param(request, "resolution")
    if start is not None and end is not None and end < start:
        raise _error(400, "end must not be before start")
    if resolution is not None and resolution < MIN_RESOLUTION_S:
        raise _error(400, f"resolution: expected at least {MIN_RESOLUTION_S} seconds")
    try:
        samples = await asyncio.to_thread(request.app[STORE].history, name, start, end, resolution)
    except ValueError as e:
        raise _error(400, str(e)) from None
    return web.json_response({"node": name, "start": start, "end": end, "resolution": resolution,
                              "samples": [_sample_json(s) for s in samples]})


@routes.get("/api/v1/summary")
async def summary(request: web.Request) -> web.Response:
    """How many nodes are online, offline or not yet polled, and their mean CPU use."""
    registry = request.app[REGISTRY]
    poller = request.app.get(POLLER)
    latest = await asyncio.to_thread(request.app[STORE].latest)
    online = [e for e in registry if e.online is True]
    utils = [s.sample.cpu_util for e in online
             if (s := latest.get(e.name)) is not None and s.sample is not None]
    return web.json_response({
        "nodes": len(registry),
        "online": len(online),
        "offline": sum(1 for e in registry if e.online is False),
        "unknown": sum(1 for e in registry if e.online is None),
        "cpu_util_mean": sum(utils) / len(utils) if utils else None,
        "poll_rounds": poller.rounds if poller is not None else 0,
        "poll_interval_s": request.app[CONFIG].poll_interval_s,
        "poll_latency": poller.latency.to_json() if poller is not None else None,
    })


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI document."""
    from .openapi import openapi_document  # it imports this module's limits

    return web.json_response(openapi_document())


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
