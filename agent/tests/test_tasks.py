"""Workloads (``/tasks``): each kind runs and ends as reported; kills take whole groups; bad
requests start nothing; ends are pushed, with retries.

Real agent processes where processes matter (runtimes, the agent's death), the
in-process agent for the request checks.  Loopback only.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rpiaas_agent.cgroups import detect, unavailable
from rpiaas_agent.tasks import WORKER
from rpiaas_agent.workload import REFERENCE_OPS_PER_S

from .helpers import (
    TOKEN,
    AgentProcess,
    InProcessAgent,
    agent_command,
    call,
    clean_env,
    free_port,
    gone,
    in_process,
    start_agent,
    task_config,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
# A cpu task's runtime on an idle node is work_core_s / (cores x relative speed), give or
# take this share (checked on its CPU time per core, which other load does not stretch):
# measured on the 2-core development machine, 0.54-0.58 s for 0.5 s expected, on 1 or 2
# cores (+8 to +16 %: the worker's start-up, ~40 ms, and a kernel a little slower in the
# task than in the 0.3 s measurement); with other CPU-heavy work on the machine (VMs, a
# benchmark) a CPU second does less and the speed measured at start differs from the task's:
# 30 % off was seen, and in one CI run 45 %, so the CPU time is also checked against the speed
# measured right after the task, on both CPUs. The bound still catches a task of the wrong size (2x).
CPU_RUNTIME_TOLERANCE = 0.4
# what holds tasks here: cgroups as root (this machine's are v1), else nothing, and why
_LAYOUT = detect()
LIMITS = f"none: {unavailable()}" if unavailable() or isinstance(_LAYOUT, str) else f"cgroup v{_LAYOUT.version}"


def rate_on_both_cpus() -> float:
    """The kernel's single-core rate now, measured on CPUs 0 and 1 at once (the mean)."""
    workers = [subprocess.Popen([sys.executable, "-I", WORKER, "calibrate", "--cpu-ids", str(cpu),
                                 "--seconds", "0.3"], stdout=subprocess.PIPE, text=True)
               for cpu in (0, 1)]
    rates = [float(w.communicate(timeout=30)[0]) for w in workers]
    return sum(rates) / len(rates)


def wait_for(predicate: Any, timeout_s: float = 10.0, step_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"not true after {timeout_s} s")


@pytest.fixture()
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    """A real agent allowing commands, with its speed measured."""
    proc = start_agent(tmp_path, "--work-dir", str(tmp_path), "--allow-commands",
                       env=clean_env(RPIAAS_AGENT_TOKEN=TOKEN))
    try:
        proc.wait_up()
        wait_for(lambda: json.loads(proc.get("/info")[2])["speed"]["relative"])
        yield proc
    finally:
        proc.terminate()


