"""CSV workload traces: a header row, then one job per row, with a column mapping.

:func:`read_csv` yields the jobs one by one.  :func:`read_csv_blocks` yields
the same jobs, but a run of :data:`BLOCK` lines that are all plain (one row a
line, every cell of the mapped columns a finite, non-negative number) comes as
one :class:`JobBlock` of numpy columns, which a trace's counting pass maps a
column at a time; any other line is read as :func:`read_csv` reads it (the
same jobs, the same errors, the same line numbers).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import numpy as np

from ...inputs.source import InputError
from ...model import MAX_TASK_ID
from .jobs import GO_ON, Block, SkipReport, TraceJob, open_trace

__all__ = ["AFTER_COLUMN", "BLOCK", "CSV_COLUMNS", "JobBlock", "read_csv", "read_csv_blocks"]

CSV_COLUMNS = ("id", "arrival_s", "cores", "mem_mb", "duration_s", "work_core_s", "walltime_s")
# the one column that is not a number: the ids of the jobs a job waits for, ``;`` between them
AFTER_COLUMN = "after"
_SEPARATORS = re.compile(r"[;,\s]+")
BLOCK = 8192  # lines read as one JobBlock


@dataclass(frozen=True)
class JobBlock(Block):
    """Plain lines of a CSV trace as columns: each field of :data:`CSV_COLUMNS` as float64
    values, or ``None`` for a field with no column.  ``first_line`` is the first one's line."""

    def jobs(self) -> Iterator[TraceJob]:
        """The block's jobs, as :func:`read_csv` makes them."""
        n, f = len(self), self.fields
        none = [None] * n
        ids = f["id"].tolist() if f["id"] is not None else range(self.first_line - 1, self.first_line - 1 + n)
        new = tuple.__new__
        for tid, arrival, duration, cores, mem, wall, line, work in zip(
                ids, f["arrival_s"].tolist(), *(f[k].tolist() if f[k] is not None else none for k in (
                    "duration_s", "cores", "mem_mb", "walltime_s")),
                range(self.first_line, self.first_line + n),
                f["work_core_s"].tolist() if f["work_core_s"] is not None else none, strict=True):
            yield new(TraceJob, (int(tid), arrival, duration, int(cores), mem, wall or None, -1, -1, -1, -1,
                                 line, work, (), None))


