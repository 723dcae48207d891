"""The event log (``events.jsonl``) as the control plane keeps it: numbers first, text later.

Every task adds three records to the log (its arrival, its start, its end).
Writing each as a line of JSON at once costs more than the rest of the
simulation of that task, most of it in turning times into their shortest
text.  So the control plane hands a record over as four numbers,
``record((code, t, task_id, node))``, and :class:`EventRecords` keeps them in
an ``array``; :func:`event_lines` makes the lines when the writer drains the
log (in the simulating process, or in a writer process of its own:
:mod:`rpiaas.rundir.stream`).  A record of any other kind is a line of text,
:meth:`EventRecords.write`, kept in its place among the numbers.

:class:`LineLog` is the same interface over a plain text sink (a file, a
list): it writes every line at once.

Standard library only: the writer process loads this file without importing
the package.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["ARRIVE", "FINISH", "MAX_TASK_ID", "START", "EventLog", "EventRecords", "LineLog",
           "event_lines"]

# record codes: the three records every task adds; 0 is a line of text
TEXT, ARRIVE, FINISH, START = 0.0, 1.0, 2.0, 3.0
# task ids travel as doubles: exact up to here (inputs are bounded to it)
MAX_TASK_ID = 2**53

Record = tuple[float, float, int, int]


class EventLog(Protocol):
    """What the control plane writes its log to."""

    record: Callable[[Record], Any]
    """``record((code, t, task_id, node))``: an arrival, start or end (``node`` only for a start)."""

    def write(self, line: str, /) -> Any:
        """Any other record: one line of text, newline included."""


class EventRecords:
    """An :class:`EventLog` that keeps records as numbers until :meth:`take`.

    ``record`` is the ``extend`` of one ``array`` that lives as long as this
    object, so a caller may keep it bound.
    """

    __slots__ = ("_numbers", "_texts", "record")

    def __init__(self) -> None:
        self._numbers = array("d")
        self._texts: list[str] = []
        self.record: Callable[[Record], Any] = self._numbers.extend

    def write(self, line: str) -> None:
        self._numbers.extend((TEXT, 0.0, len(self._texts), 0))
        self._texts.append(line)

    def __len__(self) -> int:
        return len(self._numbers) // 4

    def take(self) -> tuple[array[float], list[str]]:
        """The records kept so far (numbers, texts), handed over; the log starts afresh."""
        numbers, texts = self._numbers[:], self._texts
        del self._numbers[:]
        self._texts = []
        return numbers, texts


def event_lines(numbers: Sequence[float], texts: Sequence[str], names_json: Sequence[str]) -> str:
    """The ``events.jsonl`` text of records taken from :class:`EventRecords`; ``names_json``
    are the node names, JSON-quoted."""
    out: list[str] = []
    write = out.append
    it = iter(numbers)
    for code, t, x, n in zip(it, it, it, it, strict=False):
        if code == START:
            write(f'{{"t":{t!r},"act":"start","task":{int(x)},"node":{names_json[int(n)]}}}\n')
        elif code == ARRIVE:
            write(f'{{"t":{t!r},"ev":"arrive","task":{int(x)}}}\n')
        elif code == FINISH:
            write(f'{{"t":{t!r},"ev":"finish","task":{int(x)}}}\n')
        else:
            write(texts[int(x)])
    return "".join(out)


class LineLog:
    """An :class:`EventLog` over a text sink: every record written as its line at once."""

    __slots__ = ("_names", "_sink", "record", "write")

    def __init__(self, sink: Any, node_names: Sequence[str]) -> None:
        self._sink = sink
        self._names = [json.dumps(n) for n in node_names]
        self.write: Callable[[str], Any] = sink.write
        self.record: Callable[[Record], Any] = self._record

    def _record(self, rec: Record) -> None:
        self._sink.write(event_lines(rec, (), self._names))
