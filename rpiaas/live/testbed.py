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
cores and memory, not the host's, which all agents share.  Where the machine has at least N ×
cores CPUs each agent is pinned to CPUs of its own; else they share them.  A
type with more cores (or memory) than the whole machine becomes a local type
with what the machine has, written into ``cluster.yaml`` so model and agents
still agree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..cluster import load_cluster
from ..model import PROFILES
from .auth import node_token

__all__ = ["LocalTestbed", "TestbedError", "TestbedRunning", "load_testbed",
           "start_local_testbed", "stop_testbed"]

DEFAULT_DIR = ".rpiaas-testbed"
TOKENS_DIR = "tokens"
STATE_FILE = "testbed.json"
DOMAIN, PREFIX = "local.rpiaas.test", "127.0.1"  # loopback even where a node's address is used
HOST = "127.0.0.1"
MAX_NODES = 254  # one suffix of PREFIX each
_DROP_ENV = ("RPIAAS_AGENT_", "RPIAAS_MASTER_")  # they would override the testbed's own tokens


class TestbedError(RuntimeError):
    """The testbed could not be started or stopped; ``exit_code`` 2 for bad input."""

    __test__ = False  # a pytest collector would take the name for a test class

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class TestbedRunning(TestbedError):
    """The directory already has a running testbed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


@dataclass(frozen=True)
class Proc:
    """One process of the testbed; ``start_ticks`` tells it from a later process with its pid."""

    name: str
    pid: int
    port: int
    log: str
    start_ticks: int | None = None
    cpu_set: list[int] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        """Whether this very process still runs (a zombie does not)."""
        return _alive(self.pid, self.start_ticks)


@dataclass
class LocalTestbed:
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
    _popens: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    @property
    def master_url(self) -> str:
        return self.master.url

    @property
    def master_token_file(self) -> Path:
        return self.dir / "master-token"

    @property
    def node_secret_file(self) -> Path:
        return self.dir / "node-secret"

    def node_token_file(self, name: str) -> Path:
        """Where node ``name``'s token is: its agent reads it, and nobody else's."""
        return self.dir / TOKENS_DIR / f"{name}.token"

    @property
    def master_token(self) -> str:
        """The bearer token of the master's mutating endpoints."""
        return self.master_token_file.read_text(encoding="utf-8").strip()

    def node_token(self, name: str) -> str:
        """Node ``name``'s token: its agent's bearer token, and its reports' to the master."""
        return self.node_token_file(name).read_text(encoding="utf-8").strip()

    def processes(self) -> list[Proc]:
        """The master first, then the agents in node order."""
        return [self.master, *self.agents.values()]

    def summary(self, timeout_s: float = 3.0) -> dict[str, Any]:
        """The master's ``GET /api/v1/summary``; OSError if it does not answer."""
        summary: dict[str, Any] = _get_json(self.master_url + "/api/v1/summary", timeout_s)
        return summary

    def stop(self, timeout_s: float = 10.0) -> list[str]:
        """Stop every process (see :func:`stop_testbed`); what happened to each, one line each."""
        lines = _stop(self.processes(), timeout_s)
        for p in self._popens:  # ours to reap, when started from this process
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(1)
        with contextlib.suppress(FileNotFoundError):
            (self.dir / STATE_FILE).unlink()
        return lines

    def __enter__(self) -> LocalTestbed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def to_json(self) -> dict[str, Any]:
        return {"dir": str(self.dir), "master_url": self.master_url,
                "master": asdict(self.master),
                "agents": {name: asdict(p) for name, p in self.agents.items()},
                "node_type": self.node_type, "cores": self.cores, "mem_mb": self.mem_mb,
                "master_token_file": str(self.master_token_file),
                "node_secret_file": str(self.node_secret_file),
                "node_token_files": {name: str(self.node_token_file(name)) for name in self.agents},
                "started_s": self.started_s, "notes": self.notes}


# ---------------------------------------------------------------- processes
def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time in clock ticks since boot)`` from /proc, or None without /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ("gone", 0) if Path("/proc/self").exists() else None
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
    return fields[0], int(fields[19])


