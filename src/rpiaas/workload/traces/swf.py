"""The Standard Workload Format (SWF) of the Parallel Workloads Archive, streamed.

18 whitespace-separated fields per job, header comments (``; MaxProcs: 100``)
first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np

from ...inputs.source import InputError
from ...model import MAX_TASK_ID
from .jobs import SkipReport, TraceJob, is_number, open_trace

__all__ = ["BLOCK", "CANCELLED", "SWF_FIELDS", "SwfBlock", "read_swf", "read_swf_blocks", "swf_header"]

SWF_FIELDS = ("job", "submit_s", "wait_s", "run_s", "procs", "cpu_s", "mem_kb", "req_procs",
              "req_time_s", "req_mem_kb", "status", "user", "group", "app", "queue",
              "partition", "prev_job", "think_s")
CANCELLED = 5  # SWF status: cancelled (run time, if any, is how long it ran before)
BLOCK = 8192  # lines read as one SwfBlock


def swf_header(path: str | Path) -> dict[str, str]:
    """The ``; Key: value`` comments at the top of an SWF file."""
    header: dict[str, str] = {}
    with open_trace(path) as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            if not line.startswith(";"):
                break
            key, sep, value = line[1:].partition(":")
            if sep and key.strip() and " " not in key.strip():
                header.setdefault(key.strip(), value.strip())
    return header


def read_swf(path: str | Path, skip_bad_lines: bool = False,
             report: SkipReport | None = None) -> Iterator[TraceJob]:
    """The jobs of an SWF file, in file order.

    Field 17, the preceding job, becomes the job's ``after`` (a number of 0 or less is none)
    and field 18 its ``think_s``; a preceding job that is not an earlier one (its number
    not below the job's own) is a malformed line.

    A malformed line (not 18 fields, or a field that is not a number) raises
    :class:`~rpiaas.inputs.source.InputError` with the file and line number, or,
    with ``skip_bad_lines``, is counted in ``report`` as ``bad line``.
    """
    with open_trace(path) as f:
        yield from _lines(f, 1, str(path), skip_bad_lines, report)


def read_swf_blocks(path: str | Path, skip_bad_lines: bool = False,
                    report: SkipReport | None = None) -> Iterator[SwfBlock | TraceJob]:
    """:func:`read_swf`'s jobs, runs of :data:`BLOCK` plain lines (18 numbers, no preceding
    job) as one :class:`SwfBlock` (not counted in ``report``'s ``read``: its reader counts
    the lines it takes); any other run of lines job by job, as :func:`read_swf` reads them."""
    name = str(path)
    with open_trace(path) as f:
        line = 0  # lines read so far
        pending: list[str] = []
        for raw in f:  # the header's comments, one by one (they make no job)
            line += 1
            parts = raw.split()
            if parts and not parts[0].startswith(";"):
                pending.append(raw)
                line -= 1
                break
        while True:
            lines = pending + list(islice(f, BLOCK - len(pending)))
            pending = []
            if not lines:
                return
            block = _block(lines, line + 1)
            if block is not None:
                yield block
            else:
                yield from _lines(lines, line + 1, name, skip_bad_lines, report)
            line += len(lines)


def _block(lines: list[str], first_line: int) -> SwfBlock | None:
    """``lines`` (from ``first_line``) as a block, or ``None`` unless each is a plain job."""
    try:  # Python's float, as a line is read; a line's fields at a time (not a block's strings at once)
        values = np.fromiter(map(float, chain.from_iterable(map(_fields, lines))), dtype=np.float64,
                             count=18 * len(lines))
    except ValueError:  # a field that is no number, or a line that is no job's
        return None
    values = values.reshape(len(lines), 18)
    # each field far from overflow (so is a line's sum, which a line must have finite), the ids exact;
    # a preceding job is checked, and kept, line by line
    if not bool((np.abs(values) < 1e300).all()) or bool((values[:, 0] >= MAX_TASK_ID).any()) \
            or bool((values[:, 16] >= 1).any()):
        return None
    return SwfBlock(first_line, values)


def _fields(raw: str) -> list[str]:
    """A line's 18 fields; ``ValueError`` for a blank line, a comment or another count."""
    parts = raw.split()
    if len(parts) != 18 or parts[0].startswith(";"):
        raise ValueError("not a plain SWF line")
    return parts


