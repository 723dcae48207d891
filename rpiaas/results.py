"""The run directory: one format for simulated and live runs.

A run directory holds

- ``run.json``: scenario, mode, policy, seed, versions and the ``summary``;
  byte-identical for the same scenario and seed in simulation;
- ``tasks.csv``: one row per task (``task_id, arrival_s, start_s, end_s, node,
  state, wait_s, response_s, slowdown, ...``), written as tasks end;
- ``nodes.csv``: per-node series (``time_s, node, state, cores_used,
  mem_used_mb, utilization, power_w, energy_j, tasks``);
- ``events.jsonl``: the control plane's event log;
- ``decisions.jsonl``: the decision trace, one line per placement decision
  (hooks asked, nodes filtered out, scores, node chosen), only when the
  scenario sets ``decision_trace: true``;
- ``timing.json``: wall-clock facts (when, how long), kept out of ``run.json``.

:class:`RunWriter` streams these into a temporary sibling directory and moves
it into place only when the run completes, so a failed or interrupted run
never leaves a half-written result.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import sys
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .model import Task, TaskState

if TYPE_CHECKING:
    from .scenario import Scenario

__all__ = ["NODE_COLUMNS", "RUN_FILES", "TASK_COLUMNS", "RunWriter", "Stats", "read_run",
           "remove_stale_partials", "run_record", "versions"]

TASK_COLUMNS = ("task_id", "arrival_s", "start_s", "end_s", "node", "state", "wait_s",
                "response_s", "slowdown", "bounded_slowdown", "cores", "mem_mb", "work_core_s",
                "kind", "tenant", "attempts")
NODE_COLUMNS = ("time_s", "node", "state", "cores_used", "mem_used_mb", "utilization",
                "power_w", "energy_j", "tasks")
BSLD_BOUND_S = 10.0
# every file a run directory may hold
RUN_FILES = ("run.json", "tasks.csv", "nodes.csv", "events.jsonl", "decisions.jsonl", "timing.json",
             "fidelity.json")
FORMAT = "rpiaas-run/1"
_COMPLETED = TaskState.COMPLETED
_BUF = 1 << 20


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": ".".join(map(str, sys.version_info[:3]))}
    for pkg in ("rpiaas", "numpy", "simpy", "pluggy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def run_record(scenario: Scenario, mode: str, summary: dict[str, Any],
               nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The content of ``run.json`` (no wall-clock data: same inputs, same bytes)."""
    return {
        "format": FORMAT,
        "mode": mode,
        "name": scenario.name,
        "policy": scenario.policy.name,
        "policy_params": scenario.policy.params,
        "queue": scenario.queue.name if scenario.queue else "fcfs",
        "seed": scenario.seed,
        "scenario_file": scenario.file,
        "scenario": scenario.data,
        "versions": versions(),
        "summary": summary,
        "nodes": nodes,
    }


def bounded_slowdown(response_s: float, run_s: float) -> float:
    """``max(1, response / max(run, 10 s))``: slowdown that short tasks cannot inflate."""
    return max(1.0, response_s / max(run_s, BSLD_BOUND_S))


