"""Jobs to tasks: a trace's jobs mapped onto the scenario's node types, and the trace workload.

Processors become cores, memory and run time become ``mem_mb`` and
``work_core_s``; a job wider than the largest node spans nodes (a parallel job), or is clipped or skipped.
Everything left out is counted by reason in a :class:`SkipReport`.  The jobs a job waits for (SWF's
preceding job, a CSV ``after`` column) become its task's ``after`` when they are in the run too
(:func:`resolve_after`); a dependency on a job left out is dropped and counted.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from ...inputs.source import InputError
from ...model import Task
from ..base import Workload
from ..spread import split_procs
from .csv import read_csv_blocks
from .jobs import GO_ON, Block, SkipReport, TraceJob, is_number
from .options import TraceOptions
from .swf import CANCELLED, read_swf_blocks, swf_header

__all__ = [
    "DROPPED_AFTER",
    "KEEP_TASKS",
    "SPANS",
    "THINK_IGNORED",
    "MappedBlock",
    "MappedJob",
    "Target",
    "TaskColumns",
    "Trace",
    "first_submit",
    "job_task",
    "map_jobs",
    "mapped_blocks",
    "mapped_jobs",
    "resolve_after",
    "target_for",
]


@dataclass(frozen=True)
class Target:
    """Where the trace's jobs must fit: the node type with the most cores, and the mapping."""

    cores: int
    mem_mb: int
    cores_per_proc: float
    origin_s: float  # trace time that becomes time 0 of the run


# the report's reason for a job wider than the largest node run as a parallel job over nodes
SPANS = "spans nodes (wider than the largest node)"

# the report's reasons for a dependency that is not kept as it was recorded
DROPPED_AFTER = "waits for a job not in the run (that dependency dropped)"
THINK_IGNORED = "think time after its preceding job not modelled (released at the job's end)"

# A kept job's recorded dependencies, by its id: (the ids it waits for, its line)
RecordedAfter = dict[int, tuple[tuple[int, ...], int]]

# A kept job as plain values: (id, arrival_s, cores, mem_mb, work_core_s, walltime_s or None)
MappedJob = tuple[int, float, int, int, float, "float | None"]


def map_jobs(opts: TraceOptions, target: Target, report: SkipReport | None = None,
             after: dict[int, tuple[int, ...]] | None = None) -> Iterator[Task]:
    """The kept jobs as tasks, in arrival order; ``report`` counts what was left out or clipped.
    ``after`` gives the tasks that wait for others their predecessors (:func:`resolve_after`).

    Processors become ``ceil(procs * cores_per_proc)`` cores and the work is
    ``run_s * cores * work_scale`` reference-core seconds, so a job runs as long as
    it did on a node of speed 1.  A job wider than the largest node is clipped to
    it keeping its work (it runs longer; the offered load stays the same) or,
    with ``wide_jobs: skip``, left out.
    """
    kind, tenant, width = opts.kind, opts.tenant, target.cores
    waits = after or {}
    for tid, arrival, cores, mem_mb, work, wall in mapped_jobs(opts, target, report):
        if cores > width:
            yield job_task(tid, arrival, cores, mem_mb, work, wall, kind, tenant, width, waits.get(tid, ()))
        else:
            yield Task(tid, arrival, cores, mem_mb, work, kind, tenant=tenant, walltime_s=wall,
                       after=waits.get(tid, ()) if waits else ())


def job_task(tid: int, arrival_s: float, cores: int, mem_mb: int, work_core_s: float,
             walltime_s: float | None, kind: str, tenant: str, width: int, after: tuple[int, ...] = ()) -> Task:
    """A trace job of ``cores`` cores wider than the largest node (``width`` cores) as a
    parallel job packed on nodes of that width (:func:`~rpiaas.workload.spread.split_procs`),
    ``mem_mb`` on each."""
    parts = split_procs(cores, "pack", width)
    return Task(tid, arrival_s, parts[0], mem_mb, work_core_s, kind, tenant=tenant, walltime_s=walltime_s,
                nodes=len(parts), parts=() if parts[-1] == parts[0] else parts, after=after)


def mapped_jobs(opts: TraceOptions, target: Target, report: SkipReport | None = None) -> Iterator[MappedJob]:
    """:func:`map_jobs` as plain values (:data:`MappedJob`), not tasks."""
    return cast("Iterator[MappedJob]", _mapped(opts, target, report, blocks=False))


