"""An engine whose ``run`` returned before the container's end was recorded: the agent waits.

A scripted engine program (no container engine needed) answers ``inspect`` with a state kept
in a file and ``wait`` by ending the container there, as podman does after an OOM kill when
its ``run`` gave up with "no such exit code (container in state running)".
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from rpiaas_agent.containers import Ended, Engine

_SCRIPT = """#!/bin/sh
state="{state}"
case "$1" in
  inspect) cat "$state" ;;
  wait) echo '{ended}' > "$state"; echo 137 ;;
  *) exit 125 ;;
esac
"""


def _engine(tmp_path: Path, running: dict[str, object], ended: dict[str, object]) -> Engine:
    state = tmp_path / "state.json"
    state.write_text(json.dumps(running) + "\n")
    program = tmp_path / "engine"
    program.write_text(_SCRIPT.format(state=state, ended=json.dumps(ended)))
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return Engine(str(program), "", "key")


def test_a_container_still_running_is_waited_for_and_asked_again(tmp_path: Path) -> None:
    engine = _engine(tmp_path, {"Running": True, "ExitCode": 0, "OOMKilled": False},
                     {"Running": False, "ExitCode": 137, "OOMKilled": True})
    assert engine.ended("box") == Ended(137, True)


def test_an_ended_container_is_read_at_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path, {"Running": False, "ExitCode": 3, "OOMKilled": False},
                     {"Running": False, "ExitCode": 137, "OOMKilled": True})
    assert engine.ended("box") == Ended(3, False)  # not waited for: the first answer stands


def test_one_that_never_ends_is_not_taken_for_its_exit_code(tmp_path: Path) -> None:
    engine = _engine(tmp_path, {"Running": True, "ExitCode": 0, "OOMKilled": False},
                     {"Running": True, "ExitCode": 0, "OOMKilled": False})
    assert engine.ended("box") is None  # the run's own status decides, not a running 0