def finished(agent: AgentProcess, task_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    def done() -> Any:
        status, doc = call(agent, "GET", f"/tasks/{task_id}")
        assert status == 200, doc
        return doc if doc["state"] != "running" else None
    result: dict[str, Any] = wait_for(done, timeout_s)
    return result


def runtime(doc: dict[str, Any]) -> float:
    return float(doc["ended_s"] - doc["started_s"])


# ---------------------------------------------------------------- every kind, in a real agent
def test_every_kind_runs_and_ends_as_reported(agent: AgentProcess, tmp_path: Path) -> None:
    status, doc = call(agent, "POST", "/tasks", {"id": "nap", "kind": "sleep", "duration_s": 0.5})
    assert status == 201 and doc["state"] == "running" and doc["ended_s"] is None, doc
    assert len(doc["cpu_ids"]) == 1 and doc["pid"] > 0
    status, doc = call(agent, "POST", "/tasks", {"id": "hold", "kind": "memory", "mem_mb": 64,
                                                 "duration_s": 0.3})
    assert status == 201, doc
    nap, hold = finished(agent, "nap"), finished(agent, "hold")
    for doc in (nap, hold):
        assert doc["state"] == "completed" and doc["exit_status"] == 0 and doc["error"] is None
        assert doc["cpu_s"] < 0.3 and 5 < doc["peak_rss_mb"] < 200
    # the end is when the worker's sleep ended (it says so), not when its exit was seen
    assert abs(runtime(nap) - 0.5) < 0.03, runtime(nap)
    assert hold["peak_rss_mb"] >= 64 and abs(runtime(hold) - 0.3) < 0.1

    status, doc = call(agent, "POST", "/tasks", {"id": "disk", "kind": "io", "io_mb": 4,
                                                 "duration_s": 0.4})
    assert status == 201, doc
    flag = tmp_path / "ran"
    status, doc = call(agent, "POST", "/tasks", {"id": "cmd", "kind": "command",
                                                 "argv": ["touch", str(flag)]})
    assert status == 201, doc
    disk, cmd = finished(agent, "disk"), finished(agent, "cmd")
    assert disk["state"] == "completed" and abs(runtime(disk) - 0.4) < 0.2
    assert not list(tmp_path.glob("rpiaas-task-*"))  # the io file is deleted
    assert cmd["state"] == "completed" and cmd["exit_status"] == 0 and flag.exists()

    relative = json.loads(agent.get("/info")[2])["speed"]["relative"]
    expected_s = 0.5
    status, doc = call(agent, "POST", "/tasks", {"id": "burn", "kind": "cpu", "cores": 2,
                                                 "work_core_s": expected_s * 2 * relative})
    assert status == 201 and sorted(doc["cpu_ids"]) == [0, 1], doc
    burn = finished(agent, "burn")
    assert burn["state"] == "completed" and burn["exit_status"] == 0
    # the CPU time per core is the runtime on an otherwise idle node; a shared test machine
    # may add waiting to the wall time, so that is bounded more loosely
    per_core = burn["cpu_s"] / 2
    # against the speed measured at the agent's start, or, when the machine has changed since,
    # against the speed measured now, on both CPUs at once as the task ran
    expected_now_s = expected_s * relative * REFERENCE_OPS_PER_S / rate_on_both_cpus()
    assert any(abs(per_core - e) <= CPU_RUNTIME_TOLERANCE * e
               for e in (expected_s, expected_now_s)), (burn, expected_now_s)
    # The wall time is at least the CPU time per core (both cores worked at once); no other
    # bound: other processes may hold the CPUs for any while, and the speed the agent measured
    # at its start, on a machine busy then, may be off (a task 30 % quicker was seen)
    assert per_core <= 1.05 * runtime(burn), burn

    status, listing = call(agent, "GET", "/tasks")
    assert status == 200
    ends = sorted(((t["ended_s"], t["id"]) for t in listing["tasks"]), reverse=True)
    assert [t["id"] for t in listing["tasks"]] == [i for _, i in ends]  # the latest end first
    assert {i for _, i in ends} == {"burn", "cmd", "disk", "hold", "nap"}
    assert json.loads(agent.get("/info")[2])["tasks"] == {
        "running": 0, "cores_used": 0, "mem_mb_used": 0, "cores": 2,
        "mem_mb": psutil.virtual_memory().total >> 20, "runner": "process", "limits": LIMITS}


def test_a_killed_agent_takes_its_tasks_along(agent: AgentProcess, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    status, first = call(agent, "POST", "/tasks", {
        "id": "shell", "kind": "command",
        "argv": ["sh", "-c", f"sleep 1000 & echo $! > {pidfile}; wait"]})
    assert status == 201, first
    status, second = call(agent, "POST", "/tasks", {"id": "long", "kind": "memory", "mem_mb": 8,
                                                    "duration_s": 1000})
    assert status == 201, second
    grandchild = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()))
    workers = [first["pid"], second["pid"]]
    everything = [p.pid for w in workers for p in [psutil.Process(w),
                                                   *psutil.Process(w).children(recursive=True)]]
    assert grandchild in everything and len(everything) >= 4
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(10)
    wait_for(lambda: all(gone(pid) for pid in everything), timeout_s=5)


