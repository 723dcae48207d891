"""Best fit: the node the task leaves the fewest free cores on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...model import Task
from ..base import Policy, hookimpl

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "best_fit"


def tightest(task: Task, view: ClusterView) -> int | None:
    """The on node with room for ``task`` and the fewest free cores left after it.

    Among those, the one left with the least free memory, then the one that
    has been at that level longest.  Logarithmic in the cluster size, through ``view.free_index``.
    """
    return view.free_index.tightest(task.cores, task.mem_mb)


class BestFit(Policy):
    """Place each task on the node it leaves with the least room (fewest free cores, then least memory)."""

    NAME = NAME
    index_rule = "tightest"  # rpiaas_place is exactly this search of view.free_index

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | None:
        return tightest(task, view)