def _lines(lines: Iterable[str], first_line: int, name: str, skip_bad_lines: bool,
           report: SkipReport | None) -> Iterator[TraceJob]:
    """The jobs of ``lines``, the first of them line ``first_line`` of the file ``name``."""
    for lineno, raw in enumerate(lines, first_line):
        parts = raw.split()
        if not parts or parts[0].startswith(";"):
            continue
        if len(parts) != 18:
            problem = f"expected 18 SWF fields, got {len(parts)}"
        else:
            try:
                v = [float(p) for p in parts]
            except ValueError:
                bad = next(i for i, p in enumerate(parts) if not is_number(p))
                problem = f"field {bad + 1} ({SWF_FIELDS[bad]}): not a number: {parts[bad]!r}"
            else:
                if not math.isfinite(sum(v)):  # inf or nan anywhere
                    problem = "a field is not a finite number"
                elif v[0] >= MAX_TASK_ID:  # (read as a double: exact below 2**53)
                    problem = f"field 1 (job number): {parts[0]!r} is 2**53 or more (ids are read exactly below it)"
                elif v[16] >= 1 and v[16] >= v[0]:
                    problem = (f"field 17 (prev_job): job {parts[0]} names {parts[16]} as its preceding job, "
                               "which must be an earlier job's number (-1 for none)")
                else:
                    if report is not None:
                        report.read += 1
                    yield _job(v, lineno)
                    continue
        if not skip_bad_lines:
            raise InputError(f"{problem} (--skip-bad-lines to go on)", name, lineno)
        if report is not None:
            report.read += 1
            report.add("bad line", lineno)


def _job(v: list[float], lineno: int) -> TraceJob:
    """The job of a checked line's 18 values."""
    procs = int(v[4]) if v[4] > 0 else int(v[7])
    per_proc_kb = v[9] if v[9] > 0 else v[6]
    return TraceJob(
        id=int(v[0]), submit_s=v[1], run_s=v[3] if v[3] >= 0 else None,
        procs=procs,
        mem_mb=per_proc_kb * procs / 1024 if per_proc_kb > 0 and procs > 0 else None,
        req_time_s=v[8] if v[8] > 0 else None, status=int(v[10]),
        user=int(v[11]), queue=int(v[14]), partition=int(v[15]), line=lineno,
        after=(int(v[16]),) if v[16] >= 1 else (),
        think_s=v[17] if v[16] >= 1 and v[17] > 0 else None)


@dataclass(frozen=True)
class SwfBlock:
    """Plain lines of an SWF trace (:func:`read_swf_blocks`): their 18 fields as an (n, 18)
    float64 array; ``first_line`` is the first one's line."""

    first_line: int
    values: Any

    def __len__(self) -> int:
        return len(self.values)

    def jobs(self) -> Iterator[TraceJob]:
        """The block's jobs, as :func:`read_swf` makes them."""
        for lineno, v in enumerate(self.values.tolist(), self.first_line):
            yield _job(v, lineno)

    def procs(self) -> Any:
        """Each job's processors: allocated, else requested (as :class:`TraceJob` has them)."""
        v = self.values
        return np.trunc(np.where(v[:, 4] > 0, v[:, 4], v[:, 7]))

    def run_s(self) -> Any:
        """Each job's run time (negative: none recorded)."""
        return self.values[:, 3]

    def status(self) -> Any:
        """Each job's status (:data:`CANCELLED`, ...)."""
        return self.values[:, 10]

    @property
    def fields(self) -> dict[str, Any]:
        """The columns a CSV block has (:data:`~.csv.CSV_COLUMNS`), as its jobs have them; the
        memory NaN for a job that records none."""
        v = self.values
        procs = self.procs()
        per_proc_kb = np.where(v[:, 9] > 0, v[:, 9], v[:, 6])
        mem = np.where(per_proc_kb > 0, per_proc_kb * procs / 1024, np.nan)
        return {"id": v[:, 0], "arrival_s": v[:, 1], "cores": procs, "mem_mb": mem, "duration_s": v[:, 3],
                "work_core_s": None, "walltime_s": v[:, 8]}