# ---------------------------------------------------------------- in-process: kills, refusals
@pytest.fixture()
def local(tmp_path: Path) -> Iterator[InProcessAgent]:
    """An in-process agent with 2 cores and 100 MB for tasks, commands allowed."""
    with in_process(task_config(tmp_path, cores=2, mem_mb=100, allow_commands=True)) as a:
        while a.get("/info").json()["speed"]["relative"] is None:  # its process is a child too
            a.sleep(0.05)
        yield a


def children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if not gone(p.pid)]


def test_delete_kills_the_whole_group(local: InProcessAgent, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    r = local.request("POST", "/tasks", headers=AUTH, json={
        "id": "group", "kind": "command",
        "argv": ["sh", "-c", f"sleep 1000 & echo $! > {pidfile}; wait"]})
    assert r.status == 201 and r.headers["Location"] == "/tasks/group", r.text
    worker = r.json()["pid"]
    while not pidfile.exists() or not pidfile.read_text().strip():
        local.sleep(0.02)
    grandchild = int(pidfile.read_text())
    assert not gone(worker) and not gone(grandchild)
    r = local.request("DELETE", "/tasks/group", headers=AUTH)
    assert r.status == 200 and r.json()["state"] == "killed", r.text
    assert r.json()["error"] == "killed on request" and r.json()["ended_s"] is not None
    wait_for(lambda: gone(worker) and gone(grandchild), timeout_s=3)
    # deleting it again just says how it ended; an unknown task is 404
    again = local.request("DELETE", "/tasks/group", headers=AUTH)
    assert again.status == 200 and again.json() == r.json()
    assert local.request("DELETE", "/tasks/nothing", headers=AUTH).status == 404
    assert local.get("/tasks/nothing", headers=AUTH).status == 404


def test_a_command_gets_its_env_and_never_the_agents_settings(
        local: InProcessAgent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPIAAS_AGENT_TOKEN", "not-for-tasks")
    out = tmp_path / "env.txt"
    r = local.request("POST", "/tasks", headers=AUTH, json={
        "id": "env", "kind": "command", "env": {"MODE": "fast", "RPIAAS_RANK": "0"},
        "argv": ["sh", "-c", f'echo "$MODE/$RPIAAS_RANK/${{RPIAAS_AGENT_TOKEN:-none}}" > {out}']})
    assert r.status == 201, r.text
    wait_for(lambda: local.get("/tasks/env", headers=AUTH).json()["state"] != "running", timeout_s=10)
    assert local.get("/tasks/env", headers=AUTH).json()["state"] == "completed"
    assert out.read_text() == "fast/0/none\n"


def test_admission_within_cores_and_memory(local: InProcessAgent) -> None:
    def post(body: dict[str, Any]) -> Any:
        return local.request("POST", "/tasks", headers=AUTH, json=body)

    assert post({"id": "a", "kind": "sleep", "duration_s": 60, "mem_mb": 80}).status == 201
    r = post({"id": "b", "kind": "sleep", "duration_s": 60, "mem_mb": 30})
    assert r.status == 409 and "80 of 100 mem_mb" not in r.json()["error"]
    assert "free now: 1 of 2 cores, 20 of 100 mem_mb" in r.json()["error"], r.text
    r = post({"id": "b", "kind": "sleep", "duration_s": 60, "cores": 2})
    assert r.status == 409 and "1 of 2 cores" in r.json()["error"]
    assert post({"id": "b", "kind": "sleep", "duration_s": 60, "mem_mb": 20}).status == 201
    r = post({"id": "c", "kind": "sleep", "duration_s": 0.1})
    assert r.status == 409 and "0 of 2 cores" in r.json()["error"]
    r = post({"id": "a", "kind": "sleep", "duration_s": 0.1})  # the id is taken: 409 before room
    assert r.status == 409 and "exists already" in r.json()["error"]
    info = local.get("/info").json()["tasks"]
    assert info == {"running": 2, "cores_used": 2, "mem_mb_used": 100, "cores": 2, "mem_mb": 100,
                    "runner": "process", "limits": LIMITS}
    assert {t["id"] for t in local.get("/tasks", headers=AUTH).json()["tasks"]} == {"a", "b"}
    for task_id in ("a", "b"):
        assert local.request("DELETE", f"/tasks/{task_id}", headers=AUTH).json()["state"] == "killed"
    assert post({"id": "c", "kind": "sleep", "duration_s": 0.1, "cores": 2}).status == 201


def test_command_tasks_need_the_flag(tmp_path: Path) -> None:
    with in_process(task_config(tmp_path)) as a:
        while a.get("/info").json()["speed"]["relative"] is None:
            a.sleep(0.05)
        r = a.request("POST", "/tasks", headers=AUTH,
                      json={"id": "x", "kind": "command", "argv": ["true"]})
        assert r.status == 403 and "allow_commands" in r.json()["error"], r.text
        assert a.get("/tasks", headers=AUTH).json() == {"tasks": []} and not children()


BAD = [  # (body, the field the error names)
    ({"id": "x", "kind": "dance", "duration_s": 1}, "kind"),
    ({"id": "x", "duration_s": 1}, "kind"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "cores": -1}, "cores"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "cores": 0}, "cores"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "cores": 10**12}, "cores"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "cores": 3}, "cores"),  # the node has 2
    ({"id": "x", "kind": "sleep", "duration_s": 1, "cores": 1.5}, "cores"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "cores": True}, "cores"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "mem_mb": -1}, "mem_mb"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "mem_mb": 1e12}, "mem_mb"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "mem_mb": 101}, "mem_mb"),  # the node has 100
    ({"id": "x", "kind": "memory", "duration_s": 1, "mem_mb": 0}, "mem_mb"),
    ({"id": "x", "kind": "sleep", "duration_s": -1}, "duration_s"),
    ({"id": "x", "kind": "sleep", "duration_s": 0}, "duration_s"),
    ({"id": "x", "kind": "sleep", "duration_s": 31 * 86400}, "duration_s"),
    ({"id": "x", "kind": "sleep", "duration_s": "1"}, "duration_s"),
    ({"id": "x", "kind": "sleep"}, "duration_s"),
    ({"id": "x", "kind": "cpu", "work_core_s": 0}, "work_core_s"),
    ({"id": "x", "kind": "io", "duration_s": 1}, "io_mb"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "work_core_s": 1}, "work_core_s"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "argv": ["true"]}, "argv"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "colour": "red"}, "colour"),
    ({"id": "x", "kind": "command", "argv": []}, "argv"),
    ({"id": "x", "kind": "command", "argv": ["true", 1]}, "argv[1]"),
    ({"id": "x", "kind": "command", "argv": ["true"], "env": ["A=1"]}, "env"),
    ({"id": "x", "kind": "command", "argv": ["true"], "env": {"1A": "x"}}, "env"),
    ({"id": "x", "kind": "command", "argv": ["true"], "env": {"RPIAAS_AGENT_TOKEN": "x"}}, "env"),
    ({"id": "x", "kind": "command", "argv": ["true"], "env": {"A": 1}}, "env.A"),
    ({"id": "x", "kind": "command", "argv": ["true"], "env": {"A": "x" * 4097}}, "env.A"),
    ({"id": "x", "kind": "command", "argv": ["true"], "env": {f"V{i}": "" for i in range(65)}}, "env"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "env": {"A": "1"}}, "env"),
    ({"id": "", "kind": "sleep", "duration_s": 1}, "id"),
    ({"id": "a b", "kind": "sleep", "duration_s": 1}, "id"),
    ({"id": "x" * 129, "kind": "sleep", "duration_s": 1}, "id"),
    ({"id": "a/b", "kind": "sleep", "duration_s": 1}, "id"),
    ({"id": 7, "kind": "sleep", "duration_s": 1}, "id"),
    ({"kind": "sleep", "duration_s": 1}, "id"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "notify_url": "ftp://127.0.0.1/"}, "notify_url"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "notify_url": "not a url"}, "notify_url"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "notify_url": "http://"}, "notify_url"),
    ({"id": "x", "kind": "sleep", "duration_s": 1, "notify_url": 5}, "notify_url"),
    ([{"id": "x", "kind": "sleep", "duration_s": 1}], "body"),
    ("sleep", "body"),
]