class Stats:
    """Summary metrics accumulated as tasks end (O(1) memory per task but waits)."""

    def __init__(self) -> None:
        self.counts: dict[TaskState, int] = dict.fromkeys(TaskState, 0)
        self.waits = array("d")
        self.sum_response = 0.0
        self.sum_bsld = 0.0
        self.first_arrival = math.inf
        self.last_end = -math.inf

    @property
    def ended(self) -> int:
        return sum(self.counts.values())

    def add(self, task: Task) -> float | None:
        """Account a task that ended; returns its bounded slowdown if it completed."""
        self.counts[task.state] += 1
        a = task.arrival_s
        if a < self.first_arrival:
            self.first_arrival = a
        if task.start_s >= 0:
            self.waits.append(task.start_s - a)
        if task.state is _COMPLETED:
            return self.completed(a, task.start_s, task.end_s)
        return None

    def completed(self, arrival_s: float, start_s: float, end_s: float) -> float:
        """Account a completed task; returns its bounded slowdown."""
        response = end_s - arrival_s
        run = end_s - start_s
        bsld = bounded_slowdown(response, run)
        self.sum_response += response
        self.sum_bsld += bsld
        if end_s > self.last_end:
            self.last_end = end_s
        return bsld

    def summary(self, busy_core_s: float, capacity_core_s: float, energy_j: float,
                duration_s: float) -> dict[str, Any]:
        counts = {state.value: n for state, n in self.counts.items()}
        done = counts["completed"]
        waits = np.frombuffer(self.waits, dtype=np.float64) if len(self.waits) else np.zeros(0)
        makespan = self.last_end - self.first_arrival if done else 0.0
        return {
            "tasks": sum(counts.values()),
            "completed": done,
            "rejected": counts["rejected"],
            "failed": counts["failed"],
            "killed": counts["killed"],
            "unfinished": counts["queued"] + counts["running"],
            "makespan_s": _r(makespan),
            "duration_s": _r(duration_s),
            "mean_wait_s": _r(float(waits.mean())) if waits.size else None,
            "p95_wait_s": _r(float(np.percentile(waits, 95))) if waits.size else None,
            "max_wait_s": _r(float(waits.max())) if waits.size else None,
            "mean_response_s": _r(self.sum_response / done) if done else None,
            "mean_bounded_slowdown": _r(self.sum_bsld / done) if done else None,
            "mean_utilization": _r(busy_core_s / capacity_core_s) if capacity_core_s > 0 else 0.0,
            "energy_j": _r(energy_j),
            "mean_power_w": _r(energy_j / duration_s) if duration_s > 0 else None,
            "energy_per_task_j": _r(energy_j / done) if done else None,
        }


def _r(x: float) -> float:
    """Round summary figures so they print stably (12 significant digits)."""
    return float(f"{x:.12g}")


