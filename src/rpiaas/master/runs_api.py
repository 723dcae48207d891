"""The HTTP of the master's live runs: start, list, watch, fetch and cancel scenario replays.

``POST /api/v1/runs`` (master token) takes a scenario, checked by the same
parser as ``rpiaas run``, and hands it to the master's
:class:`~rpiaas.live.run_manager.RunManager`, which replays it with
:class:`~rpiaas.live.shell.LiveRun` in the background; each run lives in
``runs_dir/<id>/`` (the scenario, the journal, then the result).  Agents push
task ends to ``POST /api/v1/task-ended`` with their own node's token, and a
node's push is taken only for a task that runs on that node, and only within the
push schema and its attempt (:mod:`rpiaas.live.push`): else 400 naming the field,
nothing booked, and a ``push_rejected`` event of the node in the history store.  A master
started with ``--resume`` takes up every run that has a journal and no result.

A run's id is the ``id`` the request asks for (``rpiaas run --live`` asks
for its run directory's name), with a numeric suffix (``-2``) when a run of
this master has it already; without one, the scenario's name and the time.

A scenario sent to the master never names a file on the master: its cluster
comes inline and a trace comes as its task list (``rpiaas run --live`` sends
both so), else the run is refused with 400 before anything is read.  An
error names the sent scenario's key and line, never a line of another file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from ..inputs.source import InputError
from ..live.options import RESULT, TASK_KINDS, LiveOptions, check_run_id
from ..live.push import MAX_ERROR_CHARS, PushRejected, check_document
from ..live.run_manager import SCENARIO_FILE, EndedRun, RunFacts
from ..live.shell import LiveRun
from ..rundir import RUN_FILES
from .http import body, body_number, error, json_body
from .keys import CONFIG, NODE, NODE_TOKENS, RUNS, STORE

__all__ = ["PUSH_REJECTED_EVENT", "check_no_files", "run_json", "setup_run_routes", "watch_interval"]

log = logging.getLogger(__name__)

PUSH_REJECTED_EVENT = "push_rejected"  # the history store's event of a refused task-ended push

def check_no_files(scenario: dict[str, Any]) -> None:
    """Refuse (400) a scenario that names a file: the master reads none on a caller's behalf."""
    cluster = scenario.get("cluster")
    if isinstance(cluster, str):
        raise error(400, "scenario.cluster: expected the cluster inline (a mapping): the master "
                         "reads no file a scenario names (rpiaas run --live sends it inline)")
    workload = scenario.get("workload")
    if isinstance(workload, dict) and "trace" in workload:
        raise error(400, "scenario.workload.trace: the master reads no trace file; send the "
                         "trace's tasks as workload.tasks (rpiaas run --live does)")


def _input_error(e: InputError, runs_dir: Path) -> web.HTTPException:
    """400 for a scenario error, located in the sent scenario; nothing of any other file."""
    sent = e.file is not None and Path(e.file).name == SCENARIO_FILE \
        and Path(e.file).parent.parent == runs_dir
    if not sent:
        return error(400, f"scenario: {e.path or 'a value'}: names something the master does "
                          "not read")
    return error(400, f"scenario: {e.path + ': ' if e.path else ''}{e.message}"
                      f"{f' (line {e.line} of the sent scenario)' if e.line else ''}")


def watch_interval(app: web.Application) -> float:
    """How often a run looks its tasks up on their agents: the poll interval, at most 1 s."""
    return min(1.0, app[CONFIG].poll_interval_s)


def run_json(run: LiveRun | EndedRun, facts: RunFacts) -> dict[str, Any]:
    """A run as ``GET /api/v1/runs`` shows it: its state and counts, how far along, its files,
    and how it runs (its policies, task kind and timescale).

    ``progress`` is the share of the tasks ended when the workload's size is
    known, else the share of the horizon reached; 1 once completed.
    """
    doc = run.status.to_json()
    st = run.status
    total = facts.tasks_total
    horizon = facts.horizon_s
    if st.state == "completed":
        progress: float | None = 1.0
    elif total:
        progress = min(1.0, st.ended / total)
    elif horizon:
        progress = min(1.0, max(0.0, st.now_s / horizon))
    else:
        progress = None
    result = run.directory / RESULT
    doc.update(policy=facts.policy, queue=facts.queue, task_kind=facts.task_kind, timescale=facts.timescale,
               tasks_total=total, horizon_s=horizon, progress=progress,
               files=[f for f in RUN_FILES if (result / f).is_file()] if st.state == "completed"
               else [])
    return doc


routes = web.RouteTableDef()


def _run(request: web.Request) -> LiveRun | EndedRun:
    run_id = request.match_info["id"]
    run = request.app[RUNS].runs.get(run_id)
    if run is None:
        raise error(404, f"no such run: {run_id}")
    return run