def _alive(pid: int, start_ticks: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the pid
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, ticks = stat
    return state not in ("gone", "Z", "X") and (start_ticks is None or ticks == start_ticks)


def _signal(p: Proc, sig: signal.Signals) -> None:
    if not p.alive():
        return
    with contextlib.suppress(ProcessLookupError):
        if sig == signal.SIGKILL:
            os.killpg(p.pid, sig)  # each process leads a session (and group) of its own
        else:
            os.kill(p.pid, sig)


def _wait_gone(procs: list[Proc], timeout_s: float) -> list[Proc]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in procs if p.alive()]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _stop(procs: list[Proc], timeout_s: float) -> list[str]:
    """SIGTERM the master (first, so it records no agent going offline), then the agents."""
    lines: list[str] = []
    master, agents = procs[:1], procs[1:]
    for group in (master, agents):
        running = [p for p in group if p.alive()]
        lines += [f"{p.name}: already gone" for p in group if p not in running]
        for p in running:
            _signal(p, signal.SIGTERM)
        stubborn = _wait_gone(running, timeout_s)
        for p in stubborn:
            _signal(p, signal.SIGKILL)
        still = _wait_gone(stubborn, 5.0)
        if still:
            raise TestbedError("still running after SIGKILL: "
                               + ", ".join(f"{p.name} (pid {p.pid})" for p in still))
        lines += [f"{p.name}: {'killed (no exit after SIGTERM)' if p in stubborn else 'stopped'}"
                  f" (pid {p.pid})" for p in running]
    return lines


