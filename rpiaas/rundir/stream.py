"""The text of ``tasks.csv``, ``events.jsonl`` and ``nodes.csv``, made from plain values, here or in a
writer process.

A simulation does not format its results as it goes.  It keeps each ended
task as a tuple of plain values (:data:`task_record`) and each event-log
record as four numbers (:class:`~rpiaas.eventlog.EventRecords`); every few
thousand events the writer (:class:`~rpiaas.rundir.writer.RunWriter`) turns
them into text with :class:`TaskRows` and :func:`~rpiaas.eventlog.event_lines_of`
(and the samples of every node, :func:`node_rows`).  Turning a
float into its shortest text is most of what writing a run directory
costs, so a long run hands that work to a process of its own
(:class:`WriterProcess`), on another core, while it simulates on: the bytes
written are the same either way, and so are the summary figures, which
:class:`Totals` adds up in the order the tasks ended.

The writer process runs this file as a script (``python stream.py DIR``):
it imports the standard library only (and :mod:`rpiaas.eventlog`, by its path;
numpy for the wait percentiles), so it starts at once.  It reads
frames from its standard input (:func:`serve`) and answers the last with the
run's totals on its standard output.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.util
import json
import marshal
import math
import os
import signal
import struct
import subprocess
import sys
import threading
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import reduce
from operator import add, attrgetter
from typing import IO, Any

if __package__:
    from ..eventlog import event_lines_of, float_texts
else:  # the writer process runs this file as a script: load the log's format without the package

    _spec = importlib.util.spec_from_file_location(
        "_rpiaas_eventlog", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                         "eventlog.py"))
    assert _spec is not None and _spec.loader is not None
    _eventlog = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_eventlog)
    event_lines_of = _eventlog.event_lines_of
    float_texts = _eventlog.float_texts

__all__ = ["BSLD_BOUND_S", "TaskRows", "Totals", "WriterProcess", "node_rows", "task_record"]

BSLD_BOUND_S = 10.0

# An ended task as plain values: what a task row is made of (marshal carries it to the writer process).
TASK_RECORD = ("id", "arrival_s", "start_s", "end_s", "node", "state._value_", "cores", "mem_mb",
               "work_core_s", "kind", "tenant", "attempts")
task_record: Callable[[Any], tuple[Any, ...]] = attrgetter(*TASK_RECORD)


def _quote(text: str) -> str:
    """Quote a free-text field the way the csv module reads it back."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _f(x: float) -> str:
    return repr(x) if x >= 0 else ""


