"""The text of ``tasks.csv``, ``events.jsonl`` and ``nodes.csv``, made from plain values, here or in a
writer process.

A simulation does not format its results as it goes.  It keeps each ended
task as a tuple of plain values (:data:`task_record`) and each event-log
record as four numbers (:class:`~rpiaas.core.eventlog.EventRecords`); every few
thousand events the writer (:class:`~rpiaas.rundir.writer.RunWriter`) turns
them into text with :class:`TaskRows` and :func:`~rpiaas.core.eventlog.event_lines_of`
(and the samples of every node, :func:`node_rows`).  Turning a
float into its shortest text is most of what writing a run directory
costs, so a long run hands that work to a process of its own
(:class:`~rpiaas.rundir.writerproc.WriterProcess`), on another core, while it
simulates on: the bytes written are the same either way, and so are the
summary figures, which :class:`Totals` adds up in the order the tasks ended.

Standard library only (and :mod:`rpiaas.core.eventlog`, loaded by its path when
this file is not imported as part of the package): the writer process loads
it without importing rpiaas.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Iterable, Sequence
from functools import reduce
from operator import add, attrgetter
from typing import Any

if __package__:
    from ..core.eventlog import event_lines_of, float_texts
    from .waits import Waits
else:  # the writer process runs this file as a script: its siblings by their paths, not the package

    def _sibling(name: str, *parts: str) -> Any:
        spec = importlib.util.spec_from_file_location(name, os.path.join(*parts))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    _here = os.path.dirname(os.path.abspath(__file__))
    _eventlog = _sibling("_rpiaas_eventlog", os.path.dirname(_here), "core", "eventlog.py")
    event_lines_of, float_texts = _eventlog.event_lines_of, _eventlog.float_texts
    Waits = _sibling("_rpiaas_waits", _here, "waits.py").Waits  # type: ignore[misc]

__all__ = ["BSLD_BOUND_S", "TASK_RECORD", "TaskRows", "Totals", "event_lines_of", "node_rows",
           "part_rows", "task_record"]

BSLD_BOUND_S = 10.0

# An ended task as plain values: what a task row is made of (marshal carries it to the writer process).
# The fields most tasks leave at their default come as the task's ``rare`` dict (None for most):
# one read instead of one per field.
TASK_RECORD = ("id", "arrival_s", "start_s", "end_s", "node", "state._value_", "cores", "mem_mb",
               "work_core_s", "kind", "tenant", "attempts", "rare")
task_record: Callable[[Any], tuple[Any, ...]] = attrgetter(*TASK_RECORD)


def _quote(text: str) -> str:
    """Quote a free-text field the way the csv module reads it back."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _f(x: float) -> str:
    return repr(x) if x >= 0 else ""


