"""EASY backfilling: FCFS with a reservation for the head, later tasks fill the gaps."""

from __future__ import annotations

import math
from operator import attrgetter
from typing import TYPE_CHECKING, Any

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
    best: Reservation | None = None
    need_cores, need_mem = task.cores, task.mem_mb
    # the view's arrays as plain lists: one conversion each, then Python scalars
    state, cores_all, mem_all = view.state.tolist(), view.cores.tolist(), view.mem_mb.tolist()
    cores_free, mem_free = view.cores_free.tolist(), view.mem_free_mb.tolist()
    for node, st in enumerate(state):
        if st != _ON or cores_all[node] < need_cores or mem_all[node] < need_mem:
            continue
        cores = cores_free[node]
        mem = mem_free[node]
        at = now
        if cores < need_cores or mem < need_mem:
            at = math.inf
            for t in sorted(view.running(node).values(), key=_BY_END):
                cores += t.cores
                mem += t.mem_mb
                if cores >= need_cores and mem >= need_mem:
                    at = max(now, t.est_end_s)
                    break
        if best is None or at < best.start_s:
            best = Reservation(node, at)
    return best


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