def mapped_blocks(opts: TraceOptions, target: Target, report: SkipReport | None = None,
                  recorded: RecordedAfter | None = None) -> Iterator[MappedJob | MappedBlock]:
    """:func:`mapped_jobs`, with runs of plain lines mapped a column at a time
    (:class:`MappedBlock`): the same values, the same report.  ``recorded`` gathers the
    dependencies of the kept jobs as the trace records them."""
    return _mapped(opts, target, report, blocks=True, recorded=recorded)


def _mapped(opts: TraceOptions, target: Target, report: SkipReport | None,
            blocks: bool, recorded: RecordedAfter | None = None) -> Iterator[MappedJob | MappedBlock]:
    rep = report if report is not None else SkipReport()
    f = opts.filters
    last = -math.inf
    header_max = _max_procs(opts)
    start_s, end_s, skip_cancelled = opts.start_s, opts.end_s, opts.skip_cancelled
    cpp, origin, load_scale, work_scale = target.cores_per_proc, target.origin_s, opts.load_scale, opts.work_scale
    max_cores, max_mem, skip_wide = target.cores, target.mem_mb, opts.wide_jobs == "skip"
    span = opts.wide_jobs == "span"
    mem_per_core, walltime, max_jobs = opts.mem_mb_per_core, opts.walltime, opts.max_jobs
    ceil, isfinite, add, skip_bad = math.ceil, math.isfinite, rep.add, opts.skip_bad_lines
    source: Iterator[TraceJob | Block]
    if not blocks:
        source = opts.jobs(rep)
    elif opts.format == "swf":
        source = read_swf_blocks(opts.path, opts.skip_bad_lines, rep)
    else:
        source = read_csv_blocks(opts.path, opts.columns, opts.skip_bad_lines, rep)
    for item in source:
        if isinstance(item, Block):
            mapped = _map_block(item, opts, target, last, rep.kept, header_max, rep)
            if mapped is not None:
                rep.read += len(item)
                rep.kept += len(mapped)
                last = mapped.last_submit_s
                yield mapped
                if max_jobs is not None and rep.kept >= max_jobs:
                    return
                continue
            jobs: Iterable[TraceJob] = item.jobs()
            from_block = True
        else:
            jobs, from_block = (item,), False
        for job in jobs:
            if from_block:  # the reader counts the lines it reads one by one, not a block's
                rep.read += 1
            tid, submit, run_s, procs, job_mem, req_s, status, _, _, _, line, job_work, job_after, think_s = job
            if submit < last:
                raise InputError(f"submit time {submit:g} is before the previous job's "
                                 f"({last:g}): a trace must be sorted by submit time", str(opts.path), line)
            last = submit
            if start_s is not None and submit < start_s:
                add("before the time window", line)
                continue
            if end_s is not None and submit >= end_s:
                return  # sorted: nothing later is in the window
            if skip_cancelled and (status == CANCELLED or (run_s is None and job_work is None)):
                add("cancelled (status 5 or run time -1)", line)
                continue
            if run_s is None and job_work is None:
                add("no run time", line)
                continue
            if procs <= 0:
                add("no processor count", line)
                continue
            if header_max is not None and procs > header_max:
                add("more processors than MaxProcs", line)
                continue
            if f and not _passes(job, f):
                add("filtered out", line)
                continue
            cores = max(1, ceil(procs * cpp - 1e-9))
            work = (job_work if job_work is not None else (run_s or 0.0) * cores) * work_scale
            mem = job_mem * cpp if job_mem is not None else mem_per_core * cores
            if not (isfinite(work) and isfinite(mem * max_cores)):  # finite fields whose product is not
                # (the memory of a part of a job over nodes is mem * max_cores / cores)
                what = "work (run time x cores)" if not isfinite(work) else "memory (per processor x processors)"
                if not skip_bad:
                    raise InputError(f"job {tid}: its {what} is too large for a number "
                                     f"{GO_ON}", str(opts.path), line)
                add("bad line", line)
                continue
            mem_mb = max(1, ceil(mem - 1e-9))
            stretch = 1.0
            if cores > max_cores or mem_mb > max_mem:
                if skip_wide:
                    add("wider than the largest node", line)
                    continue
                if cores > max_cores and span:
                    # a parallel job over nodes of the largest width: its memory by part
                    add(SPANS, line)
                    mem_mb = max(1, ceil(mem * max_cores / cores - 1e-9))
                elif cores > max_cores:
                    add("clipped to the largest node's cores", line)
                    stretch = cores / max_cores
                    cores = max_cores
                if mem_mb > max_mem:
                    add("clipped to the largest node's memory", line)
                    mem_mb = max_mem
            rep.kept += 1
            if job_after:
                if recorded is not None:
                    recorded[tid] = (job_after, line)
                if think_s is not None:
                    add(THINK_IGNORED, line)
            yield (tid, (submit - origin) / load_scale, cores, mem_mb, work,
                   req_s * stretch if walltime and req_s else None)
            if max_jobs is not None and rep.kept >= max_jobs:
                return


