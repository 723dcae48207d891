"""The event log (``events.jsonl``) as the control plane keeps it: numbers first, text later.

Every task adds three records to the log (its arrival, its start, its end).
Writing each as a line of JSON at once costs more than the rest of the
simulation of that task, most of it in turning times into their shortest
text.  So the control plane hands a record over as four values,
``record((code, t, task_id, node))``, and :class:`EventRecords` keeps the
tuples; :func:`event_lines` makes the lines when the writer drains the
log (in the simulating process, or in a writer process of its own:
:mod:`rpiaas.rundir.stream`).  A record of any other kind is a line of text,
:meth:`EventRecords.write`, kept in its place among the others.

:class:`LineLog` is the same interface over a plain text sink (a file, a
list): it writes every line at once.

Standard library only (numpy and orjson, where there, for :func:`float_texts`):
the writer process loads this file without importing the package.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["ARRIVE", "FINISH", "START", "EventLog", "EventRecords", "LineLog",
           "event_lines", "event_lines_of", "float_texts"]

# record codes: the three records every task adds; 0 is a line of text
TEXT, ARRIVE, FINISH, START = 0.0, 1.0, 2.0, 3.0

Record = tuple[float, float, int, int]


class EventLog(Protocol):
    """What the control plane writes its log to."""

    record: Callable[[Record], Any]
    """``record((code, t, task_id, node))``: an arrival, start or end (``node`` only for a start)."""

    def write(self, line: str, /) -> Any:
        """Any other record: one line of text, newline included."""


class EventRecords:
    """An :class:`EventLog` that keeps its records as they come until :meth:`take`.

    ``record`` is the ``append`` of one list that lives as long as this object, so a
    caller may keep it bound; a line of text is kept as ``(TEXT, 0.0, line, 0)``.
    """

    __slots__ = ("_items", "record")

    def __init__(self) -> None:
        self._items: list[tuple[float, float, Any, int]] = []
        self.record: Callable[[Record], Any] = self._items.append

    def write(self, line: str) -> None:
        self._items.append((TEXT, 0.0, line, 0))

    def __len__(self) -> int:
        return len(self._items)

    def take(self) -> list[tuple[float, float, Any, int]]:
        """The records kept so far, handed over; the log starts afresh."""
        items = self._items.copy()
        self._items.clear()
        return items


# the line of each kind of record: {0} the time, {1} the task (a TEXT record's line), {2} the node
_LINES = {
    ARRIVE: '{{"t":{0},"ev":"arrive","task":{1}}}\n',
    FINISH: '{{"t":{0},"ev":"finish","task":{1}}}\n',
    START: '{{"t":{0},"act":"start","task":{1},"node":{2}}}\n',
    TEXT: "{1}",
}
_BULK = 64  # fewer floats than this are written one by one


def float_texts(values: Sequence[float]) -> list[str]:
    """``repr`` of every float of ``values`` (the shortest text that reads back the same), in bulk.

    Writing a float is most of what writing a run directory costs; orjson writes the
    same shortest digits four times as fast, in the same form as ``repr`` for every
    finite float from 1e-4 up (checked on 15 million doubles of every exponent, and by
    the tests).  Smaller ones (which orjson writes positionally, ``0.00001`` for
    ``1e-05``), infinities and NaN take ``repr``, and so does everything without orjson.
    """
    if len(values) < _BULK:
        return list(map(repr, values))
    try:
        import numpy as np
        import orjson
    except ImportError:
        return list(map(repr, values))
    out = orjson.dumps(values).decode().strip("[]").split(",")
    a = np.asarray(values, dtype=np.float64)
    for i in np.flatnonzero(~((np.abs(a) >= 1e-4) & np.isfinite(a)) & (a != 0)).tolist():
        out[i] = repr(values[i])
    return out


def event_lines(records: Sequence[tuple[float, float, Any, int]], names_json: Sequence[str]) -> str:
    """The ``events.jsonl`` text of records taken from :class:`EventRecords`; ``names_json``
    are the node names, JSON-quoted."""
    if not records:
        return ""
    codes, times, xs, nodes = zip(*records, strict=True)
    return event_lines_of(codes, times, xs, nodes, names_json)


def event_lines_of(codes: Sequence[float], times: Sequence[float], xs: Sequence[Any], nodes: Sequence[int],
                   names_json: Sequence[str]) -> str:
    """:func:`event_lines` of the records' four columns."""
    return "".join(map(str.format, map(_LINES.__getitem__, codes), float_texts(times), xs,
                       map(names_json.__getitem__, nodes)))


class LineLog:
    """An :class:`EventLog` over a text sink: every record written as its line at once."""

    __slots__ = ("_names", "_sink", "record", "write")

    def __init__(self, sink: Any, node_names: Sequence[str]) -> None:
        self._sink = sink
        self._names = [json.dumps(n) for n in node_names]
        self.write: Callable[[str], Any] = sink.write
        self.record: Callable[[Record], Any] = self._record

    def _record(self, rec: Record) -> None:
        self._sink.write(event_lines([rec], self._names))
