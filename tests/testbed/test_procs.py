"""The testbed's processes: started detached, told from later processes, stopped in order."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from rpiaas.testbed.plan import TestbedError
from rpiaas.testbed.procs import (
    Proc,
    executable,
    pid_alive,
    proc_stat,
    start_process,
    stop_all,
    tail,
)


def _start(tmp_path: Path, name: str, code: str) -> Proc:
    log = tmp_path / f"{name}.log"
    popen = start_process([sys.executable, "-c", code], log, tmp_path)
    stat = proc_stat(popen.pid)
    assert stat is not None
    return Proc(name, popen.pid, 0, str(log), stat[1])


def test_a_process_is_alive_until_stopped_and_its_log_is_private(tmp_path: Path) -> None:
    proc = _start(tmp_path, "sleeper", "import time; print('up', flush=True); time.sleep(60)")
    try:
        assert proc.alive()
        assert os.getsid(proc.pid) == proc.pid  # its own session: a ^C leaves it be
        assert (Path(proc.log).stat().st_mode & 0o777) == 0o600
    finally:
        lines = stop_all([proc], 5.0)
    assert lines == [f"sleeper: stopped (pid {proc.pid})"]
    assert not proc.alive()
    assert stop_all([proc], 5.0) == ["sleeper: already gone"]


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
    proc = _start(tmp_path, "stubborn", code)
    log = Path(proc.log)
    for _ in range(500):  # the handler must be in place before the SIGTERM
        if "\nready\n" in log.read_text():  # (the log's first line is the command itself)
            break
        time.sleep(0.02)
    assert stop_all([proc], 0.5) == [f"stubborn: killed (no exit after SIGTERM) (pid {proc.pid})"]
    assert not proc.alive()


def test_a_pid_taken_by_a_later_process_is_not_ours() -> None:
    stat = proc_stat(os.getpid())
    assert stat is not None and pid_alive(os.getpid(), stat[1])
    assert not pid_alive(os.getpid(), stat[1] + 1)  # same pid, another start time


def test_tail_and_a_missing_executable(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(40)))
    assert tail(str(log), 2) == "    line 38\n    line 39"
    assert tail(str(tmp_path / "none.log")) == "    (no log)"
    with pytest.raises(TestbedError, match="not installed beside"):
        executable("rpiaas-no-such-program")
