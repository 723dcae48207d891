"""First fit: the lowest-indexed node with room."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...model import Task
from ..base import Policy, hookimpl

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "first_fit"


class FirstFit(Policy):
    """Place each task on the lowest-indexed node that has room for it."""

    NAME = NAME

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | None:
        idx = np.flatnonzero(view.fits(task))
        return int(idx[0]) if idx.size else None
