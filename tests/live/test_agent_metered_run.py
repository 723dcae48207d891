"""A live run on nodes whose agents read their own power: energy labelled ``measured``.

Two real agents (emulated nodes on loopback) each read an hwmon power sensor
from a directory laid out as the kernel's ``/sys/class/hwmon`` (the layout,
not a device: node 1 draws 3.2 W, node 2 5.0 W), and a real ``rpiaas master``
process polls them.  A live run of CPU tasks then has, for every node, the
energy of its readings (constant power: the power times the run's length),
labelled ``measured`` in ``run.json``, no gaps, and the readings in
``nodes.csv``; and the same run's CPU seconds from the counters.
"""

from __future__ import annotations

import asyncio
import csv
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from agent.tests.helpers import clean_env, free_port, start_agent
from rpiaas.auth import node_token
from rpiaas.client.client import run_live
from rpiaas.scenario import load_scenario

from ..master.test_dashboard import Chromium

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NAMES = ["node1.local.rpiaas.test", "node2.local.rpiaas.test"]
WATTS = {NAMES[0]: 3.2, NAMES[1]: 5.0}
CLUSTER = {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 2,
                         "type": "rpi4b"}]}


_WATTS = """Object.fromEntries([...document.querySelectorAll('tr.node')].map(
    (tr) => [tr.dataset.name, [tr.querySelector('td.watts').textContent, tr.querySelector('td.watts').title]]))"""


async def _dashboard_watts(chromium: str, url: str, tmp: Path) -> dict[str, tuple[str, str]]:
    async with Chromium(chromium, tmp) as browser:
        await browser.navigate(url + "/")
        await browser.wait_for("document.querySelectorAll('tr.node[data-power-w]:not([data-power-w=\"\"])')"
                               ".length === 2")
        got = await browser.evaluate(_WATTS)
        assert not browser.exceptions, browser.exceptions
    return {name: (text, title) for name, (text, title) in got.items()}


def test_a_run_on_agent_metered_nodes_is_measured(tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(32)
    (tmp_path / "node-secret").write_text(secret)
    (tmp_path / "master-token").write_text(master_token := secrets.token_urlsafe(32))
    for p in ("node-secret", "master-token"):
        (tmp_path / p).chmod(0o600)
    (tmp_path / "sysfs-empty").mkdir()
    agents = []
    for name in NAMES:
        dev = tmp_path / "hwmon" / name / "hwmon1"
        dev.mkdir(parents=True)
        (dev / "name").write_text("ina226\n")
        (dev / "power1_input").write_text(f"{round(WATTS[name] * 1e6)}\n")
        work = tmp_path / "work" / name
        work.mkdir(parents=True)
        agents.append(start_agent(
            tmp_path, "--name", name, "--emulate", "--cores", "4", "--mem-mb", "4096",
            "--oversubscribe", "--sysfs-root", str(tmp_path / "sysfs-empty"), "--vcgencmd", "",
            "--work-dir", str(work), "--power-source", "hwmon",
            "--hwmon-path", str(dev.parent), "--power-interval-s", "0.2",
            env=clean_env(RPIAAS_AGENT_TOKEN=node_token(secret, name))))
    port = free_port()
    (tmp_path / "master.yaml").write_text(json.dumps({
        "cluster": CLUSTER, "poll_interval_s": 0.25, "store": "history.db",
        "agents": {name: f"127.0.0.1:{a.port}" for name, a in zip(NAMES, agents, strict=True)},
        "token_file": "master-token", "node_secret_file": "node-secret", "runs_dir": "runs"}))
    script = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    assert script
    log = tmp_path / "master.log"
    with log.open("wb") as out:
        master = subprocess.Popen([script, "master", str(tmp_path / "master.yaml"), "--port",
                                   str(port)], stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, env=clean_env(), cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        for a in agents:
            a.wait_up()
        deadline = time.monotonic() + 20
        while True:
            assert master.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(url + "/api/v1/summary", timeout=5) as r:
                    if json.loads(r.read())["online"] == 2:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        scenario = tmp_path / "metered.json"
        scenario.write_text(json.dumps({
            "name": "metered", "seed": 1, "sample_interval_s": 1.0, "cluster": CLUSTER,
            "workload": {"tasks": [{"arrival_s": 0.4 * k, "cores": 2, "mem_mb": 64,
                                    "work_core_s": 2.0} for k in range(10)]},
            "policy": "best_fit"}))
        _, out = run_live(load_scenario(scenario), url, master_token, tmp_path / "out",
                          task_kind="cpu", quiet=True)
        chromium = shutil.which("chromium")
        if chromium is not None:  # the dashboard shows each node's metered power, said to be metered
            assert asyncio.run(_dashboard_watts(chromium, url, tmp_path)) == {
                name: (f"{w:.2f} W", "metered (hwmon)") for name, w in WATTS.items()}
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(20)
        for a in agents:
            a.terminate()
    record = json.loads((out / "run.json").read_text())
    duration = record["summary"]["duration_s"]
    assert record["sources"]["energy_j"] == "measured" and record["sources"]["power_w"] == "measured"
    assert record["gaps"] == []
    for node in record["nodes"]:
        assert node["energy_source"] == "measured"
        assert node["energy_j"] == pytest.approx(WATTS[node["node"]] * duration, rel=1e-3)
        assert node["metered_s"] == pytest.approx(duration, rel=1e-6)
    assert sum(n["cpu_s"] for n in record["nodes"]) > 0.5  # the counters saw the CPU tasks
    with (out / "nodes.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["node"], float(r["power_w"])) for r in rows} == set(WATTS.items())