class _Layout:
    """Where a trace's fields are, from its header row (a bad header is an InputError)."""

    def __init__(self, name: str, head_row: list[str], columns: dict[str, str] | None) -> None:
        cols = {k: (columns or {}).get(k, k) for k in CSV_COLUMNS}
        head = [h.strip() for h in head_row]
        at = {h: i for i, h in enumerate(head)}
        for key in ("arrival_s", "cores"):
            if cols[key] not in at:
                raise InputError(f"no column {cols[key]!r} for {key} (columns: {', '.join(head)})", name, 1)
        if cols["duration_s"] not in at and cols["work_core_s"] not in at:
            raise InputError(f"no column {cols['duration_s']!r} (duration_s) or "
                             f"{cols['work_core_s']!r} (work_core_s)", name, 1)
        self.arrival_column = cols["arrival_s"]
        after = (columns or {}).get(AFTER_COLUMN, AFTER_COLUMN)
        self.after_index = at.get(after)
        if self.after_index is None and AFTER_COLUMN in (columns or {}):
            raise InputError(f"no column {after!r} for after (columns: {', '.join(head)})", name, 1)
        self.after_column = after
        # with an after column, the ids of the jobs read so far: a job waits only for jobs before it
        self.read_ids: set[int] | None = set() if self.after_index is not None else None
        self.width = len(head)
        self.index = {k: at.get(c) for k, c in cols.items()}
        # the cells read, in CSV_COLUMNS order (the first bad one is reported), and where each
        # field's value is among them (-1: no such column, read as the None appended to them)
        self.cells = [(k, i) for k, i in self.index.items() if i is not None]
        self.pick = itemgetter(*[i for _, i in self.cells])  # at least two: arrival_s and cores
        names = [k for k, _ in self.cells]
        self.at = [names.index(k) if self.index[k] is not None else -1 for k in CSV_COLUMNS]

    def job(self, row: list[str], lineno: int) -> TraceJob | None:
        """The job of one row; ``None`` for a blank one; ValueError for a bad one."""
        # a blank line: every cell empty or white space (the first cell decides most rows)
        if not row or (not row[0].strip() and not "".join(row).strip()):
            return None
        if len(row) != self.width:
            raise ValueError(f"expected {self.width} columns, got {len(row)}")
        try:
            got: list[Any] = list(map(float, self.pick(row)))
            total = sum(got)  # nan or inf if a cell is not finite
            plain = total == total and total != math.inf and min(got) >= 0
        except ValueError:
            plain = False
        if not plain:  # a blank, negative (not recorded) or bad cell: cell by cell
            got = [_cell(row, i, k) for k, i in self.cells]
        got.append(None)
        at_id, at_arrival, at_cores, at_mem, at_duration, at_work, at_wall = self.at
        arrival, job_id, cores = got[at_arrival], got[at_id], got[at_cores]
        if arrival is None:
            raise ValueError(f"column {self.arrival_column!r}: no arrival time")
        if job_id is not None and job_id >= MAX_TASK_ID:  # (read as a double: exact below 2**53)
            raise ValueError(f"id: {row[self.index['id'] or 0]!r} is 2**53 or more (ids are read exactly below it)")
        tid = int(job_id) if job_id is not None else lineno - 1
        read_ids = self.read_ids
        after: tuple[int, ...] = ()
        if read_ids is not None:
            after = self._after(row[self.after_index or 0], tid, read_ids)
            read_ids.add(tid)
        return tuple.__new__(TraceJob, (tid, arrival, got[at_duration], int(cores) if cores is not None else -1,
                                        got[at_mem], got[at_wall] or None, -1, -1, -1, -1, lineno,
                                        got[at_work], after, None))

    def _after(self, cell: str, tid: int, read_ids: set[int]) -> tuple[int, ...]:
        """The ids of an after cell (``3;7``; blank: none), each a job of an earlier line."""
        out = []
        for text in _SEPARATORS.split(cell.strip()):
            if not text:
                continue
            try:
                x = float(text)
            except ValueError:
                x = math.nan
            if not (math.isfinite(x) and x == int(x) and 0 <= x < MAX_TASK_ID):
                raise ValueError(f"column {self.after_column!r}: not a job id: {text!r} "
                                 "(the ids of the jobs it waits for, separated by ;)")
            p = int(x)
            if p == tid:
                raise ValueError(f"column {self.after_column!r}: job {tid} waits for itself")
            if p not in read_ids:
                raise ValueError(f"column {self.after_column!r}: job {tid} waits for job {p}, which no earlier "
                                 "line has (a job waits only for jobs before it)")
            out.append(p)
        return tuple(out)

    def block(self, rows: list[list[str]], first_line: int) -> JobBlock | None:
        """``rows`` (one a line from ``first_line``) as a block, or ``None`` unless all are plain."""
        width = self.width
        if any(len(row) != width for row in rows):
            return None
        columns = list(zip(*rows, strict=True))
        fields: dict[str, Any] = dict.fromkeys(CSV_COLUMNS)
        try:  # Python's float, as job() reads a cell
            for k, i in self.cells:
                fields[k] = np.fromiter(map(float, columns[i]), dtype=np.float64, count=len(rows))
        except ValueError:  # a blank or bad cell
            return None
        every = np.concatenate([fields[k] for k, _ in self.cells])
        if not (np.isfinite(every).all() and (every >= 0).all()):
            return None
        if fields["id"] is not None and bool((fields["id"] >= MAX_TASK_ID).any()):
            return None  # (job() says which)
        if self.read_ids is not None:  # jobs that wait for others are read one by one
            if any(row[self.after_index or 0].strip() for row in rows):
                return None
            ids = fields["id"].tolist() if fields["id"] is not None else range(first_line - 1,
                                                                               first_line - 1 + len(rows))
            self.read_ids.update(map(int, ids))
        return JobBlock(first_line, fields)


