"""``rpiaas run --live``: send a scenario to a master, follow the replay, fetch its run directory.

The scenario is read and checked before (by the parser the simulation uses,
so an error names the user's file, line and key); the master receives it as
one JSON document (:meth:`Scenario.payload <rpiaas.scenario.Scenario.payload>`:
its cluster inline, a trace as its tasks) and checks it again against its
nodes.  The run is named on the master as its run directory is here (``-o
runs/X``: run ``X``); when the master has a run of that name already it adds
a suffix (``X-2``), and the client says so.  The run directory is fetched file by file into a
:class:`~rpiaas.rundir.RunCopy` and moved into place whole, as a simulated
run's is.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..live.options import check_run_id, safe_run_id
from ..rundir import RunCopy, read_run
from ..rundir.fidelity import read_fidelity, summary_line
from ..scenario import Scenario
from .progress import RunProgress

__all__ = ["MasterError", "run_live"]


class MasterError(RuntimeError):
    """The master refused a request (``status``, its HTTP status) or could not be reached (None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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
            raise MasterError(f"{method} {self.url}{path}: HTTP {e.code}: {message}",
                              e.code) from None
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
    RunCopy.check(out)  # an out that is not a run directory: refused before the run starts
    master = _Master(master_url, token)
    payload = {"scenario": scenario.payload(),
               "file": Path(scenario.file).name if scenario.file else "scenario.yaml",
               "timescale": timescale, "task_kind": task_kind}
    name = out.absolute().name
    try:
        payload["id"] = check_run_id(name)
        why = f"the master has a run {name} already"
    except ValueError as e:  # sent as the nearest run id, with the rule it broke
        why = f"--out's name is not a run id ({e})"
        if safe_run_id(name):
            payload["id"] = safe_run_id(name)
    run = master.json("POST", "/api/v1/runs", payload)
    run_id = run["id"]
    if run_id != name:  # said even when quiet: the dashboard shows the run under another name
        print(f"note: {why}: this run is {run_id} on the master", file=sys.stderr, flush=True)
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
    copy = RunCopy(out)
    try:
        for name in copy.files(run["files"]):
            copy.add(name, master.call("GET", f"/api/v1/runs/{run_id}/files/{name}"))
        out = copy.commit()
    except BaseException:
        copy.abort()
        raise
    fidelity = read_fidelity(out)
    if not quiet and fidelity is not None:
        print(summary_line(fidelity), file=sys.stderr, flush=True)
    return dict(read_run(out)["summary"]), out
