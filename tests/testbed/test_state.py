"""What a testbed's directory records: read, and a testbed there refused while it runs."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from rpiaas.testbed import load_testbed
from rpiaas.testbed.plan import TestbedError, TestbedRunning
from rpiaas.testbed.procs import Proc, proc_stat
from rpiaas.testbed.state import STATE_FILE, check_not_running, read_state


def _me() -> Proc:
    stat = proc_stat(os.getpid())
    assert stat is not None
    return Proc("master", os.getpid(), 1, "master.log", stat[1])


def _gone(name: str) -> Proc:
    return Proc(name, os.getpid(), 2, f"{name}.log", -1)  # a start time that is not ours


def _record(root: Path, data: Any) -> None:
    (root / STATE_FILE).write_text(json.dumps(data))


def test_no_record_is_no_testbed(tmp_path: Path) -> None:
    assert read_state(tmp_path) is None
    check_not_running(tmp_path)
    assert load_testbed(tmp_path) is None


@pytest.mark.parametrize("key", ["agents", "vms", "services"])
def test_a_running_process_of_any_kind_refuses_the_directory(tmp_path: Path, key: str) -> None:
    # the master gone, one other process (ours) still running
    _record(tmp_path, {"master": asdict(_gone("master")), "master_url": "http://127.0.0.1:1",
                       key: {"node1": asdict(_me()), "node2": asdict(_gone("node2"))}})
    with pytest.raises(TestbedRunning, match=r"running testbed \(1 processes, master "
                                             r"http://127.0.0.1:1\)") as e:
        check_not_running(tmp_path)
    assert e.value.exit_code == 2
    assert (tmp_path / STATE_FILE).exists()


def test_a_record_whose_processes_are_gone_is_forgotten(tmp_path: Path) -> None:
    _record(tmp_path, {"kind": "virtual", "master": asdict(_gone("master")),
                       "vms": {"node1": asdict(_gone("node1"))},
                       "services": {"relay": asdict(_gone("relay"))}})
    check_not_running(tmp_path)
    assert not (tmp_path / STATE_FILE).exists()


@pytest.mark.parametrize("text", ["{", "[]", '{"agents": {}}', '{"master": {"pid": 1}}',
                                  '{"master": {"name": "master", "pid": 1, "port": 1, "log": "x"},'
                                  ' "agents": []}'])
def test_an_unreadable_record_is_an_error_not_a_testbed(tmp_path: Path, text: str) -> None:
    (tmp_path / STATE_FILE).write_text(text)
    for call in (check_not_running, load_testbed):
        with pytest.raises(TestbedError, match=r"testbed\.json: unreadable .*remove it if nothing "
                                               r"runs") as e:
            call(tmp_path)
        assert e.value.exit_code == 2
    assert (tmp_path / STATE_FILE).exists()
