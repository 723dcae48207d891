"""An emulated testbed: a master and N nodes served by ONE process, to test the master at lab scale.

``rpiaas testbed up --emulated N`` writes a cluster of N nodes, the master's
config and tokens as ``--local`` does, then starts one
``rpiaas-agent-emulated`` process (:mod:`rpiaas_agent.emulated`) that serves
every node's agent API, each on its own loopback port with its own token,
and a master that polls them.  A task there is a timer in that process, not
a process of its own (as KWOK's pods are): a live run's ``run.json`` says so
(``live.task_runner: timer``).  The nodes have no power driver (power is
emulated: they stay on).

Nodes come in racks of at most :data:`RACK` (one ``/24`` of loopback each:
rack ``r`` is ``127.r.0.0/24`` and its domain ``rack{r}.emulated.rpiaas.test``),
so a thousand nodes have a thousand addresses, from which their boot reports
come as a Pi's come from its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..auth import node_token
from ..inputs.cluster import load_cluster
from ..inputs.errors import did_you_mean
from ..model import PROFILES
from .plan import HOST, TestbedError, machine
from .procs import (
    Proc,
    agent_env,
    get_json,
    proc_stat,
    start_process,
    stop_all,
    tail,
    wait_online,
    wait_until,
    write_private,
)
from .state import TOKENS_DIR, TestbedFiles, check_not_running, forget_state, keep_out_of_git, write_state

__all__ = ["BUSY_NODES", "EMULATED", "MAX_EMULATED", "RACK", "EmulatedTestbed", "emulated_cluster", "load_emulated",
           "start_emulated_testbed"]

EMULATED = "emulated"  # testbed.json's "kind"
RACK = 250  # nodes per rack: one /24 of loopback each
MAX_EMULATED = 10_000
EMULATOR = "emulator"  # the process's name in testbed.json, status and logs
POLL_TIMEOUT_S, OFFLINE_AFTER = 3.0, 3  # the master's poll_timeout_s and offline_after
BUSY_NODES = 500  # beyond, the default poll interval is 2 s, not 1


@dataclass
class EmulatedTestbed(TestbedFiles):
    """A running emulated testbed: its master, the one process serving its nodes, the node names."""

    __test__ = False

    dir: Path
    master: Proc
    emulator: Proc
    nodes: list[str]
    node_type: str
    cores: int
    mem_mb: int
    started_s: float
    notes: list[str] = field(default_factory=list)
    _popens: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    kind = EMULATED

    @property
    def master_url(self) -> str:
        return self.master.url

    def node_token(self, name: str) -> str:
        return (self.dir / TOKENS_DIR / f"{name}.token").read_text(encoding="utf-8").strip()

    @property
    def agents(self) -> dict[str, Proc]:
        """No process per node: ``status`` lists the emulator (see :meth:`processes`)."""
        return {}

    def processes(self) -> list[Proc]:
        """The master first, then the emulator."""
        return [self.master, self.emulator]

    def summary(self, timeout_s: float = 3.0) -> dict[str, Any]:
        """The master's ``GET /api/v1/summary``; OSError if it does not answer."""
        data = get_json(self.master_url + "/api/v1/summary", timeout_s)
        if not isinstance(data, dict):
            raise ValueError("the summary is not an object")
        return data

    def stop(self, timeout_s: float = 10.0) -> list[str]:
        """SIGTERM the master, then the emulator (SIGKILL after ``timeout_s``); one line each."""
        lines = stop_all(self.processes(), timeout_s)
        for p in self._popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(1)
        forget_state(self.dir)
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"kind": EMULATED, "dir": str(self.dir), "master_url": self.master_url,
                "master": asdict(self.master), "services": {EMULATOR: asdict(self.emulator)},
                "nodes": self.nodes, "node_type": self.node_type, "cores": self.cores,
                "mem_mb": self.mem_mb, "master_token_file": str(self.master_token_file),
                "node_secret_file": str(self.node_secret_file), "started_s": self.started_s,
                "notes": self.notes}


