"""What the block tests of both trace formats compare: a trace mapped line by line and in blocks,
and a bound trace's kept tasks against the tasks a run streams from the file."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rpiaas.inputs.source import InputError
from rpiaas.workload.traces.jobs import SkipReport
from rpiaas.workload.traces.mapping import MappedBlock, Target, Trace, mapped_blocks, mapped_jobs
from rpiaas.workload.traces.options import TraceOptions


def _outcome(rows: Any, report: SkipReport) -> Any:
    try:
        jobs = []
        for item in rows():
            if type(item) is MappedBlock:
                for tid, a, c, m, w, wall in zip(item.ids.tolist(), item.arrival_s.tolist(), item.cores.tolist(),
                                                 item.mem_mb.tolist(), item.work_core_s.tolist(),
                                                 item.walltime_s.tolist(), strict=True):
                    jobs.append((tid, a, c, m, w, None if math.isnan(wall) else wall))
            else:
                jobs.append(item)
    except InputError as e:
        return "error", str(e)
    # repr: the same doubles, to the sign of a zero
    return repr(jobs), dict(report.counts), report.first_line, report.read, report.kept


def by_lines_and_by_blocks(opts: TraceOptions, target: Target) -> tuple[Any, Any]:
    """What mapping ``opts``'s trace gives line by line and in blocks: the jobs (or the error),
    the report's counts and first lines, the jobs read and kept."""
    by_line, by_block = SkipReport(), SkipReport()
    return (_outcome(lambda: mapped_jobs(opts, target, by_line), by_line),
            _outcome(lambda: mapped_blocks(opts, target, by_block), by_block))


def assert_kept_as_streamed(options: dict[str, Any]) -> None:
    """A trace bound onto 4-core nodes keeps the tasks a run would stream from the file."""
    trace = Trace(TraceOptions(**options)).bind([(4, 4096)], 16)
    assert trace.kept is not None
    kept = list(trace.kept.tasks("cpu", "", 4))
    streamed = list(Trace(trace.options, trace.target, trace.count).tasks(np.random.default_rng(0)))
    assert [(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s, t.walltime_s, t.nodes, t.parts) for t in kept] == \
        [(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s, t.walltime_s, t.nodes, t.parts) for t in streamed]
    assert trace.count == len(kept)


def random_options(rng: np.random.Generator, origin_s: float, wide_jobs: list[str]) -> dict[str, Any]:
    """Random ``trace:`` options for a trace whose first job is submitted at ``origin_s``: a time
    window, a job limit, load and work scales, skipping, wide jobs (one of ``wide_jobs``)."""
    return {"start_s": origin_s + float(rng.choice([0.0, 30.0])) if rng.random() < 0.3 else None,
            "end_s": origin_s + float(rng.uniform(50, 400)) if rng.random() < 0.3 else None,
            "max_jobs": int(rng.integers(1, 100)) if rng.random() < 0.2 else None,
            "load_scale": float(rng.choice([1.0, 2.5])), "skip_bad_lines": bool(rng.random() < 0.6),
            "skip_cancelled": bool(rng.random() < 0.8), "wide_jobs": str(rng.choice(wide_jobs)),
            "mem_mb_per_core": float(rng.choice([256.0, 700.0])), "work_scale": float(rng.choice([1.0, 0.7])),
            "walltime": bool(rng.random() < 0.7)}
