"""Container tasks on a real engine (podman with runc): they end as their container ends, are held
to their cores and memory, keep their output, and never outlive their task or their agent.

The image is built here, once per session, from the static busybox on this machine (no
registry is needed).  Real agent processes on loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpiaas_agent.containers import AGENT_LABEL, OUTPUT_MAX_BYTES, TASK_LABEL, Engine

from .helpers import TOKEN, AgentProcess, call, clean_env, free_port, start_agent
from .images import BUSYBOX_IMAGE, build_busybox_image, missing

pytestmark = pytest.mark.integration

IMAGE = BUSYBOX_IMAGE


def podman(*args: str, check: bool = True) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {done.stderr}")
    return done.stdout


@pytest.fixture(scope="session")
def image() -> str:
    """The busybox image, built from this machine's static busybox once per session."""
    lacking = missing()
    if lacking:
        pytest.skip(lacking)
    build_busybox_image(IMAGE)
    return IMAGE


def wait_for(predicate: Any, timeout_s: float = 10.0, step_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"not true after {timeout_s} s")


def containers(label: str) -> list[str]:
    return podman("ps", "--all", "--quiet", "--filter", f"label={label}").split()


def launch(tmp_path: Path, port: int | None = None) -> AgentProcess:
    port = free_port() if port is None else port
    proc = start_agent(tmp_path, "--work-dir", str(tmp_path), "--name", "ctest", "--container-engine",
                       "podman", "--cores", "4", "--oversubscribe", env=clean_env(RPIAAS_AGENT_TOKEN=TOKEN), port=port)
    proc.wait_up()
    return proc


@pytest.fixture()
def agent(tmp_path: Path, image: str) -> Iterator[AgentProcess]:
    proc = launch(tmp_path)
    try:
        yield proc
    finally:
        proc.terminate(30)


def key(agent: AgentProcess) -> str:
    return f"{AGENT_LABEL}=ctest-{agent.port}"


