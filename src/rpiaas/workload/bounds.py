"""What a run will cost, checked before it starts: tasks, simulated time, rows of nodes.csv.

A scenario can be valid key by key and still never finish: sampled every
microsecond, a horizon of 10^12 s, one task of 10^12 core-seconds.  These
checks estimate a run's length from its scenario and refuse, with the key to
blame and the limit (:mod:`rpiaas.inputs.limits`), what would pass a limit; the
simulation checks the same limits again as it runs (:func:`check_progress`),
for what no estimate foresees.
"""

from __future__ import annotations

import math

import numpy as np

from ..inputs import limits
from ..inputs.source import KeyPath, LimitError, Source
from ..model import ClusterSpec, job_cores
from . import Distribution, Generator, TaskList, Workload

__all__ = ["check_progress", "check_scenario_bounds"]


def _mean(dist: Distribution) -> float:
    """A distribution's mean, estimated from a fixed sample (no analytic case per kind): inf
    only when a draw is (the sample is scaled by its largest value first, so finite draws
    near the largest double do not overflow their sum)."""
    sample = dist.draw(np.random.default_rng(0), 4096)
    top = float(np.max(np.abs(sample)))
    if top == 0 or not math.isfinite(top):
        return top
    return top * float(np.mean(sample / top))


def check_scenario_bounds(src: Source, cluster: ClusterSpec, workload: Workload,
                          horizon_s: float | None, sample_s: float) -> None:
    """Refuse a scenario whose run would pass a limit (tasks, simulated time, nodes.csv rows).

    Faults do not make the estimate longer: a run ends when its work is done, and a fault
    after that end is not applied but noted (``run.json`` ``notes``), so a late fault never
    trips a limit of the run's length.
    """
    max_time = limits.SIM_TIME_S.value()
    max_tasks = limits.TASKS.value()
    max_rows = limits.SAMPLE_ROWS.value()
    nodes = len(cluster.nodes)
    if horizon_s is not None and horizon_s > max_time:
        src.fail(("horizon_s",), f"{horizon_s:g} s is beyond the longest simulated time "
                                 f"({limits.SIM_TIME_S.hint()})", LimitError)
    count = workload.count
    gen: KeyPath = ("workload", "generator")
    if count is not None and count > max_tasks:
        src.fail((*gen, "count") if isinstance(workload, Generator) else ("workload",),
                 f"{count:,} tasks is more than a run takes ({limits.TASKS.hint()})", LimitError)
    # the run's length: the horizon, or a lower estimate of when the work is done
    duration = horizon_s
    blame: KeyPath = ("horizon_s",)
    # an estimate from finite figures that overflows is a run that never ends (an estimate from
    # a distribution without a finite mean is no estimate)
    overflows = False
    if isinstance(workload, Generator):
        gap = _mean(workload.interarrival_s)
        if count is None and horizon_s is not None and gap > 0 and horizon_s / gap > max_tasks:
            src.fail(("horizon_s",), f"an endless generator brings about {horizon_s / gap:,.0f} "
                                     f"tasks in {horizon_s:g} s ({limits.TASKS.hint()})", LimitError)
        if horizon_s is None and count is not None:
            fastest = max(n.type.cores * n.type.speed for n in cluster.nodes)
            work = _mean(workload.work_core_s)
            duration = workload.start_s + count * gap + work / fastest
            blame = (*gen, "work_core_s")
            overflows = math.isfinite(gap) and math.isfinite(work)
    elif isinstance(workload, TaskList) and horizon_s is None and workload.items:
        # every task runs at least its work on the cores it asks for (all its parts', for a
        # parallel job) of the fastest node type
        quickest = max((n.type for n in cluster.nodes), key=lambda t: t.speed)
        ends = [t.arrival_s + quickest.work_s(t.work_core_s, job_cores(t)) for t in workload.items]
        last = int(np.argmax(ends))
        duration = ends[last]
        task = workload.items[last]
        # the arrival or the work, whichever makes the most of its end
        key = "arrival_s" if task.arrival_s >= duration - task.arrival_s else "work_core_s"
        blame = ("workload", "tasks", workload.positions.get(task.id, last), key)
        overflows = True
    if duration is not None and math.isinf(duration) and overflows:
        src.fail(blame, "the run would last longer than any number of simulated seconds (its work "
                        f"over the node types' speed overflows a double; {limits.SIM_TIME_S.hint()})",
                 LimitError)
    if duration is None or not math.isfinite(duration):
        return
    if duration > max_time:
        src.fail(blame, f"the run would last at least {duration:g} simulated seconds "
                        f"({limits.SIM_TIME_S.hint()})", LimitError)
    rows = (duration / sample_s + 2) * nodes
    if rows > max_rows:
        src.fail(("sample_interval_s",) if sample_s < 1 or blame == ("horizon_s",) else blame,
                 f"sampling {nodes:,} nodes every {sample_s:g} s for {duration:g} s writes "
                 f"about {rows:,.0f} rows of nodes.csv ({limits.SAMPLE_ROWS.hint()}); "
                 f"sample less often or shorten the run", LimitError)


def check_progress(file: str | None, now_s: float, rows: int) -> None:
    """Stop a run that passes a limit no estimate foresaw (called at every node sample)."""
    max_rows = limits.SAMPLE_ROWS.value()
    max_time = limits.SIM_TIME_S.value()
    if rows > max_rows:
        raise LimitError(f"the run wrote {rows:,} rows of nodes.csv by simulated time {now_s:g} s "
                         f"and is not done ({limits.SAMPLE_ROWS.hint()}); sample less often or "
                         f"set horizon_s", file, None, "sample_interval_s")
    if now_s > max_time:
        raise LimitError(f"the run reached simulated time {now_s:g} s and is not done "
                         f"({limits.SIM_TIME_S.hint()}); set horizon_s", file, None, "horizon_s")
