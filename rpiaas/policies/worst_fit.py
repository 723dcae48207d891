"""Worst fit: the node the task leaves the most free cores on."""

from __future__ import annotations

from ..model import Task
from ..policy import Policy, hookimpl
from ..view import ClusterView

NAME = "worst_fit"


class WorstFit(Policy):
    """Place each task on the node it leaves with the most room (most free cores)."""

    NAME = NAME

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | None:
        index = view.free_index
        need = task.mem_mb
        for free in range(index.max_cores, task.cores - 1, -1):
            for node, mem in index.items(free):
                if mem >= need:
                    return node
        return None
