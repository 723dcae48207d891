"""Dependencies between tasks: the control plane's release of workflow tasks.

A task with ``after: [ids]`` is held when it arrives until every task it names
has completed; it is then released, at the later of its arrival and its last
predecessor's end, into the queue, where the policy meets it as an arrival.
A predecessor that ends in any other way (failed after its retries,
rejected, killed, itself cancelled) dooms its descendants: with
``on_failure: cancel`` they are rejected (never queued), with ``fail`` they
end failed; either way their ``reason`` names the predecessor.

This is the one home of the rule: both shells drive the control plane, so a
live run releases its tasks exactly as the simulation does.  The tracker also
gathers the workflow's figures for the run's summary (:meth:`Dependencies.figures`).
"""

from __future__ import annotations

import math
from typing import Any

from ..model import Task, TaskState
from ..workload.workflow import WorkflowOptions, critical_path_s, reference_runtime_s

__all__ = ["Dependencies"]

_COMPLETED = TaskState.COMPLETED


class Dependencies:
    """Which tasks wait for which, and what the control plane must do about it now.

    The control plane tells it of every arrival (:meth:`arrived`) and every task
    that reaches a final state (:meth:`ended`); it answers with the tasks to
    queue (:attr:`ready`) and those to cancel or fail (:attr:`doomed`, with the
    predecessor to blame), which the control plane takes in the same step.
    """

    def __init__(self, options: WorkflowOptions) -> None:
        self.on_failure = options.on_failure
        self._final: dict[int, TaskState] = {}  # every task that reached a final state
        self._seen: dict[int, Task] = {}  # every task that arrived
        self._unmet: dict[int, int] = {}  # held task -> predecessors still to complete
        self._waiters: dict[int, list[Task]] = {}  # predecessor -> held tasks that wait for it
        self._released: dict[int, float] = {}  # task -> when it was queued
        self.ready: list[Task] = []
        self.doomed: list[tuple[Task, int]] = []

    @property
    def pending(self) -> bool:
        """Whether tasks wait to be queued, cancelled or failed in this step."""
        return bool(self.ready or self.doomed)

    def held(self) -> list[Task]:
        """The tasks that arrived and wait for predecessors, in arrival order."""
        return [t for t in self._seen.values() if t.id in self._unmet]

    def arrived(self, task: Task, now: float) -> bool:
        """``task`` arrived (and was admitted) at ``now``: whether it may be queued at once.
        If not, it is held, or doomed at once when a predecessor already did not complete."""
        self._seen[task.id] = task
        unmet = 0
        for p in dict.fromkeys(task.after):  # (a predecessor named twice counts once)
            state = self._final.get(p)
            if state is None:
                unmet += 1
                self._waiters.setdefault(p, []).append(task)
            elif state is not _COMPLETED:
                self._forget(task)
                self.doomed.append((task, p))
                return False
        if unmet:
            self._unmet[task.id] = unmet
            return False
        self._released[task.id] = now
        return True

    def released(self, task: Task, now: float) -> None:
        """``task``, held until now, was queued at ``now``."""
        self._released[task.id] = now

    def ended(self, task: Task) -> None:
        """``task`` reached a final state: release or doom what waits for it."""
        self._final[task.id] = task.state
        waiters = self._waiters.pop(task.id, None)
        if not waiters:
            return
        ok = task.state is _COMPLETED
        for w in waiters:
            if w.id not in self._unmet:
                continue  # doomed already by another predecessor
            if ok:
                self._unmet[w.id] -= 1
                if self._unmet[w.id] == 0:
                    del self._unmet[w.id]
                    self.ready.append(w)
            else:
                self._forget(w)
                self.doomed.append((w, task.id))

    def _forget(self, task: Task) -> None:
        """``task`` waits for nothing any more (it is doomed)."""
        self._unmet.pop(task.id, None)
        for p in task.after:
            waiters = self._waiters.get(p)
            if waiters is not None and task in waiters:
                waiters.remove(task)

    def reason(self, task: Task, predecessor: int) -> str:
        """Why ``task`` is cancelled or failed: its predecessor's end."""
        state = self._final.get(predecessor)
        how = state.value if state is not None else "did not complete"
        return f"predecessor {predecessor} {how}"

    def figures(self) -> dict[str, Any]:
        """The workflow's figures for the run's summary: its tasks (those with predecessors or
        named as one), makespan (first release to last end of those that ran) and critical path
        (modelled: the longest chain of their runtimes on reference cores)."""
        members = {t.id for t in self._seen.values() if t.after}
        for t in list(self._seen.values()):
            members.update(p for p in t.after if p in self._seen)
        first = min((self._released[i] for i in members if i in self._released), default=math.inf)
        last = max((self._seen[i].end_s for i in members
                    if self._seen[i].start_s >= 0 and self._seen[i].state is not TaskState.RUNNING),
                   default=-math.inf)
        runtime = {i: reference_runtime_s(self._seen[i]) for i in members}
        after = {i: self._seen[i].after for i in members}
        return {
            "workflow_tasks": len(members),
            "workflow_makespan_s": last - first if last >= first else None,
            "critical_path_s": critical_path_s(runtime, after),
            "critical_path_source": "modelled (reference core, speed 1.0)",
        }

