"""Workflows: tasks that wait for other tasks (``after: [ids]``), checked as a graph.

A task's ``after`` names the tasks it waits for (its predecessors).  An input
workload is checked here before any run: every predecessor exists, no task
waits for itself, and the graph has no cycle; each refusal names the file,
line and key of the ``after`` entry at fault.  :func:`critical_path_s` is the
one home of the critical-path rule (the run's summary asks it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..inputs.source import KeyPath, Source
from ..model import PROFILES, Task

__all__ = [
    "ON_FAILURE",
    "WORKFLOW_KEYS",
    "WorkflowOptions",
    "check_graph",
    "critical_path_s",
    "parse_workflow_options",
    "reference_runtime_s",
]

# what becomes of the descendants of a predecessor that did not complete
ON_FAILURE = ("cancel", "fail")
WORKFLOW_KEYS = ("on_failure",)

# the reference core (speed 1.0, no start overhead): a task's modelled runtime for the critical path
_REFERENCE = PROFILES["rpi4b"]


@dataclass(frozen=True)
class WorkflowOptions:
    """The scenario's ``workflow:`` keys: what becomes of the descendants of a task that did
    not complete (``cancel``: they are rejected, never queued; ``fail``: they end failed)."""

    on_failure: str = "cancel"


def parse_workflow_options(src: Source, path: KeyPath, data: object) -> WorkflowOptions:
    """The ``workflow`` mapping of a scenario: ``{on_failure: cancel | fail}``."""
    m = src.mapping(path, data, WORKFLOW_KEYS)
    return WorkflowOptions(src.choice((*path, "on_failure"), m.get("on_failure", "cancel"), ON_FAILURE))


def reference_runtime_s(task: Task) -> float:
    """How long ``task`` runs on reference cores (speed 1.0, no start overhead): the
    critical path's measure of a task."""
    return _REFERENCE.work_s(task.work_core_s, task.cores)


def check_graph(src: Source, tasks: Sequence[Task], where: Callable[[Task, int], KeyPath]) -> None:
    """Refuse a workload whose ``after`` names an unknown task or itself, or closes a cycle.

    :param where: the key path of ``task.after[j]`` in the input, for the error.
    """
    ids = {t.id: t for t in tasks}
    for t in tasks:
        for j, p in enumerate(t.after):
            if p == t.id:
                src.fail(where(t, j), f"task {t.id} waits for itself")
            if p not in ids:
                src.fail(where(t, j), f"task {t.id} waits for task {p}, which the workload does not have")
    # Kahn's order: what is left over holds a cycle
    waiting = {t.id: len(set(t.after)) for t in tasks}
    children: dict[int, list[int]] = {}
    for t in tasks:
        for p in set(t.after):
            children.setdefault(p, []).append(t.id)
    free = [i for i, n in waiting.items() if n == 0]
    while free:
        i = free.pop()
        for c in children.get(i, ()):
            waiting[c] -= 1
            if waiting[c] == 0:
                free.append(c)
    left = {i for i, n in waiting.items() if n > 0}
    if not left:
        return
    # walk predecessors inside what is left until one repeats: that is a cycle
    start = min(left)
    path = [start]
    seen = {start: 0}
    while True:
        nxt = min(p for p in ids[path[-1]].after if p in left)
        if nxt in seen:
            cycle = path[seen[nxt]:]
            break
        seen[nxt] = len(path)
        path.append(nxt)
    first = ids[cycle[0]]
    shown = " -> ".join(str(i) for i in [*cycle, cycle[0]])
    src.fail(where(first, first.after.index(cycle[1] if len(cycle) > 1 else cycle[0])),
             f"the tasks' after entries close a cycle: {shown} (each waits for the next), so none could start")


def critical_path_s(runtime_s: Mapping[int, float], after: Mapping[int, Iterable[int]]) -> float:
    """The longest chain of predecessor-linked tasks, summing ``runtime_s`` along it.

    ``after`` gives each task's predecessors (a task missing from it has none); a
    predecessor missing from ``runtime_s`` counts 0.  No recursion: a chain of a
    million tasks is as good as any.
    """
    longest: dict[int, float] = {}
    for root in runtime_s:
        if root in longest:
            continue
        stack = [root]
        visiting = {root}  # (a cycle, which inputs never have, is cut where it closes)
        while stack:
            i = stack[-1]
            pending = [p for p in after.get(i, ()) if p not in longest and p in runtime_s and p not in visiting]
            if pending:
                stack.extend(pending)
                visiting.update(pending)
                continue
            stack.pop()
            visiting.discard(i)
            if i in longest:
                continue
            before = max((longest.get(p, 0.0) for p in after.get(i, ())), default=0.0)
            longest[i] = before + runtime_s[i]
    return max(longest.values(), default=0.0)
