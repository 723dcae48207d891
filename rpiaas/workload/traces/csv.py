"""CSV workload traces: a header row, then one job per row, with a column mapping."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from math import isfinite
from pathlib import Path

from ...inputs.source import InputError
from .jobs import SkipReport, TraceJob, open_trace

__all__ = ["CSV_COLUMNS", "read_csv"]

CSV_COLUMNS = ("id", "arrival_s", "cores", "mem_mb", "duration_s", "work_core_s", "walltime_s")


def read_csv(path: str | Path, columns: dict[str, str] | None = None, skip_bad_lines: bool = False,
             report: SkipReport | None = None) -> Iterator[TraceJob]:
    """The jobs of a CSV trace: a header row, then one job per row.

    ``columns`` maps the fields ``arrival_s``, ``cores``, ``mem_mb``,
    ``duration_s`` or ``work_core_s``, ``walltime_s`` and ``id`` to column
    names (default: the field's own name).  ``arrival_s`` and ``cores`` and
    one of ``duration_s``/``work_core_s`` are required; an empty cell or a
    negative number means "not recorded".
    """
    name = str(path)
    cols = {k: (columns or {}).get(k, k) for k in CSV_COLUMNS}
    with open_trace(path) as f:
        reader = csv.reader(f)
        try:
            head = [h.strip() for h in next(reader)]
        except StopIteration:
            raise InputError("empty CSV trace: expected a header row", name, 1) from None
        at = {h: i for i, h in enumerate(head)}
        for key in ("arrival_s", "cores"):
            if cols[key] not in at:
                raise InputError(f"no column {cols[key]!r} for {key} (columns: {', '.join(head)})", name, 1)
        if cols["duration_s"] not in at and cols["work_core_s"] not in at:
            raise InputError(f"no column {cols['duration_s']!r} (duration_s) or "
                             f"{cols['work_core_s']!r} (work_core_s)", name, 1)
        idx = {k: at.get(c) for k, c in cols.items()}
        order = list(idx.items())  # the cells in CSV_COLUMNS order (the first bad one is reported)
        width = len(head)
        new_job = TraceJob.make
        for row in reader:
            lineno = reader.line_num
            # a blank line: every cell empty or white space (the first cell decides most rows)
            if not row or (not row[0].strip() and not "".join(row).strip()):
                continue
            if report is not None:
                report.read += 1
            try:
                if len(row) != width:
                    raise ValueError(f"expected {width} columns, got {len(row)}")
                got: list[float | None] = []
                for k, i in order:  # _cell of each, written out: float() first, _cell for the rest
                    if i is None:
                        got.append(None)
                        continue
                    text = row[i]
                    try:
                        x = float(text)
                    except ValueError:
                        got.append(_cell(row, i, k))  # blank (None) or the error
                        continue
                    if not isfinite(x):
                        raise ValueError(f"{k}: not a finite number: {text!r}")
                    got.append(x if x >= 0 else None)
                job_id, arrival, cores, mem, duration, work, walltime = got
                if arrival is None:
                    raise ValueError(f"column {cols['arrival_s']!r}: no arrival time")
                yield new_job(int(job_id) if job_id is not None else lineno - 1, arrival, duration,
                              int(cores) if cores is not None else -1, mem, walltime or None,
                              lineno, work)
            except ValueError as e:
                if not skip_bad_lines:
                    raise InputError(f"{e} (--skip-bad-lines to go on)", name, lineno) from None
                if report is not None:
                    report.add("bad line", lineno)


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