@dataclass(frozen=True)
class MappedBlock:
    """Kept jobs as columns (numpy arrays): :data:`MappedJob`'s values, ``walltime_s`` NaN
    for none."""

    ids: Any
    arrival_s: Any
    cores: Any
    mem_mb: Any
    work_core_s: Any
    walltime_s: Any
    last_submit_s: float  # the last job's submit time, in the trace's clock

    def __len__(self) -> int:
        return len(self.ids)


def _map_block(block: Block, opts: TraceOptions, target: Target, last: float, kept: int,
               header_max: int | None, report: SkipReport) -> MappedBlock | None:
    """:func:`_mapped`'s values for the jobs of ``block`` at once, the jobs it leaves out or
    spreads over nodes counted in ``report`` as it counts them (each job's first reason, in the
    same order), or ``None`` (``report`` untouched) when a job of it would stop the pass, be
    clipped or be refused: the block is then mapped job by job, which reports each.  The
    same IEEE operations in the same order."""
    f = block.fields
    submit = f["arrival_s"]
    if opts.filters or submit[0] < last or bool((submit[1:] < submit[:-1]).any()):
        return None
    if (opts.start_s is not None and submit[0] < opts.start_s) or (
            opts.end_s is not None and submit[-1] >= opts.end_s):
        return None
    run, work = f["duration_s"], f["work_core_s"]
    procs = np.trunc(f["cores"])  # int() of each, as the job has it
    # what the job-by-job pass leaves out, each job for the first reason that holds
    left = np.zeros(len(submit), dtype=bool)
    reasons: list[tuple[str, Any]] = []
    no_run = np.isnan(run) if run is not None else np.ones(len(submit), dtype=bool)
    if work is not None:
        no_run &= np.isnan(work)
    status = f.get("status")
    if opts.skip_cancelled:
        cancelled = no_run if status is None else no_run | (status == CANCELLED)
        reasons.append(("cancelled (status 5 or run time -1)", cancelled))
    reasons.append(("no run time", no_run))
    reasons.append(("no processor count", procs <= 0))
    if header_max is not None:
        reasons.append(("more processors than MaxProcs", procs > header_max))
    skipped: list[tuple[int, str, int]] = []  # (first index, reason, count)
    for reason, hit in reasons:
        hit = hit & ~left
        if hit.any():
            idx = np.flatnonzero(hit)
            skipped.append((int(idx[0]), reason, len(idx)))
            left |= hit
    keep = ~left
    # (the pass stops at the last job it may keep: one that reaches the limit with jobs
    # left out after it, job by job, which does not count those)
    n_keep = int(np.count_nonzero(keep))
    if opts.max_jobs is not None and (kept + n_keep > opts.max_jobs
                                      or (skipped and kept + n_keep == opts.max_jobs)):
        return None
    if skipped:
        submit, procs = submit[keep], procs[keep]
        run = run[keep] if run is not None else None
        work = work[keep] if work is not None else None
    with np.errstate(over="ignore"):  # (a product that overflows: below)
        cpp = target.cores_per_proc
        cores = np.maximum(1.0, np.ceil(procs * cpp - 1e-9))
        # (+ 0.0: a run time of -0 counts as 0, as ``run_s or 0.0`` has it)
        if work is None:
            work = (run + 0.0) * cores
        elif run is not None:  # a job with work is read for its work, else its run time
            work = np.where(np.isnan(work), (run + 0.0) * cores, work)
        work = work * opts.work_scale
        job_mem = f["mem_mb"][keep] if f["mem_mb"] is not None and skipped else f["mem_mb"]
        if job_mem is None:
            mem = opts.mem_mb_per_core * cores
        else:
            mem = np.where(np.isnan(job_mem), opts.mem_mb_per_core * cores, job_mem * cpp)
        if not (np.isfinite(work).all() and np.isfinite(mem * target.cores).all()):
            return None  # a job whose work or memory overflows: job by job, which says which
    mem_mb = np.maximum(1.0, np.ceil(mem - 1e-9))
    wide = cores > target.cores
    spans = bool(wide.any())
    if spans:
        if opts.wide_jobs != "span":
            return None  # clipped or skipped: job by job, which says which
        # a parallel job over nodes of the largest width: its memory by part
        mem_mb = np.where(wide, np.maximum(1.0, np.ceil(mem * target.cores / cores - 1e-9)), mem_mb)
    if bool((mem_mb > target.mem_mb).any()):
        return None
    at = np.flatnonzero(keep)
    if spans:
        idx = at[wide]
        skipped.append((int(idx[0]), SPANS, len(idx)))
    for first, reason, n in sorted(skipped):
        report.add(reason, block.first_line + first, n)
    if f["id"] is not None:
        ids = np.trunc(f["id"][keep])  # (at most MAX_TASK_ID: the reader sees to it)
    else:  # the line's number, less the header's
        ids = at + (block.first_line - 1)
    wall = f["walltime_s"]
    if opts.walltime and wall is not None:
        wall = np.where(wall[keep] > 0, wall[keep], np.nan)
    else:
        wall = np.full(len(submit), np.nan)
    return MappedBlock(ids.astype(np.int64), (submit - target.origin_s) / opts.load_scale, cores.astype(np.int64),
                       mem_mb.astype(np.int64), work, wall, float(f["arrival_s"][-1]))


