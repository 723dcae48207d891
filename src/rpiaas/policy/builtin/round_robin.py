"""Round robin: take turns over the nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...model import Task
from ..base import Policy, hookimpl, job_nodes

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "round_robin"


class RoundRobin(Policy):
    """Place each task on the next node after the last one used that has room."""

    NAME = NAME

    def __init__(self) -> None:
        self._last = -1

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | list[int] | None:
        fits = view.fits(task)
        n = len(fits)
        order = (np.arange(n) + self._last + 1) % n
        hits = np.flatnonzero(fits[order])
        if not hits.size:
            return None
        if task.nodes != 1:  # a parallel job: the next nodes with room, in turn
            nodes = job_nodes(task, order[hits])
            if nodes is not None:
                self._last = nodes[-1]
            return nodes
        self._last = int(order[hits[0]])
        return self._last
