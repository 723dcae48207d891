"""The agent's HTTP endpoints.

=====================  =====  ================================================
``GET /ping``          open   ``{"status": "ok"}``: the agent is up
``GET /info``          open   the node report (:mod:`rpiaas_agent.report`) as JSON
``GET /metrics``       open   the same report in Prometheus text format
``GET /config``        token  the agent's settings, without the token
``GET /openapi.json``  open   this API's OpenAPI document (:mod:`rpiaas_agent.openapi`)
=====================  =====  ================================================

``HEAD`` works wherever ``GET`` does.  Workload control (``/tasks``) is to come,
behind the same token as ``/config``.
"""

from __future__ import annotations

from aiohttp import web

from . import prometheus, report
from .keys import CONFIG
from .middlewares import requires_token
from .openapi import OPENAPI_PATH, openapi_document

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/ping")
async def ping(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/info")
async def info(request: web.Request) -> web.Response:
    return web.json_response(await report.collect(request.app))


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    text = prometheus.render(await report.collect(request.app))
    # Content-Type is set whole: web.Response(content_type=...) refuses a version parameter
    return web.Response(text=text, headers={"Content-Type": prometheus.CONTENT_TYPE})


@routes.get("/config")
@requires_token
async def config(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONFIG].public())


@routes.get(OPENAPI_PATH)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