def load_emulated(root: Path, data: dict[str, Any]) -> EmulatedTestbed:
    """The emulated testbed that ``data`` (its ``testbed.json``) records in ``root``."""
    return EmulatedTestbed(root, Proc(**data["master"]), Proc(**data["services"][EMULATOR]),
                           [str(n) for n in data["nodes"]], str(data["node_type"]), int(data["cores"]),
                           int(data["mem_mb"]), float(data["started_s"]), list(data.get("notes", [])))


def emulated_cluster(n: int, node_type: str) -> tuple[dict[str, Any], int, int, list[str]]:
    """The cluster document of ``n`` emulated nodes in racks of :data:`RACK`, cores and memory
    per node, and notes."""
    if node_type not in PROFILES:
        raise TestbedError(f"--type: unknown node type {node_type!r}{did_you_mean(node_type, PROFILES)} "
                           f"(known: {', '.join(sorted(PROFILES))})", exit_code=2)
    if not 1 <= n <= MAX_EMULATED:
        raise TestbedError(f"--emulated: expected 1 to {MAX_EMULATED} nodes, got {n}", exit_code=2)
    profile = PROFILES[node_type]
    doc: dict[str, Any] = {"clusters": []}
    for rack, first in enumerate(range(0, n, RACK), start=1):
        doc["clusters"].append({"domain": f"rack{rack}.emulated.rpiaas.test", "prefix": f"127.{rack}.0",
                                "count": min(RACK, n - first), "type": node_type})
    notes = [f"{n} nodes in one process (rpiaas-agent-emulated): their tasks are timers, their "
             "readings emulated, their power emulated (no driver)"]
    return doc, profile.cores, profile.mem_mb, notes


