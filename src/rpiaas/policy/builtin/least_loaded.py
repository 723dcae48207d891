"""Least loaded: the node with the lowest CPU utilisation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ...model import Task
from ..base import Policy, hookimpl

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "least_loaded"


class LeastLoaded(Policy):
    """Place each task on the node with the lowest utilisation (modelled or measured)."""

    NAME = NAME

    @hookimpl
    def rpiaas_score(self, task: Task, view: ClusterView) -> npt.NDArray[np.float64]:
        # utilisation first; the share of free cores breaks ties between idle nodes
        return -view.utilization + 1e-6 * (view.cores_free / view.cores)