def _csv(text: str) -> str:
    """Quote a free-text field the way the csv module reads it back."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _f(x: float) -> str:
    return repr(x) if x >= 0 else ""


class Lines:
    """A text sink whose ``write`` is a bare ``list.append``; ``drain`` writes the lines out.

    Writing through a file object costs a method call into the I/O stack per
    line; the event log and the task table write several lines per task, so
    they collect lines here and the shell drains them every few thousand events.
    """

    __slots__ = ("_buf", "_file", "write")

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self._buf: list[str] = []
        self.write: Callable[[str], None] = self._buf.append

    def drain(self) -> None:
        if self._buf:
            self._file.write("".join(self._buf))
            self._buf.clear()

    def close(self) -> None:
        self.drain()
        self._file.close()


_PARTIAL = re.compile(r"^\..+\.partial-([0-9]+)$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or a number no process has): keep its files
    return True


def remove_stale_partials(parent: Path) -> list[Path]:
    """Remove the partial run directories (``.NAME.partial-PID``) of processes that are gone.

    A run killed with SIGKILL (or a machine that lost power) leaves its partial
    directory behind; the next run written beside it clears it away.  Returns
    what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        m = _PARTIAL.match(entry.name)
        if m is None or not entry.is_dir(follow_symlinks=False) or _alive(int(m.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


class RunWriter:
    """Streams a run directory; :meth:`commit` moves it into place."""

    def __init__(self, out: str | Path, event_log: bool = True, decisions: bool = False) -> None:
        self.out = Path(out)
        if self.out.exists() and not (self.out / "run.json").exists() and (
                not self.out.is_dir() or any(self.out.iterdir())):
            raise FileExistsError(f"{self.out} exists and is not a run directory; not overwriting it")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.out.parent)
        self.tmp = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()
        # kept open for the whole run and closed by commit() or abort()
        self.tasks = Lines(self._open("tasks.csv"))
        self.nodes = Lines(self._open("nodes.csv"))
        self.events = Lines(self._open("events.jsonl")) if event_log else None
        self.decisions = Lines(self._open("decisions.jsonl")) if decisions else None
        self.tasks.write(",".join(TASK_COLUMNS) + "\n")
        self.nodes.write(",".join(NODE_COLUMNS) + "\n")
        self.stats = Stats()
        self.node_names: list[str] = []
        self._quoted: dict[str, str] = {}

    def drain(self) -> None:
        """Write out the lines collected so far."""
        for lines in self._sinks():
            lines.drain()

    def _sinks(self) -> list[Lines]:
        return [x for x in (self.tasks, self.nodes, self.events, self.decisions) if x is not None]

    def _open(self, name: str) -> IO[str]:
        return open(self.tmp / name, "w", buffering=_BUF, encoding="utf-8", newline="")

    def task_ended(self, task: Task) -> None:
        """Write the row of a task in a final state (or left over at the end)."""
        state = task.state
        a, s, e = task.arrival_s, task.start_s, task.end_s
        bsld = self.stats.add(task)
        if bsld is not None:
            # completed, the common case, kept short: every field is known
            response = e - a
            run = e - s
            sld = repr(response / run) if run > 0 else ""
            self.tasks.write(
                f"{task.id},{a!r},{s!r},{e!r},{self.node_names[task.node]},completed,{s - a!r},"
                f"{response!r},{sld},{bsld!r},{task.cores},{task.mem_mb},{task.work_core_s!r},"
                f"{task.kind},{self._tenant(task.tenant)},{task.attempts}\n")
            return
        started = s >= 0
        ended = e >= 0 and started
        wait = _f(s - a) if started else ""
        if ended:
            response = e - a
            run = e - s
            resp = repr(response)
            sld = repr(response / run) if run > 0 else ""
            bsld_text = repr(bounded_slowdown(response, run))
        else:
            resp = sld = bsld_text = ""
        node = self.node_names[task.node] if task.node >= 0 else ""
        self.tasks.write(
            f"{task.id},{a!r},{_f(s)},{_f(e) if ended or state is TaskState.REJECTED else ''},"
            f"{node},{state.value},{wait},{resp},{sld},{bsld_text},{task.cores},{task.mem_mb},"
            f"{task.work_core_s!r},{task.kind},{self._tenant(task.tenant)},{task.attempts}\n"
        )

    def _tenant(self, tenant: str) -> str:
        quoted = self._quoted.get(tenant)
        if quoted is None:
            quoted = self._quoted[tenant] = _csv(tenant)
        return quoted

    def commit(self, run: dict[str, Any], timing: dict[str, Any],
               extra: dict[str, dict[str, Any]] | None = None) -> Path:
        """Close the files, write ``run.json``, ``timing.json`` and the ``extra`` JSON
        files (name to content), and move the directory into place."""
        for f in self._sinks():
            f.close()
        (self.tmp / "run.json").write_text(dump_run(run))
        (self.tmp / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
        for name, doc in (extra or {}).items():
            assert name in RUN_FILES, name
            (self.tmp / name).write_text(json.dumps(doc, indent=2) + "\n")
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            self.out.rename(old)
            self.tmp.rename(self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.tmp.rename(self.out)
        return self.out

    def abort(self) -> None:
        for f in self._sinks():
            with contextlib.suppress(OSError):
                f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def dump_run(run: dict[str, Any]) -> str:
    """``run.json`` text: indented, but one line per node so 10,000 nodes stay fast."""
    nodes = run.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        return json.dumps(run, indent=2) + "\n"
    rest = {k: v for k, v in run.items() if k != "nodes"}
    head = json.dumps({**rest, "nodes": []}, indent=2)  # "nodes" last
    rows = ",\n".join("    " + json.dumps(n, separators=(", ", ": ")) for n in nodes)
    return head[: -len("[]\n}")] + "[\n" + rows + "\n  ]\n}\n"


def read_run(path: str | Path) -> dict[str, Any]:
    """Read ``run.json`` of a run directory."""
    p = Path(path) / "run.json"
    try:
        return dict(json.loads(p.read_text()))
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: no such file (not a run directory?)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}:{e.lineno}: not valid JSON: {e.msg}") from None
