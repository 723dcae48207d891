"""Walltime limits: a task still running ``walltime_s`` after its start is killed, as Slurm does.

Off unless the scenario says ``walltime: kill``; then ``walltime_s`` is a limit as well as
the estimate it always is.  :meth:`Walltimes.started` keeps each started task's deadline
(its start plus ``walltime_s``) and the control plane asks the shell for a wake-up then
(``WakeAt``); at every step :meth:`Walltimes.overdue` gives the tasks whose deadline has come
and that still run the same attempt.  A task that ends at its very deadline is not killed:
task ends come before wake-ups in a batch's tie order.
"""

from __future__ import annotations

import heapq

from ..model import Task, TaskState

__all__ = ["WALLTIME_REASON", "Walltimes"]

WALLTIME_REASON = "walltime"  # a killed task's reason

_RUNNING = TaskState.RUNNING


class Walltimes:
    """The deadlines of running tasks that carry a ``walltime_s``, earliest first."""

    def __init__(self) -> None:
        # (deadline, task id, attempt, task): a later attempt (a retry) is a new entry, and the
        # entries of attempts that ended are dropped as they come up
        self._due: list[tuple[float, int, int, Task]] = []

    def started(self, task: Task, now: float) -> float | None:
        """``task`` started at ``now``: its deadline, or None if it has no walltime."""
        w = task.walltime_s
        if w is None:
            return None
        deadline = now + w
        heapq.heappush(self._due, (deadline, task.id, task.attempts, task))
        return deadline

    def overdue(self, now: float) -> list[Task]:
        """The running tasks whose deadline is ``now`` or earlier, by deadline then id."""
        due = self._due
        out: list[Task] = []
        while due and due[0][0] <= now:
            _, _, attempt, task = heapq.heappop(due)
            if task.state is _RUNNING and task.attempts == attempt:
                out.append(task)
        return out

    def pending(self) -> list[float]:
        """The deadlines still to come of tasks that run (a resumed live run sets their timers)."""
        return sorted({d for d, _, attempt, task in self._due
                       if task.state is _RUNNING and task.attempts == attempt})