def _header(f: IO[str], name: str, columns: dict[str, str] | None) -> tuple[Any, _Layout]:
    reader = csv.reader(f)
    try:
        head = next(reader)
    except StopIteration:
        raise InputError("empty CSV trace: expected a header row", name, 1) from None
    except csv.Error as e:
        raise InputError(f"not a CSV header row: {e}", name, 1) from None
    return reader, _Layout(name, head, columns)


def _jobs(layout: _Layout, rows: Iterable[tuple[list[str], int]], name: str, skip_bad_lines: bool,
          report: SkipReport | None) -> Iterator[TraceJob]:
    """The jobs of numbered rows; a bad one is an InputError, or skipped and counted."""
    for row, lineno in rows:
        try:
            job = layout.job(row, lineno)
        except ValueError as e:
            if not skip_bad_lines:
                raise InputError(f"{e} {GO_ON}", name, lineno) from None
            if report is not None:
                report.read += 1
                report.add("bad line", lineno)
            continue
        if job is not None:
            if report is not None:
                report.read += 1
            yield job


def _numbered(reader: Any, name: str, offset: int = 0,
              until: float = math.inf) -> Iterator[tuple[list[str], int]]:
    """The rows of a csv reader with their lines (``offset`` lines before its first), up to
    the row that ends on or past its line ``until``."""
    while reader.line_num < until:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise InputError(f"not a CSV row: {e}", name, reader.line_num + offset) from None
        yield row, reader.line_num + offset


def read_csv(path: str | Path, columns: dict[str, str] | None = None, skip_bad_lines: bool = False,
             report: SkipReport | None = None) -> Iterator[TraceJob]:
    """The jobs of a CSV trace: a header row, then one job per row.

    ``columns`` maps the fields ``arrival_s``, ``cores``, ``mem_mb``,
    ``duration_s`` or ``work_core_s``, ``walltime_s``, ``id`` and ``after`` to column
    names (default: the field's own name).  ``arrival_s`` and ``cores`` and
    one of ``duration_s``/``work_core_s`` are required; an empty cell or a
    negative number means "not recorded".  An ``after`` cell holds the ids of the
    jobs the job waits for (``3;7``), each a job of an earlier line.
    """
    name = str(path)
    with open_trace(path) as f:
        reader, layout = _header(f, name, columns)
        yield from _jobs(layout, _numbered(reader, name), name, skip_bad_lines, report)


def read_csv_blocks(path: str | Path, columns: dict[str, str] | None = None, skip_bad_lines: bool = False,
                    report: SkipReport | None = None) -> Iterator[JobBlock | TraceJob]:
    """:func:`read_csv`'s jobs, runs of plain lines as :class:`JobBlock` (not counted in
    ``report``'s ``read``: its reader counts the lines it takes)."""
    name = str(path)
    with open_trace(path) as f:
        reader, layout = _header(f, name, columns)
        line = reader.line_num  # lines read so far
        while True:
            lines = list(islice(f, BLOCK))
            if not lines:
                return
            text = "".join(lines)
            if '"' in text:  # a quoted cell may hold a line break: row by row, to its end
                rows = csv.reader(chain(lines, f))
                yield from _jobs(layout, _numbered(rows, name, line, until=len(lines)), name,
                                 skip_bad_lines, report)
                line += rows.line_num
                continue
            # no quote: a row a line, its cells between commas, as the csv module reads them (a
            # line ends at its first \n, \r or \r\n; the end stays on its last cell, which a
            # number's reading ignores)
            parsed = [x.split(",") for x in lines]
            block = layout.block(parsed, line + 1) if len(parsed) == len(lines) else None
            if block is not None:
                yield block  # its lines count as read as they are taken (a pass may stop in it)
            else:
                rows = csv.reader(lines)
                yield from _jobs(layout, _numbered(rows, name, line), name, skip_bad_lines, report)
            line += len(lines)


def _cell(row: list[str], i: int | None, key: str) -> float | None:
    if i is None or not row[i].strip():
        return None
    try:
        x = float(row[i])
    except ValueError:
        raise ValueError(f"{key}: not a number: {row[i]!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{key}: not a finite number: {row[i]!r}")
    return x if x >= 0 else None
