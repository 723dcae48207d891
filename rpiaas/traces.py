"""Workload traces: read recorded jobs and turn them into tasks.

Two formats, both streamed line by line (a trace of millions of jobs never
has to fit in memory):

- the Standard Workload Format (SWF) of the Parallel Workloads Archive: 18
  whitespace-separated fields per job, header comments (``; MaxProcs: 100``)
  first;
- CSV with a header row and a column mapping (arrival, cores, memory,
  duration or work).

:func:`read_swf` and :func:`read_csv` yield :class:`TraceJob` records; a
:class:`TraceOptions` (the ``workload: {trace: ...}`` scenario keys, see
``docs/traces.md``) says which jobs to keep and how their processors, memory
and run time become a :class:`~rpiaas.model.Task`'s ``cores``, ``mem_mb``
and ``work_core_s`` on the scenario's node types.  Everything left out is
counted by reason in a :class:`SkipReport`.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import Task
from .source import InputError, KeyPath, Source

__all__ = ["SWF_FIELDS", "SkipReport", "Target", "TraceJob", "TraceOptions", "map_jobs", "parse_trace",
           "read_csv", "read_swf", "swf_header", "target_for"]

SWF_FIELDS = ("job", "submit_s", "wait_s", "run_s", "procs", "cpu_s", "mem_kb", "req_procs",
              "req_time_s", "req_mem_kb", "status", "user", "group", "app", "queue",
              "partition", "prev_job", "think_s")
CANCELLED = 5  # SWF status: cancelled (run time, if any, is how long it ran before)
CSV_COLUMNS = ("id", "arrival_s", "cores", "mem_mb", "duration_s", "work_core_s", "walltime_s")


@dataclass(frozen=True)
class TraceJob:
    """One job as a trace records it (``-1``/``None``: not recorded)."""

    id: int
    submit_s: float  # seconds since the trace's start (SWF: since UnixStartTime)
    run_s: float | None  # wall-clock run time on the traced machine
    procs: int  # processors (SWF: allocated, else requested); CSV: cores
    mem_mb: float | None  # memory of the whole job
    req_time_s: float | None  # the user's estimate (walltime)
    status: int = -1
    user: int = -1
    queue: int = -1
    partition: int = -1
    line: int = 0
    work_core_s: float | None = None  # CSV traces may give work instead of duration


@dataclass
class SkipReport:
    """What a pass over a trace left out or changed, by reason, with the first line of each."""

    counts: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)
    read: int = 0  # job lines read
    kept: int = 0  # tasks produced

    def add(self, reason: str, line: int) -> None:
        self.counts[reason] += 1
        self.first_line.setdefault(reason, line)

    def describe(self) -> str:
        """``1,200 jobs read, 1,150 kept; skipped: 40 cancelled (first at line 31), ...``."""
        parts = [f"{n:,} {reason} (first at line {self.first_line[reason]})"
                 for reason, n in sorted(self.counts.items())]
        return (f"{self.read:,} jobs read, {self.kept:,} kept"
                + ("; " + ", ".join(parts) if parts else ""))


# ---------------------------------------------------------------- SWF
def swf_header(path: str | Path) -> dict[str, str]:
    """The ``; Key: value`` comments at the top of an SWF file."""
    header: dict[str, str] = {}
    with _open(path) as f:
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

    A malformed line (not 18 fields, or a field that is not a number) raises
    :class:`~rpiaas.source.InputError` with the file and line number, or,
    with ``skip_bad_lines``, is counted in ``report`` as ``bad line``.
    """
    name = str(path)
    with _open(path) as f:
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
                    bad = next(i for i, p in enumerate(parts) if not _is_number(p))
                    problem = f"field {bad + 1} ({SWF_FIELDS[bad]}): not a number: {parts[bad]!r}"
                else:
                    if not math.isfinite(sum(v)):  # inf or nan anywhere
                        problem = "a field is not a finite number"
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
                            user=int(v[11]), queue=int(v[14]), partition=int(v[15]), line=lineno)
                        continue
            if not skip_bad_lines:
                raise InputError(f"{problem} (--skip-bad-lines to go on)", name, lineno)
            if report is not None:
                report.read += 1
                report.add("bad line", lineno)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _open(path: str | Path) -> Any:
    try:
        return open(path, encoding="utf-8", errors="replace", newline="")
    except FileNotFoundError:
        raise InputError("no such trace file", str(path)) from None
    except OSError as e:
        raise InputError(f"cannot read trace: {e.strerror or e}", str(path)) from None


