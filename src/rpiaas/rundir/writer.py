"""Writing a run directory: streamed as the run goes, moved into place when it completes.

:class:`RunWriter` streams the files of :mod:`rpiaas.rundir.format` into a
temporary sibling directory (``.NAME.partial-PID``) and moves it into place
only when the run completes, so a failed or interrupted run never leaves a
half-written result (:mod:`.place`).  With ``tables="parquet"`` the task and node tables are
converted to Parquet (:mod:`.parquet`) before the move.  The partial directories of processes
that died
(SIGKILL, power loss) are cleared by the next run written beside them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..core.eventlog import EventRecords, event_lines
from ..model import Task
from .format import NODE_COLUMNS, PART_COLUMNS, RUN_FILES, TABLE_FORMATS, TASK_COLUMNS, dump_run
from .metrics import Stats
from .place import Partial, remove_partials_of, remove_stale_partials
from .stream import TaskRows, node_rows, part_rows, task_record
from .writerproc import WriterProcess

__all__ = ["Lines", "RunWriter", "remove_partials_of", "remove_stale_partials"]

_BUF = 1 << 20
# with background=None the drain that finds this many rows and event records waiting since
# the run began hands the rest to a writer process: a run that long pays its start back
_BACKGROUND_MIN = 60_000


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

    @property
    def closed(self) -> bool:
        return self._file.closed

    def drain(self) -> None:
        if self._buf:
            self._file.write("".join(self._buf))
            self._buf.clear()

    def flush(self) -> None:
        self.drain()
        self._file.flush()

    def close(self) -> None:
        self.drain()
        self._file.close()


class RunWriter:
    """Streams a run directory; :meth:`commit` moves it into place.

    Rows of ended tasks (:meth:`task_done`) and the event log (:attr:`events`, an
    :class:`~rpiaas.core.eventlog.EventRecords`) are kept as plain values and made into
    text at each :meth:`drain`: here, or, with ``background`` true (or ``None`` in a
    run that has made ``_BACKGROUND_MIN`` rows and records by a drain, or that calls
    :meth:`hand_over`: a long run), by a writer process on another core
    (:class:`~rpiaas.rundir.writerproc.WriterProcess`).  The bytes are the same either way.
    """

    def __init__(self, out: str | Path, event_log: bool = True, decisions: bool = False,
                 tables: str = "csv", background: bool | None = False) -> None:
        if tables not in TABLE_FORMATS:
            raise ValueError(f"tables: expected one of {', '.join(TABLE_FORMATS)}, got {tables!r}")
        if tables == "parquet":  # before the run, not after an hour of simulation
            from .parquet import need_pyarrow

            need_pyarrow("the parquet format")
        self.tables = tables
        self._place = Partial(out)
        self.out = self._place.out
        self.tmp = self._place.tmp
        # kept open for the whole run and closed by commit() or abort()
        self.tasks = Lines(self._open("tasks.csv"))
        self.nodes = Lines(self._open("nodes.csv"))
        self.parts = Lines(self._open("parts.csv"))
        # a job's parts' own (start, end), rank by rank, by task id: set before its row (live)
        self.part_times: dict[int, list[tuple[float, float]]] = {}
        # the event log's text waits here like the tables' rows: a drain writes it
        self.event_text = Lines(self._open("events.jsonl")) if event_log else None
        self.events = EventRecords() if event_log else None
        self.decisions = Lines(self._open("decisions.jsonl")) if decisions else None
        self.tasks.write(",".join(TASK_COLUMNS) + "\n")
        self.nodes.write(",".join(NODE_COLUMNS) + "\n")
        self.parts.write(",".join(PART_COLUMNS) + "\n")
        self.stats = Stats(spill_dir=str(self.tmp))
        self._rows = TaskRows(self.stats)
        self._names_json: list[str] = []
        # an ended task waits here for its row until the next drain: append, nothing more
        self._done: list[Task] = []
        self.task_done: Callable[[Task], None] = self._done.append
        self.tasks_ended = 0  # rows made (or handed to the writer process) so far
        self.background = background
        self._proc: WriterProcess | None = None
        self.handed_over = False  # whether a writer process took over (it stays so after it ends)
        self._waited = 0  # rows and records drained so far
        self._samples: list[tuple[Any, ...]] = []  # for the writer process, with the next drain

    def drain(self) -> None:
        """Write out (or hand the writer process) what was collected so far.  With
        ``background=None`` a drain that finds enough waiting starts the writer process."""
        self._waited += len(self._done) + (len(self.events) if self.events is not None else 0)
        if self._proc is None and not self.tasks.closed and (self.background or (
                self.background is None and self._waited >= _BACKGROUND_MIN)):
            self._start_process()
        self._drain_tables()
        for lines in self._sinks():
            lines.drain()

    def _sinks(self) -> list[Lines]:
        return [x for x in (self.tasks, self.nodes, self.parts, self.decisions, self.event_text)
                if x is not None and not x.closed]

    def _open(self, name: str) -> IO[str]:
        # write_through: a write the disk refuses (ENOSPC) is refused whole, and the
        # buffered file keeps what it had, so a drain can be tried again (Lines keeps its text)
        f = open(self.tmp / name, "w", buffering=_BUF, encoding="utf-8", newline="")  # noqa: SIM115
        f.reconfigure(write_through=True)
        return f

    @property
    def node_names(self) -> list[str]:
        return self._rows.node_names

    @node_names.setter
    def node_names(self, names: list[str]) -> None:
        self._rows.node_names = list(names)
        self._names_json = [json.dumps(n) for n in names]

    def task_ended(self, task: Task) -> None:
        """Write the row of a task in a final state (or left over at the end) now."""
        self._done.append(task)
        self._drain_tables()

    def _drain_tables(self) -> None:
        """Make the rows of the tasks that ended since the last drain, and the event log's
        lines (or hand both to the writer process)."""
        done = self._done
        # those that spanned nodes (``placed`` is one of the rare fields): their parts' rows
        jobs = [t for t in done if t.rare is not None and t.placed]
        if jobs:
            self.parts.write(part_rows(self.node_names, jobs, self.part_times))
        records = list(map(task_record, done))
        done.clear()
        self.tasks_ended += len(records)
        events = self.events if self.events is not None and len(self.events) else None
        if self._proc is not None:
            if records or events is not None or self._samples:
                self._proc.send(records, events.take() if events is not None else [], self._samples)
                self._samples = []
            return
        if records:
            self.tasks.write(self._rows.text(records))
        if events is not None:
            assert self.event_text is not None
            self.event_text.write(event_lines(events.take(), self._names_json))

    def hand_over(self) -> None:
        """Start the writer process now, unless ``background`` is false or it runs already:
        for a run known to be long, so that its start overlaps the simulation's."""
        if self.background is not False and self._proc is None and not self.tasks.closed:
            self._start_process()

    def _start_process(self) -> None:
        """Hand ``tasks.csv``, ``nodes.csv`` and ``events.jsonl`` over to a writer process from
        here on (if one cannot be started, the run goes on writing them itself)."""
        self.tasks.flush()
        self.nodes.flush()
        if self.event_text is not None:
            self.event_text.flush()
        try:
            proc = WriterProcess(str(self.tmp), events=self.events is not None,
                                 node_names=self.node_names,
                                 totals=self.stats)
        except OSError:
            self.background = False
            return
        self.tasks.close()
        self.nodes.close()
        if self.event_text is not None:
            self.event_text.close()
        self._proc = proc
        self.handed_over = True

    def sample(self, sample: tuple[Any, ...]) -> None:
        """Write the ``nodes.csv`` rows of a :data:`~rpiaas.core.energy.NodeSample` (every node
        at one time)."""
        if self._proc is not None:
            self._samples.append(sample)
        else:
            self.nodes.write(node_rows(self.node_names, sample))

    def settle(self) -> None:
        """Write out everything kept so far; with a writer process, wait for it to finish and
        take over its totals.  After it :attr:`stats` is complete and no row may follow."""
        self._drain_tables()
        if self._proc is not None:
            proc, self._proc = self._proc, None
            try:
                state = proc.finish()
            finally:
                proc.kill()
            self.stats.load(state)
        for lines in self._sinks():
            lines.drain()

    def commit(self, run: dict[str, Any], timing: dict[str, Any],
               extra: dict[str, dict[str, Any]] | None = None) -> Path:
        """Close the files, write ``run.json``, ``timing.json`` and the ``extra`` JSON
        files (name to content), and move the directory into place."""
        self.settle()
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
        return self._place.commit()

    def abort(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc = None
        for f in self._sinks():
            with contextlib.suppress(OSError):
                f.close()
        self._place.abort()