def start_emulated_testbed(dir: str | os.PathLike[str], n: int, *, node_type: str = "rpi4b",
                           poll_interval_s: float | None = None, master_port: int = 0,
                           timeout_s: float = 60.0) -> EmulatedTestbed:
    """Start a master and ``n`` emulated nodes in one process, files in ``dir``; wait until all
    are online.  Raises this process's soft limit of open files to what ``n`` nodes need (the
    master and the emulator inherit it; about four per node).

    :raises TestbedRunning: if ``dir`` has a running testbed.
    :raises TestbedError: bad arguments, or a process that died or a node not online in time
        (with the end of the logs); whatever was started is stopped again.
    """
    root = Path(dir).absolute()
    check_not_running(root)
    doc, cores, mem_mb, notes = emulated_cluster(n, node_type)
    if poll_interval_s is None:
        poll_interval_s = 1.0 if n <= BUSY_NODES else 2.0
    for sub in ("logs", "work", "sysfs-empty"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / TOKENS_DIR).mkdir(mode=0o700, exist_ok=True)
    keep_out_of_git(root)
    (root / "logs").chmod(0o700)
    (root / "cluster.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    nodes = load_cluster(root / "cluster.yaml").nodes
    names = [node.name for node in nodes]
    # the nodes' ports are the emulator's to pick (port 0: a free one each, told in a file):
    # a thousand ports picked here and bound there later would race every other socket; the
    # master's free port is held here until the master starts, so no node binds it meanwhile
    held = socket.socket()
    if not master_port:
        held.bind((HOST, 0))
        master_port = int(held.getsockname()[1])
    write_private(root / "master-token", secrets.token_urlsafe(32))
    node_secret = secrets.token_urlsafe(32)
    write_private(root / "node-secret", node_secret)
    for name in names:
        write_private(root / TOKENS_DIR / f"{name}.token", node_token(node_secret, name))
    # one process answers for every node on a shared machine: an answer may be late under load
    # (as a virtual testbed's), so a longer timeout and one more miss before a node is offline
    cpus = machine()[0]
    common = {"host": HOST, "cores": cores, "mem_mb": mem_mb,
              "oversubscribe": cores > len(cpus), "sysfs_root": str(root / "sysfs-empty"),
              "vcgencmd": "", "work_dir": str(root / "work"), "disk_path": str(root),
              "master_url": f"http://{HOST}:{master_port}", "log_level": "warning"}
    spec = {"common": common,
            "nodes": [{"name": node.name, "port": 0,
                       "token_file": str(root / TOKENS_DIR / f"{node.name}.token"),
                       "report_from": str(node.address)} for node in nodes]}
    (root / "emulated-nodes.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    ports_file = root / "emulated-ports.json"
    with contextlib.suppress(FileNotFoundError):
        ports_file.unlink()

    notes += _raise_open_files(n)
    popens: list[subprocess.Popen[bytes]] = []
    procs: dict[str, Proc] = {}

    def spawn(name: str, port: int, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log = root / "logs" / f"{name}.log"
        popen = start_process(argv, log, root, env=env)
        popens.append(popen)
        stat = proc_stat(popen.pid)
        procs[name] = Proc(name, popen.pid, port, str(log), stat[1] if stat else None)
        return procs[name]

    try:
        # the agents' environment (as a local testbed's): what finds Python and the packages
        emulator = spawn(EMULATOR, 0, [sys.executable, "-m", "rpiaas_agent.emulated",
                                       str(root / "emulated-nodes.json"), "--ports-file",
                                       str(ports_file)], agent_env())
        wait_until(ports_file.exists, emulator, f"{ports_file.name} (every node listening)",
                   max(30.0, n / 20))
        ports = json.loads(ports_file.read_text(encoding="utf-8"))
        master_doc = {"cluster": "cluster.yaml", "poll_interval_s": poll_interval_s,
                      "poll_timeout_s": POLL_TIMEOUT_S, "offline_after": OFFLINE_AFTER,
                      "store": "history.db", "listen": f"{HOST}:{master_port}",
                      "agents": {name: f"{HOST}:{ports[name]}" for name in names},
                      "token_file": "master-token", "node_secret_file": "node-secret",
                      "runs_dir": "runs"}
        (root / "master.yaml").write_text(yaml.safe_dump(master_doc, sort_keys=False), encoding="utf-8")
        held.close()
        master = spawn("master", master_port, [sys.executable, "-m", "rpiaas", "master",
                                               str(root / "master.yaml"), "--port", str(master_port)])
        tb = EmulatedTestbed(root, master, emulator, names, node_type, cores, mem_mb,
                             time.time(), notes, popens)
        write_state(root, tb.to_json())
        _wait_online(tb, timeout_s)
    except BaseException:
        held.close()
        with contextlib.suppress(TestbedError):
            stop_all([procs[k] for k in ("master", EMULATOR) if k in procs], 10.0)
        for p in popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(1)
        forget_state(root)
        raise
    return tb


def _raise_open_files(n: int) -> list[str]:
    """Raise this process's soft limit of open files, which the master and the emulator inherit,
    to what ``n`` nodes need (a listening socket each, and kept connections for polls, starts and
    reports: about four per node); a note if the hard limit is lower."""
    need = 4 * n + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (need if hard == resource.RLIM_INFINITY else min(need, hard), hard))
    got = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if got != resource.RLIM_INFINITY and got < need:
        return [f"{n} nodes need about {need} open files, the limit is {got} (ulimit -Hn): "
                "raise it, or some connections will fail"]
    return []


def _wait_online(tb: EmulatedTestbed, timeout_s: float) -> None:
    online = wait_online(tb.processes(), lambda: tb.summary(timeout_s=5.0), len(tb.nodes), timeout_s, 0.2)
    if online is None:
        return
    raise TestbedError(f"not every node online after {timeout_s:g} s ({online}); "
                       + "".join(f"\nthe end of {p.log}:\n{tail(p.log)}" for p in tb.processes()))