# ---------------------------------------------------------------- CSV
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
    with _open(path) as f:
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
        for row in reader:
            lineno = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if report is not None:
                report.read += 1
            try:
                if len(row) != len(head):
                    raise ValueError(f"expected {len(head)} columns, got {len(row)}")
                got = {k: _cell(row, i, k) for k, i in idx.items()}
                arrival, cores = got["arrival_s"], got["cores"]
                if arrival is None:
                    raise ValueError(f"column {cols['arrival_s']!r}: no arrival time")
                yield TraceJob(
                    id=int(got["id"]) if got["id"] is not None else lineno - 1,
                    submit_s=arrival, run_s=got["duration_s"],
                    procs=int(cores) if cores is not None else -1, mem_mb=got["mem_mb"],
                    req_time_s=got["walltime_s"] or None, line=lineno, work_core_s=got["work_core_s"])
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


# ---------------------------------------------------------------- options
WIDE = ("clip", "skip")
FILTER_KEYS = ("status", "users", "queues", "partitions", "min_run_s", "max_run_s",
               "min_procs", "max_procs")
TRACE_KEYS = ("path", "format", "columns", "start_s", "end_s", "start_time", "end_time",
              "max_jobs", "load_scale", "skip_cancelled", "skip_bad_lines", "cores_per_proc",
              "wide_jobs", "mem_mb_per_core", "work_scale", "walltime", "filters", "kind", "tenant")


@dataclass(frozen=True)
class TraceOptions:
    """The ``workload: {trace: ...}`` keys, validated (``docs/traces.md``)."""

    path: Path
    format: str = "swf"
    columns: dict[str, str] = field(default_factory=dict)
    start_s: float | None = None  # window, in the trace's own clock
    end_s: float | None = None
    max_jobs: int | None = None
    load_scale: float = 1.0  # > 1: arrivals closer together (more load)
    skip_cancelled: bool = True
    skip_bad_lines: bool = False
    cores_per_proc: float | None = 1.0  # None: "auto", cluster cores / MaxProcs
    wide_jobs: str = "clip"
    mem_mb_per_core: float = 256.0
    work_scale: float = 1.0  # reference-core seconds per traced processor-second
    walltime: bool = True  # the requested time becomes walltime_s (the estimate)
    filters: dict[str, Any] = field(default_factory=dict)
    kind: str = "cpu"
    tenant: str = ""

    def jobs(self, report: SkipReport | None = None) -> Iterator[TraceJob]:
        if self.format == "swf":
            return read_swf(self.path, self.skip_bad_lines, report)
        return read_csv(self.path, self.columns, self.skip_bad_lines, report)


