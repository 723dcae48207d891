"""``rpiaas run --live``: send a scenario to a master, follow the replay, fetch its run directory.

The scenario is read and checked here, by the parser the simulation uses (so
an error names the user's file, line and key); the master receives it as one
JSON document, its cluster inlined, and checks it again against its nodes.
The run directory is fetched file by file into a temporary sibling and moved
into place whole, as a simulated run's is.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..inputs.source import load_file
from ..model import Task
from ..rundir import RUN_FILES
from ..rundir.fidelity import summary_line
from ..scenario import Scenario, rng_streams
from .progress import RunProgress

__all__ = ["MasterError", "run_live", "scenario_payload"]



class MasterError(RuntimeError):
    """The master refused a request (``status``, its HTTP status) or could not be reached (None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def scenario_payload(scenario: Scenario) -> dict[str, Any]:
    """The scenario as the master takes it: as given (defaults filled), the cluster inlined.

    A trace workload is sent as the task list it makes (the master need not
    have the trace file); a generator is sent as it is, the master draws the
    same tasks from the same seed.
    """
    data = dict(scenario.data)
    cluster = data.get("cluster")
    if isinstance(cluster, str) and scenario.file is not None:
        src = load_file(Path(scenario.file).parent / cluster)
        data["cluster"] = src.with_text(src.data)
    workload = data.get("workload")
    if isinstance(workload, dict) and "trace" in workload:
        tasks = scenario.workload.tasks(rng_streams(scenario.seed)["workload"])
        data["workload"] = {"tasks": [_task_json(t) for t in tasks]}
    return data


def _task_json(t: Task) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id, "arrival_s": t.arrival_s, "cores": t.cores,
                           "mem_mb": t.mem_mb, "work_core_s": t.work_core_s, "kind": t.kind}
    if t.tenant:
        out["tenant"] = t.tenant
    if t.priority:
        out["priority"] = t.priority
    if t.walltime_s is not None:
        out["walltime_s"] = t.walltime_s
    return out


class _Master:
    def __init__(self, url: str, token: str | None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: Any = None) -> bytes:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error", e.reason)
            except (ValueError, AttributeError):
                message = e.reason
            raise MasterError(f"{method} {self.url}{path}: HTTP {e.code}: {message}", e.code) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise MasterError(f"{self.url}: cannot reach the master: {reason}") from None

    def json(self, method: str, path: str, body: Any = None) -> Any:
        return json.loads(self.call(method, path, body))


def run_live(scenario: Scenario, master_url: str, token: str | None, out: Path, *,
             timescale: float = 1.0, task_kind: str = "sleep", quiet: bool = False,
             poll_s: float = 0.5, reconnect_s: float = 120.0) -> tuple[dict[str, Any], Path]:
    """Replay ``scenario`` on the master's testbed; its summary and the local run directory.

    While the master cannot be reached (or, restarted, does not know the run
    yet) it is asked again for up to ``reconnect_s`` seconds.
    """
    if out.exists() and not (out / "run.json").exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not a run directory; not overwriting it")
    master = _Master(master_url, token)
    payload = {"scenario": scenario_payload(scenario),
               "file": Path(scenario.file).name if scenario.file else "scenario.yaml",
               "timescale": timescale, "task_kind": task_kind}
    run = master.json("POST", "/api/v1/runs", payload)
    run_id = run["id"]
    if not quiet:
        print(f"live run {run_id} on {master_url} (timescale {timescale:g}, {task_kind} tasks)",
              file=sys.stderr, flush=True)
    progress = None if quiet else RunProgress()
    if progress is not None:
        progress.update(run)
    unreachable_since: float | None = None
    try:
        while run["state"] == "running":
            time.sleep(poll_s)
            try:
                run = master.json("GET", f"/api/v1/runs/{run_id}")
                unreachable_since = None
            except MasterError as e:
                # a master restarted with --resume takes the run up again: wait for it
                if e.status not in (None, 404):
                    raise
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > reconnect_s:
                    raise
                continue
            if progress is not None:
                progress.update(run)
    except KeyboardInterrupt:
        master.call("DELETE", f"/api/v1/runs/{run_id}")
        raise
    finally:
        if progress is not None:
            progress.close()
    if run["state"] != "completed":
        raise MasterError(f"run {run_id} {run['state']}: {run.get('error') or 'no result'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name in run["files"]:
            if name in RUN_FILES:
                (tmp / name).write_bytes(master.call("GET", f"/api/v1/runs/{run_id}/files/{name}"))
        record = json.loads((tmp / "run.json").read_text())
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not quiet and (out / "fidelity.json").is_file():
        print(summary_line(json.loads((out / "fidelity.json").read_text())), file=sys.stderr, flush=True)
    return dict(record["summary"]), out
