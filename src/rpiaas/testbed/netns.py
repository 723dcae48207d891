"""A private network of the virtual testbed: one named network namespace that outlives its maker.

The namespace (``rpx-vtb-<hex>``) holds a bridge with the boot server's
address and a tap device per virtual node; nothing in it is seen by, or
changes, the host's own interfaces and routes.  Its processes (rpcbind,
dnsmasq, nfs-ganesha, the master, QEMU) run detached, in a session of their
own, with their output in a log, and enter both the namespace and a mount
namespace held by an idle *anchor* process: there ``/run`` is a private
tmpfs, because rpcbind insists on ``/run/rpcbind.sock`` and would otherwise
take the host's.  Mounts made in it never reach the host's mount table, and
vanish with the anchor.

:func:`delete` stops whatever still runs in the namespace and removes it,
with its bridge and taps.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .plan import TestbedError
from .procs import Proc, proc_stat, start_process

__all__ = ["BRIDGE_IF", "TOOL_PATH", "Namespace", "delete", "missing_programs", "new_namespace",
           "require_root"]

BRIDGE_IF = "rpxbr0"  # names only ever seen inside the private namespace
# dnsmasq, rpcbind and ip live in sbin, which a user's PATH may lack.
TOOL_PATH = os.pathsep.join(
    [os.environ.get("PATH", "/usr/bin:/bin"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"])


def _ip(*args: str, timeout_s: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, "PATH": TOOL_PATH})


def require_root(what: str) -> None:
    """TestbedError (exit 2) unless this process runs as root."""
    if os.geteuid() != 0:
        raise TestbedError(f"{what} needs root (network namespaces, tap devices, the NFS "
                           "server): run it with sudo", exit_code=2)


def missing_programs(*names: str) -> list[str]:
    """Those of ``names`` not found on :data:`TOOL_PATH`."""
    return [n for n in names if shutil.which(n, path=TOOL_PATH) is None]


class Namespace:
    """The named network namespace ``name``, and its anchor process once started."""

    def __init__(self, name: str, anchor: Proc | None = None) -> None:
        self.name = name
        self.anchor = anchor
        self.popens: list[subprocess.Popen[bytes]] = []  # started here: ours to reap

    def reap(self) -> None:
        """Collect the exit of every process started here that has ended (no zombies left)."""
        for popen in self.popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(0.5)

    def ip(self, *args: str) -> None:
        """``ip -n NAME ARGS``; TestbedError with ip's message if it fails."""
        done = _ip("-n", self.name, *args)
        if done.returncode != 0:
            raise TestbedError(f"ip -n {self.name} {' '.join(args)}: {done.stderr.strip()}")

    def add_bridge(self, address: str, prefix_len: int) -> None:
        """A bridge (no STP: a new port forwards at once) with ``address``, and ``lo``, up."""
        self.ip("link", "set", "lo", "up")
        self.ip("link", "add", BRIDGE_IF, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        self.ip("addr", "add", f"{address}/{prefix_len}", "dev", BRIDGE_IF)
        self.ip("link", "set", BRIDGE_IF, "up")

    def add_tap(self, tap: str) -> None:
        """A tap device in the namespace, a port of the bridge; QEMU opens it by name."""
        self.ip("tuntap", "add", "dev", tap, "mode", "tap")
        self.ip("link", "set", tap, "master", BRIDGE_IF, "up")

    def start_anchor(self, log: Path, cwd: Path) -> Proc:
        """The idle process that holds the namespace's private ``/run``."""
        script = ("mount -t tmpfs -o mode=0755 rpiaas-run /run && touch /run/.rpiaas-anchor "
                  "&& exec sleep infinity")
        popen = start_process(["ip", "netns", "exec", self.name, "sh", "-c", script], log, cwd,
                              env_path=TOOL_PATH)
        self.popens.append(popen)
        deadline = time.monotonic() + 10.0
        marker = Path(f"/proc/{popen.pid}/root/run/.rpiaas-anchor")
        while not marker.exists():
            if popen.poll() is not None or time.monotonic() > deadline:
                popen.kill()
                raise TestbedError(f"could not give the namespace its own /run; see {log}")
            time.sleep(0.02)
        stat = proc_stat(popen.pid)
        self.anchor = Proc("anchor", popen.pid, 0, str(log), stat[1] if stat else None)
        return self.anchor

    def start(self, name: str, argv: list[str], log: Path, cwd: Path, port: int = 0) -> Proc:
        """``argv`` inside the namespace and its private ``/run``, detached; its process.

        Paths in ``argv`` must be absolute.
        """
        if self.anchor is None:
            raise TestbedError("the namespace has no anchor process")
        popen = start_process(["nsenter", f"--target={self.anchor.pid}", "--mount", "--net",
                               f"--wd={cwd}", "--", *argv], log, cwd, env_path=TOOL_PATH)
        self.popens.append(popen)
        stat = proc_stat(popen.pid)
        return Proc(name, popen.pid, port, str(log), stat[1] if stat else None)

    def pids(self) -> list[int]:
        """Every process still in the namespace."""
        done = _ip("netns", "pids", self.name)
        return [int(p) for p in done.stdout.split()] if done.returncode == 0 else []


def new_namespace() -> Namespace:
    """A new, empty, uniquely named network namespace."""
    ns = Namespace(f"rpx-vtb-{secrets.token_hex(4)}")
    done = _ip("netns", "add", ns.name)
    if done.returncode != 0:
        raise TestbedError(f"ip netns add {ns.name}: {done.stderr.strip()}")
    return ns


def exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def delete(ns: Namespace, timeout_s: float = 5.0) -> list[str]:
    """Kill what still runs in ``ns`` (SIGTERM, then SIGKILL), then delete it; lines of what was done."""
    lines: list[str] = []
    if not exists(ns.name):
        return lines
    left = ns.pids()
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while (left := ns.pids()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        lines.append(f"killed pid {pid}, left in the namespace")
    deadline = time.monotonic() + timeout_s
    while ns.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    done = _ip("netns", "del", ns.name)
    if done.returncode != 0:
        raise TestbedError(f"ip netns del {ns.name}: {done.stderr.strip()}")
    lines.append(f"namespace {ns.name} deleted (with its bridge and taps)")
    return lines