def parse_trace(src: Source, path: KeyPath, data: Any) -> TraceOptions:
    """Validate the ``trace`` mapping of a workload."""
    m = src.mapping(path, data, TRACE_KEYS, required=("path",))
    file = Path(src.string((*path, "path"), m["path"]))
    file = file if file.is_absolute() else src.base / file
    if not file.is_file():
        src.fail((*path, "path"), f"no such trace file: {file}")
    fmt = m.get("format") or ("csv" if file.suffix.lower() == ".csv" else "swf")
    fmt = src.choice((*path, "format"), fmt, ("swf", "csv"))
    columns: dict[str, str] = {}
    if m.get("columns") is not None:
        if fmt != "csv":
            src.fail((*path, "columns"), "only CSV traces take a column mapping")
        cm = src.mapping((*path, "columns"), m["columns"], CSV_COLUMNS)
        columns = {k: src.string((*path, "columns", k), v) for k, v in cm.items()}
    num = {}
    for key in ("start_s", "end_s"):
        if m.get(key) is not None:
            num[key] = src.number((*path, key), m[key], nonnegative=True)
    for key, target in (("start_time", "start_s"), ("end_time", "end_s")):
        if m.get(key) is None:
            continue
        if target in num:
            src.fail((*path, key), f"give {key} or {target}, not both")
        if fmt != "swf":
            src.fail((*path, key), f"{key} needs an SWF trace (its UnixStartTime header); use {target}")
        num[target] = _time_in_trace(src, (*path, key), m[key], file)
    if "start_s" in num and "end_s" in num and num["end_s"] <= num["start_s"]:
        src.fail((*path, "end_s" if "end_s" in m else "end_time"), "the window ends before it starts")
    cpp = m.get("cores_per_proc", 1.0)
    cores_per_proc = None if cpp == "auto" else src.number((*path, "cores_per_proc"), cpp, positive=True)
    if cores_per_proc is None:
        h = swf_header(file) if fmt == "swf" else {}
        if not any(_is_number(h.get(k, "")) and float(h[k]) > 0 for k in ("MaxProcs", "MaxNodes")):
            src.fail((*path, "cores_per_proc"), f"auto needs an SWF header with MaxProcs or MaxNodes "
                                                f"({file.name} has none); give a number")
    filters: dict[str, Any] = {}
    if m.get("filters") is not None:
        fp = (*path, "filters")
        f = src.mapping(fp, m["filters"], FILTER_KEYS)
        for key, value in f.items():
            if key in ("status", "users", "queues", "partitions"):
                seq = value if isinstance(value, list) else [value]
                filters[key] = frozenset(src.integer((*fp, key), v) for v in seq)
            else:
                filters[key] = src.number((*fp, key), value, nonnegative=True)
    return TraceOptions(
        path=file, format=fmt, columns=columns, start_s=num.get("start_s"), end_s=num.get("end_s"),
        max_jobs=src.integer((*path, "max_jobs"), m["max_jobs"], minimum=1)
        if m.get("max_jobs") is not None else None,
        load_scale=src.number((*path, "load_scale"), m.get("load_scale", 1.0), positive=True),
        skip_cancelled=src.boolean((*path, "skip_cancelled"), m.get("skip_cancelled", True)),
        skip_bad_lines=src.boolean((*path, "skip_bad_lines"), m.get("skip_bad_lines", False)),
        cores_per_proc=cores_per_proc,
        wide_jobs=src.choice((*path, "wide_jobs"), m.get("wide_jobs", "clip"), WIDE),
        mem_mb_per_core=src.number((*path, "mem_mb_per_core"), m.get("mem_mb_per_core", 256), positive=True),
        work_scale=src.number((*path, "work_scale"), m.get("work_scale", 1.0), positive=True),
        walltime=src.boolean((*path, "walltime"), m.get("walltime", True)),
        filters=filters,
        kind=src.choice((*path, "kind"), m.get("kind", "cpu"), ("cpu", "memory", "io", "sleep", "command")),
        tenant=src.string((*path, "tenant"), m.get("tenant", "")),
    )


