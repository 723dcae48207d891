"""``rpiaas testbed up | status | down`` and :func:`start_local_testbed`, with real processes."""

from __future__ import annotations

import json
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.tests.helpers import clean_env, gone
from rpiaas.auth import node_token
from rpiaas.cli import main
from rpiaas.testbed import local as testbed
from rpiaas.testbed.local import start_local_testbed
from rpiaas.testbed.plan import TestbedError, TestbedRunning

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NAMES = [f"node{i}.local.rpiaas.test" for i in (1, 2, 3)]


def _rpiaas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    assert script, "rpiaas is not installed beside sys.executable"
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=clean_env())


def _get(url: str, token: str | None = None, method: str = "GET") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def _pids(state: dict[str, Any]) -> list[int]:
    return [state["master"]["pid"], *(a["pid"] for a in state["agents"].values())]


def _wait(check: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_up_status_down_on_the_command_line(tmp_path: Path) -> None:
    tb_dir = tmp_path / "tb"
    d = ["--dir", str(tb_dir)]
    up = _rpiaas("testbed", "up", "--local", "3", "--master-port", "0",
                 "--poll-interval-s", "0.5", *d, cwd=tmp_path)
    state: dict[str, Any] = {}
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert up.stderr == "", up.stderr  # no word on the processes it leaves running on purpose
        state = json.loads((tb_dir / "testbed.json").read_text())
        url = state["master_url"]
        assert url.startswith("http://127.0.0.1:")
        assert f"dashboard  {url}/" in up.stdout
        assert "rpiaas testbed status" in up.stdout and "rpiaas testbed down" in up.stdout
        # testbed.json: every process, its port, the master's URL, the tokens, the start time
        assert list(state["agents"]) == NAMES
        ports = [state["master"]["port"], *(a["port"] for a in state["agents"].values())]
        assert len(set(ports)) == 4 and url.endswith(f":{state['master']['port']}")
        assert all(not gone(pid) for pid in _pids(state))
        assert abs(state["started_s"] - time.time()) < 60
        for key in ("master_token_file", "node_secret_file"):
            path = Path(state[key])
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert len(path.read_text().strip()) >= 32
            assert path.name in up.stdout
        # each node's own token, derived from the secret; each agent reads its own file only
        secret = Path(state["node_secret_file"]).read_text().strip()
        assert list(state["node_token_files"]) == NAMES
        for name, file in state["node_token_files"].items():
            path = Path(file)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert path.read_text().strip() == node_token(secret, name)
        # the logs are the owner's alone
        for log in (tb_dir / "logs").iterdir():
            assert stat.S_IMODE(log.stat().st_mode) == 0o600, log
        # the master sees all three online; each agent answers as its node, with the type's cores
        summary = _get(url + "/api/v1/summary")
        assert (summary["nodes"], summary["online"]) == (3, 3)
        for name, agent in state["agents"].items():
            info = _get(f"http://127.0.0.1:{agent['port']}/info")
            assert info["node"]["name"] == name
            assert info["tasks"]["cores"] == state["cores"]
            assert info["tasks"]["mem_mb"] == state["mem_mb"]
        status = _rpiaas("testbed", "status", *d, cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count(" alive") == 4 and "3 online" in status.stdout

        again = _rpiaas("testbed", "up", "--local", "3", "--master-port", "0", *d, cwd=tmp_path)
        assert again.returncode == 2
        assert "running testbed" in again.stderr and "starting" not in again.stdout
        assert json.loads((tb_dir / "testbed.json").read_text()) == state  # left alone

        victim = state["agents"][NAMES[1]]["pid"]
        subprocess.run(["kill", "-KILL", str(victim)], check=True)
        _wait(lambda: gone(victim))
        status = _rpiaas("testbed", "status", *d, cwd=tmp_path)
        assert status.returncode == 1
        line = next(ln for ln in status.stdout.splitlines() if NAMES[1] in ln)
        assert "DEAD" in line
        assert status.stdout.count(" alive") == 3
    finally:
        down = _rpiaas("testbed", "down", *d, cwd=tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"{NAMES[1]}: already gone" in down.stdout
    assert all(gone(pid) for pid in _pids(state))
    assert not (tb_dir / "testbed.json").exists()
    assert (tb_dir / "history.db").exists() and (tb_dir / "logs" / "master.log").exists()
    again = _rpiaas("testbed", "down", *d, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to stop" in again.stdout
    assert "Traceback" not in (tb_dir / "logs" / "master.log").read_text()


def test_python_api_and_a_stale_testbed_json(tmp_path: Path) -> None:
    with start_local_testbed(tmp_path, 2, poll_interval_s=0.5) as tb:
        stale = (tmp_path / "testbed.json").read_text()
        assert tb.summary()["online"] == 2
        with pytest.raises(TestbedRunning):
            start_local_testbed(tmp_path, 2)
        # the tokens are the ones the master and the agents use
        name = NAMES[0]
        doc = _get(f"{tb.master_url}/api/v1/nodes/{name}/poll", tb.master_token, "POST")
        assert doc["name"] == name and doc["online"] is True
        assert _get(tb.agents[name].url + "/config", tb.node_token(name))["name"] == name
        # a node's token opens its own agent only
        with pytest.raises(urllib.error.HTTPError, match="401"):
            _get(tb.agents[NAMES[1]].url + "/config", tb.node_token(name))
        pids = [p.pid for p in tb.processes()]
    assert all(gone(pid) for pid in pids)
    assert not (tmp_path / "testbed.json").exists()
    # a testbed.json whose processes are gone does not block the next testbed
    (tmp_path / "testbed.json").write_text(stale)
    with start_local_testbed(tmp_path, 1) as tb:
        assert tb.summary()["online"] == 1 and list(tb.agents) == NAMES[:1]
    assert testbed.load_testbed(tmp_path) is None


def test_each_local_node_reports_the_node_it_emulates(tmp_path: Path) -> None:
    """Through the master: each node's memory is its type's; a busy node and idle ones differ."""
    from rpiaas.model import PROFILES

    with start_local_testbed(tmp_path, 3, poll_interval_s=0.5) as tb:
        busy, idle = NAMES[0], NAMES[1:]
        body = json.dumps({"id": "burn", "kind": "cpu", "cores": 1, "work_core_s": 60}).encode()
        req = urllib.request.Request(tb.agents[busy].url + "/tasks", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {tb.node_token(busy)}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 201
        cpu: dict[str, list[float]] = {name: [] for name in NAMES}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(cpu[busy]) < 6:
            time.sleep(0.5)
            for node in _get(f"{tb.master_url}/api/v1/nodes")["nodes"]:
                sample = node["sample"]
                if sample is None or node["emulated"] is None:
                    continue
                assert node["emulated"] is True
                # the node type's memory (an rpi4b: 4096 MB), not the host's
                assert sample["mem_total_mb"] == tb.mem_mb == PROFILES["rpi4b"].mem_mb
                assert len(sample["cpu_per_core"] or [0] * 4) == tb.cores == 4
                if node["name"] == busy and sample["cpu_util"] > 0:
                    cpu[busy].append(sample["cpu_util"])
                elif node["name"] != busy:
                    cpu[node["name"]].append(sample["cpu_util"])
        # one core of four busy (on a machine maybe shared with other work), the others idle
        assert len(cpu[busy]) >= 6 and max(cpu[busy]) > 0.1, cpu
        assert max(cpu[busy]) <= 0.27
        for name in idle:
            assert cpu[name] and max(cpu[name]) == 0.0, cpu
        history = _get(f"{tb.master_url}/api/v1/nodes/{busy}/history")["samples"]
        assert max(s["cpu_util"] for s in history) > 0.1
        assert {s["mem_total_mb"] for s in history} == {4096}


@pytest.mark.parametrize(("args", "message"), [
    (["--local", "0"], "--local: expected 1 to 254"),
    (["--local", "2", "--type", "rpi9"], "--type: unknown node type 'rpi9'"),
    (["--local", "2", "--master-port", "70000"], "--master-port"),
])
def test_bad_arguments_start_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     args: list[str], message: str) -> None:
    assert main(["testbed", "up", "--dir", str(tmp_path / "tb"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "tb" / "testbed.json").exists()


def test_status_without_a_testbed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testbed", "status", "--dir", str(tmp_path)]) == 1
    assert "no testbed" in capsys.readouterr().out


def test_a_failed_start_stops_what_it_started(tmp_path: Path) -> None:
    # the master's port is taken: it exits at start, and the agent is stopped again
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(TestbedError, match="master exited at start") as e:
            start_local_testbed(tmp_path, 1, master_port=port, timeout_s=10)
    assert "master.log" in str(e.value)
    assert not (tmp_path / "testbed.json").exists()
    agent = yaml.safe_load((tmp_path / "master.yaml").read_text())["agents"][NAMES[0]]
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", int(agent.rpartition(":")[2])))
