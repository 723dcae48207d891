"""EASY backfilling: FCFS with a reservation for the head, later tasks fill the gaps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...model import Task
from ..base import SKIP, Policy, Reservation, hookimpl

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "easy_backfill"


def earliest_start(task: Task, view: ClusterView, now: float) -> Reservation | None:
    """The node and time where ``task`` could start first, from running tasks' estimated ends.

    Only nodes that are on count.  Ties go to the lowest index.  ``None`` when
    no node that is on could ever hold the task.  A parallel job gets
    :func:`earliest_job_start`'s reservation.
    """
    if task.nodes != 1:
        return earliest_job_start(task, view, now)
    ready = view.room_times(task, now)
    return None if ready is None else Reservation(ready[0][1], ready[0][0])


def earliest_job_start(task: Task, view: ClusterView, now: float) -> Reservation | None:
    """For a parallel job: the earliest time ``task.nodes`` nodes have room for a part (the
    shadow time) and every node that has room by then (by that time, then index); the job
    needs ``task.nodes`` of them, the rest are EASY's extra nodes, which a later task may
    take even if it ends after the shadow time.  ``None`` when fewer nodes that are on could
    ever hold a part."""
    ready = view.room_times(task, now, task.nodes)
    if ready is None:
        return None
    nodes = tuple([node for _, node in ready])
    return Reservation(nodes[0], ready[-1][0], nodes)


class EasyBackfill(Policy):
    """EASY backfilling: the head task gets a reservation; later tasks start only if they do not delay it.

    Runtime estimates are the tasks' ``walltime_s`` where given, else their
    exact runtime on the node (perfect estimates).  Combine it with any
    placement policy.
    """

    NAME = NAME
    skips_when_reserved = True  # rpiaas_blocked answers SKIP whenever a reservation is held
    reads_arrays = False  # its reservation comes from view.room_times (the ledger), no array

    @hookimpl
    def rpiaas_blocked(
        self, task: Task, view: ClusterView, now: float, reservation: Reservation | None
    ) -> Any:
        if reservation is not None:
            return SKIP
        return earliest_start(task, view, now)
