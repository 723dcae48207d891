"""A testbed on this machine: a master and N agents on loopback, to try live mode without Pis.

``rpiaas testbed up --local N`` writes a directory (default ``.rpiaas-testbed``)
with a cluster of N nodes, the master's config, the master's token, the node
secret and each node's token derived from it (``tokens/NODE.token``: each
agent is given its own only), all mode 600, starts N
``rpiaas-agent`` processes and ``rpiaas master`` detached from the terminal,
and waits until the master sees every agent online.  ``rpiaas testbed
status`` and ``rpiaas testbed down`` find them again through
``DIR/testbed.json``.  From Python, :func:`start_local_testbed` does the same
and returns a :class:`LocalTestbed` (a context manager that stops it).

Each agent admits tasks with the cores and memory of the node type, so the
agents refuse what the model refuses, and reports the node it emulates
(``--emulate``): the CPU and memory of its own tasks against the node type's
cores and memory, not the host's, which all agents share.  What each node
gets of this machine is planned in :mod:`.plan`; the processes are kept in
:mod:`.procs`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..auth import node_token
from ..inputs.cluster import load_cluster
from ..power.drivers.process import record_pid, write_command
from .plan import DEFAULT_DIR, HOST, TestbedError, free_ports, machine, plan
from .procs import (
    Proc,
    agent_env,
    executable,
    get_json,
    proc_stat,
    start_process,
    stop_all,
    tail,
    wait_online,
    write_private,
)
from .registry import Registry, load_registry, start_registry
from .state import (
    TOKENS_DIR,
    VIRTUAL,
    TestbedFiles,
    check_not_running,
    forget_state,
    keep_out_of_git,
    read_state,
    running_now,
    unreadable,
    write_state,
)

__all__ = ["POWER_DIR", "LocalTestbed", "agent_env", "load_testbed", "start_local_testbed",
           "stop_testbed"]

POWER_DIR = "power"  # the process driver's state_dir: each agent's command line and pid
POWER_TIMEOUT_S = 10.0  # SIGTERM to SIGKILL, when the master switches an agent off

if TYPE_CHECKING:
    from .emulated import EmulatedTestbed
    from .virtual import VirtualTestbed


@dataclass
class LocalTestbed(TestbedFiles):
    """A running local testbed: where it lives, its processes, and how to reach it."""

    __test__ = False

    dir: Path
    master: Proc
    agents: dict[str, Proc]
    node_type: str
    cores: int
    mem_mb: int
    started_s: float
    notes: list[str] = field(default_factory=list)
    registry: Registry | None = None  # the testbed's image registry (``--registry``), if it has one
    _popens: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    kind = "local"

    @property
    def master_url(self) -> str:
        return self.master.url

    def node_token_file(self, name: str) -> Path:
        """Where node ``name``'s token is: its agent reads it, and nobody else's."""
        return self.dir / TOKENS_DIR / f"{name}.token"

    def node_token(self, name: str) -> str:
        """Node ``name``'s token: its agent's bearer token, and its reports' to the master."""
        return self.node_token_file(name).read_text(encoding="utf-8").strip()

    def processes(self) -> list[Proc]:
        """The master first, then the agents in node order (each as it runs now: the master
        may have switched it off and started it again)."""
        return [self.master, *self.current_agents().values(),
                *(self.registry.processes() if self.registry else ())]

    def current_agents(self) -> dict[str, Proc]:
        """Each node's agent process now: the one the power driver's pid file names, if it
        runs, else the one the testbed started."""
        return running_now(self.agents, self.dir / POWER_DIR)

    def summary(self, timeout_s: float = 3.0) -> dict[str, Any]:
        """The master's ``GET /api/v1/summary``; OSError if it does not answer."""
        summary: dict[str, Any] = get_json(self.master_url + "/api/v1/summary", timeout_s)
        return summary

    def stop(self, timeout_s: float = 10.0) -> list[str]:
        """Stop every process (see :func:`stop_testbed`); what happened to each, one line each."""
        lines = stop_all(self.processes(), timeout_s)
        for p in self._popens:  # ours to reap, when started from this process
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(1)
        forget_state(self.dir)
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"dir": str(self.dir), "master_url": self.master_url,
                "master": asdict(self.master),
                "agents": {name: asdict(p) for name, p in self.agents.items()},
                "node_type": self.node_type, "cores": self.cores, "mem_mb": self.mem_mb,
                "master_token_file": str(self.master_token_file),
                "node_secret_file": str(self.node_secret_file),
                "node_token_files": {name: str(self.node_token_file(name)) for name in self.agents},
                "started_s": self.started_s, "notes": self.notes,
                **({"services": {p.name: asdict(p) for p in self.registry.processes()},
                    "registry": self.registry.to_json()} if self.registry else {})}


