"""The writer process: ``tasks.csv``, ``nodes.csv`` and ``events.jsonl`` written on another core.

A long simulation hands its tables to a process of its own
(:class:`WriterProcess`): each drain sends it one frame, the ended tasks' and
the event log's records as columns (numbers as the bytes of an ``array``,
text as lists, marshalled), and the node samples; it makes the text with
:mod:`rpiaas.rundir.stream` and appends it to the files.  At the end it
answers with the run's totals and the figures of the waits it kept.

The process runs this file as a script (``python -I writerproc.py DIR FILE...``):
it loads :mod:`rpiaas.rundir.stream` and :mod:`rpiaas.core.eventlog` by their paths,
not the package, and imports numpy beside reading its first frames, so it
starts at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.util
import json
import marshal
import os
import signal
import struct
import subprocess
import sys
import threading
from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from typing import IO, Any

if __package__:
    from ..threads import one_blas_thread
    from .stream import TaskRows, Totals, event_lines_of, node_rows
else:  # run as the writer process's script: the sibling module by its path
    _spec = importlib.util.spec_from_file_location(
        "_rpiaas_stream", os.path.join(os.path.dirname(os.path.abspath(__file__)), "stream.py"))
    assert _spec is not None and _spec.loader is not None
    _stream = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_stream)
    TaskRows, Totals, event_lines_of, node_rows = (  # type: ignore[misc]
        _stream.TaskRows, _stream.Totals, _stream.event_lines_of, _stream.node_rows)

__all__ = ["WriterProcess", "pack", "serve", "unpack"]

# The columns of task records and event-log records travel as the bytes of an ``array``
# (numbers: no object a value to build on the other side) or, for text, as lists.
_TASK_KINDS = "qdddqsqqdssqs"  # TASK_RECORD: q integer, d float, s text (and the rare dicts)
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
_BACKLOG_BYTES = 8 << 20  # frames waiting for the pipe beyond this: the run waits (a bounded memory)


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
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
            env=one_blas_thread(dict(os.environ)))  # (it needs no BLAS threads: rpiaas.threads)
        assert self._proc.stdin is not None
        self._in = self._proc.stdin
        with contextlib.suppress(AttributeError, OSError):  # a larger pipe: the run rarely waits
            fcntl.fcntl(self._in.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        # Frames wait in memory (up to _BACKLOG_BYTES) for a thread that writes them into the
        # pipe: the run goes on while the writer process catches up, where a full pipe would
        # stop it (the thread waits in the system call, without the interpreter's lock).
        self._frames: deque[bytes | None] = deque()
        self._backlog = 0
        self._room = threading.Condition()
        self._broken: BaseException | None = None
        self._sender = threading.Thread(target=self._pipe_frames, name="rpiaas-writer-pipe", daemon=True)
        self._sender.start()
        # the rows made before it started are in ``totals``: it goes on from them, in order
        self._send(NAMES, (list(node_names), totals.state(figures=False), totals.waits.tobytes()))

    def _send(self, kind: bytes, payload: Any) -> None:
        data = marshal.dumps(payload, 4)  # (4: a repeated text, such as a state, is sent once)
        frame = _HEAD.pack(kind, len(data)) + data
        with self._room:
            while self._backlog > _BACKLOG_BYTES and self._broken is None:
                self._room.wait()
            if self._broken is not None:
                raise OSError(f"the run directory's writer process stopped: {self._why()}") from None
            self._frames.append(frame)
            self._backlog += len(frame)
            self._room.notify_all()

    def _pipe_frames(self) -> None:
        """The sending thread: each frame into the pipe, in order, until the end (``None``)."""
        room, frames = self._room, self._frames
        while True:
            with room:
                while not frames:
                    room.wait()
                frame = frames.popleft()
            if frame is None:
                return
            try:
                self._in.write(frame)
            except (BrokenPipeError, ValueError, OSError) as e:
                with room:
                    self._broken = e
                    room.notify_all()
                return
            with room:
                self._backlog -= len(frame)
                room.notify_all()

    def _flushed(self) -> None:
        """Wait until the sending thread has written every frame and ended; raise if the pipe broke."""
        with self._room:
            self._frames.append(None)
            self._room.notify_all()
        self._sender.join()
        if self._broken is not None:
            raise OSError(f"the run directory's writer process stopped: {self._why()}")

    def send(self, records: list[tuple[Any, ...]], events: list[tuple[float, float, Any, int]],
             samples: list[tuple[Any, ...]]) -> None:
        """Rows of ended tasks (:data:`~.stream.task_record` tuples), event-log records and node samples,
        in one frame."""
        self._send(DATA, (pack(records, _TASK_KINDS), pack(events, _EVENT_KINDS), samples))

    def finish(self, timeout_s: float = 600.0) -> dict[str, Any]:
        """Wait for every frame to be written and the files closed; the totals (:meth:`Totals.state`)."""
        self._send(FINISH_FRAME, None)
        self._flushed()
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
        with self._room:  # the sending thread ends at once (a write into the dead pipe fails)
            self._frames.clear()
            self._frames.append(None)
            self._room.notify_all()
        self._sender.join()
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
        return _serve(opened, inp, out, directory)


def _serve(opened: Mapping[str, IO[str]], inp: IO[bytes], out: IO[bytes], directory: str) -> int:
    # numpy (the wait figures, the bulk floats) is imported beside the reading of the first
    # frames, so a run's first frames do not wait for it
    importer = threading.Thread(target=importlib.import_module, args=("numpy",), daemon=True)
    importer.start()
    tasks_f, nodes_f, events_f = opened["tasks.csv"], opened["nodes.csv"], opened.get("events.jsonl")
    totals = Totals(spill_dir=directory)
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
