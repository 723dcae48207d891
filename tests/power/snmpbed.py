"""Net-SNMP's snmpd in a private network namespace, with :mod:`poe_agent` behind it: a PoE switch to test against.

:func:`snmp_switch` makes a namespace ``rpx-snmp-<hex>`` holding only ``lo``
and a veth pair whose two ends are both in it: one has :data:`AGENT`
(192.0.2.1/24, a documentation network) and snmpd listens there; the other
has no address, so :data:`SILENT` (another address of that network) is an
address that never answers; :data:`NO_ROUTE` has no route at all.  Nothing of this is
seen by the host's interfaces.

With ``host_link=True`` the switch is also reachable from this machine's own
namespace, as a lab's PoE switch is from its master: a second veth pair
joins the two, with private addresses from 198.18.0.0/15 (RFC 2544's
benchmarking network, never routed), snmpd listening on its end too
(:attr:`SnmpSwitch.address`).  The ``pass_persist`` program then runs in this
machine's namespace (through ``nsenter``), where the nodes its ports power
are: a port given a local testbed's node (see :mod:`poe_agent`) ends and
starts that node's agent process, which must be reachable from the master.

The drivers under test run in this process, in :class:`NetnsLoop`: a thread
that enters the namespace (``setns``, which moves only that thread) and runs
an asyncio loop there, so every socket they open is in the namespace.

snmpd takes the v2c community :data:`COMMUNITY` (read-write) and the v3
user :data:`V3_USER` (SHA-256 / AES-128, authPriv).  The state file
(see :mod:`poe_agent`) has ports 1.1 to 1.4.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rpiaas.testbed.netns import TOOL_PATH

AGENT = "192.0.2.1"
SILENT = "192.0.2.99"
NO_ROUTE = "198.51.100.7"
COMMUNITY = "poe-rw-c0mmunity"
V3_USER, V3_AUTH_KEY, V3_PRIV_KEY = "poeadmin", "auth-k3y-poe", "priv-k3y-poe"
POE_AGENT = Path(__file__).with_name("poe_agent.py")
PORTS = ("1.1", "1.2", "1.3", "1.4")
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def unavailable() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [p for p in ("ip", "snmpd", "nsenter") if shutil.which(p, path=TOOL_PATH) is None]
    if missing:
        return f"missing programs: {', '.join(missing)} (Debian packages iproute2, snmpd, util-linux)"
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10,
                          env={**os.environ, "PATH": TOOL_PATH})
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class NetnsLoop:
    """An asyncio loop on a thread of its own inside network namespace ``name``."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        entered = threading.Event()
        self.error: OSError | None = None

        def run() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    self.error = OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            entered.set()
            if self.error is None:
                asyncio.set_event_loop(self.loop)
                self.loop.run_forever()

        self.thread = threading.Thread(target=run, name=f"netns-{name}", daemon=True)
        self.thread.start()
        entered.wait(10)
        if self.error is not None:
            raise self.error

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        """Run ``coro`` in the namespace; its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class SnmpSwitch:
    """The running switch: its state file, its SET log, snmpd's log, and the loop to call it from."""

    namespace: str
    state: Path
    log: Path
    snmpd_log: Path
    loop: NetnsLoop
    proc: subprocess.Popen[bytes]
    address: str = AGENT  # where this machine's namespace reaches snmpd (with host_link)

    def stop_snmpd(self) -> None:
        """End snmpd (a switch that goes away): it answers nothing from now on."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def read_state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state.read_text())
        return data

    def write_state(self, data: dict[str, Any]) -> None:
        tmp = self.state.with_suffix(".new")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state)

    def set_port(self, port: str, **values: Any) -> None:
        data = self.read_state()
        data["ports"][port].update(values)
        self.write_state(data)

    def log_entries(self) -> list[dict[str, Any]]:
        text = self.log.read_text() if self.log.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_for_log(self, predicate: Any, timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for entry in self.log_entries():
                if predicate(entry):
                    return entry
            time.sleep(0.05)
        raise AssertionError(f"no such entry in {self.log}: {self.log_entries()}")


def _config(directory: Path, host_link: bool) -> Path:
    conf = directory / "snmpd.conf"
    state, log = directory / "poe-state.json", directory / "poe-set.log"
    program = f"{sys.executable} {POE_AGENT} {state} {log}"
    if host_link:  # the ports' programs run where the nodes are: this machine's own namespace
        nsenter = shutil.which("nsenter", path=TOOL_PATH)
        program = f"{nsenter} --net=/proc/{os.getpid()}/ns/net {program}"
    lines = [
        f"rwcommunity {COMMUNITY} default",
        f'createUser {V3_USER} SHA-256 "{V3_AUTH_KEY}" AES "{V3_PRIV_KEY}"',
        f"rwuser {V3_USER} priv",
        f"pass_persist .1.3.6.1.2.1.105 {program} .1.3.6.1.2.1.105",
        f"pass_persist .1.3.6.1.4.1.32473 {program} .1.3.6.1.4.1.32473",
    ]
    conf.write_text("\n".join(lines) + "\n")
    return conf


@contextlib.contextmanager
def snmp_switch(directory: Path, host_link: bool = False) -> Iterator[SnmpSwitch]:
    """snmpd in a new namespace, serving four PoE ports (all on, a flat 2.5 W trace); torn down
    after.  ``host_link``: reachable from this machine's namespace too (see the module)."""
    directory.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(4)
    name = f"rpx-snmp-{tag}"
    state = directory / "poe-state.json"
    state.write_text(json.dumps({"start_unix_s": time.time(),
                                 "ports": {p: {"admin": 1, "trace_mw": [[0, 2500]]} for p in PORTS}}))
    conf = _config(directory, host_link)
    # a /30 of 198.18.0.0/15 picked by the tag: .1 this machine's end, .2 the switch's
    net = int(tag[:4], 16) % 32768 * 4
    host_end, switch_end = (f"198.{18 + net // 65536}.{net // 256 % 256}.{net % 256 + k}" for k in (1, 2))
    host_if = f"rpxh{tag}"
    persistent = directory / "persistent"
    persistent.mkdir(exist_ok=True)
    snmpd_log = directory / "snmpd.log"
    _ip("netns", "add", name)
    proc: subprocess.Popen[bytes] | None = None
    loop: NetnsLoop | None = None
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        # a veth pair with both ends in the namespace: the far end has no address, so what is
        # sent to another address of the network goes unanswered
        _ip("-n", name, "link", "add", "rpxpoe0", "type", "veth", "peer", "name", "rpxpoe1")
        _ip("-n", name, "addr", "add", f"{AGENT}/24", "dev", "rpxpoe0")
        _ip("-n", name, "link", "set", "rpxpoe1", "up")
        _ip("-n", name, "link", "set", "rpxpoe0", "up")
        listen = [f"udp:{AGENT}:161"]
        if host_link:
            _ip("link", "add", host_if, "type", "veth", "peer", "name", "rpxhost0", "netns", name)
            _ip("addr", "add", f"{host_end}/30", "dev", host_if)
            _ip("-n", name, "addr", "add", f"{switch_end}/30", "dev", "rpxhost0")
            _ip("-n", name, "link", "set", "rpxhost0", "up")
            _ip("link", "set", host_if, "up")
            listen.append(f"udp:{switch_end}:161")
        with snmpd_log.open("wb") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", name, "snmpd", "-f", "-Lo", "-C", "-c", str(conf),
                 "-p", str(directory / "snmpd.pid"), ",".join(listen)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PATH": TOOL_PATH, "SNMP_PERSISTENT_DIR": str(persistent),
                     "MIBS": "", "MIBDIRS": str(directory)})
        deadline = time.monotonic() + 15
        while "NET-SNMP version" not in snmpd_log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"snmpd did not start: {snmpd_log.read_text(errors='replace')}")
            time.sleep(0.05)
        loop = NetnsLoop(name)
        yield SnmpSwitch(name, state, directory / "poe-set.log", snmpd_log, loop, proc,
                         switch_end if host_link else AGENT)
    finally:
        if loop is not None:
            loop.close()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        # whatever still runs in the namespace (a pass_persist child) goes with it
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                              env={**os.environ, "PATH": TOOL_PATH}).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], capture_output=True,
                       env={**os.environ, "PATH": TOOL_PATH})
        if host_link:  # its peer went with the namespace; this end too, unless it is still being torn down
            subprocess.run(["ip", "link", "del", host_if], capture_output=True,
                           env={**os.environ, "PATH": TOOL_PATH})
