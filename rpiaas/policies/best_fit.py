"""Best fit: the node the task leaves the fewest free cores on."""

from __future__ import annotations

from ..model import Task
from ..policy import Policy, hookimpl
from ..view import ClusterView

NAME = "best_fit"


def tightest(task: Task, view: ClusterView) -> int | None:
    """The on node with room for ``task`` and the fewest free cores left after it.

    Among nodes left with equally many free cores, the one that has had that
    many free cores longest wins.  Runs in time independent of the cluster
    size, through ``view.free_index``.
    """
    index = view.free_index
    need = task.mem_mb
    for free in range(task.cores, index.max_cores + 1):
        for node, mem in index.items(free):
            if mem >= need:
                return node
    return None


class BestFit(Policy):
    """Place each task on the node it leaves with the least room (fewest free cores)."""

    NAME = NAME

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | None:
        return tightest(task, view)
