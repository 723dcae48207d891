"""Live runs on the master: start, watch, fetch, cancel and resume scenario replays.

``POST /api/v1/runs`` (master token) takes a scenario, checked by the same
parser as ``rpiaas run``, and replays it with :class:`~rpiaas.live.replay.LiveRun`
in the background; each run lives in ``runs_dir/<id>/`` (the scenario, the
journal, then the result).  Agents push task ends to ``POST
/api/v1/task-ended`` with their own node's token, and a node's push is taken
only for a task that runs on that node.  A master started with ``--resume``
takes up every run that has a journal and no result.

A scenario sent to the master never names a file on the master: its cluster
comes inline and a trace comes as its task list (``rpiaas run --live`` sends
both so), else the run is refused with 400 before anything is read.  An
error names the sent scenario's key and line, never a line of another file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from ..inputs.source import InputError
from ..rundir import RUN_FILES
from ..scenario import load_scenario
from ..sim.twin import simulate_twin
from .client import AgentClient
from .keys import CONFIG, NODE, NODE_TOKENS, REGISTRY, RUNS, STORE
from .replay import JOURNAL, RESULT, TASK_KINDS, LiveOptions, LiveRun
from .routes import _body, _body_number, _error, json_body

__all__ = ["RunManager", "run_json", "setup_run_routes"]

log = logging.getLogger(__name__)

SCENARIO_FILE = "scenario.json"
CANCELLED = "cancelled"
_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class RunManager:
    """The live runs of one master, by id."""

    def __init__(self, app: web.Application, client: AgentClient) -> None:
        self.app = app
        self.client = client
        self.runs: dict[str, LiveRun] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    @property
    def runs_dir(self) -> Path:
        return Path(self.app[CONFIG].runs_dir)

    def _new_id(self, name: str) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        base = f"{name}-{stamp}"
        run_id, k = base, 1
        while run_id in self.runs or (self.runs_dir / run_id).exists():
            k += 1
            run_id = f"{base}-{k}"
        return run_id

    def create(self, scenario_data: dict[str, Any], file_name: str, options: LiveOptions,
               notify_url: str | None) -> LiveRun:
        """Check and start a run; InputError or ValueError (nothing started) if it cannot run."""
        name = str(scenario_data.get("name") or Path(file_name).stem or "run")
        run_id = self._new_id(re.sub(r"[^A-Za-z0-9._-]", "_", name)[:60])
        directory = self.runs_dir / run_id
        directory.mkdir(parents=True)
        try:
            path = directory / SCENARIO_FILE
            path.write_text(json.dumps(scenario_data, indent=2) + "\n", encoding="utf-8")
            run = self._build(run_id, directory, options, notify_url)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._start(run)
        return run

    def _build(self, run_id: str, directory: Path, options: LiveOptions,
               notify_url: str | None) -> LiveRun:
        scenario = load_scenario(directory / SCENARIO_FILE)
        registry = self.app[REGISTRY]
        unknown = [n.name for n in scenario.cluster.nodes if registry.get(n.name) is None]
        if unknown:
            shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10
                                               else "")
            raise ValueError(f"the scenario's cluster names nodes this master does not know: {shown}")
        entries = [e for n in scenario.cluster.nodes if (e := registry.get(n.name)) is not None]
        return LiveRun(run_id, scenario, entries, self.client, self.app[STORE], directory, options,
                       notify_url, twin=simulate_twin)

    def _start(self, run: LiveRun) -> None:
        self.runs[run.id] = run

        async def go() -> None:
            try:
                result = await run.run()
                log.info("run %s: completed: %s", run.id, result)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                run.status.state = "failed"
                run.status.error = f"{type(e).__name__}: {e}"
                log.exception("run %s failed", run.id)

        self.tasks[run.id] = asyncio.create_task(go(), name=f"rpiaas-run-{run.id}")

    def placements(self) -> dict[str, list[dict[str, Any]]]:
        """What each node runs now for the running runs: ``{node: [{"run", "task"}, ...]}``."""
        out: dict[str, list[dict[str, Any]]] = {}
        for run in self.runs.values():
            if run.status.state != "running":
                continue
            for node, task_ids in run.placements().items():
                out.setdefault(node, []).extend({"run": run.id, "task": t} for t in task_ids)
        return out

    def report(self, doc: dict[str, Any], node: str) -> bool | None:
        """Node ``node``'s pushed task end: whether a run knew the task; None if another node runs it."""
        running = [run for run in self.runs.values() if run.status.state == "running"]
        owners = {owner for run in running if (owner := run.node_of(doc.get("id"))) is not None}
        if owners and node not in owners:
            return None
        return any(run.task_report(doc, node) for run in running)

    async def cancel(self, run_id: str) -> None:
        run = self.runs[run_id]
        task = self.tasks.get(run_id)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await run.cancel()
        (run.directory / CANCELLED).write_text("cancelled through the API\n")

    def unfinished(self) -> list[Path]:
        """Run directories with a journal, no result and not cancelled."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(d for d in self.runs_dir.iterdir()
                      if (d / JOURNAL).is_file() and not (d / RESULT / "run.json").exists()
                      and not (d / CANCELLED).exists() and (d / SCENARIO_FILE).is_file())

    def resume_all(self) -> list[str]:
        resumed = []
        for directory in self.unfinished():
            with open(directory / JOURNAL, encoding="utf-8") as f:
                head = json.loads(f.readline())
            options = LiveOptions(float(head["timescale"]), str(head["task_kind"]),
                                  watch_interval(self.app))
            try:
                run = self._build(directory.name, directory, options, head.get("notify_url"))
            except (InputError, ValueError) as e:
                log.error("run %s cannot be resumed: %s", directory.name, e)
                continue
            self._start(run)
            resumed.append(run.id)
        return resumed

    async def close(self) -> None:
        """Stop following the runs (their tasks go on; ``--resume`` takes them up again)."""
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def check_no_files(scenario: dict[str, Any]) -> None:
    """Refuse (400) a scenario that names a file: the master reads none on a caller's behalf."""
    cluster = scenario.get("cluster")
    if isinstance(cluster, str):
        raise _error(400, "scenario.cluster: expected the cluster inline (a mapping): the master "
                          "reads no file a scenario names (rpiaas run --live sends it inline)")
    workload = scenario.get("workload")
    if isinstance(workload, dict) and "trace" in workload:
        raise _error(400, "scenario.workload.trace: the master reads no trace file; send the "
                          "trace's tasks as workload.tasks (rpiaas run --live does)")


