"""Inline task lists: sorted by arrival then id, their positions in the file, a fresh copy of each task per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rpiaas.inputs.source import InputError, Source
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


# ---------------------------------------------------------------- commands
def test_a_task_may_carry_a_command_and_its_environment() -> None:
    w = workload({"tasks": [
        {"arrival_s": 0, "cores": 1, "mem_mb": 10, "work_core_s": 5,
         "command": ["python3", "-c", "print(1)", 7], "env": {"MODE": "fast", "N": 3}},
        {"arrival_s": 1, "cores": 1, "mem_mb": 10, "work_core_s": 5, "kind": "command",
         "command": ["true"]},
        {"arrival_s": 2, "cores": 1, "mem_mb": 10, "work_core_s": 5}]})
    a, b, c = w.tasks(rng())
    assert a.kind == "command" and a.command == ("python3", "-c", "print(1)", "7")
    assert a.env == (("MODE", "fast"), ("N", "3"))
    assert b.kind == "command" and b.command == ("true",) and b.env == ()
    assert c.kind == "cpu" and c.command is None and c.env == ()


@pytest.mark.parametrize("extra, where, message", [
    ({"command": []}, "tasks[0].command", "expected a list of 1 to 256 strings"),
    ({"command": "sleep 1"}, "tasks[0].command", "expected a list of 1 to 256 strings"),
    ({"command": ["x"] * 257}, "tasks[0].command", "expected a list of 1 to 256 strings"),
    ({"command": ["sleep", ""]}, "tasks[0].command[1]", "expected 1 to 4096 characters"),
    ({"command": ["sleep", "a" * 4097]}, "tasks[0].command[1]", "expected 1 to 4096 characters"),
    ({"command": ["sleep", "a\x00b"]}, "tasks[0].command[1]", "contains a NUL character"),
    ({"command": ["sleep", {"a": 1}]}, "tasks[0].command[1]", "expected a string"),
    ({"command": ["true"], "kind": "cpu"}, "tasks[0].kind", "a task with a command is of kind command"),
    ({"env": {"A": "1"}}, "tasks[0].env", "an environment is for a command"),
    ({"command": ["true"], "env": ["A=1"]}, "tasks[0].env", "expected a mapping"),
    ({"command": ["true"], "env": {"1A": "x"}}, "tasks[0].env.1A", "expected a variable name"),
    ({"command": ["true"], "env": {"A-B": "x"}}, "tasks[0].env.A-B", "expected a variable name"),
    ({"command": ["true"], "env": {"RPIAAS_RANK": "0"}}, "tasks[0].env.RPIAAS_RANK",
     "names starting with RPIAAS_ are set by the run"),
    ({"command": ["true"], "env": {"A": "x" * 4097}}, "tasks[0].env.A", "expected a value of at most 4096 characters"),
    ({"command": ["true"], "env": {"A": ["x"]}}, "tasks[0].env.A", "expected a string value"),
    ({"command": ["true"], "env": {f"V{i}": "x" for i in range(65)}}, "tasks[0].env",
     "expected at most 64 variables"),
])
def test_a_bad_command_or_env_is_a_located_error(extra: dict[str, Any], where: str, message: str) -> None:
    data = {"tasks": [{"arrival_s": 0, "cores": 1, "mem_mb": 10, "work_core_s": 5, **extra}]}
    with pytest.raises(InputError) as e:
        workload(data)
    assert f"w.yaml: {where}: {message}" in str(e.value)


def test_an_env_value_is_never_shown_in_an_error() -> None:
    secret = "hunter2-" + "s" * 4100
    with pytest.raises(InputError) as e:
        workload({"tasks": [{"arrival_s": 0, "cores": 1, "mem_mb": 10, "work_core_s": 5,
                             "command": ["true"], "env": {"TOKEN": secret}}]})
    assert "hunter2" not in str(e.value)


def test_a_command_task_is_modelled_by_its_work_in_simulation(tmp_path: Path) -> None:
    from rpiaas.sim import simulate

    from ..helpers import cluster, read_tasks, scenario

    sc = scenario({"name": "cmd", "cluster": cluster(1, "rpi4b"), "policy": "first_fit",
                   "workload": {"tasks": [{"arrival_s": 0, "cores": 2, "mem_mb": 10, "work_core_s": 30,
                                           "command": ["false"]}]}})
    _, path = simulate(sc, tmp_path / "run")
    (row,) = read_tasks(path)
    assert row["state"] == "completed" and float(row["end_s"]) == 15.0  # 30 / (2 x 1.0): never run


def test_a_bad_command_in_a_scenario_file_names_its_line(tmp_path: Path) -> None:
    from rpiaas.scenario import load_scenario

    path = tmp_path / "s.yaml"
    path.write_text(
        "cluster: {clusters: [{domain: c.test, prefix: 10.0.1, count: 1, type: rpi4b}]}\n"
        "policy: first_fit\n"
        "workload:\n"
        "  tasks:\n"
        "    - {arrival_s: 0, cores: 1, mem_mb: 10, work_core_s: 5,\n"
        "       command: [sleep, 1], kind: sleep}\n")
    with pytest.raises(InputError) as e:
        load_scenario(path)
    assert str(e.value).startswith(f"{path}:6: workload.tasks[0].kind: a task with a command is of kind command")


def test_the_documented_program_scenario_parses() -> None:
    """The example of docs/scenario.md's "Tasks that run programs"."""
    import re

    from ..helpers import scenario

    page = (Path(__file__).parents[2] / "docs" / "scenario.md").read_text(encoding="utf-8")
    section = page.split("### Tasks that run programs", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    import yaml

    sc = scenario(yaml.safe_load(block.group(1)))
    first, second = sc.workload.tasks(rng())
    assert first.command == ("mpirun", "-n", "4", "./solver", "--size", "2048")
    assert first.env == (("OMP_NUM_THREADS", "1"),) and second.command == ("./preprocess.sh", "in.dat")
