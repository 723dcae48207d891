"""Shortest job first: the queue ordered by estimated runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...model import Task
from ..base import SKIP, Policy, Reservation, hookimpl

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "sjf"


def length_s(task: Task) -> float:
    """A task's length for ordering: its walltime if given, else reference-core seconds per core."""
    return task.walltime_s if task.walltime_s is not None else task.work_core_s / task.cores


class ShortestJobFirst(Policy):
    """Serve the shortest task first (by walltime estimate, else work per core).

    With ``skip_blocked`` a task that cannot start lets shorter-ranked ones
    behind it try; without (the default) the order is strict.
    """

    NAME = NAME

    def __init__(self, skip_blocked: bool = False) -> None:
        self.skip_blocked = skip_blocked

    @hookimpl
    def rpiaas_queue_order(self, queue: list[Task], view: ClusterView) -> list[Task]:
        return sorted(queue, key=lambda t: (length_s(t), t.id))

    @hookimpl
    def rpiaas_blocked(
        self, task: Task, view: ClusterView, now: float, reservation: Reservation | None
    ) -> Any:
        return SKIP if self.skip_blocked else None
