"""Image locality: the node that already holds most of a container task's image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ...model import Task
from ..base import Policy, hookimpl

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "image_locality"


class ImageLocality(Policy):
    """Place each task on the node holding the largest share of its image (fewest MB to pull),
    then by best fit (fewest free cores left); a task without an image by best fit alone."""

    NAME = NAME

    @hookimpl
    def rpiaas_score(self, task: Task, view: ClusterView) -> npt.NDArray[np.float64]:
        # the share held counts whole (0 to 1); the free share of cores left after the task
        # (below 1, scaled to 1e-3) only breaks ties between nodes holding the same share
        left = (view.cores_free - task.cores) / view.cores
        return view.image_share(task) - 1e-3 * left