class Totals:
    """The summary figures a run adds up as its tasks end (every wait kept for its percentile,
    in bounded memory: :class:`~rpiaas.rundir.waits.Waits`, which spills to a file in ``spill_dir``)."""

    def __init__(self, spill_dir: str | None = None) -> None:
        self.counts: dict[str, int] = dict.fromkeys(
            ("queued", "running", "completed", "rejected", "failed", "killed"), 0)
        self.waits = Waits(spill_dir=spill_dir)
        self.sum_response = 0.0
        self.sum_bsld = 0.0
        self.first_arrival = math.inf
        self.last_end = -math.inf
        self._wait_figures: tuple[float, float, float] | None = None  # (taken over from a writer process)
        # per node type (:meth:`set_groups`): the group of each node, and per group
        # [tasks, started, sum of waits, completed, sum of responses] of the rows naming its nodes
        self.node_group: list[int] = []
        self.group_names: list[str] = []
        self.by_group: list[list[float]] = []

    def set_groups(self, node_groups: Sequence[str]) -> None:
        """Add up the rows of each group of nodes apart too (``node_groups``: each node's group
        name, by node index; the node types'), from now on: :meth:`group_figures`."""
        self.group_names = list(dict.fromkeys(node_groups))
        index = {name: i for i, name in enumerate(self.group_names)}
        self.node_group = [index[name] for name in node_groups]
        self.by_group = [[0, 0, 0.0, 0, 0.0] for _ in self.group_names]

    def group_figures(self) -> dict[str, dict[str, Any]]:
        """Per group (:meth:`set_groups`), of the rows naming one of its nodes (a job's, its
        first): ``tasks``, ``completed``, ``mean_wait_s`` (of those that started) and
        ``mean_response_s`` (of the completed ones; ``None`` where none)."""
        out: dict[str, dict[str, Any]] = {}
        for name, (tasks, started, wait, done, response) in zip(self.group_names, self.by_group, strict=True):
            out[name] = {"tasks": int(tasks), "completed": int(done),
                         "mean_wait_s": wait / started if started else None,
                         "mean_response_s": response / done if done else None}
        return out

    def add_to_group(self, node: int, wait_s: float | None, response_s: float | None) -> None:
        """Account a row naming ``node`` in its group: its wait if it started, its response
        if it completed."""
        if not self.node_group or node < 0:
            return
        acc = self.by_group[self.node_group[node]]
        acc[0] += 1
        if wait_s is not None:
            acc[1] += 1
            acc[2] += wait_s
        if response_s is not None:
            acc[3] += 1
            acc[4] += response_s

    @property
    def ended(self) -> int:
        return sum(self.counts.values())

    def wait_figures(self) -> tuple[float, float, float] | None:
        """The mean, 95th percentile and largest wait (numpy's, over every wait); ``None``
        when no task waited (none started)."""
        if self._wait_figures is not None:
            return self._wait_figures
        return self.waits.figures()

    def state(self, figures: bool = True) -> dict[str, Any]:
        """The totals as plain values, the waits as their figures (:meth:`wait_figures`), or
        none (``figures`` false: the waits go along, to :meth:`load`)."""
        return {"counts": {str(k): v for k, v in self.counts.items()}, "sum_response": self.sum_response,
                "sum_bsld": self.sum_bsld, "first_arrival": self.first_arrival, "last_end": self.last_end,
                "waits": self.wait_figures() if figures else None, "node_group": list(self.node_group),
                "group_names": list(self.group_names), "by_group": [list(g) for g in self.by_group]}

    def load(self, state: dict[str, Any], waits: bytes | None = None) -> None:
        """Go on from the totals another :class:`Totals` added up (its :meth:`state`), with
        ``waits`` (their bytes) or, without, only the figures of the waits: a writer process
        keeps the waits, 8 bytes a task, so the simulating process need not."""
        for k, v in state["counts"].items():
            self.counts[k] = v
        self.sum_response, self.sum_bsld = state["sum_response"], state["sum_bsld"]
        self.first_arrival, self.last_end = state["first_arrival"], state["last_end"]
        self.node_group, self.group_names = list(state["node_group"]), list(state["group_names"])
        self.by_group = [list(g) for g in state["by_group"]]
        self.waits.clear()
        if waits is not None:
            self.waits.frombytes(waits)
            self._wait_figures = None
        else:
            w = state["waits"]
            self._wait_figures = (w[0], w[1], w[2]) if w is not None else None


_BULK_ROWS = 64  # fewer rows than this are made one by one
# a row's last columns after ``nodes``: the task's rare fields of those names (TASK_COLUMNS ends so)
RARE_COLUMNS = ("reason", "cpu_s", "peak_mem_mb", "pull_s")
_NO_RARE = "," * len(RARE_COLUMNS)  # a task none of whose rare fields is set: all empty
_COMPLETED_ROW = "{},{},{},{},{},completed,{},{},{},{},{},{},{},{},{},{},{}\n"


