"""Emulated nodes: an agent that reports its own tasks' CPU and memory against its node type's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rpiaas_agent.emulation import EmulatedSampler, group_usage, spread_over_cores

from .helpers import TOKEN, call, gone, in_process, start_agent, task_config
from .test_app import check_info, check_metrics

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20


# ---------------------------------------------------------------- the accounting, on a fake /proc
def _stat(proc: Path, pid: int, pgrp: int, utime: int, stime: int = 0, cutime: int = 0,
          rss_pages: int = 0, comm: str = "py (x) y") -> None:
    """A /proc/<pid>/stat line with the fields the sampler reads (the rest 0)."""
    fields = ["S", "1", str(pgrp)] + ["0"] * 8 + [str(utime), str(stime), str(cutime), "0"] \
        + ["0"] * 6 + [str(rss_pages)] + ["0"] * 20
    (proc / str(pid)).mkdir(parents=True, exist_ok=True)
    (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")


@dataclass
class _Spec:
    id: str


@dataclass
class _Task:
    spec: _Spec
    pid: int | None
    state: str = "running"
    cpu_s: float | None = None


@dataclass
class _Manager:
    cores: int = 4
    mem_mb: float = 4096
    ended_cpu_s: float = 0.0  # the task manager's rusage of the tasks that ended
    running: list[_Task] = field(default_factory=list)
    finished: list[_Task] = field(default_factory=list)

    def tasks(self) -> list[Any]:
        return [*self.running, *self.finished]


def test_spread_over_cores() -> None:
    assert spread_over_cores(0.0, 2) == [0.0, 0.0]
    assert spread_over_cores(1.5, 4) == [1.0, 0.5, 0.0, 0.0]
    assert spread_over_cores(9.0, 2) == [1.0, 1.0]  # never above 1 per core


def test_group_usage_sums_a_groups_processes(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _stat(proc, 100, 100, utime=2 * TICKS, stime=TICKS, rss_pages=10)
    _stat(proc, 101, 100, utime=TICKS, cutime=TICKS, rss_pages=5)  # a child, and its waited child
    _stat(proc, 200, 200, utime=50 * TICKS, rss_pages=1000)  # another group: not ours
    (proc / "self").mkdir()
    (proc / "102").mkdir()  # gone between listing and reading: no stat
    usage = group_usage([100, 300], proc)
    assert usage[100].cpu_s == pytest.approx(5.0) and usage[100].rss_bytes == 15 * PAGE
    assert usage[300].cpu_s == 0 and usage[300].rss_bytes == 0


def test_sampler_counts_its_tasks_alone_to_their_end(tmp_path: Path) -> None:
    """Usage per emulated core from the tasks' CPU seconds; an ended task counted once, to its end."""
    proc = tmp_path / "proc"
    _stat(proc, 999, 999, utime=500 * TICKS, rss_pages=100_000)  # the host's other work
    tasks = _Manager()
    now = [0.0]
    s = EmulatedSampler(1.0, tasks, proc=str(proc), clock=lambda: now[0])
    assert s.cores == 4
    s.sample()
    assert s.usage_ratio is None  # the first sample is the reference
    a = _Task(_Spec("a"), 100)
    tasks.running.append(a)
    _stat(proc, 100, 100, utime=0, rss_pages=256)
    now[0] = 1.0
    s.sample()
    assert s.usage_ratio == [0.0] * 4
    assert s.memory() == {"total_bytes": 4096 * MIB, "available_bytes": 4096 * MIB - 256 * PAGE,
                          "used_bytes": 256 * PAGE, "used_ratio": round(256 * PAGE / (4096 * MIB), 4)}
    _stat(proc, 100, 100, utime=2 * TICKS)  # two cores busy for a second
    now[0] = 2.0
    s.sample()
    assert s.usage_ratio == [1.0, 1.0, 0.0, 0.0]
    # reaped, not yet marked ended: its group reads nothing, the CPU seen is kept
    (proc / "100" / "stat").unlink()
    now[0] = 3.0
    s.sample()
    assert s.usage_ratio == [0.0] * 4 and s.memory()["used_bytes"] == 0
    # ended with 2.5 CPU s in all: the half second not yet seen counts now, once
    a.state, a.cpu_s = "completed", 2.5
    tasks.ended_cpu_s += 2.5
    tasks.running.remove(a)
    tasks.finished.append(a)
    now[0] = 4.0
    s.sample()
    assert s.usage_ratio == [0.5, 0.0, 0.0, 0.0]
    now[0] = 5.0
    s.sample()
    assert s.usage_ratio == [0.0] * 4
    # a task that started and ended between two samples, and was forgotten (no finished list)
    b = _Task(_Spec("b"), 101)
    tasks.running.append(b)
    _stat(proc, 101, 101, utime=TICKS)
    now[0] = 6.0
    s.sample()
    assert s.usage_ratio == [1.0, 0.0, 0.0, 0.0]
    tasks.running.remove(b)
    now[0] = 7.0
    s.sample()
    assert s.usage_ratio == [0.0] * 4


