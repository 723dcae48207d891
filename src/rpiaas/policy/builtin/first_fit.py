"""First fit: the lowest-indexed node with room."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...model import Task
from ..base import Policy, hookimpl, job_nodes

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "first_fit"


class FirstFit(Policy):
    """Place each task on the lowest-indexed node that has room for it."""

    NAME = NAME

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | list[int] | None:
        idx = np.flatnonzero(view.fits(task))
        if task.nodes != 1:  # a parallel job: the lowest-indexed nodes with room for a part
            return job_nodes(task, idx)
        return int(idx[0]) if idx.size else None
