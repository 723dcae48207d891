"""The agent's HTTP endpoints.

=====================  =====  ================================================
``GET /ping``          open   ``{"status": "ok"}``: the agent is up
``GET /info``          open   the node report (:mod:`rpiaas_agent.report`) as JSON
``GET /metrics``       open   the same report in Prometheus text format
``GET /config``        token  the agent's settings, without the token
``GET /openapi.json``  open   this API's OpenAPI document (:mod:`rpiaas_agent.openapi`)
``GET /tasks``         token  the running tasks, then the recently finished ones
``POST /tasks``        token  start a task (:mod:`rpiaas_agent.tasks`); 201 and its document
``GET /tasks/{id}``    token  one task
``DELETE /tasks/{id}`` token  kill a task's whole process group; its final document
=====================  =====  ================================================

``HEAD`` works wherever ``GET`` does.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import jsonbody, prometheus, report
from .keys import CONFIG, TASKS
from .middlewares import json_error, requires_token
from .openapi import OPENAPI_PATH, openapi_document
from .tasks import TaskRefused

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


@routes.get("/tasks")
@requires_token
async def list_tasks(request: web.Request) -> web.Response:
    return web.json_response({"tasks": [t.document() for t in request.app[TASKS].tasks()]})


@routes.post("/tasks")
@requires_token
async def submit_task(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        return json_error(415, f"expected a JSON body (Content-Type: application/json), "
                               f"got {request.content_type}")
    raw = await request.read()  # over max_body_bytes: 413
    try:
        body: Any = jsonbody.loads(raw)
    except ValueError as e:
        return json_error(400, f"body: {e}")
    try:
        task = request.app[TASKS].submit(body)
    except TaskRefused as e:
        return json_error(e.status, e.message)
    return web.json_response(task.document(), status=201,
                             headers={"Location": f"/tasks/{task.spec.id}"})


@routes.get("/tasks/{id}")
@requires_token
async def get_task(request: web.Request) -> web.Response:
    task = request.app[TASKS].get(request.match_info["id"])
    if task is None:
        return json_error(404, f"no task {request.match_info['id']!r}")
    return web.json_response(task.document())


@routes.delete("/tasks/{id}")
@requires_token
async def kill_task(request: web.Request) -> web.Response:
    try:
        task = await request.app[TASKS].kill(request.match_info["id"])
    except TaskRefused as e:
        return json_error(e.status, e.message)
    return web.json_response(task.document())