def test_group_usage_of_a_real_process_group(tmp_path: Path) -> None:
    """A real busy process in a group of its own: its CPU time grows, its memory is seen."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        first = group_usage([busy.pid])[busy.pid]
        time.sleep(0.5)
        later = group_usage([busy.pid])[busy.pid]
        assert later.cpu_s > first.cpu_s and later.rss_bytes > MIB
        assert group_usage([os.getpgid(0)])[os.getpgid(0)].cpu_s > 0  # this test's own group
    finally:
        busy.kill()
        busy.wait()


# ---------------------------------------------------------------- the agent
def test_emulated_agent_reports_its_node_in_process(tmp_path: Path) -> None:
    """/info and /metrics of an emulated 4-core 512 MB node: its sizes, no host load, marked."""
    config = task_config(tmp_path, emulate=True, cores=4, mem_mb=512, oversubscribe=True)
    with in_process(config) as agent:
        agent.sleep(0.35)
        info = agent.get("/info").json()
        check_info(info)
        assert info["emulated"] is True and info["load"] is None
        assert info["cpu"]["cores"] == 4 and info["cpu"]["usage_ratio"] == [0.0] * 4
        assert info["memory"]["total_bytes"] == 512 * MIB and info["memory"]["used_bytes"] == 0
        families = check_metrics(agent.get("/metrics").text, info)
        assert families["rpiaas_emulated"].value() == 1
        assert families["rpiaas_memory_total_bytes"].value() == 512 * MIB
    with in_process(task_config(tmp_path)) as agent:  # the setting off: the machine's readings
        info = agent.get("/info").json()
        assert info["emulated"] is False and info["memory"]["total_bytes"] > 0
        assert info["load"] is not None


def test_two_emulated_agents_report_their_own_load(tmp_path: Path) -> None:
    """Real agent processes on one machine: a busy node and an idle one read differently."""
    args = ("--emulate", "--cores", "4", "--mem-mb", "4096", "--oversubscribe", "--vcgencmd", "",
            "--sample-interval-s", "0.25", "--work-dir", str(tmp_path))
    env = {**os.environ, "RPIAAS_AGENT_TOKEN": TOKEN}
    busy = start_agent(tmp_path, "--name", "busy", *args, env=env)
    idle = start_agent(tmp_path, "--name", "idle", *args, env=env)
    try:
        busy.wait_up()
        idle.wait_up()
        status, task = call(busy, "POST", "/tasks",
                            {"id": "burn", "kind": "cpu", "cores": 1, "work_core_s": 30})
        assert status == 201, task
        busy_means: list[float] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(busy_means) < 4:
            time.sleep(0.5)
            b, i = (call(a, "GET", "/info", token=None)[1] for a in (busy, idle))
            for info in (b, i):
                assert info["emulated"] is True
                assert info["memory"]["total_bytes"] == 4096 * MIB and info["cpu"]["cores"] == 4
            assert i["cpu"]["usage_ratio"] in (None, [0.0] * 4)
            assert i["memory"]["used_bytes"] == 0
            if b["cpu"]["usage_ratio_mean"]:
                busy_means.append(b["cpu"]["usage_ratio_mean"])
                assert b["memory"]["used_bytes"] > MIB  # the worker's resident memory
        # one core of four (its cgroup's quota: at most one of this machine's CPUs), on a machine
        # that may be shared with other work (load 8 on its 2 CPUs left it 0.06-0.09): above idle
        assert len(busy_means) >= 4 and max(busy_means) > 0.03, busy_means
        # at most one CPU of four, within the bound the container tests use (1.25 x): a reading
        # over 0.25 s windows, taken a little late on a loaded machine, may hold a CFS period more
        assert max(busy_means) <= 0.25 * 1.25, busy_means
        status, done = call(busy, "DELETE", "/tasks/burn")
        assert status == 200 and gone(done["pid"])
    finally:
        busy.terminate()
        idle.terminate()


def test_tasks_between_two_samples_count_in_the_cpu_counter(tmp_path: Path) -> None:
    """Short CPU tasks that start and end between two samples (one a minute here): the sampled
    usage never sees them, the counter ``cpu.busy_s`` has each one's whole rusage."""
    config = task_config(tmp_path, emulate=True, cores=2, mem_mb=512, oversubscribe=True,
                         sample_interval_s=60.0)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with in_process(config) as agent:
        agent.sleep(0.1)
        before = agent.get("/info").json()["cpu"]["busy_s"]
        assert before == 0.0  # an emulated node: its tasks' CPU since the agent started
        for k in range(4):
            reply = agent.request("POST", "/tasks", json={"id": f"t{k}", "kind": "cpu", "cores": 1,
                                                          "work_core_s": 0.5}, headers=auth)
            assert reply.status == 201
            deadline = time.monotonic() + 30
            while agent.get(f"/tasks/t{k}", headers=auth).json()["state"] == "running":
                assert time.monotonic() < deadline
                agent.sleep(0.05)
        info = agent.get("/info").json()
        tasks = agent.get("/tasks", headers=auth).json()["tasks"]
    own = sum(t["cpu_s"] for t in tasks)
    assert own > 0.05 and all(t["state"] == "completed" for t in tasks)
    assert info["cpu"]["usage_ratio"] in (None, [0.0, 0.0])  # no sample saw them
    assert info["cpu"]["busy_s"] == pytest.approx(own, abs=0.01)
    assert info["cpu"]["agent_busy_s"] > 0  # the agent's own, apart
