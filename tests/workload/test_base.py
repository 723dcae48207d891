"""The workload base: what every workload provides, and the task kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rpiaas_agent.taskspec import KINDS as AGENT_KINDS

from rpiaas.inputs.source import Source
from rpiaas.workload import KINDS, Generator, TaskList, Trace, Workload, parse_workload
from rpiaas.workload.traces import TraceOptions


def test_the_base_provides_nothing_itself() -> None:
    w = Workload()
    with pytest.raises(NotImplementedError):
        next(iter(w.tasks(np.random.default_rng(0))))
    with pytest.raises(NotImplementedError):
        w.max_request()


def test_every_kind_of_workload_is_a_workload(tmp_path: Path) -> None:
    src = Source({}, {}, "w.yaml")
    gen = parse_workload(src, ("workload",), {"generator": {
        "count": 3, "arrival": {"rate_per_s": 1}, "cores": 1, "mem_mb": 64, "work_core_s": 1}})
    tasks = parse_workload(src, ("workload",), {"tasks": []})
    trace = Trace(TraceOptions(tmp_path / "t.swf"))
    assert isinstance(gen, Generator) and isinstance(tasks, TaskList)
    assert all(isinstance(w, Workload) for w in (gen, tasks, trace))
    assert trace.max_request() == (None, None)  # unbound: no cluster to fit yet


def test_the_kinds_are_the_agents_workloads() -> None:
    assert KINDS == ("cpu", "memory", "io", "sleep", "command", "container")
    assert KINDS == AGENT_KINDS
    src = Source({}, {}, "w.yaml")
    for kind in KINDS:
        image = {"image": "busybox:1"} if kind == "container" else {}
        w = parse_workload(src, ("workload",), {"tasks": [
            {"arrival_s": 0, "cores": 1, "mem_mb": 1, "work_core_s": 1, "kind": kind, **image}]})
        assert next(iter(w.tasks(np.random.default_rng(0)))).kind == kind