def _executable(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not os.access(path, os.X_OK):
        raise TestbedError(f"{name} is not installed beside {sys.executable} "
                           "(install the agent: pip install ./agent)")
    return str(path)


def _spawn(argv: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_ENV)}
    # logs are the owner's alone: they name nodes, addresses and tasks (never a credential)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # an older log keeps its mode otherwise
    with os.fdopen(fd, "ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                start_new_session=True)  # a ^C in the terminal leaves them be


def _free_ports(n: int) -> list[int]:
    """``n`` different free loopback ports (held together, so none repeats)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]


def _get_json(url: str, timeout_s: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        return json.loads(r.read())


def _tail(path: str, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text[-lines:])


# ---------------------------------------------------------------- files
def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # an older file keeps its mode otherwise
        f.write(text + "\n")


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _machine() -> tuple[list[int], int]:
    """The CPUs this process may run on, and the memory in MiB (as the agent counts them)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else list(range(os.cpu_count() or 1))
    mem_mb = (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) >> 20
    return cpus, mem_mb


def _plan(n: int, node_type: str) -> tuple[dict[str, Any], int, int, list[list[int]] | None,
                                            list[str]]:
    """The cluster document, cores and memory per node, CPU sets (or None) and notes."""
    if node_type not in PROFILES:
        raise TestbedError(f"--type: unknown node type {node_type!r} "
                           f"(known: {', '.join(sorted(PROFILES))})", exit_code=2)
    if not 1 <= n <= MAX_NODES:
        raise TestbedError(f"--local: expected 1 to {MAX_NODES} nodes, got {n}", exit_code=2)
    profile = PROFILES[node_type]
    cpus, total_mb = _machine()
    cores, mem_mb, notes = profile.cores, profile.mem_mb, []
    doc: dict[str, Any] = {}
    type_name = node_type
    if mem_mb > total_mb:
        mem_mb = total_mb
        type_name = f"{node_type}-local"
        doc["node_types"] = {type_name: {"base": node_type, "mem_mb": mem_mb}}
        notes.append(f"a {node_type} has {profile.mem_mb} MB, this machine {total_mb} MB: the "
                     f"nodes are {type_name}, a {node_type} with {mem_mb} MB")
    if cores > len(cpus):
        # the agents admit the node type's cores and let its tasks share the CPUs there are,
        # so a scenario written for the real nodes replays here unchanged
        notes.append(f"a {node_type} has {cores} cores, this machine {len(cpus)} CPUs: the "
                     "agents are oversubscribed (their tasks share the CPUs)")
    cpu_sets = None
    if len(cpus) >= n * cores:
        cpu_sets = [cpus[i * cores:(i + 1) * cores] for i in range(n)]
    else:
        notes.append(f"no CPU pinning: {n} nodes × {cores} cores need {n * cores} CPUs, this "
                     f"machine has {len(cpus)}; the agents share them")
    doc["clusters"] = [{"domain": DOMAIN, "prefix": PREFIX, "count": n, "type": type_name}]
    return doc, cores, mem_mb, cpu_sets, notes


# ---------------------------------------------------------------- the API
def load_testbed(dir: str | os.PathLike[str] = DEFAULT_DIR) -> LocalTestbed | None:
    """The testbed recorded in ``dir/testbed.json``, running or not; None if there is none."""
    root = Path(dir).absolute()
    try:
        data = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
        return LocalTestbed(root, Proc(**data["master"]),
                            {name: Proc(**p) for name, p in data["agents"].items()},
                            data["node_type"], data["cores"], data["mem_mb"], data["started_s"],
                            list(data.get("notes", [])))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TestbedError(f"{root / STATE_FILE}: unreadable ({e}); remove it if nothing runs",
                           exit_code=2) from None


def stop_testbed(dir: str | os.PathLike[str] = DEFAULT_DIR, timeout_s: float = 10.0) -> list[str]:
    """Stop the testbed in ``dir``: SIGTERM (master first), SIGKILL after ``timeout_s``.

    Removes ``testbed.json``; keeps the logs, the history and the runs.
    :returns: a line per process saying what happened, empty if there was no testbed.
    :raises TestbedError: if a process outlives SIGKILL.
    """
    tb = load_testbed(dir)
    return [] if tb is None else tb.stop(timeout_s)


def _check_not_running(root: Path) -> None:
    """Refuse a directory with a running testbed; forget one whose processes are all gone."""
    old = load_testbed(root)
    if old is not None:
        running = [p for p in old.processes() if p.alive()]
        if running:
            raise TestbedRunning(f"{root} has a running testbed ({len(running)} processes, master "
                                 f"{old.master_url}); stop it with `rpiaas testbed down --dir "
                                 f"{root}`")
        (root / STATE_FILE).unlink()


def start_local_testbed(dir: str | os.PathLike[str], n: int, *, node_type: str = "rpi4b",
                        poll_interval_s: float = 1.0, master_port: int = 0,
                        timeout_s: float = 30.0) -> LocalTestbed:
    """Start a master and ``n`` agents on loopback, with their files in ``dir``; wait until all are online.

    :param dir: the testbed's directory (created; an earlier testbed's history is kept).
    :param n: how many nodes (``node1.local.rpiaas.test`` ...).
    :param node_type: a built-in node type: the agents admit tasks with its cores and memory.
    :param poll_interval_s: how often the master polls the agents.
    :param master_port: the master's port; 0 picks a free one.
    :param timeout_s: how long to wait for every agent to be online.
    :raises TestbedRunning: if ``dir`` has a running testbed.
    :raises TestbedError: bad arguments, or a process that died or a node not online in time
        (with the end of the logs); whatever was started is stopped again.
    """
    root = Path(dir).absolute()
    _check_not_running(root)
    doc, cores, mem_mb, cpu_sets, notes = _plan(n, node_type)
    agent_exe, rpiaas_exe = _executable("rpiaas-agent"), _executable("rpiaas")
    for sub in ("logs", "work", "sysfs-empty"):  # an empty sysfs: no sensors to pretend
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / TOKENS_DIR).mkdir(mode=0o700, exist_ok=True)
    (root / "logs").chmod(0o700)
    (root / "cluster.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    names = [node.name for node in load_cluster(root / "cluster.yaml").nodes]
    ports = _free_ports(n + (master_port == 0))
    master_port = master_port or ports.pop()
    _write_private(root / "master-token", secrets.token_urlsafe(32))
    node_secret = secrets.token_urlsafe(32)
    _write_private(root / "node-secret", node_secret)
    for name in names:
        _write_private(root / TOKENS_DIR / f"{name}.token", node_token(node_secret, name))
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

    def spawn(name: str, port: int, argv: list[str], cpu_set: list[int] | None = None) -> Proc:
        log = root / "logs" / f"{name}.log"
        popen = _spawn(argv, log, root)
        popens.append(popen)
        stat = _proc_stat(popen.pid)
        proc = Proc(name, popen.pid, port, str(log), stat[1] if stat else None, cpu_set)
        procs[name] = proc
        return proc

    oversubscribed = cores > len(_machine()[0])  # the type's cores, more than the CPUs
    try:
        for i, (name, port) in enumerate(zip(names, ports, strict=True)):
            work = root / "work" / name
            work.mkdir(exist_ok=True)
            argv = [agent_exe, "--host", HOST, "--port", str(port), "--name", name,
                    "--token-file", str(root / TOKENS_DIR / f"{name}.token"), "--cores", str(cores),
                    "--mem-mb", str(mem_mb), "--sysfs-root", str(root / "sysfs-empty"),
                    "--vcgencmd", "", "--work-dir", str(work), "--emulate"]
            cpu_set = cpu_sets[i] if cpu_sets else None
            if oversubscribed:
                argv.append("--oversubscribe")
            if cpu_set:
                argv += ["--cpu-set", ",".join(map(str, cpu_set))]
            spawn(name, port, argv, cpu_set)
        master = spawn("master", master_port, [rpiaas_exe, "master", str(root / "master.yaml"),
                                               "--port", str(master_port)])
        agents = {name: procs[name] for name in names}
        tb = LocalTestbed(root, master, agents, doc["clusters"][0]["type"], cores, mem_mb,
                          time.time(), notes, popens)
        _write_json(root / STATE_FILE, tb.to_json())
        _wait_online(tb, timeout_s)
    except BaseException:
        ordered = [procs[k] for k in ("master", *names) if k in procs]
        with contextlib.suppress(TestbedError):
            _stop(ordered, 10.0)
        for p in popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(1)
        with contextlib.suppress(FileNotFoundError):
            (root / STATE_FILE).unlink()
        raise
    return tb


def _wait_online(tb: LocalTestbed, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    n = len(tb.agents)
    summary: dict[str, Any] | None = None
    while True:
        dead = [p for p in tb.processes() if not p.alive()]
        if dead:
            raise TestbedError("".join(f"{p.name} exited at start; the end of {p.log}:\n"
                                       f"{_tail(p.log)}\n" for p in dead).rstrip())
        with contextlib.suppress(OSError, ValueError):
            summary = tb.summary(timeout_s=2.0)
            if summary.get("online") == n:
                return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    online = "the master did not answer" if summary is None else \
        f"{summary.get('online')} of {n} online"
    try:
        nodes = _get_json(tb.master_url + "/api/v1/nodes", 2.0)["nodes"]
        offline = {d["name"] for d in nodes if d.get("online") is not True}
    except (OSError, ValueError, KeyError, TypeError):
        offline = set(tb.agents)
    logs = [tb.master, *(p for name, p in tb.agents.items() if name in offline)]
    raise TestbedError(f"not every node online after {timeout_s:g} s ({online}); "
                       + "".join(f"\nthe end of {p.log}:\n{_tail(p.log)}" for p in logs))



# ---------------------------------------------------------------- the command line
def add_testbed_parser(sub: Any) -> None:
    """Add ``testbed up | status | down`` to the ``rpiaas`` subparsers ``sub``."""
    tb = sub.add_parser("testbed", help="a master and agents on this machine, to try live mode")
    cmds = tb.add_subparsers(dest="testbed_command", required=True, metavar="COMMAND")
    up = cmds.add_parser("up", help="start a master and N agents on loopback, wait until online")
    up.add_argument("--local", type=int, required=True, metavar="N", help="how many nodes")
    up.add_argument("--type", default="rpi4b", help="node type (default rpi4b)")
    up.add_argument("--poll-interval-s", type=float, default=1.0,
                    help="the master's poll interval (default 1)")
    up.add_argument("--master-port", type=int, default=8080,
                    help="the master's port (default 8080; 0: a free one)")
    up.add_argument("--timeout-s", type=float, default=30.0,
                    help="how long to wait for every node to be online (default 30)")
    status = cmds.add_parser("status", help="each process alive or dead, and the master's summary")
    down = cmds.add_parser("down", help="stop the testbed (keeps logs, history and runs)")
    for p in (up, status, down):
        p.add_argument("--dir", default=DEFAULT_DIR,
                       help=f"the testbed's directory (default {DEFAULT_DIR})")


def run_testbed(args: argparse.Namespace) -> int:
    """Run ``rpiaas testbed COMMAND``; the exit code."""
    try:
        if args.testbed_command == "up":
            return _up(args)
        if args.testbed_command == "status":
            return _status(args.dir)
        return _down(args.dir)
    except TestbedError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


def _up(args: argparse.Namespace) -> int:
    if not 0 <= args.master_port < 65536:
        print(f"error: --master-port: expected 0-65535, got {args.master_port}", file=sys.stderr)
        return 2
    if not args.poll_interval_s > 0:
        print("error: --poll-interval-s: expected a positive number", file=sys.stderr)
        return 2
    _check_not_running(Path(args.dir).absolute())
    print(f"starting a master and {args.local} agents in {args.dir} ...", flush=True)
    tb = start_local_testbed(args.dir, args.local, node_type=args.type,
                             poll_interval_s=args.poll_interval_s,
                             master_port=args.master_port, timeout_s=args.timeout_s)
    dir_flag = "" if args.dir == DEFAULT_DIR else f" --dir {args.dir}"
    for note in tb.notes:
        print(f"note: {note}")
    print(f"{len(tb.agents)} nodes ({tb.node_type}, {tb.cores} cores, {tb.mem_mb} MB each) online\n"
          f"  master     {tb.master_url}   (API: {tb.master_url}/api/v1/summary)\n"
          f"  dashboard  {tb.master_url}/\n"
          f"  tokens     {tb.master_token_file} (the master's), {tb.node_secret_file} (the nodes' "
          f"secret), {tb.dir / TOKENS_DIR}/NODE.token (each node's)\n"
          f"  logs       {tb.dir / 'logs'}\n"
          f"then try:\n"
          f"  rpiaas testbed status{dir_flag}\n"
          f"  rpiaas testbed down{dir_flag}")
    return 0


def _status(dir: str) -> int:
    tb = load_testbed(dir)
    if tb is None:
        print(f"no testbed in {Path(dir).absolute()}")
        return 1
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(tb.started_s))
    print(f"testbed in {tb.dir}, started {started}, master {tb.master_url}")
    online: dict[str, bool | None] = {}
    summary: dict[str, Any] | None = None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        summary = tb.summary()
        online = {d["name"]: d.get("online")
                  for d in _get_json(tb.master_url + "/api/v1/nodes", 3.0)["nodes"]}
    width = max(len(name) for name in (*tb.agents, "master"))
    dead = 0
    for p in tb.processes():
        alive = p.alive()
        dead += not alive
        node = online.get(p.name)
        state = "" if p.name == "master" else \
            "  not polled yet" if node is None else "  online" if node else "  offline"
        cpus = f"  CPUs {','.join(map(str, p.cpu_set))}" if p.cpu_set else ""
        print(f"  {p.name:<{width}}  pid {p.pid:<7}  port {p.port:<5}  "
              f"{'alive' if alive else 'DEAD '}{state}{cpus}")
    if summary is None:
        print("the master does not answer")
        return 1
    print(f"master: {summary['nodes']} nodes, {summary['online']} online, "
          f"{summary['offline']} offline, {summary['unknown']} not polled yet")
    return 1 if dead or summary["online"] != len(tb.agents) else 0


def _down(dir: str) -> int:
    tb = load_testbed(dir)
    if tb is None:
        print(f"no testbed in {Path(dir).absolute()}: nothing to stop")
        return 0
    for line in tb.stop():
        print(line)
    print(f"testbed stopped; logs, history and runs kept in {tb.dir}")
    return 0
