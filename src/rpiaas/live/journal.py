"""The live run's journal: what a master needs to take a run up again after it died.

Before each batch of events is handed to the control plane it is appended to
``journal.jsonl`` (one JSON object a line, events in the codec of
:func:`event_json`), and the journal is flushed to disk before any of the
resulting actions goes out; measured starts are appended too.  The control
plane is deterministic, so a fresh one fed the journal (:mod:`.resume`)
reaches the exact state of the one that died.

The first line is the run's head: its id, ``t0`` (the unix time of scenario
second 0), the timescale, the task kind and where agents push task ends.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.events import (
    Event,
    NodeBooted,
    NodeDown,
    NodeUp,
    TaskArrived,
    TaskFailed,
    TaskFinished,
    TaskNotStarted,
    Tick,
)
from ..model import Task

__all__ = ["JOURNAL", "Journal", "event_from", "event_json", "read_head"]

JOURNAL = "journal.jsonl"


class Journal:
    """Append-only JSON lines; :meth:`sync` puts what was written on disk.

    The shell syncs once per pass over its inbox, before any action of that
    pass reaches an agent (actions go out only when the event loop next
    runs), so the journal is always ahead of the world at one fsync a pass.
    Records wait in memory until a sync writes them; a sync that fails (a full
    disk) keeps every byte not yet written and raises, and the next one goes on
    from that byte, so the file never misses nor repeats a record (a crash
    meanwhile leaves at most the last line cut short, which :meth:`read`
    drops).  The file is opened at the first sync, so a run can hand its
    journal to its parts before it has read the records a resume needs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._closed = False
        self._buf = bytearray()  # records not yet written
        self._dirty = False  # written, not yet fsynced

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        """The records of the journal at ``path`` (none if there is no journal)."""
        out = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:  # a line cut short by a crash: the last one
                    break
        return out

    def write(self, record: dict[str, Any]) -> None:
        if self._closed:  # a start that answered after the run was cancelled
            return
        self._buf += (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")

    @property
    def unwritten(self) -> int:
        """Bytes of records not yet written to the file."""
        return len(self._buf)

    def _write_out(self) -> None:
        """Write what waits (OSError, and the rest kept, if the disk takes no more)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            _drop_cut_line(self._fd)
        buf = self._buf
        while buf:
            n = os.write(self._fd, buf)
            del buf[:n]
            self._dirty = True

    def sync(self) -> None:
        self._write_out()
        if self._dirty and self._fd is not None:
            os.fsync(self._fd)
            self._dirty = False

    async def sync_async(self) -> None:
        """:meth:`sync` with the fsync in a thread (records may be written meanwhile)."""
        self._write_out()
        if self._dirty and self._fd is not None:
            self._dirty = False
            try:
                await asyncio.to_thread(os.fsync, self._fd)
            except BaseException:
                self._dirty = True
                raise

    def close(self) -> None:
        """Sync and close; what a full disk does not take is lost (the journal keeps its
        last complete record, from which a resume goes on)."""
        try:
            self.sync()
        finally:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _drop_cut_line(fd: int) -> None:
    """Cut the file at its last newline: a record a crash or a full disk cut short is dropped
    (as :meth:`Journal.read` drops it) before any record is appended after it."""
    size = end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            if start + cut + 1 < size:
                os.ftruncate(fd, start + cut + 1)
            return
        end = start
    if size:
        os.ftruncate(fd, 0)


def read_head(path: Path) -> dict[str, Any]:
    """The head record (first line) of the journal at ``path``."""
    with open(path, encoding="utf-8") as f:
        head: dict[str, Any] = json.loads(f.readline())
    return head


def event_json(ev: Event) -> dict[str, Any]:
    """An event as the journal keeps it (a task by its id: the workload gives it again)."""
    if isinstance(ev, TaskArrived):
        return {"e": "arrive", "task": ev.task.id}
    if isinstance(ev, TaskFinished):
        return {"e": "finish", "task": ev.task_id}
    if isinstance(ev, TaskFailed):
        return {"e": "fail", "task": ev.task_id, "reason": ev.reason}
    if isinstance(ev, TaskNotStarted):
        return {"e": "unstarted", "task": ev.task_id, "reason": ev.reason}
    if isinstance(ev, NodeDown):
        return {"e": "down", "node": ev.node, "reason": ev.reason}
    if isinstance(ev, NodeUp):
        return {"e": "up", "node": ev.node}
    if isinstance(ev, NodeBooted):
        return {"e": "booted", "node": ev.node}
    return {"e": "tick"}


def event_from(rec: dict[str, Any], tasks: Iterator[Task]) -> Event:
    """The event a journal record of :func:`event_json` stands for.

    An arrival takes the next task of ``tasks`` (the run's workload, drawn
    again from its seed), which must be the task the journal names.
    """
    kind = rec["e"]
    if kind == "arrive":
        task = next(tasks)
        if task.id != rec["task"]:
            raise RuntimeError(f"journal: task {rec['task']} arrived, the workload gives {task.id}")
        return TaskArrived(task)
    if kind == "finish":
        return TaskFinished(int(rec["task"]))
    if kind == "fail":
        return TaskFailed(int(rec["task"]), str(rec.get("reason", "")))
    if kind == "unstarted":
        return TaskNotStarted(int(rec["task"]), str(rec.get("reason", "")))
    if kind == "down":
        return NodeDown(int(rec["node"]), str(rec.get("reason", "")))
    if kind == "up":
        return NodeUp(int(rec["node"]))
    if kind == "booted":
        return NodeBooted(int(rec["node"]))
    return Tick()