def _time_in_trace(src: Source, path: KeyPath, value: Any, file: Path) -> float:
    """An ISO 8601 date-time as seconds of the trace's clock (from its UnixStartTime)."""
    start = swf_header(file).get("UnixStartTime")
    if start is None or not _is_number(start):
        src.fail(path, f"{file.name} has no UnixStartTime header; give the window in seconds")
    if isinstance(value, _dt.datetime):
        when = value
    else:
        try:
            when = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            src.fail(path, f"expected an ISO 8601 date-time such as 1996-10-01T00:00:00Z, got {value!r}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    offset = when.timestamp() - float(start)
    if offset < 0:
        src.fail(path, f"before the trace starts ({_dt.datetime.fromtimestamp(float(start), _dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC)")
    return offset


# ---------------------------------------------------------------- jobs to tasks
@dataclass(frozen=True)
class Target:
    """Where the trace's jobs must fit: the node type with the most cores, and the mapping."""

    cores: int
    mem_mb: int
    cores_per_proc: float
    origin_s: float  # trace time that becomes time 0 of the run


def map_jobs(opts: TraceOptions, target: Target, report: SkipReport | None = None) -> Iterator[Task]:
    """The kept jobs as tasks, in arrival order; ``report`` counts what was left out or clipped.

    Processors become ``ceil(procs * cores_per_proc)`` cores and the work is
    ``run_s * cores * work_scale`` reference-core seconds, so a job runs as long as
    it did on a node of speed 1.  A job wider than the largest node is clipped to
    it keeping its work (it runs longer; the offered load stays the same) or,
    with ``wide_jobs: skip``, left out.
    """
    rep = report if report is not None else SkipReport()
    f = opts.filters
    last = -math.inf
    header_max = _max_procs(opts)
    for job in opts.jobs(rep):
        if job.submit_s < last:
            raise InputError(f"submit time {job.submit_s:g} is before the previous job's "
                             f"({last:g}): a trace must be sorted by submit time", str(opts.path), job.line)
        last = job.submit_s
        if opts.start_s is not None and job.submit_s < opts.start_s:
            rep.add("before the time window", job.line)
            continue
        if opts.end_s is not None and job.submit_s >= opts.end_s:
            break  # sorted: nothing later is in the window
        if opts.skip_cancelled and (job.status == CANCELLED or (job.run_s is None and job.work_core_s is None)):
            rep.add("cancelled (status 5 or run time -1)", job.line)
            continue
        if job.run_s is None and job.work_core_s is None:
            rep.add("no run time", job.line)
            continue
        if job.procs <= 0:
            rep.add("no processor count", job.line)
            continue
        if header_max is not None and job.procs > header_max:
            rep.add("more processors than MaxProcs", job.line)
            continue
        if not _passes(job, f):
            rep.add("filtered out", job.line)
            continue
        cores = max(1, math.ceil(job.procs * target.cores_per_proc - 1e-9))
        work = (job.work_core_s if job.work_core_s is not None
                else (job.run_s or 0.0) * cores) * opts.work_scale
        mem = job.mem_mb * target.cores_per_proc if job.mem_mb is not None \
            else opts.mem_mb_per_core * cores
        mem_mb = max(1, math.ceil(mem - 1e-9))
        stretch = 1.0
        if cores > target.cores or mem_mb > target.mem_mb:
            if opts.wide_jobs == "skip":
                rep.add("wider than the largest node", job.line)
                continue
            if cores > target.cores:
                rep.add("clipped to the largest node's cores", job.line)
                stretch = cores / target.cores
                cores = target.cores
            if mem_mb > target.mem_mb:
                rep.add("clipped to the largest node's memory", job.line)
                mem_mb = target.mem_mb
        wall = job.req_time_s * stretch if opts.walltime and job.req_time_s else None
        rep.kept += 1
        yield Task(job.id, (job.submit_s - target.origin_s) / opts.load_scale, cores, mem_mb, work,
                   opts.kind, opts.tenant, 0, wall)
        if opts.max_jobs is not None and rep.kept >= opts.max_jobs:
            break


def _passes(job: TraceJob, f: dict[str, Any]) -> bool:
    if not f:
        return True
    for key, attr in (("status", "status"), ("users", "user"), ("queues", "queue"),
                      ("partitions", "partition")):
        if key in f and getattr(job, attr) not in f[key]:
            return False
    run = job.run_s if job.run_s is not None else -1.0
    return bool(f.get("min_run_s", -math.inf) <= run <= f.get("max_run_s", math.inf)
                and f.get("min_procs", 0) <= job.procs <= f.get("max_procs", math.inf))


def _max_procs(opts: TraceOptions) -> int | None:
    if opts.format != "swf":
        return None
    h = swf_header(opts.path)
    for key in ("MaxProcs", "MaxNodes"):
        if _is_number(h.get(key, "")) and float(h[key]) > 0:
            return int(float(h[key]))
    return None


def first_submit(opts: TraceOptions) -> float:
    """The submit time of the first job in the window (0 for an empty trace)."""
    for job in opts.jobs():
        if opts.start_s is None or job.submit_s >= opts.start_s:
            return job.submit_s
    return 0.0


def target_for(opts: TraceOptions, types: Sequence[tuple[int, int]], total_cores: int) -> Target:
    """The mapping onto a cluster: ``types`` are (cores, mem_mb) of its node types."""
    cores, mem = max(types)
    cpp = opts.cores_per_proc
    if cpp is None:  # auto: the traced machine's processors spread over the cluster's cores
        mp = _max_procs(opts)
        if mp is None:
            raise InputError("cores_per_proc: auto needs a MaxProcs or MaxNodes header", str(opts.path))
        cpp = total_cores / mp
    origin = opts.start_s if opts.start_s is not None else first_submit(opts)
    return Target(cores, mem, cpp, origin)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rpiaas.traces FILE.swf [--skip-bad-lines]``: header, jobs and what was skipped."""
    import argparse
    import time

    p = argparse.ArgumentParser(prog="python -m rpiaas.traces", description=main.__doc__)
    p.add_argument("trace")
    p.add_argument("--skip-bad-lines", action="store_true")
    args = p.parse_args(argv)
    opts = TraceOptions(Path(args.trace), "csv" if args.trace.endswith(".csv") else "swf",
                        skip_bad_lines=args.skip_bad_lines)
    try:
        if opts.format == "swf":
            for k, v in swf_header(opts.path).items():
                print(f"{k}: {v}")
        rep = SkipReport()
        t0 = time.perf_counter()
        for _ in map_jobs(opts, target_for(opts, [(10**9, 10**12)], 1), rep):
            pass
        dt = time.perf_counter() - t0
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{rep.describe()} in {dt:.2f} s ({rep.read / dt if dt > 0 else 0:,.0f} jobs/s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
