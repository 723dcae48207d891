"""Worst fit: the node the task leaves the most free cores on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...model import Task
from ..base import Policy, hookimpl, job_nodes

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "worst_fit"


class WorstFit(Policy):
    """Place each task on the node it leaves with the most room (most free cores, then most memory)."""

    NAME = NAME
    index_rule = "loosest"  # rpiaas_place is exactly this search of view.free_index

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | list[int] | None:
        if task.nodes != 1:  # a parallel job: the nodes left with the most room, then by index
            idx = np.flatnonzero(view.fits(task))
            order = np.lexsort((idx, -view.mem_free_mb[idx], -view.cores_free[idx]))
            return job_nodes(task, idx[order])
        return view.free_index.loosest(task.cores, task.mem_mb)
