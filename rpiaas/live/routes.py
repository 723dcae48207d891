"""The master's JSON API under ``/api/v1/``; errors are JSON ``{"error": ...}`` too."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from typing import Any

from aiohttp import web

from ..store import Sample
from .keys import CONFIG, POLLER, REGISTRY, STORE

__all__ = ["setup_routes"]

routes = web.RouteTableDef()

# Finer buckets than this are not a downsampling (and overflow the store's integer bucket index).
MIN_RESOLUTION_S = 0.001


def _error(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 404: web.HTTPNotFound}[status]
    return cls(text=web.json_response({"error": message}).text, content_type="application/json")


def _float_param(request: web.Request, name: str) -> float | None:
    text = request.query.get(name)
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


@routes.get("/api/v1/nodes")
async def nodes(request: web.Request) -> web.Response:
    """Every node with its agent address and current state."""
    registry = request.app[REGISTRY]
    latest = await asyncio.to_thread(request.app[STORE].latest)
    out = []
    for entry in registry:
        doc = entry.to_json()
        status = latest.get(entry.name)
        doc["sample"] = (_sample_json(status.sample)
                         if status is not None and status.sample is not None else None)
        out.append(doc)
    return web.json_response({"nodes": out})


@routes.get("/api/v1/nodes/{name}/history")
async def history(request: web.Request) -> web.Response:
    """``?start=&end=`` (unix seconds) ``&resolution=`` (bucket seconds): a node's samples."""
    name = request.match_info["name"]
    if request.app[REGISTRY].get(name) is None:
        raise _error(404, f"no such node: {name}")
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
        "poll_rounds": request.app[POLLER].rounds if POLLER in request.app else 0,
        "poll_interval_s": request.app[CONFIG].poll_interval_s,
    })


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
