"""Inline workloads: the tasks written out one by one in the scenario."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..inputs.source import KeyPath, Source
from ..model import MAX_TASK_ID, Task
from .base import KINDS, Workload
from .spread import SPREADS, split_procs

__all__ = ["TASK_KEYS", "TaskList", "parse_tasks"]

TASK_KEYS = ("id", "arrival_s", "cores", "mem_mb", "work_core_s", "walltime_s", "kind",
             "tenant", "priority", "nodes", "procs", "spread")


@dataclass(frozen=True)
class TaskList(Workload):
    """An explicit list of tasks (sorted by arrival, then id)."""

    items: tuple[Task, ...] = field(default_factory=tuple)
    positions: dict[int, int] = field(default_factory=dict)  # task id -> index in the file

    @property
    def count(self) -> int:
        return len(self.items)

    def tasks(self, rng: np.random.Generator) -> Iterator[Task]:
        for t in self.items:
            yield Task(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s, t.kind, t.tenant,
                       t.priority, t.walltime_s, t.nodes, t.parts, t.procs)

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
        cores, nodes, parts, procs = _job(src, tp, t, src.integer((*tp, "cores"), t["cores"], minimum=1))
        items.append(Task(
            tid,
            src.number((*tp, "arrival_s"), t["arrival_s"], nonnegative=True),
            cores,
            src.integer((*tp, "mem_mb"), t["mem_mb"], minimum=1),
            src.number((*tp, "work_core_s"), t["work_core_s"], nonnegative=True),
            src.choice((*tp, "kind"), t.get("kind", "cpu"), KINDS),
            src.string((*tp, "tenant"), t.get("tenant", "")),
            src.integer((*tp, "priority"), t.get("priority", 0)),
            src.number((*tp, "walltime_s"), t["walltime_s"], positive=True) if "walltime_s" in t else None,
            nodes, parts, procs,
        ))
    items.sort(key=lambda t: (t.arrival_s, t.id))
    return TaskList(tuple(items), dict(seen))


def _job(src: Source, tp: KeyPath, t: dict[str, Any], cores: int) -> tuple[int, int, tuple[int, ...], int]:
    """A task's ``cores`` (its largest part's), ``nodes``, ``parts`` and ``procs``
    (:class:`~rpiaas.model.Task`) from its ``nodes: K`` or its ``procs: N`` and ``spread``
    (:mod:`rpiaas.workload.spread`, with ``cores`` the node width); ``(cores, 1, (), 0)``
    for a task on one node."""
    if "nodes" in t and "procs" in t:
        src.fail((*tp, "procs"), "give nodes (cores on each node) or procs (spread over nodes), not both")
    if "spread" in t and "procs" not in t:
        src.fail((*tp, "spread"), "spread splits procs: give procs too")
    if "nodes" in t:
        return cores, src.integer((*tp, "nodes"), t["nodes"], minimum=1), (), 0
    if "procs" not in t:
        return cores, 1, (), 0
    procs = src.integer((*tp, "procs"), t["procs"], minimum=1)
    spread = src.choice((*tp, "spread"), t.get("spread", "pack"), SPREADS)
    parts = split_procs(procs, spread, cores)
    equal = all(p == parts[0] for p in parts)
    return parts[0], len(parts), (() if equal else parts), (0 if sum(parts) == procs else procs)