# ---------------------------------------------------------------- the API
def load_testbed(dir: str | os.PathLike[str] = DEFAULT_DIR
                 ) -> LocalTestbed | VirtualTestbed | EmulatedTestbed | None:
    """The testbed recorded in ``dir/testbed.json``, running or not; None if there is none."""
    root = Path(dir).absolute()
    data = read_state(root)
    if data is None:
        return None
    try:
        if data.get("kind") == VIRTUAL:
            from .virtual import load_virtual

            return load_virtual(root, data)
        if data.get("kind") == "emulated":
            from .emulated import load_emulated

            return load_emulated(root, data)
        services = {name: Proc(**p) for name, p in data.get("services", {}).items()}
        return LocalTestbed(root, Proc(**data["master"]),
                            {name: Proc(**p) for name, p in data["agents"].items()},
                            data["node_type"], data["cores"], data["mem_mb"], data["started_s"],
                            list(data.get("notes", [])),
                            load_registry(data.get("registry") or {}, services))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise unreadable(root, e) from None


def stop_testbed(dir: str | os.PathLike[str] = DEFAULT_DIR, timeout_s: float = 10.0) -> list[str]:
    """Stop the testbed in ``dir``: SIGTERM (master first), SIGKILL after ``timeout_s``.

    Removes ``testbed.json``; keeps the logs, the history and the runs.
    :returns: a line per process saying what happened, empty if there was no testbed.
    :raises TestbedError: if a process outlives SIGKILL.
    """
    tb = load_testbed(dir)
    return [] if tb is None else tb.stop(timeout_s)