class Totals:
    """The summary figures a run adds up as its tasks end (waits kept for their percentiles)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(
            ("queued", "running", "completed", "rejected", "failed", "killed"), 0)
        self.waits = array("d")
        self.sum_response = 0.0
        self.sum_bsld = 0.0
        self.first_arrival = math.inf
        self.last_end = -math.inf
        self._wait_figures: tuple[float, float, float] | None = None  # (taken over from a writer process)

    @property
    def ended(self) -> int:
        return sum(self.counts.values())

    def wait_figures(self) -> tuple[float, float, float] | None:
        """The mean, 95th percentile and largest wait (numpy's, over every wait); ``None``
        when no task waited (none started)."""
        if self._wait_figures is not None or not len(self.waits):
            return self._wait_figures
        import numpy as np

        w = np.frombuffer(self.waits, dtype=np.float64)
        return float(w.mean()), float(np.percentile(w, 95)), float(w.max())

    def state(self) -> dict[str, Any]:
        """The totals as plain values, the waits as their figures (:meth:`wait_figures`)."""
        return {"counts": {str(k): v for k, v in self.counts.items()}, "sum_response": self.sum_response,
                "sum_bsld": self.sum_bsld, "first_arrival": self.first_arrival, "last_end": self.last_end,
                "waits": self.wait_figures()}

    def load(self, state: dict[str, Any], waits: bytes | None = None) -> None:
        """Go on from the totals another :class:`Totals` added up (its :meth:`state`), with
        ``waits`` (their bytes) or, without, only the figures of the waits: a writer process
        keeps the waits, 8 bytes a task, so the simulating process need not."""
        for k, v in state["counts"].items():
            self.counts[k] = v
        self.sum_response, self.sum_bsld = state["sum_response"], state["sum_bsld"]
        self.first_arrival, self.last_end = state["first_arrival"], state["last_end"]
        self.waits = array("d")
        if waits is not None:
            self.waits.frombytes(waits)
            self._wait_figures = None
        else:
            w = state["waits"]
            self._wait_figures = (w[0], w[1], w[2]) if w is not None else None


_BULK_ROWS = 64  # fewer rows than this are made one by one
_COMPLETED_ROW = "{},{},{},{},{},completed,{},{},{},{},{},{},{},{},{},{}\n"


class TaskRows:
    """Makes the ``tasks.csv`` rows of ended tasks (:data:`task_record` tuples) and adds them
    up in ``totals`` as it goes.

    :param node_names: node names by index.
    """

    def __init__(self, totals: Totals, node_names: Sequence[str] = ()) -> None:
        self.totals = totals
        self.node_names = list(node_names)
        self._quoted: dict[str, str] = {}

    def text(self, records: Sequence[tuple[Any, ...]]) -> str:
        """The rows of ``records``, in order; their totals added up in that order."""
        if len(records) >= _BULK_ROWS:
            return self.text_of(list(zip(*records, strict=True)))
        return self._one_by_one(records)

    def text_of(self, cols: Sequence[Sequence[Any]]) -> str:
        """:meth:`text` of the records' columns (:data:`TASK_RECORD` order)."""
        n = len(cols[0])
        if n >= _BULK_ROWS and list(cols[5]).count("completed") == n:
            return self._completed(cols)
        return self._one_by_one(list(zip(*cols, strict=True)))

    def _completed(self, cols: Sequence[Sequence[Any]]) -> str:
        """:meth:`text` of completed tasks only, a column at a time (the same values, the
        same totals: IEEE arithmetic is the same in numpy, and the sums are taken in order)."""
        import numpy as np

        tid, a, s, e, node, _, cores, mem, work, kind, tenant, attempts = cols
        n = len(tid)
        st = self.totals
        start, end = np.array(s), np.array(e)
        wait = start - np.array(a)
        response = end - np.array(a)
        run = end - start
        bsld = response / np.where(run > BSLD_BOUND_S, run, BSLD_BOUND_S)
        bsld = np.where(bsld < 1.0, 1.0, bsld)
        ran = run > 0
        slowdown = np.divide(response, run, out=np.zeros(n), where=ran)
        st.counts["completed"] += n
        first, last = min(a), max(e)
        if first < st.first_arrival:
            st.first_arrival = first
        if last > st.last_end:
            st.last_end = last
        st.waits.fromlist(wait.tolist())
        response_l, bsld_l = response.tolist(), bsld.tolist()
        st.sum_response = reduce(add, response_l, st.sum_response)
        st.sum_bsld = reduce(add, bsld_l, st.sum_bsld)
        texts = float_texts([*a, *s, *e, *wait.tolist(), *response_l, *slowdown.tolist(), *bsld_l, *work])
        cut = [texts[i * n:(i + 1) * n] for i in range(8)]
        for i in np.flatnonzero(~ran).tolist():
            cut[5][i] = ""
        quoted = self._quoted
        for t in set(tenant):
            if t not in quoted:
                quoted[t] = _quote(t)
        return "".join(map(_COMPLETED_ROW.format, tid, cut[0], cut[1], cut[2], map(self.node_names.__getitem__, node),
                           cut[3], cut[4], cut[5], cut[6], cores, mem, cut[7], kind,
                           map(quoted.__getitem__, tenant), attempts))

    def _one_by_one(self, records: Iterable[tuple[Any, ...]]) -> str:
        out: list[str] = []
        write = out.append
        st = self.totals
        counts, waits = st.counts, st.waits
        names, quoted = self.node_names, self._quoted
        for tid, a, s, e, node, state, cores, mem, work, kind, tenant, attempts in records:
            counts[state] += 1
            if a < st.first_arrival:
                st.first_arrival = a
            q = quoted.get(tenant)
            if q is None:
                q = quoted[tenant] = _quote(tenant)
            if state == "completed":  # the common case, kept short: every field is known
                waits.append(s - a)
                response = e - a
                run = e - s
                bsld = response / (run if run > BSLD_BOUND_S else BSLD_BOUND_S)
                if bsld < 1.0:
                    bsld = 1.0
                st.sum_response += response
                st.sum_bsld += bsld
                if e > st.last_end:
                    st.last_end = e
                sld = repr(response / run) if run > 0 else ""
                write(f"{tid},{a!r},{s!r},{e!r},{names[node]},completed,{s - a!r},{response!r},{sld},"
                      f"{bsld!r},{cores},{mem},{work!r},{kind},{q},{attempts}\n")
                continue
            started = s >= 0
            if started:
                waits.append(s - a)
            ended = e >= 0 and started
            if ended:
                response = e - a
                run = e - s
                resp = repr(response)
                sld = repr(response / run) if run > 0 else ""
                bsld_text = repr(max(1.0, response / max(run, BSLD_BOUND_S)))
            else:
                resp = sld = bsld_text = ""
            write(f"{tid},{a!r},{_f(s)},{_f(e) if ended or state == 'rejected' else ''},"
                  f"{names[node] if node >= 0 else ''},{state},{_f(s - a) if started else ''},{resp},"
                  f"{sld},{bsld_text},{cores},{mem},{work!r},{kind},{q},{attempts}\n")
        return "".join(out)


def node_rows(names: Sequence[str], sample: tuple[Any, ...]) -> str:
    """The ``nodes.csv`` rows of a :data:`~rpiaas.shell.NodeSample` (node names by index)."""
    now, states, used, mem, util, power, energy, ntasks = sample
    return "".join(f"{now!r},{n},{s},{u},{m},{ut!r},{p!r},{e!r},{k}\n" for n, s, u, m, ut, p, e, k in zip(
        names, states, used, mem, util, power, energy, ntasks, strict=True))


# ------------------------------------------------------------ the writer process
# The columns of task records and event-log records travel as the bytes of an ``array``
# (numbers: no object a value to build on the other side) or, for text, as lists.
_TASK_KINDS = "qdddqsqqdssq"  # TASK_RECORD: q integer, d float, s text
_EVENT_KINDS = "ddqq"  # code, time, task (a line of text for a TEXT record), node


def pack(rows: Sequence[tuple[Any, ...]], kinds: str) -> list[Any]:
    """``rows`` as columns: the bytes of an ``array`` of each numeric one, a list of the rest
    (and of a numeric column whose values do not fit, such as a text record's line)."""
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in kinds]
    out: list[Any] = []
    for col, kind in zip(cols, kinds, strict=True):
        if kind == "s":
            out.append(list(col))
            continue
        try:
            out.append(array(kind, col).tobytes())
        except (TypeError, OverflowError):
            out.append(list(col))
    return out


