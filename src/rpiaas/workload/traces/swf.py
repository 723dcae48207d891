"""The Standard Workload Format (SWF) of the Parallel Workloads Archive, streamed.

18 whitespace-separated fields per job, header comments (``; MaxProcs: 100``)
first.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from ...inputs.source import InputError
from ...model import MAX_TASK_ID
from .jobs import SkipReport, TraceJob, is_number, open_trace

__all__ = ["CANCELLED", "SWF_FIELDS", "read_swf", "swf_header"]

SWF_FIELDS = ("job", "submit_s", "wait_s", "run_s", "procs", "cpu_s", "mem_kb", "req_procs",
              "req_time_s", "req_mem_kb", "status", "user", "group", "app", "queue",
              "partition", "prev_job", "think_s")
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
    name = str(path)
    with open_trace(path) as f:
        for lineno, raw in enumerate(f, 1):
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
                        procs = int(v[4]) if v[4] > 0 else int(v[7])
                        per_proc_kb = v[9] if v[9] > 0 else v[6]
                        yield TraceJob(
                            id=int(v[0]), submit_s=v[1], run_s=v[3] if v[3] >= 0 else None,
                            procs=procs,
                            mem_mb=per_proc_kb * procs / 1024 if per_proc_kb > 0 and procs > 0 else None,
                            req_time_s=v[8] if v[8] > 0 else None, status=int(v[10]),
                            user=int(v[11]), queue=int(v[14]), partition=int(v[15]), line=lineno,
                            after=(int(v[16]),) if v[16] >= 1 else (),
                            think_s=v[17] if v[16] >= 1 and v[17] > 0 else None)
                        continue
            if not skip_bad_lines:
                raise InputError(f"{problem} (--skip-bad-lines to go on)", name, lineno)
            if report is not None:
                report.read += 1
                report.add("bad line", lineno)