def start_local_testbed(dir: str | os.PathLike[str], n: int, *, node_type: str = "rpi4b",
                        poll_interval_s: float = 1.0, master_port: int = 0,
                        timeout_s: float = 30.0,
                        power: Sequence[Mapping[str, Any] | None] | None = None,
                        meter: Sequence[Mapping[str, Any] | None] | None = None,
                        allow_commands: bool | Sequence[bool] = False,
                        registry: bool = False) -> LocalTestbed:
    """Start a master and ``n`` agents on loopback, with their files in ``dir``; wait until all are online.

    :param dir: the testbed's directory (created; an earlier testbed's history is kept).
    :param n: how many nodes (``node1.local.rpiaas.test`` ...).
    :param node_type: a built-in node type: the agents admit tasks with its cores and memory.
    :param poll_interval_s: how often the master polls the agents.
    :param master_port: the master's port; 0 picks a free one.
    :param timeout_s: how long to wait for every agent to be online.
    :param power: each node's ``power:`` mapping in the cluster file, in node order, instead of
        the ``process`` driver (None for a node keeps it): e.g. a PoE switch's ports, set up
        to end and start the agents as the ``process`` driver does (its ``state_dir`` is
        :data:`POWER_DIR` in ``dir``, written either way).
    :param meter: each node's ``meter:`` mapping (None: no meter).
    :param allow_commands: whether the agents run ``command`` tasks (``--allow-commands``): one
        for all, or each node's in node order.
    :param registry: also run the testbed's image registry (:mod:`.registry`) on loopback, and
        give the agents its pull address (``--registry``), so a task's ``image: NAME`` is pulled
        from it.
    :raises TestbedRunning: if ``dir`` has a running testbed.
    :raises TestbedError: bad arguments, or a process that died or a node not online in time
        (with the end of the logs); whatever was started is stopped again.
    """
    root = Path(dir).absolute()
    check_not_running(root)
    doc, cores, mem_mb, cpu_sets, notes = plan(n, node_type)
    # the master switches each node (its agent process) through the process driver
    process = {"driver": "process", "state_dir": POWER_DIR, "timeout_s": POWER_TIMEOUT_S}
    doc["clusters"][0]["power"] = process
    type_name = doc["clusters"][0]["type"]
    if power is not None or meter is not None:  # the nodes one by one, each with its own
        group = doc["clusters"][0]
        members: list[dict[str, Any]] = []
        for i in range(n):
            member = {"hostname": f"node{i + 1}", "suffix": str(i + 1), "type": type_name,
                      "power": dict((power[i] if power else None) or process)}
            if meter is not None and meter[i] is not None:
                member["meter"] = dict(meter[i] or {})
            members.append(member)
        del group["count"], group["type"], group["power"]
        group["nodes"] = members
    agent_exe, rpiaas_exe = executable("rpiaas-agent"), executable("rpiaas")
    for sub in ("logs", "work", "sysfs-empty"):  # an empty sysfs: no sensors to pretend
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / TOKENS_DIR).mkdir(mode=0o700, exist_ok=True)
    keep_out_of_git(root)
    (root / "logs").chmod(0o700)
    (root / "cluster.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    nodes = load_cluster(root / "cluster.yaml").nodes
    names = [node.name for node in nodes]
    ports = free_ports(n + (master_port == 0))
    master_port = master_port or ports.pop()
    write_private(root / "master-token", secrets.token_urlsafe(32))
    node_secret = secrets.token_urlsafe(32)
    write_private(root / "node-secret", node_secret)
    for name in names:
        write_private(root / TOKENS_DIR / f"{name}.token", node_token(node_secret, name))
    with contextlib.suppress(FileNotFoundError):
        (root / "agent-token").unlink()  # an earlier testbed's shared token: no longer used
    master_doc = {"cluster": "cluster.yaml", "poll_interval_s": poll_interval_s,
                  "store": "history.db", "listen": f"{HOST}:{master_port}",
                  "agents": {name: f"{HOST}:{port}" for name, port in zip(names, ports, strict=True)},
                  "token_file": "master-token", "node_secret_file": "node-secret",
                  "runs_dir": "runs"}
    (root / "master.yaml").write_text(yaml.safe_dump(master_doc, sort_keys=False), encoding="utf-8")

    popens: list[subprocess.Popen[bytes]] = []
    procs: dict[str, Proc] = {}

    def spawn(name: str, port: int, argv: list[str], cpu_set: list[int] | None = None,
              env: dict[str, str] | None = None) -> Proc:
        log = root / "logs" / f"{name}.log"
        popen = start_process(argv, log, root, env=env)
        popens.append(popen)
        stat = proc_stat(popen.pid)
        proc = Proc(name, popen.pid, port, str(log), stat[1] if stat else None, cpu_set)
        procs[name] = proc
        return proc

    oversubscribed = cores > len(machine()[0])  # the type's cores, more than the CPUs
    env = agent_env()
    reg: Registry | None = None
    try:
        if registry:  # first: the agents are told where it listens
            reg = start_registry(root, env=env)
        for i, (node, port) in enumerate(zip(nodes, ports, strict=True)):
            name = node.name
            work = root / "work" / name
            work.mkdir(exist_ok=True)
            argv = [agent_exe, "--host", HOST, "--port", str(port), "--name", name,
                    "--token-file", str(root / TOKENS_DIR / f"{name}.token"), "--cores", str(cores),
                    "--mem-mb", str(mem_mb), "--sysfs-root", str(root / "sysfs-empty"),
                    "--vcgencmd", "", "--work-dir", str(work), "--emulate",
                    # its boot report, from its node's address, as a Pi's comes from its own
                    "--master-url", f"http://{HOST}:{master_port}",
                    "--report-from", str(node.address)]
            cpu_set = cpu_sets[i] if cpu_sets else None
            if oversubscribed or not cpu_set:
                # the agents share the CPUs: no task gets a CPU (a cpuset) of its own, each is
                # held to its cores by its cgroup's quota (see the agent's cgroups module)
                argv.append("--oversubscribe")
            if cpu_set:
                argv += ["--cpu-set", ",".join(map(str, cpu_set))]
            if allow_commands if isinstance(allow_commands, bool) else allow_commands[i]:
                argv.append("--allow-commands")
            if reg is not None:
                argv += ["--registry", reg.pull_address]
            write_command(root / POWER_DIR, name, argv, root, root / "logs" / f"{name}.log", env)
            record_pid(root / POWER_DIR, name, spawn(name, port, argv, cpu_set, env).pid)
        master = spawn("master", master_port, [rpiaas_exe, "master", str(root / "master.yaml"),
                                               "--port", str(master_port)])
        agents = {name: procs[name] for name in names}
        tb = LocalTestbed(root, master, agents, type_name, cores, mem_mb,
                          time.time(), notes, reg, popens + (reg.popens if reg else []))
        write_state(root, tb.to_json())
        _wait_online(tb, timeout_s)
    except BaseException:
        ordered = [procs[k] for k in ("master", *names) if k in procs]
        with contextlib.suppress(TestbedError):
            if ordered:
                stop_all(ordered, 10.0)
            if reg is not None:
                reg.stop(5.0)
        for p in popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(1)
        forget_state(root)
        raise
    return tb


def _wait_online(tb: LocalTestbed, timeout_s: float) -> None:
    online = wait_online(tb.processes(), lambda: tb.summary(timeout_s=2.0), len(tb.agents), timeout_s, 0.1)
    if online is None:
        return
    try:
        nodes = get_json(tb.master_url + "/api/v1/nodes", 2.0)["nodes"]
        offline = {d["name"] for d in nodes if d.get("online") is not True}
    except (OSError, ValueError, KeyError, TypeError):
        offline = set(tb.agents)
    logs = [tb.master, *(p for name, p in tb.agents.items() if name in offline)]
    raise TestbedError(f"not every node online after {timeout_s:g} s ({online}); "
                       + "".join(f"\nthe end of {p.log}:\n{tail(p.log)}" for p in logs))
