"""The ``process`` driver on real processes: off ends, on starts again, state follows them."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from rpiaas.model import PROFILES, Node, PowerSpec
from rpiaas.power import PowerError, SwitchState, driver_for
from rpiaas.power.detached import pid_alive, start_process
from rpiaas.power.drivers.process import record_pid, running_pid, write_command

pytestmark = pytest.mark.integration


def _node(state_dir: Path, timeout_s: float = 10.0) -> Node:
    spec = PowerSpec("process", (("state_dir", str(state_dir)), ("timeout_s", timeout_s)))
    return Node(0, "n1", "t.test", PROFILES["rpi4b"], "127.0.1.1", power=spec)


def _started(state_dir: Path, tmp_path: Path, code: str) -> int:
    """A node that is a Python process running ``code``, started as a testbed does."""
    argv = [sys.executable, "-c", code]
    log = tmp_path / "n1.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    write_command(state_dir, "n1.t.test", argv, tmp_path, log, env)
    pid = start_process(argv, log, tmp_path, env=env).pid
    record_pid(state_dir, "n1.t.test", pid)
    return pid


def test_off_ends_the_process_and_on_starts_the_same_command_again(tmp_path: Path) -> None:
    state_dir = tmp_path / "power"
    first = _started(state_dir, tmp_path, "import time, os; print('up', os.getpid(), flush=True); "
                                          "time.sleep(60)")
    driver = driver_for(_node(state_dir))
    assert driver is not None and driver.name == "process"

    async def cycle() -> tuple[SwitchState, SwitchState, SwitchState]:
        before = await driver.state()
        await driver.off()
        off = await driver.state()
        await driver.off()  # again: nothing to do
        await driver.on()
        await driver.on()  # again: it runs, no second process
        return before, off, await driver.state()

    assert asyncio.run(cycle()) == (SwitchState.ON, SwitchState.OFF, SwitchState.ON)
    assert not pid_alive(first, None)
    now = running_pid(state_dir, "n1.t.test")
    assert now is not None and now[0] != first
    # the same command line, its output appended to the same log
    for _ in range(200):
        if f"up {now[0]}" in (tmp_path / "n1.log").read_text():
            break
        time.sleep(0.05)
    log = (tmp_path / "n1.log").read_text()
    assert f"up {now[0]}" in log and log.count("python -c import time") == 2, log
    assert (state_dir / "n1.t.test.json").stat().st_mode & 0o777 == 0o600
    asyncio.run(driver.off())
    assert running_pid(state_dir, "n1.t.test") is None


def test_a_process_that_ignores_sigterm_is_killed_after_timeout_s(tmp_path: Path) -> None:
    state_dir = tmp_path / "power"
    pid = _started(state_dir, tmp_path, "import signal, time; signal.signal(signal.SIGTERM, "
                                        "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)")
    for _ in range(100):  # until it has set its handler
        if "ready" in (tmp_path / "n1.log").read_text():
            break
        time.sleep(0.05)
    driver = driver_for(_node(state_dir, timeout_s=0.5))
    assert driver is not None
    asyncio.run(driver.off())
    assert not pid_alive(pid, None)


def test_the_master_itself_is_never_switched_off(tmp_path: Path) -> None:
    state_dir = tmp_path / "power"
    write_command(state_dir, "n1.t.test", ["true"], tmp_path, tmp_path / "n1.log", {})
    record_pid(state_dir, "n1.t.test", os.getpid())  # a config pointing at the master
    driver = driver_for(_node(state_dir))
    assert driver is not None
    with pytest.raises(PowerError, match="the master itself"):
        asyncio.run(driver.off())
    assert pid_alive(os.getpid(), None)


def test_a_command_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    state_dir = tmp_path / "power"
    write_command(state_dir, "n1.t.test", [str(tmp_path / "no-such-agent")], tmp_path,
                  tmp_path / "n1.log", {})
    driver = driver_for(_node(state_dir))
    assert driver is not None
    with pytest.raises(PowerError) as e:
        asyncio.run(driver.on())
    assert str(e.value).startswith("n1.t.test: cannot start ") and "\n" not in str(e.value)
    with pytest.raises(PowerError, match="cannot read"):
        asyncio.run(driver_for(_node(tmp_path / "elsewhere")).on())  # type: ignore[union-attr]
