"""Jobs to tasks: a trace's jobs mapped onto the scenario's node types, and the trace workload.

Processors become cores, memory and run time become ``mem_mb`` and
``work_core_s``; a job wider than the largest node is clipped or skipped.
Everything left out is counted by reason in a :class:`SkipReport`.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...inputs.source import InputError
from ...model import Task
from ..base import Workload
from .jobs import SkipReport, TraceJob, is_number
from .options import TraceOptions
from .swf import CANCELLED, swf_header

__all__ = ["KEEP_TASKS", "Target", "TaskColumns", "Trace", "first_submit", "map_jobs", "target_for"]


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
        if is_number(h.get(key, "")) and float(h[key]) > 0:
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


class TaskColumns:
    """The tasks a trace maps to, as plain values (48 bytes a task), to be made again at will."""

    __slots__ = ("arrival_s", "cores", "ids", "mem_mb", "walltime_s", "work_core_s")

    def __init__(self) -> None:
        self.ids, self.cores, self.mem_mb = array("q"), array("q"), array("q")
        self.arrival_s, self.work_core_s, self.walltime_s = array("d"), array("d"), array("d")

    def add(self, task: Task) -> None:
        self.ids.append(task.id)
        self.arrival_s.append(task.arrival_s)
        self.cores.append(task.cores)
        self.mem_mb.append(task.mem_mb)
        self.work_core_s.append(task.work_core_s)
        self.walltime_s.append(math.nan if task.walltime_s is None else task.walltime_s)

    def tasks(self, kind: str, tenant: str) -> Iterator[Task]:
        for tid, arrival, cores, mem, work, wall in zip(self.ids, self.arrival_s, self.cores, self.mem_mb,
                                                        self.work_core_s, self.walltime_s, strict=True):
            yield Task(tid, arrival, cores, mem, work, kind, tenant, 0, None if wall != wall else wall)


# a bound trace of at most this many tasks keeps them (TaskColumns), so a run need not read it again
KEEP_TASKS = 1_000_000


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

    def bind(self, types: list[tuple[int, int]], total_cores: int) -> Trace:
        """This trace mapped onto node types given as (cores, mem_mb), counted."""
        target = target_for(self.options, types, total_cores)
        report = SkipReport()
        kept: TaskColumns | None = TaskColumns()
        n = 0
        for task in map_jobs(self.options, target, report):
            n += 1
            if kept is not None:
                try:
                    if n > KEEP_TASKS:
                        raise OverflowError
                    kept.add(task)
                except OverflowError:  # too many to keep (or an id beyond 64 bits): streamed
                    kept = None
        return Trace(self.options, target, n, report, kept)

    def tasks(self, rng: np.random.Generator) -> Iterator[Task]:
        if self.target is None:
            raise RuntimeError("an unbound trace: Trace.bind() maps it onto a cluster first")
        if self.kept is not None:
            return self.kept.tasks(self.options.kind, self.options.tenant)
        return map_jobs(self.options, self.target)

    def max_request(self) -> tuple[float | None, float | None]:
        if self.target is None:
            return None, None
        return self.target.cores, self.target.mem_mb