def _opt(x: float | None) -> str:
    """A measured figure, or empty where none was measured."""
    return "" if x is None else repr(x)


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

        tid, a, s, e, node, _, cores, mem, work, kind, tenant, attempts, rare = cols
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
        st.waits.values.fromlist(wait.tolist())
        st.waits.settle()
        response_l, bsld_l = response.tolist(), bsld.tolist()
        st.sum_response = reduce(add, response_l, st.sum_response)
        st.sum_bsld = reduce(add, bsld_l, st.sum_bsld)
        if st.node_group:  # each group's sums in the rows' order too: the same as row by row
            group = np.array(st.node_group)[np.array(node)]
            counts = np.bincount(group)  # (np.unique would import numpy.ma, some 4 ms, for this)
            for g in np.flatnonzero(counts).tolist():
                mine = group == g
                k = int(counts[g])
                acc = st.by_group[g]
                acc[0] += k
                acc[1] += k
                acc[2] = reduce(add, wait[mine].tolist(), acc[2])
                acc[3] += k
                acc[4] = reduce(add, response[mine].tolist(), acc[4])
        texts = float_texts([*a, *s, *e, *wait.tolist(), *response_l, *slowdown.tolist(), *bsld_l, *work])
        cut = [texts[i * n:(i + 1) * n] for i in range(8)]
        for i in np.flatnonzero(~ran).tolist():
            cut[5][i] = ""
        quoted = self._quoted
        for t in set(tenant):
            if t not in quoted:
                quoted[t] = _quote(t)
        names = list(map(self.node_names.__getitem__, node))
        tail = [nm + _NO_RARE if r is None else self._tail(r, nm) for r, nm in zip(rare, names, strict=True)]
        return "".join(map(_COMPLETED_ROW.format, tid, cut[0], cut[1], cut[2], names,
                           cut[3], cut[4], cut[5], cut[6], cores, mem, cut[7], kind,
                           map(quoted.__getitem__, tenant), attempts, tail))

    def _tail(self, rare: dict[str, Any], name: str) -> str:
        """The last columns of a row, from the task's ``rare`` fields: ``nodes`` (every node of
        a job, ``;``-separated; the node of a task on one), ``reason``, ``cpu_s`` and
        ``peak_mem_mb`` (empty unless measured), ``pull_s`` (empty unless its image's pull was
        modelled or measured)."""
        placed = rare.get("placed", ())
        nodes = ";".join(self.node_names[n] for n in placed) if len(placed) > 1 else name
        reason, *figures = RARE_COLUMNS
        return ",".join([nodes, _quote(rare.get(reason, "")), *(_opt(rare.get(f)) for f in figures)])

    def _one_by_one(self, records: Iterable[tuple[Any, ...]]) -> str:
        out: list[str] = []
        write = out.append
        st = self.totals
        counts, waits = st.counts, st.waits.values
        names, quoted = self.node_names, self._quoted
        grouped = bool(st.node_group)
        for tid, a, s, e, node, state, cores, mem, work, kind, tenant, attempts, rare in records:
            name = names[node] if node >= 0 else ""
            tail = name + _NO_RARE if rare is None else self._tail(rare, name)
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
                if grouped:
                    st.add_to_group(node, s - a, response)
                sld = repr(response / run) if run > 0 else ""
                write(f"{tid},{a!r},{s!r},{e!r},{name},completed,{s - a!r},{response!r},{sld},"
                      f"{bsld!r},{cores},{mem},{work!r},{kind},{q},{attempts},{tail}\n")
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
            if grouped:
                st.add_to_group(node, s - a if started else None, None)
            write(f"{tid},{a!r},{_f(s)},{_f(e) if ended or state == 'rejected' else ''},"
                  f"{name},{state},{_f(s - a) if started else ''},{resp},"
                  f"{sld},{bsld_text},{cores},{mem},{work!r},{kind},{q},{attempts},{tail}\n")
        st.waits.settle()
        return "".join(out)


def part_rows(names: Sequence[str], jobs: Iterable[Any],
              times: dict[int, list[tuple[float, float]]] | None = None) -> str:
    """The ``parts.csv`` rows of jobs that spanned nodes: one per part (task, rank, node,
    cores, start, end), in rank order; a job's parts start and end together, unless ``times``
    (taken from, by task id) gives each part's own start and end (measured, live)."""
    out: list[str] = []
    for t in jobs:
        cores = t.parts or (t.cores,) * t.nodes
        own = times.pop(t.id, None) if times else None
        if own is not None:
            out.extend(f"{t.id},{rank},{names[n]},{c},{_f(s)},{_f(e)}\n"
                       for rank, (n, c, (s, e)) in enumerate(zip(t.placed, cores, own, strict=True)))
            continue
        start, end = _f(t.start_s), _f(t.end_s)
        out.extend(f"{t.id},{rank},{names[n]},{c},{start},{end}\n"
                   for rank, (n, c) in enumerate(zip(t.placed, cores, strict=True)))
    return "".join(out)


def node_rows(names: Sequence[str], sample: tuple[Any, ...]) -> str:
    """The ``nodes.csv`` rows of a :data:`~rpiaas.core.energy.NodeSample` (node names by index)."""
    now, states, used, mem, util, cpu, power, energy, ntasks, source = sample
    return "".join(f"{now!r},{n},{s},{u},{m},{ut!r},{p!r},{e!r},{k},{c!r},{src}\n"
                   for n, s, u, m, ut, c, p, e, k, src in zip(
                       names, states, used, mem, util, cpu, power, energy, ntasks, source, strict=True))
