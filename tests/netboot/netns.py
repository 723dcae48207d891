"""Two network namespaces joined by a veth pair, for end-to-end tests of the network boot.

:func:`netns_pair` makes a *server* namespace (``10.0.0.1/24`` on its end of the
pair) and a *client* namespace (its end has a given MAC and no address, as a
Pi before DHCP), runs commands in either and long-running servers in the
server one, and always tears everything down: the servers are stopped and
waited for, the namespaces deleted (which deletes the veth pair).  Nothing
here names or changes the host's own interfaces: every ``ip`` command is
scoped to one of the two private namespaces, created with random names.

The server namespace also gets a private ``/run`` (a tmpfs in a mount
namespace held by an idle "anchor" process): rpcbind insists on
``/run/rpcbind.sock`` and ``/run/rpcbind.lock``, and would otherwise replace
the host's socket.  Every server process enters that mount namespace with
``nsenter`` and is a direct child of the test, so it is reaped, never left
a zombie of an init that does not reap (as in some containers).

With ``bridge=True`` the server's address is on a bridge (``BRIDGE_IF``)
whose first port is its end of the pair; :meth:`NetnsPair.add_tap` plugs tap
devices into it, for virtual machines started in the server namespace.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpiaas.testbed.netns import TOOL_PATH, missing_programs

__all__ = [
    "BRIDGE_IF",
    "CLIENT_IF",
    "SERVER_IF",
    "SERVER_IP",
    "Netns",
    "NetnsPair",
    "Service",
    "missing_programs",
    "netns_available",
    "netns_pair",
]

SERVER_IP = "10.0.0.1"
PREFIX_LEN = 24
SERVER_IF = "rpxsrv0"  # names only ever seen inside the private namespaces
CLIENT_IF = "rpxcli0"
BRIDGE_IF = "rpxbr0"
_STOP_TIMEOUT_S = 5.0


def tool_env() -> dict[str, str]:
    """The environment for the tools: ours, with :data:`TOOL_PATH`."""
    return {**os.environ, "PATH": TOOL_PATH}


def _ip(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout,
                          env=tool_env())


@functools.cache
def netns_available() -> str | None:
    """None where these tests can run, else why not (for a skip reason)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip", path=TOOL_PATH) is None:
        return "no 'ip' program (iproute2)"
    probe = f"rpx-probe-{secrets.token_hex(4)}"
    try:
        added = _ip("netns", "add", probe)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"'ip netns add' failed: {e}"
    if added.returncode != 0:
        return f"'ip netns add' failed: {added.stderr.strip()}"
    deleted = _ip("netns", "del", probe)
    if deleted.returncode != 0:
        return f"'ip netns del' failed: {deleted.stderr.strip()}"
    return None


@dataclass(frozen=True)
class Netns:
    """A named network namespace."""

    name: str

    def command(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, *cmd: str, timeout: float = 15, check: bool = False,
            **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside the namespace to completion; output captured as text."""
        kwargs.setdefault("env", tool_env())
        return subprocess.run(self.command(*cmd), capture_output=True, text=True,
                              timeout=timeout, check=check, **kwargs)

    def ip(self, *args: str) -> None:
        """``ip -n NAME ARGS``; raises with ip's message if it fails."""
        done = _ip("-n", self.name, *args)
        if done.returncode != 0:
            raise RuntimeError(f"ip -n {self.name} {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Service:
    """A long-running process in the server namespace, its output in ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait until the process is gone (SIGKILL after ``timeout``); its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode

    def wait_for_log(self, text: str, timeout: float = 10) -> None:
        """Return once ``text`` is in the log; fail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before "
                                     f"logging {text!r}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {text!r} in its log after {timeout} s:\n"
                                     f"{self.log_text()}")
            time.sleep(0.02)


@dataclass
class NetnsPair:
    """The two namespaces, the veth pair between them and the servers started so far."""

    server: Netns
    client: Netns
    client_mac: str
    state_dir: Path
    anchor: subprocess.Popen[bytes] | None = None
    services: list[Service] = field(default_factory=list)
    bridge: bool = False

    @property
    def server_if(self) -> str:
        """The interface with the server's address: the bridge, or the server's end of the pair."""
        return BRIDGE_IF if self.bridge else SERVER_IF

    def add_tap(self, name: str) -> None:
        """A tap device ``name`` in the server namespace, up, a port of the bridge.

        A process of the server namespace (QEMU) opens it by name; it goes
        with the namespace.
        """
        if not self.bridge:
            raise RuntimeError("tap devices need netns_pair(..., bridge=True)")
        self.server.ip("tuntap", "add", "dev", name, "mode", "tap")
        self.server.ip("link", "set", name, "master", BRIDGE_IF, "up")

    @property
    def server_root(self) -> Path:
        """The server's file system as its processes see it (with the private ``/run``)."""
        assert self.anchor is not None
        return Path(f"/proc/{self.anchor.pid}/root")

    def start(self, name: str, *cmd: str) -> Service:
        """Start ``cmd`` in the server namespace (and its private ``/run``); stopped at teardown.

        Paths in ``cmd`` must be absolute: entering the mount namespace moves
        the working directory to its root.
        """
        assert self.anchor is not None
        log = self.state_dir / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["nsenter", f"--target={self.anchor.pid}", "--mount", "--net", "--", *cmd],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=tool_env())
        service = Service(name, proc, log)
        self.services.append(service)
        return service

    def start_dnsmasq(self, conf: Path, *extra: str) -> Service:
        """dnsmasq in the foreground with ``conf`` only, its pid and lease files in the state dir.

        Returns once dnsmasq has bound its sockets and logged its start (a bad
        TFTP root fails it only after the pid file is written).
        """
        pid_file = self.state_dir / "dnsmasq.pid"
        service = self.start(
            "dnsmasq", "dnsmasq", "--keep-in-foreground", f"--conf-file={conf}",
            f"--pid-file={pid_file}", f"--dhcp-leasefile={self.state_dir / 'dnsmasq.leases'}",
            "--log-facility=-", *extra)
        service.wait_for_log("started, version")
        _wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "",
                    service, "its pid file")
        return service

    def start_rpcbind(self) -> Service:
        """rpcbind in the foreground, once its socket is there (NFSv3 needs it)."""
        rpcbind = self.start("rpcbind", "rpcbind", "-f", "-h", SERVER_IP)
        sock = self.server_root / "run/rpcbind.sock"
        _wait_until(sock.exists, rpcbind, "/run/rpcbind.sock")
        return rpcbind

    def start_nfs(self, ganesha_command: Sequence[str]) -> tuple[Service, Service]:
        """rpcbind, then nfs-ganesha (``ganesha_command``, in the foreground); once both serve."""
        rpcbind = self.start_rpcbind()
        ganesha = self.start("ganesha", *ganesha_command)
        ganesha.wait_for_log("NFS SERVER INITIALIZED")
        return rpcbind, ganesha

    def set_client_address(self, address: str | None) -> None:
        """Give the client end ``address``/24 (replacing any other), or none."""
        self.client.ip("addr", "flush", "dev", CLIENT_IF)
        if address is not None:
            self.client.ip("addr", "add", f"{address}/{PREFIX_LEN}", "dev", CLIENT_IF)

    def stop_all(self) -> None:
        """Stop the servers, last started first, then the anchor of the private ``/run``."""
        while self.services:
            self.services.pop().stop()
        if self.anchor is not None:
            self.anchor.kill()
            self.anchor.wait(_STOP_TIMEOUT_S)
            for pipe in (self.anchor.stdout, self.anchor.stderr):
                if pipe is not None:
                    pipe.close()


