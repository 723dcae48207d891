"""The base of every workload: a stream of tasks in arrival order, and the task kinds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..model import Task

__all__ = ["IMAGELESS_KINDS", "KINDS", "Workload"]

# how a task runs live (the agent's workloads); a ``container`` task also names its image
KINDS = ("cpu", "memory", "io", "sleep", "command", "container")
IMAGELESS_KINDS = KINDS[:-1]  # the kinds a workload may give a task without naming an image

class Workload:
    """Base of workloads: a stream of tasks in arrival order.

    Subclasses provide ``count``: the number of tasks when known in advance, else ``None``.
    """

    count: Any

    def tasks(self, rng: np.random.Generator) -> Iterator[Task]:
        raise NotImplementedError

    def max_request(self) -> tuple[float | None, float | None]:
        """Largest cores and mem_mb a task can ask for (``None``: unbounded)."""
        raise NotImplementedError

