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
        mem_free = view.mem_free_mb
        index = view.free_index
        for free in range(index.max_cores, task.cores - 1, -1):
            for node in index.bucket(free):
                if mem_free[node] >= task.mem_mb:
                    return node
        return None
