"""Inline workloads: the tasks written out one by one in the scenario."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..inputs.source import KeyPath, Source
from ..model import MAX_TASK_ID, Task
from .base import KINDS, Workload
from .spread import SPREADS, split_procs
from .workflow import check_graph

__all__ = ["COMMAND_LIMITS", "TASK_KEYS", "TaskList", "parse_tasks"]

TASK_KEYS = ("id", "arrival_s", "cores", "mem_mb", "work_core_s", "walltime_s", "kind",
             "command", "env", "tenant", "priority", "after", "nodes",
             "procs", "spread", "image", "network")
# What a task's ``command`` and ``env`` may hold: the agent's own bounds on a command's argv
# (``argv_items``, ``argv_chars``), so a scenario the parser takes is one the agents take
COMMAND_LIMITS = {"argv_items": 256, "argv_chars": 4096, "env_items": 64, "env_chars": 4096}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_IMAGE = re.compile(r"^[a-z0-9][A-Za-z0-9._/:@+-]{0,254}$")
_RESERVED_ENV = "RPIAAS_"  # the names the run itself gives a command


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
            yield Task(t.id, t.arrival_s, t.cores, t.mem_mb, t.work_core_s, t.kind, t.command,
                       t.env, tenant=t.tenant, priority=t.priority, after=t.after, walltime_s=t.walltime_s,
                       nodes=t.nodes, parts=t.parts, procs=t.procs, image=t.image, network=t.network)

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
        command = _command(src, (*tp, "command"), t["command"]) if "command" in t else None
        env = _env(src, (*tp, "env"), t["env"]) if "env" in t else ()
        image = _image(src, (*tp, "image"), t["image"]) if "image" in t else None
        default_kind = "container" if image is not None else "cpu" if command is None else "command"
        kind = src.choice((*tp, "kind"), t.get("kind", default_kind), KINDS)
        if kind == "container":
            if image is None:
                src.fail((*tp, "kind"), "a container task names its image: give it an image too")
        elif image is not None:
            src.fail((*tp, "kind"), f"a task with an image is of kind container, got {kind!r}")
        elif command is not None and kind != "command":
            src.fail((*tp, "kind"), f"a task with a command is of kind command, got {kind!r}")
        elif env and command is None:
            src.fail((*tp, "env"), "an environment is for a command: give the task a command too")
        network = src.boolean((*tp, "network"), t["network"]) if "network" in t else False
        if network and kind != "container":
            src.fail((*tp, "network"), "only a container task is given a network or not: "
                                       "leave network out")
        cores, nodes, parts, procs = _job(src, tp, t, src.integer((*tp, "cores"), t["cores"], minimum=1))
        items.append(Task(
            tid,
            src.number((*tp, "arrival_s"), t["arrival_s"], nonnegative=True),
            cores,
            src.integer((*tp, "mem_mb"), t["mem_mb"], minimum=1),
            src.number((*tp, "work_core_s"), t["work_core_s"], nonnegative=True),
            kind,
            command,
            env,
            tenant=src.string((*tp, "tenant"), t.get("tenant", "")),
            priority=src.integer((*tp, "priority"), t.get("priority", 0)),
            after=_after(src, (*tp, "after"), t["after"]) if t.get("after") is not None else (),
            walltime_s=src.number((*tp, "walltime_s"), t["walltime_s"], positive=True)
            if "walltime_s" in t else None,
            nodes=nodes, parts=parts, procs=procs, image=image, network=network,
        ))
    check_graph(src, items, lambda task, j: (*path, seen[task.id], "after", j))
    items.sort(key=lambda t: (t.arrival_s, t.id))
    return TaskList(tuple(items), dict(seen))


def _after(src: Source, path: KeyPath, data: Any) -> tuple[int, ...]:
    """A task's ``after``: the ids of the tasks it waits for (one id alone is a list of one)."""
    items = data if isinstance(data, list) else [data]
    where = (lambda j: (*path, j)) if isinstance(data, list) else (lambda j: path)
    return tuple(src.integer(where(j), v, minimum=0) for j, v in enumerate(items))


def _image(src: Source, path: KeyPath, value: Any) -> str:
    """A container task's ``image``: an OCI reference (``name[:tag]`` or ``name@digest``, an
    optional registry host first), at most 255 characters."""
    text = src.string(path, value)
    if not _IMAGE.match(text):
        src.fail(path, "expected an image reference such as debian:bookworm or "
                       "registry.local:5000/rpiaas/work:1 (letters, digits, . _ - / : @)")
    return text


def _command(src: Source, path: KeyPath, value: Any) -> tuple[str, ...]:
    """A task's ``command``: a list of 1 to ``argv_items`` strings (no shell: the program and
    its arguments), each of 1 to ``argv_chars`` characters without NUL."""
    n, chars = COMMAND_LIMITS["argv_items"], COMMAND_LIMITS["argv_chars"]
    if not isinstance(value, list) or not 1 <= len(value) <= n:
        src.fail(path, f"expected a list of 1 to {n} strings (the program, then its arguments)")
    out = []
    for i, arg in enumerate(value):
        arg = src.text((*path, i), arg)
        if isinstance(arg, bool) or not isinstance(arg, (str, int, float)):
            src.fail((*path, i), "expected a string")
        text = str(arg)
        if not 1 <= len(text) <= chars:
            src.fail((*path, i), f"expected 1 to {chars} characters (it has {len(text)})")
        if "\x00" in text:
            src.fail((*path, i), "contains a NUL character, which no argument can hold")
        out.append(text)
    return tuple(out)


def _env(src: Source, path: KeyPath, value: Any) -> tuple[tuple[str, str], ...]:
    """A command's ``env``: up to ``env_items`` names (letters, digits, ``_``; not ``RPIAAS_*``,
    which the run sets) to values of up to ``env_chars`` characters.  A value is never shown in
    an error: it may be a secret."""
    n, chars = COMMAND_LIMITS["env_items"], COMMAND_LIMITS["env_chars"]
    m = src.mapping(path, value)
    if len(m) > n:
        src.fail(path, f"expected at most {n} variables, got {len(m)}")
    out = []
    for name, raw in m.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            src.fail((*path, name), "expected a variable name of letters, digits and _ "
                                    "(not starting with a digit), at most 128 characters")
        if name.startswith(_RESERVED_ENV):
            src.fail((*path, name), f"names starting with {_RESERVED_ENV} are set by the run")
        raw = src.text((*path, name), raw)
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            src.fail((*path, name), "expected a string value")
        text = str(raw)
        if len(text) > chars:
            src.fail((*path, name), f"expected a value of at most {chars} characters (it has {len(text)})")
        if "\x00" in text:
            src.fail((*path, name), "contains a NUL character, which no environment value can hold")
        out.append((name, text))
    return tuple(out)


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
