"""Inline task lists: sorted by arrival then id, their positions in the file, a fresh copy of each task per run."""

from __future__ import annotations

from typing import Any

import numpy as np

from rpiaas.inputs.source import Source
from rpiaas.workload import TaskList, parse_workload


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def workload(data: dict[str, Any]) -> Any:
    return parse_workload(Source(data, {}, "w.yaml"), (), data)


# ---------------------------------------------------------------- task lists
def test_a_task_list_is_sorted_by_arrival_then_id() -> None:
    w = workload({"tasks": [
        {"arrival_s": 5, "cores": 1, "mem_mb": 10, "work_core_s": 1},
        {"id": 10, "arrival_s": 0, "cores": 2, "mem_mb": 20, "work_core_s": 2, "walltime_s": 9},
        {"arrival_s": 0, "cores": 1, "mem_mb": 30, "work_core_s": 0, "kind": "sleep", "tenant": "x"},
    ]})
    assert isinstance(w, TaskList) and w.count == 3
    assert [(t.id, t.arrival_s) for t in w.items] == [(3, 0.0), (10, 0.0), (1, 5.0)]
    assert w.positions == {1: 0, 10: 1, 3: 2}
    assert w.max_request() == (2, 30)
    first = list(w.tasks(rng()))
    first[0].start_s = 99.0  # a run mutates its tasks ...
    assert next(iter(w.tasks(rng()))).start_s == -1.0  # ... the next run starts afresh


def test_an_empty_task_list() -> None:
    w = workload({"tasks": []})
    assert w.count == 0 and list(w.tasks(rng())) == [] and w.max_request() == (0, 0)
