"""EASY backfilling: FCFS with a reservation for the head, later tasks fill the gaps."""

from __future__ import annotations

import math
from collections.abc import Iterable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ...model import PowerState, Task, part_cores
from ..base import SKIP, Policy, Reservation, hookimpl

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "easy_backfill"
_ON = int(PowerState.ON)
_BY_END = attrgetter("est_end_s", "id")


def earliest_start(task: Task, view: ClusterView, now: float) -> Reservation | None:
    """The node and time where ``task`` could start first, from running tasks' estimated ends.

    Only nodes that are on count.  Ties go to the lowest index.  ``None`` when
    no node that is on could ever hold the task.  A parallel job gets
    :func:`earliest_job_start`'s reservation.
    """
    if task.nodes != 1:
        return earliest_job_start(task, view, now)
    ready = _ready(task, view, now, 1)
    return None if ready is None else Reservation(ready[0][1], ready[0][0])


def earliest_job_start(task: Task, view: ClusterView, now: float) -> Reservation | None:
    """For a parallel job: the earliest time ``task.nodes`` nodes have room for a part (the
    shadow time) and every node that has room by then (by that time, then index); the job
    needs ``task.nodes`` of them, the rest are EASY's extra nodes, which a later task may
    take even if it ends after the shadow time.  ``None`` when fewer nodes that are on could
    ever hold a part."""
    ready = _ready(task, view, now, task.nodes)
    if ready is None:
        return None
    nodes = tuple(node for _, node in ready)
    return Reservation(nodes[0], ready[-1][0], nodes)


def _ready(task: Task, view: ClusterView, now: float, k: int) -> list[tuple[float, int]] | None:
    """When the nodes that are on come to have room for ``task`` (a part of it, for a job), as
    their running tasks end by their estimates (one that overran: now), until ``k`` of them
    have: every node with room by the ``k``-th one's time, as (time, node) by time then index,
    ``inf`` for nodes that never have room when fewer than ``k`` ever do.  ``None`` when fewer
    than ``k`` nodes that are on could ever hold it.

    One walk over the running tasks by estimated end (then id), adding what each frees to its
    nodes, stops at the ``k``-th node with room: what a node frees, task by task in that order,
    is what it frees in its own tasks' order, and no node's list is read twice."""
    c, m = task.cores, task.mem_mb
    # the view's arrays as plain lists: one conversion each, then Python scalars
    state, cores_all, mem_all = view.state.tolist(), view.cores.tolist(), view.mem_mb.tolist()
    cf, mf = view.cores_free.tolist(), view.mem_free_mb.tolist()
    ready: list[tuple[float, int]] = []
    waiting = [False] * len(state)  # nodes that can hold it once enough of theirs ends
    able = 0
    for node, st in enumerate(state):
        if st != _ON or cores_all[node] < c or mem_all[node] < m:
            continue
        able += 1
        if cf[node] >= c and mf[node] >= m:
            ready.append((now, node))
        else:
            waiting[node] = True
    if able < k:
        return None
    if len(ready) >= k:
        return ready
    shadow = math.inf
    for t in sorted(view.running_tasks().values(), key=_BY_END):
        end = t.est_end_s
        if end > shadow:
            break
        at = now if end < now else end
        if t.nodes == 1:  # (most tasks) on one node: no parts to pair with their nodes
            if not waiting[t.node]:
                continue
            parts: Iterable[tuple[int, int]] = ((t.node, t.cores),)
        else:
            parts = zip(t.placed, part_cores(t), strict=True)
        for node, cores in parts:
            if not waiting[node]:
                continue
            cf[node] += cores
            mf[node] += t.mem_mb
            if cf[node] >= c and mf[node] >= m:
                waiting[node] = False
                ready.append((at, node))
                if len(ready) == k:
                    shadow = at
    if len(ready) < k:  # never k nodes: the rest wait for ever
        ready.extend((math.inf, node) for node, w in enumerate(waiting) if w)
    ready.sort()
    return ready


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