def _input_error(e: InputError, runs_dir: Path) -> web.HTTPException:
    """400 for a scenario error, located in the sent scenario; nothing of any other file."""
    sent = e.file is not None and Path(e.file).name == SCENARIO_FILE \
        and Path(e.file).parent.parent == runs_dir
    if not sent:
        return _error(400, f"scenario: {e.path or 'a value'}: names something the master does "
                           "not read")
    return _error(400, f"scenario: {e.path + ': ' if e.path else ''}{e.message}"
                       f"{f' (line {e.line} of the sent scenario)' if e.line else ''}")


def watch_interval(app: web.Application) -> float:
    return min(1.0, app[CONFIG].poll_interval_s)


def run_json(run: LiveRun) -> dict[str, Any]:
    """A run as ``GET /api/v1/runs`` shows it: its state and counts, how far along, its files.

    ``progress`` is the share of the tasks ended when the workload's size is
    known, else the share of the horizon reached; 1 once completed.
    """
    doc = run.status.to_json()
    st, scenario = run.status, run.scenario
    total = scenario.workload.count
    horizon = scenario.horizon_s
    if st.state == "completed":
        progress: float | None = 1.0
    elif total:
        progress = min(1.0, st.ended / total)
    elif horizon:
        progress = min(1.0, max(0.0, st.now_s / horizon))
    else:
        progress = None
    result = run.directory / RESULT
    doc.update(tasks_total=total, horizon_s=horizon, progress=progress,
               files=[f for f in RUN_FILES if (result / f).is_file()] if st.state == "completed"
               else [])
    return doc


routes = web.RouteTableDef()


def _run(request: web.Request) -> LiveRun:
    run_id = request.match_info["id"]
    run = request.app[RUNS].runs.get(run_id)
    if run is None:
        raise _error(404, f"no such run: {run_id}")
    return run


@routes.post("/api/v1/runs")
async def start_run(request: web.Request) -> web.Response:
    """Replay a scenario on the testbed (token): ``{"scenario": {...}, "file", "timescale", "task_kind"}``."""
    data = await _body(request, ("scenario", "file", "timescale", "task_kind"), ("scenario",))
    if not isinstance(data["scenario"], dict):
        raise _error(400, "scenario: expected the scenario as a JSON object")
    file_name = data.get("file", "scenario.yaml")
    if not isinstance(file_name, str):
        raise _error(400, "file: expected a file name")
    kind = data.get("task_kind", "sleep")
    if kind not in TASK_KINDS:
        raise _error(400, f"task_kind: expected one of {', '.join(TASK_KINDS)}, got {kind!r}")
    timescale = _body_number({"timescale": 1.0, **data}, "timescale", positive=True)
    options = LiveOptions(timescale, kind, watch_interval(request.app))
    check_no_files(data["scenario"])
    if request.app[NODE_TOKENS].secret is None:
        raise _error(400, "this master has no node secret (node_secret_file): it cannot start "
                          "tasks")
    notify = f"{request.url.origin()}/api/v1/task-ended"
    manager = request.app[RUNS]
    try:
        run = manager.create(data["scenario"], file_name, options, notify)
    except InputError as e:
        raise _input_error(e, manager.runs_dir) from None
    except ValueError as e:
        raise _error(400, str(e)) from None
    return web.json_response(run.status.to_json(), status=201,
                             headers={"Location": f"/api/v1/runs/{run.id}"})


@routes.get("/api/v1/runs")
async def list_runs(request: web.Request) -> web.Response:
    """Every run this master has followed since it started."""
    return web.json_response({"runs": [run_json(r) for r in request.app[RUNS].runs.values()]})


@routes.get("/api/v1/runs/{id}")
async def get_run(request: web.Request) -> web.Response:
    """A run's state and counts; ``files`` once it completed."""
    return web.json_response(run_json(_run(request)))


@routes.get("/api/v1/runs/{id}/files/{name}")
async def get_run_file(request: web.Request) -> web.StreamResponse:
    """A file of a completed run's directory."""
    run = _run(request)
    name = request.match_info["name"]
    if name not in RUN_FILES:
        raise _error(404, f"no such run file: {name} (one of {', '.join(RUN_FILES)})")
    path = run.directory / RESULT / name
    if run.status.state != "completed" or not path.is_file():
        raise _error(404, f"{name}: not there (run {run.status.state})")
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
    """An agent pushes a task's end here (its node's token): its task document."""
    doc = await json_body(request)
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise _error(400, "body: expected a task document with an id")
    node = request[NODE]
    known = request.app[RUNS].report(doc, node)
    if known is None:
        log.warning("%s pushed the end of task %.100r, which runs on another node: refused",
                    node, doc["id"])
        raise _error(403, "id: not a task of the reporting node")
    return web.json_response({"known": known})


def setup_run_routes(app: web.Application) -> None:
    app.add_routes(routes)
