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
from .jobs import GO_ON, Block, SkipReport, TraceJob, is_number, open_trace

__all__ = ["CANCELLED", "SWF_FIELDS", "SwfBlock", "read_swf", "read_swf_blocks", "swf_header"]

SWF_FIELDS = ("job", "submit_s", "wait_s", "run_s", "procs", "cpu_s", "mem_kb", "req_procs",
              "req_time_s", "req_mem_kb", "status", "user", "group", "app", "queue",
              "partition", "prev_job", "think_s")
BLOCK = 1024  # lines read as one SwfBlock (more: no faster, and its split lines take memory)
CANCELLED = 5  # SWF status: cancelled (run time, if any, is how long it ran before)


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
        yield from _jobs(enumerate(f, 1), str(path), skip_bad_lines, report)


def read_swf_blocks(path: str | Path, skip_bad_lines: bool = False,
                    report: SkipReport | None = None) -> Iterator[SwfBlock | TraceJob]:
    """:func:`read_swf`'s jobs, runs of :data:`BLOCK` plain lines as :class:`SwfBlock` (not
    counted in ``report``'s ``read``: its reader counts the lines it takes), once the comments
    and blank lines that open a run (the header) are passed.  A plain line is a job of 18
    finite numbers that waits for no other; a run with any other line (a comment, a blank or
    malformed line, a dependency) is read as :func:`read_swf` reads it: the same jobs, the
    same errors, the same line numbers."""
    name = str(path)
    with open_trace(path) as f:
        line = 0  # lines read so far
        while True:
            lines = list(islice(f, BLOCK))
            if not lines:
                return
            k = 0  # comments and blank lines first (the header): nothing to read in them
            while k < len(lines) and (not (parts := lines[k].split()) or parts[0].startswith(";")):
                k += 1
            block = _block(lines[k:], line + 1 + k) if k < len(lines) else None
            if block is not None:
                yield block  # its lines count as read as they are taken (a pass may stop in it)
            else:
                yield from _jobs(enumerate(lines, line + 1), name, skip_bad_lines, report)
            line += len(lines)


@dataclass(frozen=True)
class SwfBlock(Block):
    """Plain lines of an SWF file as columns (see :class:`~.jobs.Block`), and the lines'
    18 fields as read (``values``), from which :meth:`jobs` makes each job as
    :func:`read_swf` does."""

    values: Any = None  # float64, one row a line

    def jobs(self) -> Iterator[TraceJob]:
        return map(_job, self.values.tolist(), range(self.first_line, self.first_line + len(self)))


def _block(lines: list[str], first_line: int) -> SwfBlock | None:
    """``lines`` (from ``first_line``) as a block, or ``None`` unless every one is plain."""
    rows = [raw.split() for raw in lines]
    if any(len(r) != 18 for r in rows):  # (a comment, a blank line, a malformed one)
        return None
    try:  # Python's float, as a line on its own is read
        v = np.fromiter(map(float, chain.from_iterable(rows)), dtype=np.float64,
                        count=18 * len(rows)).reshape(len(rows), 18)
    except ValueError:  # a field that is not a number: line by line, which says where
        return None
    # finite, and far from overflowing where _job's check sums a line's fields; ids below
    # MAX_TASK_ID; no preceding job (a dependency is read line by line)
    if not (np.isfinite(v).all() and float(np.abs(v).max()) < 1e300):
        return None
    if bool((v[:, 0] >= MAX_TASK_ID).any() or (v[:, 16] >= 1).any()):
        return None
    procs = np.where(v[:, 4] > 0, np.trunc(v[:, 4]), np.trunc(v[:, 7]))
    per_proc_kb = np.where(v[:, 9] > 0, v[:, 9], v[:, 6])
    with np.errstate(invalid="ignore", over="ignore"):  # (mapping says which job overflows)
        mem_mb = np.where((per_proc_kb > 0) & (procs > 0), per_proc_kb * procs / 1024, np.nan)
    fields = {"id": v[:, 0], "arrival_s": v[:, 1], "duration_s": np.where(v[:, 3] >= 0, v[:, 3], np.nan),
              "cores": procs, "mem_mb": mem_mb, "work_core_s": None, "walltime_s": v[:, 8], "status": v[:, 10]}
    return SwfBlock(first_line, fields, v)


def _job(v: list[float], lineno: int) -> TraceJob:
    """The job of a line whose 18 fields ``v`` are well formed."""
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


def _jobs(numbered: Iterable[tuple[int, str]], name: str, skip_bad_lines: bool,
          report: SkipReport | None) -> Iterator[TraceJob]:
    """The jobs of SWF lines given with their numbers (see :func:`read_swf`)."""
    for lineno, raw in numbered:
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
            raise InputError(f"{problem} {GO_ON}", name, lineno)
        if report is not None:
            report.read += 1
            report.add("bad line", lineno)
