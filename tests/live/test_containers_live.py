"""Container tasks live: ``scenarios/containers.yaml`` on a local testbed of two agents
(``testbed up --local 2``) with podman and runc, ``--task-kind scenario``.  Each task runs
its busybox image; its exit status (or an OOM kill) decides its end and names the reason;
its CPU seconds and peak memory come from its control group; the image was on the node, so
its pull took 0 s.  The same scenario in simulation completes every task.

The image is built in the test from the machine's static busybox.  The master runs in this
process (``create_app``), so the tasks can be looked at as the control plane leaves them.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.tests.images import BUSYBOX_IMAGE, build_busybox_image, missing
from agent.tests.test_openapi import ServedApp
from rpiaas.client.client import run_live
from rpiaas.live.shell import LiveRun
from rpiaas.master import create_app, load_master_config
from rpiaas.master.keys import REGISTRY
from rpiaas.model import Task
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate
from rpiaas.testbed.local import LocalTestbed, start_local_testbed
from rpiaas.testbed.state import TOKENS_DIR

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SCENARIO = Path(__file__).parents[2] / "scenarios" / "containers.yaml"


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTestbed]:
    lacking = missing()
    if lacking:
        pytest.skip(lacking)
    build_busybox_image(BUSYBOX_IMAGE)
    with start_local_testbed(tmp_path_factory.mktemp("tb"), 2, poll_interval_s=0.25) as tb:
        yield tb


def test_the_container_scenario_runs_live_held_to_its_limits(
        testbed: LocalTestbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ended: dict[int, Task] = {}
    own = LiveRun.task_final

    def keep(self: LiveRun, task: Task) -> None:
        own(self, task)
        ended[task.id] = task

    monkeypatch.setattr(LiveRun, "task_final", keep)
    scenario = load_scenario(SCENARIO)
    config = load_master_config(testbed.dir / "master.yaml")
    config = dataclasses.replace(config, runs_dir=str(tmp_path / "runs"),
                                 store=str(tmp_path / "in-process-master.db"))
    t0 = time.monotonic()
    with ServedApp(create_app(config)) as master:
        deadline = time.monotonic() + 10
        while not all(e.online for e in master.apps[0][REGISTRY]):
            assert time.monotonic() < deadline, "the nodes did not come online"
            time.sleep(0.05)
        _, run_dir = run_live(scenario, master.url, testbed.master_token, tmp_path / "live",
                              task_kind="scenario", quiet=True)
    print(f"the container scenario ran live in {time.monotonic() - t0:.1f} s")

    # the agents' own documents: the pull each measured (0: the image was on the node)
    pulls: dict[int, float] = {}
    for name, agent in testbed.agents.items():
        token = (testbed.dir / TOKENS_DIR / f"{name}.token").read_text().strip()
        req = urllib.request.Request(agent.url + "/tasks", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            for doc in json.loads(resp.read())["tasks"]:
                run_id, task_id, _ = doc["id"].split(".")
                if run_id == run_dir.name:
                    pulls[int(task_id)] = doc["pull_s"]
    got = {i: (t.state.value, t.reason) for i, t in sorted(ended.items())}
    assert got == {0: ("completed", ""), 1: ("completed", ""), 2: ("completed", ""), 3: ("failed", "oom"),
                   4: ("completed", ""), 5: ("completed", ""), 6: ("failed", "exit status 3"),
                   7: ("completed", "")}, got
    for i, t in sorted(ended.items()):
        print(f"task {i}: {t.end_s - t.start_s:.2f} s, cpu_s {t.cpu_s}, peak_mem_mb {t.peak_mem_mb}, "
              f"pull_s {pulls.get(i)}")
        assert t.cpu_s is not None and t.peak_mem_mb is not None, t  # from the task's cgroup
        assert t.peak_mem_mb <= t.mem_mb + 16, t  # its limit held (the group holds the monitor too)
        assert pulls[i] == 0.0  # the image was on every node
    # the two busy loops of task 2 had two cores: up to 2 CPU s a second (with some share of
    # the machine); task 0's one loop had one core, held to one CPU
    for i, cores in ((0, 1), (2, 2)):
        t = ended[i]
        assert t.cpu_s is not None and 0.1 < t.cpu_s <= 1.25 * cores * (t.end_s - t.start_s), t
    assert ended[3].peak_mem_mb is not None and ended[3].peak_mem_mb < 32
    rows = (run_dir / "tasks.csv").read_text().splitlines()
    assert len(rows) == 9 and ",oom," in rows[[r.split(",")[0] for r in rows].index("3")]
    # every container was removed with its task
    names = subprocess.run(["podman", "ps", "--all", "--format", "{{.Names}}", "--filter",
                            f"name=rpiaas-node[12].local.rpiaas.test-[0-9]+-{run_dir.name}[.]"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert names == []


def test_in_simulation_a_container_is_its_modelled_work(tmp_path: Path) -> None:
    summary, _ = simulate(load_scenario(SCENARIO), tmp_path / "sim")
    assert summary["completed"] == 8