def finished(agent: AgentProcess, task_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    def done() -> Any:
        status, doc = call(agent, "GET", f"/tasks/{task_id}")
        assert status == 200, doc
        return doc if doc["state"] != "running" else None
    result: dict[str, Any] = wait_for(done, timeout_s)
    return result


def start(agent: AgentProcess, **body: Any) -> dict[str, Any]:
    status, doc = call(agent, "POST", "/tasks", {"kind": "container", "image": IMAGE, **body})
    assert status == 201, doc
    return dict(doc)


def test_a_task_that_fits_completes_with_its_output_and_its_use(agent: AgentProcess) -> None:
    start(agent, id="fits", mem_mb=64, argv=["sh", "-c", "echo hello $WHO; head -c 8000000 /dev/zero >/dev/null"],
          env={"WHO": "there"})
    start(agent, id="three", argv=["sh", "-c", "echo going; exit 3"])
    start(agent, id="chatty", argv=["sh", "-c", "yes 0123456789 | head -c 3000000"])
    fits, three, chatty = (finished(agent, i) for i in ("fits", "three", "chatty"))
    assert fits["state"] == "completed" and fits["exit_status"] == 0 and fits["error"] is None, fits
    assert fits["pull_s"] == 0  # the image was here
    assert Path(fits["output_file"]).read_text() == "hello there\n"
    # the group's: the container's processes (and its engine monitor), a few MiB and a little CPU
    assert 0 <= fits["cpu_s"] < 2 and 0.1 < fits["peak_mem_mb"] < 64, fits
    # the task's cgroup held it too: the quota of its core and its memory
    assert fits["limits"]["cpu_quota_cores"] == 1 and fits["limits"]["mem_limit_mb"] == 64, fits
    assert fits["started_s"] <= fits["ended_s"]
    assert three["state"] == "failed" and three["exit_status"] == 3 and three["error"] == "exit status 3"
    out = Path(chatty["output_file"]).read_bytes()  # bounded: the first MiB, then a note
    assert out.startswith(b"0123456789\n") and out[:OUTPUT_MAX_BYTES].count(b"\n") == OUTPUT_MAX_BYTES // 11
    dropped = 3000000 - OUTPUT_MAX_BYTES
    assert out[OUTPUT_MAX_BYTES:] == f"\n[rpiaas-agent: {dropped} more bytes of output dropped]\n".encode()
    assert containers(key(agent)) == []  # removed once ended


def test_a_task_that_outgrows_its_memory_fails_with_reason_oom(agent: AgentProcess) -> None:
    start(agent, id="greedy", mem_mb=16, argv=["sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo done"])
    doc = finished(agent, "greedy")
    assert doc["state"] == "failed" and doc["reason"] == "oom", doc
    assert doc["error"].startswith("killed by its memory limit (oom)"), doc
    # the limit held: far below the 64 MB asked (the group holds the engine monitor too, a few MiB)
    assert doc["peak_mem_mb"] < 32, doc
    assert "done" not in Path(doc["output_file"]).read_text()


def test_a_one_core_task_uses_at_most_one_cpu(agent: AgentProcess) -> None:
    spin = "timeout 3 sh -c 'while :; do :; done'"
    start(agent, id="spin", cores=1, argv=["sh", "-c", f"{spin} & {spin}; wait"])
    doc = finished(agent, "spin")
    wall_s = doc["ended_s"] - doc["started_s"]
    print(f"two busy loops in a 1-core container: {doc['cpu_s']:.3f} CPU s over {wall_s:.3f} s")
    assert doc["state"] == "completed", doc
    assert doc["cpu_s"] <= 1.25 * wall_s, doc
    # it did spin and was measured (the share it got depends on what else the machine runs)
    assert doc["cpu_s"] >= 0.1, doc


def test_a_killed_task_leaves_no_container(agent: AgentProcess) -> None:
    start(agent, id="long", argv=["sleep", "1000"])
    wait_for(lambda: containers(f"{TASK_LABEL}=long"))
    status, doc = call(agent, "DELETE", "/tasks/long")
    assert status == 200 and doc["state"] == "killed" and doc["error"] == "killed on request", doc
    assert containers(f"{TASK_LABEL}=long") == [] and containers(key(agent)) == []


def test_no_container_outlives_its_agent_by_10_s(tmp_path: Path, image: str) -> None:
    agent = launch(tmp_path)
    try:
        for i in range(2):
            start(agent, id=f"orphan{i}", argv=["sleep", "1000"])
        wait_for(lambda: len(containers(key(agent))) == 2, 20)
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait(10)
        t0 = time.monotonic()
        wait_for(lambda: containers(key(agent)) == [], 10.0, 0.1)
        print(f"containers gone {time.monotonic() - t0:.2f} s after the agent's SIGKILL")
    finally:
        agent.terminate()
        for c in containers(key(agent)):
            podman("rm", "--force", "--time", "0", c, check=False)


def test_an_agent_removes_what_an_earlier_agent_of_its_node_left(tmp_path: Path, image: str) -> None:
    port = free_port()
    label = f"{AGENT_LABEL}=ctest-{port}"
    podman("create", "--label", label, "--runtime", "runc", image, "sleep", "1000")
    agent = launch(tmp_path, port)
    try:
        assert containers(label) != []
        start(agent, id="first", argv=["true"])  # the leftovers go before the agent's first container
        assert finished(agent, "first")["state"] == "completed"
        assert containers(label) == []
    finally:
        agent.terminate(30)


def test_an_image_that_cannot_be_pulled_fails_the_task(agent: AgentProcess) -> None:
    start(agent, id="nowhere", image="localhost:1/rpiaas-test/absent:1", argv=["true"])
    doc = finished(agent, "nowhere", 120)
    assert doc["state"] == "failed" and doc["error"].startswith("cannot pull localhost:1/rpiaas-test/absent:1: "), doc
    assert doc["pull_s"] is None and doc["exit_status"] is None  # it never ran


def test_no_engine_refuses_container_tasks(tmp_path: Path) -> None:
    proc = start_agent(tmp_path, "--work-dir", str(tmp_path), "--container-engine", "none",
                       env=clean_env(RPIAAS_AGENT_TOKEN=TOKEN))
    try:
        proc.wait_up()
        status, doc = call(proc, "POST", "/tasks", {"id": "x", "kind": "container", "image": IMAGE})
        assert status == 403 and "no container engine" in doc["error"], doc
    finally:
        proc.terminate()


def test_env_values_stay_off_command_lines(agent: AgentProcess) -> None:
    start(agent, id="secret", argv=["sh", "-c", "echo $TOKEN_X; sleep 30"], env={"TOKEN_X": "s3cr3t-value"})
    wait_for(lambda: containers(f"{TASK_LABEL}=secret"))
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            assert b"s3cr3t-value" not in cmdline, cmdline
    status, doc = call(agent, "DELETE", "/tasks/secret")
    assert status == 200 and Path(doc["output_file"]).read_text() == "s3cr3t-value\n", doc


def test_the_run_command_holds_the_task_to_what_it_was_given() -> None:
    engine = Engine("/usr/bin/podman", "runc", "pi-01-8081")
    common: dict[str, Any] = {"name": "n", "task_id": "t1", "image": "localhost/x:1", "env": (("A", "b"),),
                              "cgroup_parent": "/rpiaas/pi-01@7/t1"}
    cmd = engine.run_command(argv=["sh", "-c", "true"], cores=2, cpuset=[2, 3], mem_mb=64, network=False, **common)
    flags = " ".join(cmd)
    for part in ("--cpus 2", "--cpuset-cpus 2,3", f"--memory {64 << 20} --memory-swap {64 << 20}",
                 "--network none", "--runtime runc", "--ulimit nofile=1024:1024 --ulimit nproc=1024:1024",
                 "--label org.rpiaas.agent=pi-01-8081 --label org.rpiaas.task=t1", "--pull never",
                 "--cgroup-parent /rpiaas/pi-01@7/t1", "--env A localhost/x:1 sh -c true"):
        assert part in flags, (part, flags)
    # shared CPUs: the quota alone; no memory asked: no limit; a network when asked
    cmd = Engine("docker", "", "k").run_command(argv=None, cores=1, cpuset=None, mem_mb=0, network=True, **common)
    assert cmd[-1] == "localhost/x:1" and "--cpus" in cmd
    assert not {"--cpuset-cpus", "--memory", "--network", "--runtime"} & set(cmd), cmd
