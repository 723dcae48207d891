"""WfCommons workflow instances (WfFormat JSON) as a workload of dependent tasks.

WfFormat is the JSON format of the WfCommons project (its recipes generate
Montage, Epigenomics and other instances; WfInstances holds recorded ones).
It is read here as plain JSON, without the ``wfcommons`` package, at most
``RPIAAS_MAX_INPUT_MB`` of it, every error naming the file, line and key.

Two layouts are read:

- schema 1.5 and later: ``workflow.specification.tasks`` (``id``, ``parents``)
  and ``workflow.execution.tasks`` (``id``, ``runtimeInSeconds``,
  ``coreCount``, ``memoryInBytes``);
- schema 1.4 and earlier: ``workflow.tasks``, each with its ``id`` (or
  ``name``), ``parents``, ``runtimeInSeconds`` (or ``runtime``), ``cores``
  and ``memoryInBytes`` (or ``memory`` in KB).

The mapping (``docs/workflows.md``): the i-th task of the file is task ``i``
(from 1); ``cores`` is its core count (1 if absent); ``work_core_s`` is
``runtimeInSeconds x cores x work_scale`` (the recorded runtime taken as
reference-core seconds, speed 1.0, as traces are); ``mem_mb`` is its memory
rounded up to whole MB, or the scenario's ``mem_mb`` where the file has none;
``after`` are its ``parents``; every task arrives at ``arrival_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..inputs.source import KeyPath, Source, load_file
from ..model import MAX_TASK_ID, Task
from .base import IMAGELESS_KINDS
from .inline import TaskList
from .workflow import check_graph

__all__ = ["WFCOMMONS_KEYS", "WfInstance", "parse_wfcommons", "read_wfformat"]

WFCOMMONS_KEYS = ("file", "arrival_s", "work_scale", "mem_mb", "kind", "tenant")

_MB = 1024 * 1024


@dataclass(frozen=True)
class WfInstance(TaskList):
    """The tasks of one WfFormat instance (a :class:`TaskList` with its origin)."""

    file: str = ""
    names: dict[int, str] = field(default_factory=dict, compare=False)  # task id -> its id in the file


def parse_wfcommons(src: Source, path: KeyPath, data: Any) -> WfInstance:
    """The ``workload: {wfcommons: ...}`` mapping: the file and how its tasks are mapped."""
    m = src.mapping(path, data, WFCOMMONS_KEYS, required=("file",))
    file = src.input_file((*path, "file"), src.string((*path, "file"), m["file"]))
    return read_wfformat(
        file,
        arrival_s=src.number((*path, "arrival_s"), m.get("arrival_s", 0.0), nonnegative=True),
        work_scale=src.number((*path, "work_scale"), m.get("work_scale", 1.0), positive=True),
        mem_mb=src.integer((*path, "mem_mb"), m.get("mem_mb", 100), minimum=1),
        kind=src.choice((*path, "kind"), m.get("kind", "cpu"), IMAGELESS_KINDS),
        tenant=src.string((*path, "tenant"), m.get("tenant", "")),
    )


def read_wfformat(file: str | Path, arrival_s: float = 0.0, work_scale: float = 1.0, mem_mb: int = 100,
                  kind: str = "cpu", tenant: str = "") -> WfInstance:
    """Read one WfFormat instance (see the module's docstring for the mapping)."""
    src = load_file(file)
    root = src.mapping((), src.data)
    wf = src.mapping(("workflow",), root.get("workflow"))
    if "specification" in wf:
        spec_path: KeyPath = ("workflow", "specification", "tasks")
        spec = src.sequence(spec_path, src.mapping(("workflow", "specification"), wf["specification"]).get("tasks"))
        exe = src.mapping(("workflow", "execution"), wf.get("execution", {}))
        exe_path: KeyPath = ("workflow", "execution", "tasks")
        run = {}
        for i, raw in enumerate(src.sequence(exe_path, exe.get("tasks", []))):
            e = src.mapping((*exe_path, i), raw)
            run[src.string((*exe_path, i, "id"), e.get("id"))] = ((*exe_path, i), e)
    else:
        spec_path = ("workflow", "tasks")
        spec = src.sequence(spec_path, wf.get("tasks"))
        run = {}
    if len(spec) > MAX_TASK_ID:
        src.fail(spec_path, "too many tasks")
    ids: dict[str, int] = {}
    for i, raw in enumerate(spec):
        t = src.mapping((*spec_path, i), raw)
        key = "id" if "id" in t else "name"
        name = src.string((*spec_path, i, key), t.get(key))
        if name in ids:
            src.fail((*spec_path, i, key), f"duplicate task {name!r} (also task {ids[name]})")
        ids[name] = i + 1
    items: list[Task] = []
    parents_at: dict[int, KeyPath] = {}
    for i, raw in enumerate(spec):
        tp = (*spec_path, i)
        t = src.mapping(tp, raw)
        name = str(t.get("id", t.get("name")))
        rp, r = run.get(name, (tp, t))  # 1.4 and earlier: the task's own figures
        if rp is tp and "specification" in wf:
            src.fail(tp, f"task {name!r} has no entry in workflow.execution.tasks (its runtime)")
        runtime = _first(r, ("runtimeInSeconds", "runtime"))
        if runtime is None:
            src.fail(rp, f"task {name!r} has no runtimeInSeconds")
        run_s = src.number((*rp, runtime[0]), runtime[1], nonnegative=True)
        cores_raw = _first(r, ("coreCount", "cores"))
        cores = 1 if cores_raw is None else max(1, math.ceil(
            src.number((*rp, cores_raw[0]), cores_raw[1], positive=True) - 1e-9))
        mem = _first(r, ("memoryInBytes", "memory"))
        if mem is None:
            task_mem = mem_mb
        else:
            amount = src.number((*rp, mem[0]), mem[1], nonnegative=True)
            task_mem = max(1, math.ceil((amount / _MB if mem[0] == "memoryInBytes" else amount / 1024) - 1e-9))
        parents = src.sequence((*tp, "parents"), t.get("parents", []))
        after: list[int] = []
        for j, p in enumerate(parents):
            pname = src.string((*tp, "parents", j), p)
            if pname not in ids:
                src.fail((*tp, "parents", j), f"task {name!r} waits for {pname!r}, which the file does not have")
            after.append(ids[pname])
        parents_at[i + 1] = (*tp, "parents")
        items.append(Task(i + 1, arrival_s, cores, task_mem, run_s * cores * work_scale, kind,
                          tenant=tenant, after=tuple(after)))
    check_graph(src, items, lambda task, j: (*parents_at[task.id], j))
    names = {v: k for k, v in ids.items()}
    return WfInstance(tuple(items), {t.id: t.id - 1 for t in items}, file=str(file), names=names)


def _first(data: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    """The first of ``keys`` that ``data`` gives (not null), with its value."""
    for k in keys:
        if data.get(k) is not None:
            return k, data[k]
    return None
