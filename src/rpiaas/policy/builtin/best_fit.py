"""Best fit: the node the task leaves the fewest free cores on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...model import Task
from ..base import Policy, hookimpl, job_nodes

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "best_fit"


def tightest(task: Task, view: ClusterView) -> int | None:
    """The on node with room for ``task`` and the fewest free cores left after it.

    Among those, the one left with the least free memory, then the one that
    has been at that level longest.  Logarithmic in the cluster size, through ``view.free_index``.
    """
    return view.free_index.tightest(task.cores, task.mem_mb)


def tightest_nodes(task: Task, view: ClusterView) -> list[int] | None:
    """A parallel job's nodes by best fit: those with room for a part left with the fewest free
    cores, then the least free memory, then the lowest index."""
    idx = np.flatnonzero(view.fits(task))
    order = np.lexsort((idx, view.mem_free_mb[idx], view.cores_free[idx]))
    return job_nodes(task, idx[order])


class BestFit(Policy):
    """Place each task on the node it leaves with the least room (fewest free cores, then least memory)."""

    NAME = NAME
    index_rule = "tightest"  # rpiaas_place is exactly this search of view.free_index

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | list[int] | None:
        if task.nodes != 1:
            return tightest_nodes(task, view)
        return tightest(task, view)
