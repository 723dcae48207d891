"""EASY backfilling: FCFS with a reservation for the head, later tasks fill the gaps."""

from __future__ import annotations

import math
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from ...model import PowerState, Task
from ..base import SKIP, Policy, Reservation, hookimpl

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "easy_backfill"
_ON = int(PowerState.ON)
_BY_END = attrgetter("est_end_s", "id")


def earliest_start(task: Task, view: ClusterView, now: float) -> Reservation | None:
    """The node and time where ``task`` could start first, from running tasks' estimated ends.

    Only nodes that are on count.  Ties go to the lowest index.  ``None`` when
    no node that is on could ever hold the task.
    """
    if task.nodes != 1:
        return earliest_job_start(task, view, now)
    best: Reservation | None = None
    need_cores, need_mem = task.cores, task.mem_mb
    # the view's arrays as plain lists: one conversion each, then Python scalars
    state, cores_all, mem_all = view.state.tolist(), view.cores.tolist(), view.mem_mb.tolist()
    cores_free, mem_free = view.cores_free.tolist(), view.mem_free_mb.tolist()
    for node, st in enumerate(state):
        if st != _ON or cores_all[node] < need_cores or mem_all[node] < need_mem:
            continue
        cores, mem = cores_free[node], mem_free[node]
        at = (now if cores >= need_cores and mem >= need_mem
              else _freed_at(task, view, node, now, cores, mem))
        if best is None or at < best.start_s:
            best = Reservation(node, at)
    return best


def earliest_job_start(task: Task, view: ClusterView, now: float) -> Reservation | None:
    """For a parallel job: the earliest time ``task.nodes`` nodes have room for a part (the
    shadow time) and every node that has room by then (by that time, then index); the job
    needs ``task.nodes`` of them, the rest are EASY's extra nodes, which a later task may
    take even if it ends after the shadow time.  ``None`` when fewer nodes that are on could
    ever hold a part."""
    c, m, k = task.cores, task.mem_mb, task.nodes
    able = np.flatnonzero((view.state == _ON) & (view.cores >= c) & (view.mem_mb >= m))
    if able.size < k:
        return None
    ready: list[tuple[float, int]] = []
    for node, cores, mem in zip(able.tolist(), view.cores_free[able].tolist(),
                                view.mem_free_mb[able].tolist(), strict=True):
        ready.append((now if cores >= c and mem >= m else _freed_at(task, view, node, now, cores, mem), node))
    ready.sort()
    shadow = ready[k - 1][0]
    nodes = tuple(node for at, node in ready if at <= shadow)
    return Reservation(nodes[0], shadow, nodes)


def _freed_at(task: Task, view: ClusterView, node: int, now: float, cores: int, mem: int) -> float:
    """When ``node``, with ``cores`` and ``mem`` free now, has room for ``task`` (a part of it,
    for a job) as its running tasks end by their estimates; ``inf`` if never."""
    running = view.running(node)
    if len(running) == 1:  # the common case of a node that holds one task (or one part): its end
        (t,) = running.values()
        cores += t.parts[t.placed.index(node)] if t.parts else t.cores
        return max(now, t.est_end_s) if cores >= task.cores and mem + t.mem_mb >= task.mem_mb else math.inf
    for t in sorted(running.values(), key=_BY_END):
        cores += t.parts[t.placed.index(node)] if t.parts else t.cores
        mem += t.mem_mb
        if cores >= task.cores and mem >= task.mem_mb:
            return max(now, t.est_end_s)
    return math.inf


class EasyBackfill(Policy):
    """EASY backfilling: the head task gets a reservation; later tasks start only if they do not delay it.

    Runtime estimates are the tasks' ``walltime_s`` where given, else their
    exact runtime on the node (perfect estimates).  Combine it with any
    placement policy.
    """

    NAME = NAME
    skips_when_reserved = True  # rpiaas_blocked answers SKIP whenever a reservation is held

    @hookimpl
    def rpiaas_blocked(
        self, task: Task, view: ClusterView, now: float, reservation: Reservation | None
    ) -> Any:
        if reservation is not None:
            return SKIP
        return earliest_start(task, view, now)