def _notify_url(request: web.Request) -> str:
    """Where the agents push their tasks' ends: the master's address as the nodes reach it.

    That is the address it listens on, when it listens on one (the client that
    starts the run may reach it another way: through a relay, a tunnel or a
    name the nodes cannot resolve); else the address the client used.
    """
    host, port = request.app[CONFIG].listen
    if host in ("", "0.0.0.0", "::") or port == 0:
        return f"{request.url.origin()}/api/v1/task-ended"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/api/v1/task-ended"


@routes.post("/api/v1/runs")
async def start_run(request: web.Request) -> web.Response:
    """Replay a scenario on the testbed (token): ``{"scenario": {...}, "id", "file", "timescale",
    "task_kind"}``."""
    data = await body(request, ("scenario", "id", "file", "timescale", "task_kind"), ("scenario",))
    run_id = None
    if "id" in data:
        try:
            run_id = check_run_id(data["id"])
        except ValueError as e:
            raise error(400, f"id: {e}") from None
    if not isinstance(data["scenario"], dict):
        raise error(400, "scenario: expected the scenario as a JSON object")
    file_name = data.get("file", "scenario.yaml")
    if not isinstance(file_name, str):
        raise error(400, "file: expected a file name")
    kind = data.get("task_kind", "sleep")
    if kind not in TASK_KINDS:
        raise error(400, f"task_kind: expected one of {', '.join(TASK_KINDS)}, got {kind!r}")
    timescale = body_number({"timescale": 1.0, **data}, "timescale", positive=True)
    options = LiveOptions(timescale, kind, watch_interval(request.app),
                          request.app[CONFIG].run_hold_limit_s)
    check_no_files(data["scenario"])
    if request.app[NODE_TOKENS].secret is None:
        raise error(400, "this master has no node secret (node_secret_file): it cannot start "
                         "tasks")
    notify = _notify_url(request)
    manager = request.app[RUNS]
    try:
        run = manager.create(data["scenario"], file_name, options, notify, run_id)
    except InputError as e:
        raise _input_error(e, manager.runs_dir) from None
    except ValueError as e:
        raise error(400, str(e)) from None
    return web.json_response(run.status.to_json(), status=201,
                             headers={"Location": f"/api/v1/runs/{run.id}"})


@routes.get("/api/v1/runs")
async def list_runs(request: web.Request) -> web.Response:
    """Every run this master has followed since it started."""
    runs = request.app[RUNS]
    return web.json_response({"runs": [run_json(r, runs.facts(r.id)) for r in runs.runs.values()]})


@routes.get("/api/v1/runs/{id}")
async def get_run(request: web.Request) -> web.Response:
    """A run's state and counts; ``files`` once it completed."""
    run = _run(request)
    return web.json_response(run_json(run, request.app[RUNS].facts(run.id)))


@routes.get("/api/v1/runs/{id}/files/{name}")
async def get_run_file(request: web.Request) -> web.StreamResponse:
    """A file of a completed run's directory."""
    run = _run(request)
    name = request.match_info["name"]
    if name not in RUN_FILES:
        raise error(404, f"no such run file: {name} (one of {', '.join(RUN_FILES)})")
    path = run.directory / RESULT / name
    if run.status.state != "completed" or not path.is_file():
        raise error(404, f"{name}: not there (run {run.status.state})")
    return web.FileResponse(path, headers={"Content-Type": "text/plain; charset=utf-8"})


@routes.delete("/api/v1/runs/{id}")
async def cancel_run(request: web.Request) -> web.Response:
    """Stop a run (token): its tasks are killed on their agents; no result."""
    run = _run(request)
    if run.status.state == "running":
        await request.app[RUNS].cancel(run.id)
    return web.json_response(run.status.to_json())


@routes.post("/api/v1/task-ended")
async def task_ended(request: web.Request) -> web.Response:
    """An agent pushes a task's end here (its node's token): its task document, checked against
    the push schema and its attempt (:mod:`rpiaas.live.push`) before anything is booked."""
    node = request[NODE]
    sent = await json_body(request)
    try:
        if not isinstance(sent, dict):
            check_document(sent)  # refuses it
        known = request.app[RUNS].report(sent, node)  # a run's own task: checked by its run
        if known is False:
            check_document(sent)  # no run's: still only what the schema allows
    except PushRejected as e:
        task = sent.get("id") if isinstance(sent, dict) else None
        log.warning("%s pushed an end of task %.100r that is refused: %.300s", node, task, e)
        data = {"task": task if isinstance(task, str) else None, "field": e.field,
                "error": e.message[:MAX_ERROR_CHARS]}
        try:
            await asyncio.to_thread(request.app[STORE].record_event, node, time.time(),
                                    PUSH_REJECTED_EVENT, data)
        except Exception as store_error:  # the refusal stands whatever the store does
            log.warning("the rejected push of %s is not in the history store: %s", node, store_error)
        raise error(400, str(e)) from None
    if known is None:
        log.warning("%s pushed the end of task %.100r, which runs on another node: refused",
                    node, sent.get("id"))
        raise error(403, "id: not a task of the reporting node")
    return web.json_response({"known": known})


def setup_run_routes(app: web.Application) -> None:
    app.add_routes(routes)