def unpack(packed: Sequence[Any], kinds: str) -> list[list[Any]]:
    """The columns :func:`pack` packed, as lists."""
    out = []
    for col, kind in zip(packed, kinds, strict=True):
        if isinstance(col, bytes):
            a = array(kind)
            a.frombytes(col)
            out.append(a.tolist())
        else:
            out.append(col)
    return out

# A frame: one kind byte and the payload's length, then the payload (marshal).
_HEAD = struct.Struct("<cQ")
NAMES, DATA, FINISH_FRAME = b"N", b"D", b"F"
_BUF = 1 << 20
_PIPE_BYTES = 1 << 20  # Linux lets a user grow a pipe to 1 MB (/proc/sys/fs/pipe-max-size)


class WriterProcess:
    """A process that appends to ``tasks.csv``, ``nodes.csv`` and ``events.jsonl`` (unless
    ``events`` is false) in ``directory`` from the frames it is sent, and answers
    :meth:`finish` with its totals, which go on from ``totals`` (the rows made before it).

    It ignores SIGINT (the run that started it decides) and ends, writing nothing more,
    when its input closes early.
    """

    def __init__(self, directory: str, events: bool, node_names: Sequence[str], totals: Totals) -> None:
        files = ["tasks.csv", "nodes.csv", *(["events.jsonl"] if events else [])]
        self._proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), directory, *files],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        assert self._proc.stdin is not None
        self._in = self._proc.stdin
        with contextlib.suppress(AttributeError, OSError):  # a larger pipe: the run rarely waits
            fcntl.fcntl(self._in.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        # the rows made before it started are in ``totals``: it goes on from them, in order
        self._send(NAMES, (list(node_names), totals.state(), totals.waits.tobytes()))

    def _send(self, kind: bytes, payload: Any) -> None:
        data = marshal.dumps(payload, 4)  # (4: a repeated text, such as a state, is sent once)
        try:
            self._in.write(_HEAD.pack(kind, len(data)))
            self._in.write(data)
        except (BrokenPipeError, ValueError):
            raise OSError(f"the run directory's writer process stopped: {self._why()}") from None

    def send(self, records: list[tuple[Any, ...]], events: list[tuple[float, float, Any, int]],
             samples: list[tuple[Any, ...]]) -> None:
        """Rows of ended tasks (:data:`task_record` tuples), event-log records and node samples,
        in one frame."""
        self._send(DATA, (pack(records, _TASK_KINDS), pack(events, _EVENT_KINDS), samples))

    def finish(self, timeout_s: float = 600.0) -> dict[str, Any]:
        """Wait for every frame to be written and the files closed; the totals (:meth:`Totals.state`)."""
        self._send(FINISH_FRAME, None)
        try:
            out, _ = self._proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise OSError(f"the run directory's writer process did not finish in {timeout_s:g} s") from None
        if self._proc.returncode != 0 or not out:
            raise OSError(f"the run directory's writer process failed: {self._why()}")
        state: dict[str, Any] = marshal.loads(out)
        return state

    def _why(self) -> str:
        self._proc.poll()
        err = b""
        if self._proc.returncode is not None and self._proc.stderr is not None:
            err = self._proc.stderr.read()
        lines = err.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {self._proc.returncode}"

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for f in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if f is not None:
                f.close()


def _read_exact(f: IO[bytes], n: int) -> bytes:
    parts: list[bytes] = []
    while n:
        b = f.read(n)
        if not b:
            raise EOFError
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def serve(directory: str, files: Sequence[str], inp: IO[bytes], out: IO[bytes]) -> int:
    """The writer process: frames from ``inp`` into ``directory``'s ``files``; the totals to ``out``."""
    with contextlib.ExitStack() as stack:
        opened = {name: stack.enter_context(open(os.path.join(directory, name), "a", buffering=_BUF,
                                                 encoding="utf-8", newline="")) for name in files}
        return _serve(opened, inp, out)


def _serve(opened: Mapping[str, IO[str]], inp: IO[bytes], out: IO[bytes]) -> int:
    # numpy (the wait figures, the bulk floats) is imported beside the reading of the first
    # frames, so a run's first frames do not wait for it
    importer = threading.Thread(target=importlib.import_module, args=("numpy",), daemon=True)
    importer.start()
    tasks_f, nodes_f, events_f = opened["tasks.csv"], opened["nodes.csv"], opened.get("events.jsonl")
    totals = Totals()
    rows = TaskRows(totals)
    names: list[str] = []
    names_json: list[str] = []
    try:
        while True:
            kind, size = _HEAD.unpack(_read_exact(inp, _HEAD.size))
            payload = marshal.loads(_read_exact(inp, size))
            if kind == DATA:
                records, events, samples = payload
                tasks_f.write(rows.text_of(unpack(records, _TASK_KINDS)))
                if events_f is not None:
                    codes, times, xs, nodes = unpack(events, _EVENT_KINDS)
                    if codes:
                        events_f.write(event_lines_of(codes, times, xs, nodes, names_json))
                for sample in samples:
                    nodes_f.write(node_rows(names, sample))
            elif kind == NAMES:
                names = rows.node_names = list(payload[0])
                names_json = [json.dumps(n) for n in names]
                totals.load(payload[1], payload[2])
            elif kind == FINISH_FRAME:
                importer.join()
                for f in opened.values():
                    f.close()
                out.write(marshal.dumps(totals.state(), 2))
                out.flush()
                return 0
            else:
                raise ValueError(f"unknown frame {kind!r}")
    except EOFError:
        return 1  # the run stopped early: its directory is thrown away


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = serve(sys.argv[1], sys.argv[2:], sys.stdin.buffer, sys.stdout.buffer)
    sys.stdout.flush()
    os._exit(code)  # its files are closed and its answer sent: no interpreter teardown to wait for