def _wait_until(ready: Any, service: Service, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if not service.running():
            raise AssertionError(f"{service.name} exited ({service.proc.returncode}) before "
                                 f"{what} appeared:\n{service.log_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{service.name}: no {what} after {timeout} s:\n"
                                 f"{service.log_text()}")
        time.sleep(0.02)


def _start_anchor(server: Netns) -> subprocess.Popen[bytes]:
    """An idle process holding the server's mount namespace with a private tmpfs on ``/run``.

    ``ip netns exec`` already gives its process a mount namespace of its own
    whose mounts do not propagate back to the host's.
    """
    proc = subprocess.Popen(
        server.command("sh", "-c", "mount -t tmpfs -o mode=0755 rpiaas-run /run "
                                   "&& echo ready && exec sleep infinity"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tool_env())
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        proc.kill()
        proc.wait()
        raise RuntimeError(f"could not give the server namespace its own /run: "
                           f"{proc.stderr.read().decode(errors='replace').strip()}")
    return proc


def _leftovers(ns: Netns) -> list[int]:
    done = _ip("netns", "pids", ns.name)
    return [int(p) for p in done.stdout.split()] if done.returncode == 0 else []


def _describe(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    return f"{pid} ({b' '.join(argv).decode(errors='replace').strip()})"


@contextlib.contextmanager
def netns_pair(state_dir: Path, client_mac: str, *, bridge: bool = False) -> Iterator[NetnsPair]:
    """The server and client namespaces; see the module docstring.

    ``state_dir`` holds the servers' logs, pid and lease files.  On the way
    out every server is stopped and the namespaces are deleted, whatever
    happened; a process still found in either namespace is killed and, if
    the test itself passed, reported as an error.
    """
    suffix = secrets.token_hex(4)
    bed = NetnsPair(Netns(f"rpx-srv-{suffix}"), Netns(f"rpx-cli-{suffix}"), client_mac.lower(),
                  state_dir, bridge=bridge)
    state_dir.mkdir(parents=True, exist_ok=True)
    created: list[Netns] = []
    leftovers: list[str] = []
    try:
        for ns in (bed.server, bed.client):
            done = _ip("netns", "add", ns.name)
            if done.returncode != 0:
                raise RuntimeError(f"ip netns add {ns.name}: {done.stderr.strip()}")
            created.append(ns)
        # Both ends are created directly inside their namespaces: the host never sees them.
        done = _ip("link", "add", SERVER_IF, "netns", bed.server.name, "type", "veth",
                   "peer", "name", CLIENT_IF, "netns", bed.client.name, "address", bed.client_mac)
        if done.returncode != 0:
            raise RuntimeError(f"ip link add (veth): {done.stderr.strip()}")
        if bridge:
            # no STP: a new port forwards at once (a VM's first DHCP request must pass)
            bed.server.ip("link", "add", BRIDGE_IF, "type", "bridge", "stp_state", "0",
                          "forward_delay", "0")
            bed.server.ip("link", "set", SERVER_IF, "master", BRIDGE_IF)
            bed.server.ip("link", "set", BRIDGE_IF, "up")
        bed.server.ip("addr", "add", f"{SERVER_IP}/{PREFIX_LEN}", "dev", bed.server_if)
        for ns, ifname in ((bed.server, SERVER_IF), (bed.client, CLIENT_IF)):
            ns.ip("link", "set", "lo", "up")
            ns.ip("link", "set", ifname, "up")
        bed.anchor = _start_anchor(bed.server)
        yield bed
    finally:
        try:
            bed.stop_all()
        finally:
            for ns in created:
                for pid in _leftovers(ns):
                    leftovers.append(f"{ns.name}: {_describe(pid)}")
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                _ip("netns", "del", ns.name)
    if leftovers:
        raise AssertionError("processes left in the test namespaces (killed): "
                             + "; ".join(leftovers))