@pytest.mark.parametrize(("body", "field"), BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
def test_bad_requests_start_nothing(local: InProcessAgent, body: Any, field: str) -> None:
    r = local.request("POST", "/tasks", headers=AUTH, json=body)
    assert r.status == 400, r.text
    assert r.json() == {"error": r.json()["error"], "status": 400}
    assert r.json()["error"].startswith(field + ":"), r.json()["error"]
    assert local.get("/tasks", headers=AUTH).json() == {"tasks": []} and not children()


@pytest.mark.parametrize(("data", "headers", "status"), [
    (b'{"id": "x", "kind": "sleep", "duration_s": 1', {}, 400),  # malformed
    (b'{"id": "x", "kind": "sleep", "duration_s": NaN}', {}, 400),  # not JSON, though Python reads it
    (b'\xff\xfe', {}, 400),
    (b'{"id": "x", "kind": "sleep", "duration_s": 1}', {"Content-Type": "text/plain"}, 415),
    (b'{"id": "x", "kind": "sleep", "duration_s": 1}', {"Authorization": "Bearer wrong"}, 401),
    (b'{"id": "x", "kind": "sleep", "duration_s": 1}', {"Authorization": ""}, 401),
    (b'{"id": "x", "kind": "sleep", "argv": ["' + b"a" * 70000 + b'"]}', {}, 413),
])
def test_bad_bodies_and_tokens_start_nothing(local: InProcessAgent, data: bytes,
                                             headers: dict[str, str], status: int) -> None:
    sent = {"Content-Type": "application/json", **AUTH, **headers}
    r = local.request("POST", "/tasks", data=data, headers=sent)
    assert r.status == status, r.text
    assert r.json() == {"error": r.json()["error"], "status": status}
    assert local.get("/tasks", headers=AUTH).json() == {"tasks": []} and not children()


def test_every_tasks_endpoint_needs_the_token(local: InProcessAgent) -> None:
    for method, path in (("GET", "/tasks"), ("POST", "/tasks"), ("GET", "/tasks/x"),
                         ("DELETE", "/tasks/x")):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = local.request(method, path, headers=headers,
                              json={"id": "x", "kind": "sleep", "duration_s": 1})
            assert r.status == 401, (method, path, r.text)
    assert local.get("/tasks", headers=AUTH).json() == {"tasks": []} and not children()


# ---------------------------------------------------------------- the end, pushed
class Receiver:
    """A master's end of the push: answers ``failures`` times 503, then 204."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[float, str, dict[str, Any]]] = []
        self.app = web.Application()
        self.app.router.add_post("/ends", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((time.monotonic(), request.headers.get("Authorization", ""),
                              await request.json()))
        if len(self.received) <= self.failures:
            return web.Response(status=503)
        return web.Response(status=204)


def _push_and_wait(local: InProcessAgent, port: int, receiver: Receiver,
                   listen_after_s: float) -> None:
    server = TestServer(receiver.app, host="127.0.0.1", port=port)
    url = f"http://127.0.0.1:{port}/ends"
    r = local.request("POST", "/tasks", headers=AUTH, json={
        "id": "pushed", "kind": "sleep", "duration_s": 0.1, "notify_url": url})
    assert r.status == 201, r.text
    try:
        local.sleep(listen_after_s)
        local.loop.run_until_complete(server.start_server())
        deadline = time.monotonic() + 10
        while len(receiver.received) <= receiver.failures and time.monotonic() < deadline:
            local.sleep(0.05)
    finally:
        local.loop.run_until_complete(server.close())
    assert len(receiver.received) == receiver.failures + 1
    final = local.get("/tasks/pushed", headers=AUTH).json()
    for _, authorization, doc in receiver.received:
        assert authorization == f"Bearer {TOKEN}" and doc == final
    assert final["state"] == "completed"


def test_the_end_is_pushed_again_after_errors(local: InProcessAgent) -> None:
    receiver = Receiver(failures=2)
    _push_and_wait(local, free_port(), receiver, listen_after_s=0)
    times = [t for t, _, _ in receiver.received]
    assert 0.4 < times[1] - times[0] < 0.8 and 0.9 < times[2] - times[1] < 1.3  # 0.5 s, doubling


def test_the_end_is_pushed_once_the_master_listens(local: InProcessAgent) -> None:
    receiver = Receiver(failures=0)
    _push_and_wait(local, free_port(), receiver, listen_after_s=0.8)  # the first two tries fail
    assert len(receiver.received) == 1


def test_the_agent_stops_its_tasks_on_sigterm(tmp_path: Path) -> None:
    agent = start_agent(tmp_path, "--work-dir", str(tmp_path),
                        env=clean_env(RPIAAS_AGENT_TOKEN=TOKEN))
    try:
        agent.wait_up()
        status, doc = call(agent, "POST", "/tasks", {"id": "s", "kind": "sleep",
                                                     "duration_s": 1000})
        assert status == 201, doc
    finally:
        assert agent.terminate() == 0
    wait_for(lambda: gone(doc["pid"]), timeout_s=3)
    log = agent.log.read_text()
    assert "task s killed" in log and "Traceback" not in log



def test_an_agent_killed_while_it_measures_its_speed_takes_nobody_else_along(tmp_path: Path) -> None:
    """The speed measurement runs in a group of its own: the agent's death kills it, not the
    group the agent was started in (here a shell's, standing for whoever started the agent)."""
    port = free_port()
    cmd = " ".join(shlex.quote(c) for c in [*agent_command(), "--host", "127.0.0.1", "--port",
                                               str(port), "--sysfs-root", str(tmp_path),
                                               "--vcgencmd", ""])
    shell = subprocess.Popen(["sh", "-c", f"{cmd} & echo $! > {tmp_path}/agent.pid; wait; sleep 30"],
                             start_new_session=True, env=clean_env(), cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid_file = tmp_path / "agent.pid"
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
        agent_pid = int(pid_file.read_text())
        # the agent measures its speed (0.3 s) as soon as it starts: kill it in the middle
        wait_for(lambda: any("calibrate" in " ".join(p.cmdline())
                             for p in psutil.Process(agent_pid).children()), step_s=0.01)
        os.kill(agent_pid, signal.SIGKILL)
        time.sleep(1.0)
        assert shell.poll() is None, "the shell that started the agent was killed with it"
        assert not [p for p in psutil.process_iter(["cmdline"])
                    if "calibrate" in " ".join(p.info["cmdline"] or [])
                    and str(agent_pid) in " ".join(p.info["cmdline"] or [])]
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()


def test_the_worker_report_gives_the_peak_and_the_end_of_the_work() -> None:
    """A worker's last line is its report; a worker that said nothing (SIGKILL) gives none."""
    import subprocess
    import sys

    from rpiaas_agent.tasks import _read_report

    script = ("import json, time; print('noise'); "
              "print(json.dumps({'peak_rss_kib': 2048, 'done_mono': 12.5}), flush=True)")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    proc.wait()
    assert _read_report(proc) == (2048, 12.5)
    silent = subprocess.Popen([sys.executable, "-c", "pass"], stdout=subprocess.PIPE)
    silent.wait()
    assert _read_report(silent) == (None, None)
