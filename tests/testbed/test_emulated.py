"""``rpiaas testbed up --emulated N``: N nodes served by one process, the real master polling them."""

from __future__ import annotations

import json
import shutil
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
from rpiaas.cli import main
from rpiaas.testbed.emulated import RACK, emulated_cluster

pytestmark = pytest.mark.integration

N = 200


def _rpiaas(*args: str, cwd: Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    script = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    assert script, "rpiaas is not installed beside sys.executable"
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=timeout_s, cwd=cwd,
                          env=clean_env())


def _call(url: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_emulated_200_nodes_online_a_live_run_on_timers_and_down(tmp_path: Path) -> None:
    tb_dir = tmp_path / "tb"
    d = ["--dir", str(tb_dir)]
    up = _rpiaas("testbed", "up", "--emulated", str(N), "--master-port", "0", *d, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert f"{N} emulated nodes (rpi4b, 4 cores, 4096 MB each) online" in up.stdout
    state = json.loads((tb_dir / "testbed.json").read_text())
    pids = [state["master"]["pid"], state["services"]["emulator"]["pid"]]
    try:
        url = state["master_url"]
        status = _rpiaas("testbed", "status", *d, cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"master: {N} nodes, {N} online" in status.stdout
        assert f"emulated: {N} nodes served by the emulator (pid {pids[1]})" in status.stdout

        # every node: its own address (racks of 250 on loopback), its own port, the timer runner
        nodes = _call(url + "/api/v1/nodes")["nodes"]
        assert len(nodes) == N and len({n["agent"] for n in nodes}) == N
        assert all(n["online"] is True and n["emulated"] is True and n["task_runner"] == "timer"
                   for n in nodes)
        names = [n["name"] for n in nodes]
        page = _call(url + "/api/v1/nodes?offset=150&limit=100")
        assert [n["name"] for n in page["nodes"]] == names[150:] and page["total"] == N
        # the agent API of node 7, with its own token, and not with node 8's
        agent = nodes[6]["agent"]
        own = (tb_dir / "tokens" / f"{names[6]}.token").read_text().strip()
        other = (tb_dir / "tokens" / f"{names[7]}.token").read_text().strip()
        with pytest.raises(urllib.error.HTTPError) as e:
            _call(agent + "/tasks", other)
        assert e.value.code == 401
        e.value.close()
        assert _call(agent + "/tasks", own) == {"tasks": []}
        # the boot reports came from each node's address and were accepted: a boot each
        assert _call(f"{url}/api/v1/nodes/{names[-1]}")["last_boot"] is not None

        # a live run of 400 sleep tasks on the timers, placed by least_loaded
        cluster = yaml.safe_load((tb_dir / "cluster.yaml").read_text())
        scenario = {"name": "emulated-200", "seed": 3, "cluster": cluster, "policy": "least_loaded",
                    "workload": {"generator": {
                        "count": 400, "arrival": {"interarrival_s": 0.02}, "cores": 1, "mem_mb": 64,
                        "work_core_s": {"dist": "uniform", "low": 0.5, "high": 1.5}, "kind": "sleep"}}}
        token = (tb_dir / "master-token").read_text().strip()
        run = _call(url + "/api/v1/runs", token, {"scenario": scenario, "timescale": 1,
                                                   "task_kind": "sleep"})
        deadline = time.monotonic() + 60
        while run["state"] == "running":
            assert time.monotonic() < deadline, run
            time.sleep(0.3)
            run = _call(f"{url}/api/v1/runs/{run['id']}", token)
        assert run["state"] == "completed", run
        record = json.loads((tb_dir / "runs" / run["id"] / "result" / "run.json").read_text())
        assert record["live"]["task_runner"] == "timer"
        assert record["live"]["start_lag_s"]["tasks"] == 400
        tasks = (tb_dir / "runs" / run["id"] / "result" / "tasks.csv").read_text().splitlines()
        assert len(tasks) == 401 and all(",completed," in row for row in tasks[1:])
        assert record["sources"]["switching"] == "emulated"
    finally:
        down = _rpiaas("testbed", "down", *d, cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "master: stopped" in down.stdout and "emulator: stopped" in down.stdout
    assert all(gone(pid) for pid in pids)
    assert not (tb_dir / "testbed.json").exists()


def test_racks_of_loopback_addresses() -> None:
    doc, cores, mem_mb, _ = emulated_cluster(2 * RACK + 3, "rpi4b")
    assert [(c["prefix"], c["count"]) for c in doc["clusters"]] == [
        ("127.1.0", RACK), ("127.2.0", RACK), ("127.3.0", 3)]
    assert (cores, mem_mb) == (4, 4096)


@pytest.mark.parametrize(("args", "message"), [
    (["--emulated", "0"], "--emulated: expected 1 to 10000 nodes, got 0"),
    (["--emulated", "3", "--type", "rpi9"], "--type: unknown node type 'rpi9'"),
    (["--emulated", "3", "--cluster", "x.yaml"], "--cluster goes with --virtual"),
])
def test_bad_arguments_start_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     args: list[str], message: str) -> None:
    assert main(["testbed", "up", "--dir", str(tmp_path / "tb"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tb" / "testbed.json").exists()
