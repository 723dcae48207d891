"""Inline workloads: the tasks written out one by one in the scenario."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..inputs.source import KeyPath, Source
from ..model import MAX_TASK_ID, Task
from .base import KINDS, Workload
from .workflow import check_graph

__all__ = ["TASK_KEYS", "TaskList", "parse_tasks"]

TASK_KEYS = ("id", "arrival_s", "cores", "mem_mb", "work_core_s", "walltime_s", "kind",
             "tenant", "priority", "after")


@dataclass(frozen=True)
class TaskList(Workload):
    """An explicit list of tasks (sorted by arrival, then id)."""

    items: tuple[Task, ...] = field(default_factory=tuple)
    positions: dict[int, int] = field(default_factory=dict)  # task id -> index in the file

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def has_dependencies(self) -> bool:
        """Whether a task waits for another (``after``): the run then releases tasks as a
        workflow (:mod:`rpiaas.core.workflow`)."""
        return any(t.after for t in self.items)

    def tasks(self, rng: np.random.Generator) -> Iterator[Task]:
        for t in self.items:
            yield Task(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s, t.kind, t.tenant,
                       t.priority, t.after, t.walltime_s)

    def max_request(self) -> tuple[float | None, float | None]:
        if not self.items:
            return 0, 0
        return max(t.cores for t in self.items), max(t.mem_mb for t in self.items)


def parse_tasks(src: Source, path: KeyPath, data: Any) -> TaskList:
    items: list[Task] = []
    seen: dict[int, int] = {}
    for i, raw in enumerate(src.sequence(path, data)):
        tp = (*path, i)
        t = src.mapping(tp, raw, TASK_KEYS, required=("arrival_s", "cores", "mem_mb", "work_core_s"))
        tid = src.integer((*tp, "id"), t["id"], minimum=0) if "id" in t else i + 1
        if tid > MAX_TASK_ID:
            src.fail((*tp, "id"), f"expected a task id of at most 2**53, got {tid}")
        if tid in seen:
            src.fail((*tp, "id"), f"duplicate task id {tid} (also item {seen[tid]})")
        seen[tid] = i
        items.append(Task(
            tid,
            src.number((*tp, "arrival_s"), t["arrival_s"], nonnegative=True),
            src.integer((*tp, "cores"), t["cores"], minimum=1),
            src.integer((*tp, "mem_mb"), t["mem_mb"], minimum=1),
            src.number((*tp, "work_core_s"), t["work_core_s"], nonnegative=True),
            src.choice((*tp, "kind"), t.get("kind", "cpu"), KINDS),
            src.string((*tp, "tenant"), t.get("tenant", "")),
            src.integer((*tp, "priority"), t.get("priority", 0)),
            _after(src, (*tp, "after"), t["after"]) if t.get("after") is not None else (),
            src.number((*tp, "walltime_s"), t["walltime_s"], positive=True) if "walltime_s" in t else None,
        ))
    check_graph(src, items, lambda task, j: (*path, seen[task.id], "after", j))
    items.sort(key=lambda t: (t.arrival_s, t.id))
    return TaskList(tuple(items), dict(seen))


def _after(src: Source, path: KeyPath, data: Any) -> tuple[int, ...]:
    """A task's ``after``: the ids of the tasks it waits for (one id alone is a list of one)."""
    items = data if isinstance(data, list) else [data]
    where = (lambda j: (*path, j)) if isinstance(data, list) else (lambda j: path)
    return tuple(src.integer(where(j), v, minimum=0) for j, v in enumerate(items))