def _passes(job: TraceJob, f: dict[str, Any]) -> bool:
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
        if is_number(h.get(key, "")) and float(h[key]) > 0:
            return int(float(h[key]))
    return None


def first_submit(opts: TraceOptions) -> float:
    """The submit time of the first job in the window (0 for an empty trace)."""
    for job in opts.jobs():
        if opts.start_s is None or job.submit_s >= opts.start_s:
            return job.submit_s
    return 0.0


def resolve_after(recorded: RecordedAfter, kept_ids: Iterable[int],
                  report: SkipReport | None = None) -> dict[int, tuple[int, ...]]:
    """The kept jobs' predecessors among the kept jobs (``kept_ids``), by job id.

    A trace's dependencies point back (a job waits only for jobs of earlier lines: the
    readers see to it), so they hold no cycle.  A predecessor left out of the run (cancelled,
    filtered, before the window, never in the trace) cannot be waited for: that dependency
    is dropped and counted in ``report`` (:data:`DROPPED_AFTER`), and the job is released
    as if it did not name it.
    """
    if not recorded:
        return {}
    wanted = {p for named, _ in recorded.values() for p in named}
    present = {i for i in kept_ids if i in wanted}
    out: dict[int, tuple[int, ...]] = {}
    for tid, (named, line) in recorded.items():
        keep = tuple(p for p in dict.fromkeys(named) if p in present)
        if len(keep) < len(set(named)) and report is not None:
            report.add(DROPPED_AFTER, line)
        if keep:
            out[tid] = keep
    return out


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


