"""Tasks held to their limits (:mod:`rpiaas_agent.cgroups`): a CPU quota, a memory limit whose
kill is ``oom``, CPU time and peak memory from the task's cgroup, nothing left behind.

The first tests read and write the control files of fake cgroup trees under ``tmp_path``: the
v1 layout is this machine's (and is tested for real below), the v2 one is there because no
cgroup v2 host is at hand, so v2 is checked against its documented files only, never a kernel.
The rest use the real cgroup v1 hierarchies of this machine, as root (skipped elsewhere), and
real agent processes on loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from rpiaas_agent.cgroups import (
    ROOT,
    Layout,
    TaskCgroup,
    agent_key,
    detect,
    remove_own,
    remove_stale,
    unavailable,
)
from rpiaas_agent.containers import Engine
from rpiaas_agent.tasks import WORKER_MB

from .helpers import TOKEN, AgentProcess, call, clean_env, gone, start_agent

V1_MOUNTS = """\
24 30 0:21 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
25 24 0:22 / {root}/cpu rw,relatime shared:8 - cgroup cgroup rw,cpu
26 24 0:23 / {root}/cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpuacct
27 24 0:24 / {root}/cpuset rw,relatime shared:10 - cgroup cgroup rw,cpuset
28 24 0:25 / {root}/memory rw,relatime shared:11 - cgroup cgroup rw,memory
29 24 0:26 / {root}/unified rw,relatime shared:12 - cgroup2 cgroup2 rw
"""
COMOUNTED = """\
25 24 0:22 / {root}/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
27 24 0:24 / {root}/cpuset rw,relatime - cgroup cgroup rw,cpuset
28 24 0:25 / {root}/memory rw,relatime - cgroup cgroup rw,memory
"""
V2_MOUNTS = "30 24 0:27 / {root} rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n"


def mountinfo(tmp_path: Path, text: str, root: Path) -> str:
    path = tmp_path / "mountinfo"
    path.write_text(text.format(root=root))
    return str(path)


def v1_tree(tmp_path: Path, text: str = V1_MOUNTS) -> Layout:
    root = tmp_path / "cg"
    for ctrl in ("cpu", "cpuacct", "cpuset", "memory", "unified", "cpu,cpuacct"):
        (root / ctrl).mkdir(parents=True)
    (root / "cpuset" / "cpuset.cpus").write_text("0-3\n")
    (root / "cpuset" / "cpuset.mems").write_text("0\n")
    layout = detect(mountinfo(tmp_path, text, root))
    assert isinstance(layout, Layout), layout
    return layout


# ---------------------------------------------------------------- fake trees
def test_detect_takes_v1_on_a_hybrid_host_and_says_why_there_is_no_layout(tmp_path: Path) -> None:
    layout = v1_tree(tmp_path)
    root = tmp_path / "cg"
    assert layout.version == 1
    assert layout.dirs == {c: str(root / c) for c in ("cpu", "cpuacct", "memory", "cpuset")}
    co = detect(mountinfo(tmp_path, COMOUNTED, root))
    assert isinstance(co, Layout) and co.dirs["cpu"] == co.dirs["cpuacct"] == str(root / "cpu,cpuacct")
    assert len(co.unique_dirs()) == 3  # co-mounted: one hierarchy, joined once
    no_memory = COMOUNTED.replace("rw,memory", "rw,blkio")
    assert detect(mountinfo(tmp_path, no_memory, root)) == "cgroup v1 without the memory controller(s)"
    assert detect(mountinfo(tmp_path, "", root)) == "no cgroup file system is mounted"
    assert detect(str(tmp_path / "absent")).startswith("cannot read ")
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("pids\n")  # a hybrid host's empty v2
    assert detect(mountinfo(tmp_path, V2_MOUNTS, unified)) == "cgroup v2 without the cpu and memory controllers"
    assert unavailable("no cgroup file system is mounted") == "no cgroup file system is mounted"


def test_v1_files_quota_cpuset_memory_usage_and_oom(tmp_path: Path) -> None:
    layout = v1_tree(tmp_path)
    cg = TaskCgroup.create("node1", "run.7.0", 1.5, 96, [2, 3], layout=layout, pid=42)
    assert cg is not None
    assert cg.path("memory") == cg.path("cpu") == f"/{ROOT}/node1@42/run.7.0"
    with pytest.raises(KeyError):
        cg.path("blkio")
    task = {c: Path(layout.dirs[c] + cg.path(c)) for c in layout.dirs}
    assert (task["cpu"] / "cpu.cfs_period_us").read_text() == "100000"
    assert (task["cpu"] / "cpu.cfs_quota_us").read_text() == "150000"
    # weighed as 1.5 processes, and the tree above it as the machine's CPUs, against other work
    assert (task["cpu"] / "cpu.shares").read_text() == "1536"
    assert (task["cpu"].parent / "cpu.shares").read_text() == str(1024 * (os.cpu_count() or 1))
    assert (task["memory"] / "memory.limit_in_bytes").read_text() == str(96 << 20)
    assert (task["cpuset"] / "cpuset.cpus").read_text() == "2,3"
    # every new cpuset level got its parent's CPUs and memory nodes, or v1 takes no process
    agent_dir = task["cpuset"].parent
    assert (agent_dir / "cpuset.cpus").read_text() == "0-3" and (agent_dir / "cpuset.mems").read_text() == "0"
    assert sorted(cg.procs_files()) == sorted(str(task[c] / "cgroup.procs") for c in layout.dirs)

    (task["cpuacct"] / "cpuacct.usage").write_text("2500000000\n")
    (task["memory"] / "memory.max_usage_in_bytes").write_text(f"{80 << 20}\n")
    assert cg.usage() == (2.5, 80.0)
    (task["memory"] / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not cg.oom_killed()
    container = task["memory"] / "libpod-abc"  # a container below the task: v1 counts its kill there
    container.mkdir()
    (container / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert cg.oom_killed()

    unlimited = TaskCgroup.create("node1", "other", 1, None, None, layout=layout, pid=42)
    assert unlimited is not None
    other = Path(layout.dirs["memory"] + unlimited.path())
    assert not (other / "memory.limit_in_bytes").exists()  # mem_mb unset: no memory limit
    # no cpuset asked: the node's CPUs, handed down
    assert (Path(layout.dirs["cpuset"] + unlimited.path()) / "cpuset.cpus").read_text() == "0-3"


def test_v2_files_quota_cpuset_memory_usage_and_oom(tmp_path: Path) -> None:
    """cgroup v2 on a fake tree only: no v2 host exists here, so these are the files the
    kernel's cgroup-v2 documentation names, never checked against a kernel."""
    root = tmp_path / "cg2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    layout = detect(mountinfo(tmp_path, V2_MOUNTS, root))
    assert isinstance(layout, Layout) and layout.version == 2 and layout.unique_dirs() == [str(root)]
    cg = TaskCgroup.create("n", "t", 0.5, 64, [1], layout=layout, pid=7)
    assert cg is not None and cg.path() == f"/{ROOT}/n@7/t"
    task = root / ROOT / "n@7" / "t"
    assert (task / "cpu.max").read_text() == "50000 100000"
    assert (task / "cpu.weight").read_text() == "50"
    assert (task / "memory.max").read_text() == str(64 << 20)
    assert (task / "cpuset.cpus").read_text() == "1"
    for level in (root, root / ROOT, root / ROOT / "n@7"):  # controllers handed down each level
        assert (level / "cgroup.subtree_control").exists()
    assert cg.procs_files() == [str(task / "cgroup.procs")]
    (task / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    (task / "memory.current").write_text(f"{10 << 20}\n")
    assert cg.usage() == (1.5, 10.0)  # before Linux 5.19: no memory.peak, the usage now
    (task / "memory.peak").write_text(f"{70 << 20}\n")
    assert cg.usage() == (1.5, 70.0)
    (task / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert not cg.oom_killed()
    (task / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n")
    assert cg.oom_killed()


def test_agent_key_is_a_safe_directory_name() -> None:
    assert agent_key("node1.local.rpiaas.test", 8080) == "node1.local.rpiaas.test@8080"
    assert agent_key("a/b c@d", 1) == "a_b_c_d@1"
    assert agent_key("..") == f"_@{os.getpid()}"


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------- real cgroups (v1 here)
real = pytest.mark.skipif(bool(unavailable()), reason=f"no cgroups here: {unavailable()}")
BUSY_TWO = "while :; do :; done & a=$!; while :; do :; done & b=$!; sleep {s}; kill $a $b"


@pytest.fixture()
def cgroups() -> Iterator[list[TaskCgroup]]:
    made: list[TaskCgroup] = []
    yield made
    for cg in made:
        cg.remove()
    assert remove_own("cgroups-test")


@real
def test_a_quota_holds_two_busy_loops_to_a_tenth_of_a_cpu(cgroups: list[TaskCgroup]) -> None:
    cg = TaskCgroup.create("cgroups-test", "busy", 0.1, None, None)
    assert cg is not None
    cgroups.append(cg)
    proc = subprocess.Popen(["sh", "-c", BUSY_TWO.format(s=2)], stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: cg.add(os.getpid()))  # in it before the loops fork
    t0 = time.monotonic()
    assert proc.wait(timeout=30) == 0
    wall = time.monotonic() - t0
    cpu_s, _ = cg.usage()
    stat = Path(cg.dir("cpu"), "cpu.stat").read_text()
    throttled = int(stat.split("nr_throttled")[1].split()[0])
    print(f"0.1-core quota, two busy loops: {cpu_s:.3f} CPU s in {wall:.3f} s, throttled {throttled}x")
    assert 0.01 < cpu_s <= 0.1 * 1.25 * wall and throttled > 0, (cpu_s, wall, stat)
    assert cg.remove() and not os.path.exists(cg.dir("cpu"))


@real
def test_stale_task_cgroups_are_killed_and_removed(cgroups: list[TaskCgroup]) -> None:
    gone_pid = dead_pid()
    cg = TaskCgroup.create("cgroups-test", "left", 1, 32, None, pid=gone_pid)  # a dead agent's
    live = TaskCgroup.create("cgroups-test", "mine", 1, 32, None)  # this live one's
    assert cg is not None and live is not None
    cgroups.extend([cg, live])
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    cg.add(proc.pid)
    assert cg.pids() == [proc.pid]
    assert remove_stale("cgroups-test") == [f"cgroups-test@{gone_pid}/left"]
    assert proc.wait(timeout=5) == -signal.SIGKILL
    key = agent_key("cgroups-test", gone_pid)
    assert not any(os.path.exists(os.path.join(d, ROOT, key)) for d in cg.layout.all_dirs())
    assert os.path.isdir(live.dir("memory"))  # a live agent's tasks stay


# ---------------------------------------------------------------- real agents
def finished(agent: AgentProcess, task_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, doc = call(agent, "GET", f"/tasks/{task_id}")
        assert status == 200, doc
        if doc["state"] != "running":
            return dict(doc)
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} still running after {timeout_s} s")


@pytest.fixture()
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    proc = start_agent(tmp_path, "--name", "limits", "--work-dir", str(tmp_path), "--allow-commands",
                       "--cores", "2", env=clean_env(RPIAAS_AGENT_TOKEN=TOKEN))
    try:
        proc.wait_up()
        yield proc
    finally:
        proc.terminate()


@real
@pytest.mark.integration
def test_a_one_core_command_uses_one_cpu_and_an_oversized_one_ends_oom(agent: AgentProcess) -> None:
    status, doc = call(agent, "POST", "/tasks", {"id": "busy", "kind": "command", "cores": 1,
                                                 "argv": ["sh", "-c", BUSY_TWO.format(s=3)]})
    assert status == 201, doc
    assert doc["limits"]["cgroup"] == "v1" and doc["limits"]["cpu_quota_cores"] == 1, doc["limits"]
    busy = finished(agent, "busy")
    wall = busy["ended_s"] - busy["started_s"]
    print(f"1-core command, two busy loops: cpu_s {busy['cpu_s']} in {wall:.3f} s, "
          f"peak_mem_mb {busy['peak_mem_mb']}")
    assert busy["state"] == "completed", busy
    assert 0 < busy["cpu_s"] <= 1.25 * wall, (busy["cpu_s"], wall)

    hog = ("x = b'1' * (256 << 20)\n")  # 256 MiB, every page written
    status, doc = call(agent, "POST", "/tasks", {"id": "hog", "kind": "command", "mem_mb": 32,
                                                 "argv": [sys.executable, "-c", hog]})
    assert status == 201, doc
    assert doc["limits"]["mem_limit_mb"] == 32 + WORKER_MB
    hog_doc = finished(agent, "hog")
    assert hog_doc["state"] == "failed" and hog_doc["reason"] == "oom", hog_doc
    assert "memory limit" in hog_doc["error"] and hog_doc["peak_mem_mb"] <= 32 + WORKER_MB + 1

    # the memory kind holds its mem_mb within the limit (the worker has its allowance)
    status, doc = call(agent, "POST", "/tasks", {"id": "hold", "kind": "memory", "mem_mb": 64,
                                                 "duration_s": 0.3})
    assert status == 201, doc
    hold = finished(agent, "hold")
    assert hold["state"] == "completed" and hold["reason"] is None, hold
    assert 64 <= hold["peak_mem_mb"] <= 64 + WORKER_MB, hold


def _start_an_escaping_command(agent: AgentProcess, tmp_path: Path) -> tuple[dict[str, Any], int]:
    """Start command task ``leave`` on ``agent``, one of whose processes leaves the task's process
    group and session (``setsid``), as a container engine's do; its document and that pid."""
    pid_file = tmp_path / "escaped.pid"
    status, doc = call(agent, "POST", "/tasks", {
        "id": "leave", "kind": "command",
        "argv": ["sh", "-c", f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 60' & sleep 60"]})
    assert status == 201, doc
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.05)
    return doc, int(pid_file.read_text())


@real
@pytest.mark.integration
def test_a_killed_command_takes_what_left_its_group_and_its_cgroup(agent: AgentProcess,
                                                                   tmp_path: Path) -> None:
    doc, escaped = _start_an_escaping_command(agent, tmp_path)
    assert os.getsid(escaped) != os.getsid(doc["pid"])  # out of the task's group and session
    status, doc = call(agent, "DELETE", "/tasks/leave")
    assert status == 200 and doc["state"] == "killed", doc
    deadline = time.monotonic() + 5
    while not gone(escaped):
        assert time.monotonic() < deadline, "the process that left the group outlived its task"
        time.sleep(0.05)
    layout = detect()
    assert isinstance(layout, Layout)
    path = doc["limits"]["path"]
    assert not any(os.path.exists(d + path) for d in layout.unique_dirs())


@real
@pytest.mark.integration
def test_an_agent_removes_the_cgroups_a_killed_one_left(tmp_path: Path) -> None:
    gone_pid = dead_pid()
    left = TaskCgroup.create("restarted", "run.1.0", 1, None, None, pid=gone_pid)
    assert left is not None
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        left.add(orphan.pid)
        agent = start_agent(tmp_path, "--name", "restarted", env=clean_env(RPIAAS_AGENT_TOKEN=TOKEN))
        try:
            agent.wait_up()
            assert orphan.wait(timeout=5) == -signal.SIGKILL
            assert not any(os.path.exists(d + left.path()) for d in left.layout.unique_dirs())
            assert (f"removed the cgroups of 1 task(s) a previous agent left: restarted@{gone_pid}/run.1.0"
                    in agent.log.read_text())
        finally:
            agent.terminate()
        # and an agent that stopped leaves nothing of its own
        key = agent_key("restarted", agent.proc.pid)
        assert not any(os.path.exists(os.path.join(d, ROOT, key)) for d in left.layout.all_dirs())
    finally:
        if orphan.poll() is None:
            orphan.kill()
        left.remove()
    assert not psutil.pid_exists(orphan.pid) or gone(orphan.pid)


# ---------------------------------------------------------------- a container inside
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
# this sandbox forbids raising resource limits: podman must be given ones no higher
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
IMAGE = "localhost/rpiaas-test-cgroups-busybox:latest"
BUSYBOX = "/bin/busybox"


@pytest.fixture(scope="module")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A one-binary image of the static busybox (no registry is reachable here)."""
    import shutil

    if shutil.which("podman") is None or shutil.which("runc") is None or not os.path.exists(BUSYBOX):
        pytest.skip("needs podman, runc and busybox-static")
    root = tmp_path_factory.mktemp("busybox-root")
    (root / "bin").mkdir()
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "cat", "head", "tr", "sleep", "kill"):
        (root / "bin" / applet).symlink_to("busybox")
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["podman", "import", "-", IMAGE], stdin=tar.stdout, check=True, capture_output=True,
                   timeout=120)
    assert tar.wait() == 0
    return IMAGE


def run_in(cg: TaskCgroup, image: str, script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a container below ``cg``, then remove it; its exit status is the one
    the engine recorded, as the agent's runner takes it (:meth:`Engine.ended`): after an OOM
    kill podman's ``run`` may return before the end is recorded ("no such exit code
    (container in state running)", status 127, seen in CI), and its ``--rm`` race the end."""
    name = f"rpiaas-cgroups-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        out = subprocess.run([*PODMAN, "run", "--name", name, "--network", "none", *ULIMITS,
                              "--cgroup-parent", cg.path(), image, "sh", "-c", script],
                             capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        ended = Engine(PODMAN[0], PODMAN[2], "").ended(name)
        if ended is not None:
            out.returncode = ended.exit_status
        return out
    finally:
        subprocess.run([*PODMAN, "rm", "-f", "--ignore", name], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)


@real
@pytest.mark.slow
@pytest.mark.integration
def test_a_container_given_the_path_as_its_parent_counts_inside_the_task(
        cgroups: list[TaskCgroup], busybox_image: str) -> None:
    cg = TaskCgroup.create("cgroups-test", "box", 0.5, 32, None)
    assert cg is not None
    cgroups.append(cg)
    t0 = time.monotonic()
    out = run_in(cg, busybox_image, "cat /proc/self/cgroup; " + BUSY_TWO.format(s=3))
    wall = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    inside = {line.split(":")[1]: line.split(":")[2] for line in out.stdout.splitlines() if line.count(":") >= 2}
    for ctrl in ("cpu", "cpuacct", "memory", "cpuset"):
        assert inside[ctrl].startswith(cg.path() + "/libpod-"), (ctrl, inside)
    cpu_s, peak_mb = cg.usage()
    print(f"container under a 0.5-core quota, two busy loops: {cpu_s:.3f} CPU s in {wall:.3f} s "
          f"(podman's start and end included), peak {peak_mb:.1f} MiB")
    assert 0.05 < cpu_s <= 0.5 * 1.25 * wall
    assert not cg.oom_killed()

    hog = run_in(cg, busybox_image, 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo ${#x}')
    assert hog.returncode == 137, (hog.returncode, hog.stdout, hog.stderr)
    assert cg.oom_killed()  # heard, although podman removed the container's own cgroup
    assert cg.remove()
    assert not any(os.path.exists(d + cg.path()) for d in cg.layout.all_dirs())  # conmon's too


@real
@pytest.mark.integration
def test_a_killed_agent_takes_what_left_its_tasks_groups(tmp_path: Path) -> None:
    """SIGKILL of the agent: each worker hears it (PR_SET_PDEATHSIG) and kills its task's
    cgroup, so a process that left the task's group and session (as a container engine's do)
    dies too, within seconds."""
    agent = start_agent(tmp_path, "--name", "killed", "--work-dir", str(tmp_path), "--allow-commands",
                        env=clean_env(RPIAAS_AGENT_TOKEN=TOKEN))
    try:
        agent.wait_up()
        _, escaped = _start_an_escaping_command(agent, tmp_path)
        agent.proc.kill()
        agent.proc.wait()
        deadline = time.monotonic() + 10
        while not gone(escaped):
            assert time.monotonic() < deadline, "a process of the task outlived its agent by 10 s"
            time.sleep(0.05)
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()
    assert remove_stale("killed") == [f"killed@{agent.proc.pid}/leave"]  # the next agent's sweep
