"""A master killed and started again keeps every sample it wrote and takes up the nodes' states."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agent.tests.helpers import AgentProcess, clean_env, free_port
from rpiaas.store import open_store

from ..master.test_app import NAMES, _agent, _config_file

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _start_master(tmp_path: Path, config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    script = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    assert script, "rpiaas is not installed beside sys.executable"
    with log.open("ab") as out:
        return subprocess.Popen([script, "master", str(config), "--port", str(port)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=clean_env(), cwd=tmp_path)


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def _wait(proc: subprocess.Popen[bytes], log: Path, port: int, done: Any, timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            summary = _get(port, "/api/v1/summary")
            if done(summary):
                return summary
        except OSError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def _read_store(path: Path) -> tuple[dict[str, list[float]], dict[str, list[tuple[float, bool]]]]:
    with open_store(str(path)) as store:
        times = {n: [s.time_s for s in store.history(n)] for n in NAMES}
        states = {n: [(c.time_s, c.online) for c in store.states(n)] for n in NAMES}
    return times, states


def test_history_and_states_survive_a_killed_master(tmp_path: Path) -> None:
    # two live agents; the third node's port has nothing listening: offline throughout
    agents: dict[str, AgentProcess] = {n: _agent(tmp_path, n) for n in NAMES[:2]}
    ports = {n: a.port for n, a in agents.items()} | {NAMES[2]: free_port()}
    config = _config_file(tmp_path, ports)
    log, port = tmp_path / "master.log", free_port()
    master = _start_master(tmp_path, config, port, log)
    try:
        _wait(master, log, port, lambda s: s["poll_rounds"] >= 4 and s["online"] == 2)
        before_api = {n["name"]: n for n in _get(port, "/api/v1/nodes")["nodes"]}
        master.send_signal(signal.SIGKILL)  # no clean shutdown, no last flush
        master.wait(10)
        times, states = _read_store(tmp_path / "history.db")
        assert all(len(times[n]) >= 3 for n in NAMES[:2]) and times[NAMES[2]] == []
        assert {n: [online for _, online in states[n]] for n in NAMES} == {
            NAMES[0]: [True], NAMES[1]: [True], NAMES[2]: [False]}

        master = _start_master(tmp_path, config, port, log)
        _wait(master, log, port, lambda s: s["poll_rounds"] >= 3)
        after_api = {n["name"]: n for n in _get(port, "/api/v1/nodes")["nodes"]}
    finally:
        master.send_signal(signal.SIGTERM)
        code = master.wait(20)
        for agent in agents.values():
            agent.terminate()
    assert code == 0, log.read_text()
    times_after, states_after = _read_store(tmp_path / "history.db")
    for n in NAMES[:2]:
        assert times_after[n][:len(times[n])] == times[n], n  # every sample written before is there
        assert len(times_after[n]) >= len(times[n]) + 3, n   # and polling went on
    # no state changed, so the restart recorded none and kept the times of the real changes
    assert states_after == states
    for n in NAMES:
        assert after_api[n]["online"] == before_api[n]["online"]
        assert after_api[n]["changed_s"] == before_api[n]["changed_s"]
    assert "Traceback" not in log.read_text()