class TaskColumns:
    """The tasks a trace maps to, as plain values (48 bytes a task), to be made again at will."""

    __slots__ = ("arrival_s", "cores", "ids", "mem_mb", "walltime_s", "work_core_s")

    def __init__(self) -> None:
        self.ids, self.cores, self.mem_mb = array("q"), array("q"), array("q")
        self.arrival_s, self.work_core_s, self.walltime_s = array("d"), array("d"), array("d")

    def extend(self, jobs: Sequence[MappedJob]) -> None:
        """Keep ``jobs``."""
        if not jobs:
            return
        ids, arrival, cores, mem, work, wall = zip(*jobs, strict=True)
        self.ids.extend(ids)
        self.arrival_s.extend(arrival)
        self.cores.extend(cores)
        self.mem_mb.extend(mem)
        self.work_core_s.extend(work)
        self.walltime_s.extend([math.nan if w is None else w for w in wall])

    def extend_block(self, block: MappedBlock) -> None:
        """Keep the jobs of ``block``."""
        self.ids.frombytes(block.ids.tobytes())
        self.arrival_s.frombytes(block.arrival_s.tobytes())
        self.cores.frombytes(block.cores.tobytes())
        self.mem_mb.frombytes(block.mem_mb.tobytes())
        self.work_core_s.frombytes(block.work_core_s.tobytes())
        self.walltime_s.frombytes(block.walltime_s.tobytes())

    def tasks(self, kind: str, tenant: str, width: int,
              after: dict[int, tuple[int, ...]] | None = None) -> Iterator[Task]:
        """The tasks, a job wider than ``width`` cores (the largest node) over nodes, those
        in ``after`` waiting for the jobs it names."""
        waits = after or {}
        for tid, arrival, cores, mem, work, wall in zip(self.ids, self.arrival_s, self.cores, self.mem_mb,
                                                        self.work_core_s, self.walltime_s, strict=True):
            if cores > width:
                yield job_task(tid, arrival, cores, mem, work, None if wall != wall else wall, kind, tenant,
                               width, waits.get(tid, ()))
            else:
                yield Task(tid, arrival, cores, mem, work, kind, None, (), tenant, 0,
                           waits.get(tid, ()) if waits else (), None if wall != wall else wall)


# a bound trace of at most this many tasks keeps them (TaskColumns), so a run need not read it again
KEEP_TASKS = 1_000_000


_BATCH = 8192  # mapped jobs kept at a time


@dataclass(frozen=True)
class Trace(Workload):
    """Jobs of a recorded trace (the random stream is unused).

    Parsing gives an unbound trace; :meth:`bind` maps it onto a cluster's node
    types and reads the file once, streamed, to count the tasks and what was
    skipped (so a bad line is an input error before any run starts).  Up to
    :data:`KEEP_TASKS` tasks it keeps them as plain values and a run takes them
    from there; a longer trace is streamed from the file again by each run.
    """

    options: TraceOptions
    target: Target | None = None
    count: int | None = None
    report: SkipReport | None = field(default=None, compare=False)
    kept: TaskColumns | None = field(default=None, compare=False, repr=False)
    # the tasks that wait for others: job id -> the kept jobs it waits for
    after: dict[int, tuple[int, ...]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def has_dependencies(self) -> bool:
        """Whether a task waits for another (``after``): the run then releases tasks as a
        workflow (:mod:`rpiaas.core.workflow`)."""
        return bool(self.after)

    def bind(self, types: list[tuple[int, int]], total_cores: int) -> Trace:
        """This trace mapped onto node types given as (cores, mem_mb), counted."""
        target = target_for(self.options, types, total_cores)
        report = SkipReport()
        kept: TaskColumns | None = TaskColumns()
        n = 0
        batch: list[MappedJob] = []
        recorded: RecordedAfter = {}
        for item in mapped_blocks(self.options, target, report, recorded):
            n += len(item) if type(item) is MappedBlock else 1
            if kept is None:
                continue
            if n > KEEP_TASKS:  # too many to keep: each run streams them from the file again
                kept = None
            elif type(item) is MappedBlock:
                kept.extend(batch)
                batch.clear()
                kept.extend_block(item)
            else:
                batch.append(cast(MappedJob, item))
                if len(batch) == _BATCH:
                    kept.extend(batch)
                    batch.clear()
        if kept is not None:
            kept.extend(batch)
        after: dict[int, tuple[int, ...]] = {}
        if recorded:  # which of the jobs waited for are in the run (a long trace: read again)
            ids = kept.ids if kept is not None else (job[0] for job in mapped_jobs(self.options, target))
            after = resolve_after(recorded, ids, report)
        return Trace(self.options, target, n, report, kept, after)

    def tasks(self, rng: np.random.Generator) -> Iterator[Task]:
        if self.target is None:
            raise RuntimeError("an unbound trace: Trace.bind() maps it onto a cluster first")
        if self.kept is not None:
            return self.kept.tasks(self.options.kind, self.options.tenant, self.target.cores, self.after)
        return map_jobs(self.options, self.target, after=self.after)

    def max_request(self) -> tuple[float | None, float | None]:
        if self.target is None:
            return None, None
        return self.target.cores, self.target.mem_mb
