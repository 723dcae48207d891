"""Random: a node with room, drawn from the run's seeded generator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...model import Task
from ..base import Policy, hookimpl, job_nodes

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "random"


class RandomFit(Policy):
    """Place each task on a node with room drawn uniformly at random (seeded)."""

    NAME = NAME

    def __init__(self, rng: np.random.Generator | None = None) -> None:
        self._rng = rng if rng is not None else np.random.default_rng(0)

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | list[int] | None:
        idx = np.flatnonzero(view.fits(task))
        if not idx.size:
            return None
        if task.nodes != 1:  # a parallel job: distinct nodes with room, drawn at random
            if idx.size < task.nodes:
                return None
            return job_nodes(task, idx[self._rng.choice(idx.size, task.nodes, replace=False)])
        return int(idx[self._rng.integers(idx.size)])
