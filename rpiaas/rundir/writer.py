"""Writing a run directory: streamed as the run goes, moved into place when it completes.

:class:`RunWriter` streams the files of :mod:`rpiaas.rundir.format` into a
temporary sibling directory (``.NAME.partial-PID``) and moves it into place
only when the run completes, so a failed or interrupted run never leaves a
half-written result.  With ``tables="parquet"`` the task and node tables are
converted to Parquet (:mod:`.parquet`) before the move.  The partial directories of processes that died
(SIGKILL, power loss) are cleared by the next run written beside them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, Any

from ..model import Task, TaskState
from .format import NODE_COLUMNS, RUN_FILES, TABLE_FORMATS, TASK_COLUMNS, dump_run
from .metrics import BSLD_BOUND_S, Stats, bounded_slowdown

__all__ = ["Lines", "RunWriter", "remove_partials_of", "remove_stale_partials"]

_BUF = 1 << 20
_COMPLETED = TaskState.COMPLETED


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


def remove_partials_of(parent: Path, names: Collection[str]) -> list[Path]:
    """Remove the partial directories of the runs ``parent/NAME``, NAME in ``names``, whoever left them.

    For runs known complete: a run redone elsewhere (another worker of a
    sweep) leaves the attempt that was killed mid-run behind, and its process
    may live on.
    """
    removed: list[Path] = []
    for p in parent.glob(".*.partial-*"):
        if p.name[1:].rsplit(".partial-", 1)[0] in names:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


class RunWriter:
    """Streams a run directory; :meth:`commit` moves it into place."""

    def __init__(self, out: str | Path, event_log: bool = True, decisions: bool = False,
                 tables: str = "csv") -> None:
        if tables not in TABLE_FORMATS:
            raise ValueError(f"tables: expected one of {', '.join(TABLE_FORMATS)}, got {tables!r}")
        if tables == "parquet":  # before the run, not after an hour of simulation
            from .parquet import need_pyarrow

            need_pyarrow("the parquet format")
        self.tables = tables
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
        if state is _COMPLETED:
            # completed, the common case, kept short: every field is known, and the
            # summary's bookkeeping (Stats.add) is done here, a handful of calls less a task
            st = self.stats
            st.counts[state] += 1
            if a < st.first_arrival:
                st.first_arrival = a
            st.waits.append(s - a)
            response = e - a
            run = e - s
            bsld = response / (run if run > BSLD_BOUND_S else BSLD_BOUND_S)  # bounded_slowdown
            if bsld < 1.0:
                bsld = 1.0
            st.sum_response += response
            st.sum_bsld += bsld
            if e > st.last_end:
                st.last_end = e
            sld = repr(response / run) if run > 0 else ""
            tenant = self._quoted.get(task.tenant)
            if tenant is None:
                tenant = self._tenant(task.tenant)
            self.tasks.write(
                f"{task.id},{a!r},{s!r},{e!r},{self.node_names[task.node]},completed,{s - a!r},"
                f"{response!r},{sld},{bsld!r},{task.cores},{task.mem_mb},{task.work_core_s!r},"
                f"{task.kind},{tenant},{task.attempts}\n")
            return
        self.stats.add(task)
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
        if self.tables == "parquet":
            from .parquet import convert

            convert(self.tmp)
            run = {**run, "tables": "parquet"}  # CSV runs say nothing: their run.json is unchanged
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
