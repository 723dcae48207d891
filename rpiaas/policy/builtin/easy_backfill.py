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
    for node in range(len(view)):
        if view.state[node] != _ON:
            continue
        if view.cores[node] < task.cores or view.mem_mb[node] < task.mem_mb:
            continue
        cores = int(view.cores_free[node])
        mem = int(view.mem_free_mb[node])
        at = now
        if cores < task.cores or mem < task.mem_mb:
            at = math.inf
            for t in sorted(view.running(node).values(), key=_BY_END):
                cores += t.cores
                mem += t.mem_mb
                if cores >= task.cores and mem >= task.mem_mb:
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
