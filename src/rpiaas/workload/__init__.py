"""Workloads: where a run's tasks come from.

A workload is either a *generator* (an arrival process and a distribution for
each task field, drawn from the run's workload random stream in chunks), an
inline *task list*, a recorded *trace* (SWF or CSV, read by
:mod:`rpiaas.workload.traces`), or a WfCommons workflow instance
(:mod:`rpiaas.workload.wfcommons`).  Either way :meth:`Workload.tasks` streams
:class:`~rpiaas.model.Task` objects in arrival order, so a run of millions of
tasks never holds them all.

The modules: :mod:`~.base` (the :class:`Workload` base), :mod:`~.generators`,
:mod:`~.inline`, :mod:`~.traces`, :mod:`~.workflow` (tasks that wait for others: the
graph's checks, the critical path) and :mod:`~.wfcommons`; :func:`parse_workload` reads the
``workload`` key of a scenario into one of them.
"""

from __future__ import annotations

from typing import Any

from ..inputs.source import KeyPath, Source
from .base import KINDS, Workload
from .generators import DISTRIBUTIONS, Distribution, Generator, parse_generator
from .inline import TaskList, parse_tasks
from .traces import Trace, parse_trace
from .wfcommons import WfInstance, parse_wfcommons
from .workflow import WorkflowOptions

__all__ = [
    "DISTRIBUTIONS",
    "KINDS",
    "Distribution",
    "Generator",
    "TaskList",
    "Trace",
    "WfInstance",
    "WorkflowOptions",
    "Workload",
    "parse_workload",
]


def parse_workload(src: Source, path: KeyPath, data: Any) -> Workload:
    """The ``workload`` mapping: exactly one of ``generator``, ``tasks``, ``trace`` or
    ``wfcommons``."""
    for key in ("trace", "wfcommons"):
        if isinstance(data, dict) and key in data:
            others = [k for k in data if k != key]
            if others:
                src.fail((*path, others[0]), "give exactly one of generator, tasks, trace or wfcommons")
            if key == "wfcommons":
                return parse_wfcommons(src, (*path, key), data[key])
            return Trace(parse_trace(src, (*path, "trace"), data["trace"]))
    m = src.mapping(path, data, ("generator", "tasks"))
    if ("generator" in m) == ("tasks" in m):
        src.fail(path, "give exactly one of generator, tasks, trace or wfcommons")
    if "generator" in m:
        return parse_generator(src, (*path, "generator"), m["generator"])
    return parse_tasks(src, (*path, "tasks"), m["tasks"])


