"""A testbed of virtual Pis: N QEMU arm64 nodes that boot over the network and run the real agent.

``sudo rpiaas testbed up --virtual N`` does, in the testbed's directory
(default ``.rpiaas-testbed``):

1. writes the cluster (``--cluster``, or N nodes of type ``qemu_a53``) and
   renders its network boot (``boot/``: dnsmasq, nfs-ganesha, TFTP), served
   from ``server_ip`` on a bridge;
2. fetches and builds, once (cached, ``$RPIAAS_VM_CACHE`` or
   ``~/.cache/rpiaas/vm``), the Debian arm64 kernel and initramfs and a
   Debian arm64 userland with Python and the agent, and copies it into one NFS
   root per node (``nfs/<node>``), with the node's name, token and master;
3. makes a private network namespace with that bridge, and starts in it
   rpcbind, ``rpiaas netboot serve`` (dnsmasq and nfs-ganesha) and ``rpiaas
   master``; the master is reached from the host through a relay on loopback
   (:mod:`.relay`), the only way in;
4. boots one QEMU ``virt`` VM (Cortex-A53, TCG) per node on a tap device in
   the bridge, with the node's MAC: its kernel takes the node's lease, mounts
   the node's root over NFS and starts the agent, which reports the boot to
   the master with the node's own token;
5. returns once the master sees every node online, or says which node did
   not come up and why, from its console (and stops everything again).

``rpiaas testbed status`` and ``down`` find it through ``DIR/testbed.json``.
``down`` stops the VMs, daemons, master and relay and deletes the namespace
with its bridge and taps; nothing stays running or mounted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..auth import node_token
from ..power.drivers.process import record_pid, write_command
from . import netns
from .netns import Namespace
from .plan import HOST, TestbedError
from .procs import (
    Proc,
    complaints,
    executable,
    get_json,
    stop_all,
    this_start,
    wait_for_log,
    wait_until,
)
from .state import (
    TOKENS_DIR,
    VIRTUAL,
    TestbedFiles,
    check_not_running,
    forget_state,
    keep_out_of_git,
    running_now,
    write_state,
)
from .vmplan import (
    MASTER_PORT_NS,
    MAX_VM_MEM_MB,
    POWER_DIR,
    PROGRAMS,
    mounts_under,
    prepare,
    vm_script,
    vm_sizes,
    why_not_booted,
    write_cluster,
)

__all__ = ["PROGRAMS", "VirtualTestbed", "load_virtual", "start_virtual_testbed"]


@dataclass
class VirtualTestbed(TestbedFiles):
    """A running virtual testbed: its directory, namespace, processes and VMs."""

    __test__ = False

    dir: Path
    namespace: str
    server_ip: str
    master: Proc  # its port is the relay's, on the host's loopback
    services: dict[str, Proc]  # anchor, rpcbind, netboot, relay
    vms: dict[str, Proc]  # node name -> QEMU, its log the console
    node_types: dict[str, str]
    sizes: dict[str, list[int]]  # node name -> [CPUs, memory in MiB] of its VM
    started_s: float
    notes: list[str] = field(default_factory=list)
    _ns: Namespace | None = field(default=None, repr=False)  # when started by this process

    kind = VIRTUAL

    @property
    def master_url(self) -> str:
        return f"http://{HOST}:{self.master.port}"

    @property
    def agents(self) -> dict[str, Proc]:
        """The nodes' processes (their VMs), by node name, as a local testbed's agents."""
        return self.vms

    def node_token(self, name: str) -> str:
        return node_token(self.node_secret_file.read_text(encoding="utf-8").strip(), name)

    def processes(self) -> list[Proc]:
        """The master first, then the VMs (as they run now: the master may have switched one
        off and booted a new one), then the relay and the boot services."""
        order = ("relay", "netboot", "rpcbind", "anchor")
        return [self.master, *self.current_vms().values(),
                *(self.services[k] for k in order if k in self.services)]

    def current_vms(self) -> dict[str, Proc]:
        """Each node's QEMU now: the one the power driver's pid file names, if it runs, else
        the one the testbed started."""
        return running_now(self.vms, self.dir / POWER_DIR)

    def summary(self, timeout_s: float = 3.0) -> dict[str, Any]:
        summary: dict[str, Any] = get_json(self.master_url + "/api/v1/summary", timeout_s)
        return summary

    def console(self, name: str) -> str:
        """Node ``name``'s console output since its VM started."""
        try:
            text = Path(self.vms[name].log).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text[text.rfind("\n--- ") + 1:]

    def stop(self, timeout_s: float = 10.0) -> list[str]:
        """Stop the master, VMs, relay and boot services; delete the namespace; what was done."""
        netns.require_root("rpiaas testbed down (of a virtual testbed)")
        lines = stop_all([self.master, *self.current_vms().values()], timeout_s)
        for key in ("relay", "netboot", "rpcbind", "anchor"):
            if key in self.services:
                lines += stop_all([self.services[key]], timeout_s)
        lines += netns.delete(Namespace(self.namespace))
        if self._ns is not None:
            self._ns.reap()
        left = mounts_under(self.dir)
        if left:
            raise TestbedError(f"still mounted under {self.dir}: {'; '.join(left)}")
        forget_state(self.dir)
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"kind": VIRTUAL, "dir": str(self.dir), "namespace": self.namespace,
                "server_ip": self.server_ip, "master_url": self.master_url,
                "master": asdict(self.master),
                "services": {k: asdict(p) for k, p in self.services.items()},
                "vms": {k: asdict(p) for k, p in self.vms.items()},
                "node_types": self.node_types, "sizes": self.sizes,
                "master_token_file": str(self.master_token_file),
                "node_secret_file": str(self.node_secret_file),
                "started_s": self.started_s, "notes": self.notes}


def load_virtual(root: Path, data: dict[str, Any]) -> VirtualTestbed:
    """The virtual testbed that ``testbed.json`` (``data``) of ``root`` records."""
    return VirtualTestbed(
        root, data["namespace"], data["server_ip"], Proc(**data["master"]),
        {k: Proc(**p) for k, p in data["services"].items()},
        {k: Proc(**p) for k, p in data["vms"].items()}, dict(data["node_types"]),
        {k: [int(x) for x in v] for k, v in data["sizes"].items()}, float(data["started_s"]),
        list(data.get("notes", [])))


# ---------------------------------------------------------------- up
def start_virtual_testbed(dir: str | os.PathLike[str], n: int | None = None, *,
                          cluster: str | os.PathLike[str] | None = None,
                          mem_mb: int | None = None,
                          master_port: int = 8080, poll_interval_s: float = 1.0,
                          timeout_s: float = 300.0, cache: str | None = None,
                          prepare_roots: bool = True,
                          icount_shift: int | None = None) -> VirtualTestbed:
    """Start a virtual testbed in ``dir`` (see the module docstring); wait until every node is online.

    :param n: how many nodes, for the generated cluster (``cluster`` None).
    :param cluster: a cluster file whose nodes all have MACs; its ``interface`` is replaced.
    :param mem_mb: each VM's memory; default: its node type's, plus
        :data:`~.vmplan.HEADROOM_MB` for its kernel and agent, which then admits tasks with
        exactly the type's memory (and cores: each VM has as many CPUs as its type has cores).
    :param master_port: the relay's port on the host's loopback (0: a free one).
    :param prepare_roots: False boots the roots in ``dir/nfs`` as they are.
    :param icount_shift: each virtual CPU runs at a fixed 2^shift ns per instruction, whatever
        else the host runs (QEMU ``-icount``); None: as fast as the host lets it.
    :raises TestbedError: not root, a program missing, bad arguments, a step that failed, or
        a node not online in time (which one, and why from its console); whatever was
        started is stopped again.
    """
    netns.require_root("rpiaas testbed up --virtual")
    if missing := netns.missing_programs(*PROGRAMS):
        raise TestbedError(f"missing programs: {', '.join(missing)} (see docs/testbed.md)",
                           exit_code=2)
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        raise TestbedError("no /dev/net/tun: tap devices cannot be made here", exit_code=2)
    if icount_shift is not None and not 0 <= icount_shift <= 10:
        raise TestbedError(f"--icount: expected 0 to 10, got {icount_shift}", exit_code=2)
    if mem_mb is not None and not 64 <= mem_mb <= MAX_VM_MEM_MB:
        raise TestbedError(f"--mem-mb: expected 64 to {MAX_VM_MEM_MB}, got {mem_mb}",
                           exit_code=2)
    root = Path(dir).absolute()
    root.mkdir(parents=True, exist_ok=True)
    closed = [p for p in root.parents if not os.stat(p).st_mode & 0o001]
    if closed:
        raise TestbedError(f"--dir {dir}: {closed[0]} is closed to other users, and dnsmasq "
                           f"serves the boot files as 'nobody': choose a directory every user "
                           f"may pass through, or chmod o+x {closed[0]}", exit_code=2)
    check_not_running(root)
    # the daemons (dnsmasq serves TFTP as nobody) read below it
    root.chmod(0o755)
    for sub in ("logs", "state"):
        (root / sub).mkdir(exist_ok=True)
    (root / "logs").chmod(0o700)
    (root / TOKENS_DIR).mkdir(mode=0o700, exist_ok=True)
    keep_out_of_git(root)

    spec = write_cluster(root, n, cluster)
    sizes = vm_sizes(spec, mem_mb)
    plan, prefix_len, files = prepare(root, spec, sizes, cache=cache, prepare_roots=prepare_roots,
                                       poll_interval_s=poll_interval_s)
    server_ip = plan.server_ip

    ns = netns.new_namespace()
    services: dict[str, Proc] = {}
    vms: dict[str, Proc] = {}
    master: Proc | None = None
    try:
        ns.add_bridge(server_ip, prefix_len)
        logs = root / "logs"
        services["anchor"] = ns.start_anchor(logs / "anchor.log", root)
        services["rpcbind"] = ns.start("rpcbind", ["rpcbind", "-f", "-h", server_ip],
                                       logs / "rpcbind.log", root)
        wait_until(lambda: Path(f"/proc/{ns.anchor.pid}/root/run/rpcbind.sock").exists()
                  if ns.anchor else False, services["rpcbind"], "its socket", 10)
        rpiaas = executable("rpiaas")
        services["netboot"] = ns.start(
            "netboot", [rpiaas, "netboot", "serve", str(root / "boot"), "--state-dir",
                        str(root / "state"), "--nfs", "ganesha"], logs / "netboot.log", root)
        wait_for_log(services["netboot"], "NFS SERVER INITIALIZED", 60)
        master = ns.start("master", [rpiaas, "master", str(root / "master.yaml")],
                          logs / "master.log", root)
        wait_for_log(master, "Running on", 60)
        relay, port = _start_relay(ns, root, server_ip, master_port)
        services["relay"] = relay
        master = Proc("master", master.pid, port, master.log, master.start_ticks)
        names = {node.name: node for node in plan.nodes}
        types = {node.name: node.type.name for node in spec.nodes}
        tb = VirtualTestbed(root, ns.name, server_ip, master, services, vms, types,
                            {k: list(v[:2]) for k, v in sizes.items()}, time.time(), _ns=ns)
        write_state(root, tb.to_json())
        token = tb.master_token
        for i, (name, node) in enumerate(names.items(), start=1):
            tap = f"rpxtap{i}"
            ns.add_tap(tap)
            _post(tb.master_url + f"/api/v1/nodes/{name}/booting", token)
            qmp = root / POWER_DIR / f"vm-{node.hostname}.qmp"
            argv = [str(vm_script("boot-vm.sh")), "--tap", tap, "--mac", str(node.hwaddr),
                    "--kernel", files["KERNEL"], "--initrd", files["INITRD"],
                    "--cpus", str(sizes[name][0]), "--mem", str(sizes[name][1]),
                    "--qmp", str(qmp)] \
                + ([] if icount_shift is None else ["--icount", str(icount_shift)])
            log = logs / f"vm-{node.hostname}.log"
            # what the master's qemu driver needs to boot this VM again (it runs in the
            # namespace: the same command, without entering it)
            write_command(root / POWER_DIR, name, argv, root, log, {"PATH": netns.TOOL_PATH},
                          qmp=str(qmp))
            vms[name] = ns.start(name, argv, log, root)
            record_pid(root / POWER_DIR, name, vms[name].pid)
        write_state(root, tb.to_json())
        wait_online(tb, timeout_s)
    except BaseException:
        procs = [p for p in (master, *vms.values()) if p is not None]
        with contextlib.suppress(TestbedError):
            stop_all(procs, 5.0)
        for p in reversed(services.values()):
            with contextlib.suppress(TestbedError):
                stop_all([p], 5.0)
        with contextlib.suppress(TestbedError):
            netns.delete(ns)
        ns.reap()
        forget_state(root)
        raise
    return tb


def _start_relay(ns: Namespace, root: Path, server_ip: str, port: int) -> tuple[Proc, int]:
    """The relay from the host's ``127.0.0.1:port`` to the master in the namespace."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((HOST, port))
        except OSError as e:
            raise TestbedError(f"--master-port {port}: cannot listen on {HOST}:{port}: "
                               f"{e.strerror}", exit_code=2) from None
        listener.listen(128)
        port = int(listener.getsockname()[1])
        fd = listener.fileno()
        from .procs import proc_stat, start_process

        log = root / "logs" / "relay.log"
        popen = start_process(["ip", "netns", "exec", ns.name, sys.executable, "-m",
                               "rpiaas.testbed.relay", "--fd", str(fd), "--to",
                               f"{server_ip}:{MASTER_PORT_NS}"], log, root,
                              env_path=netns.TOOL_PATH, pass_fds=(fd,))
        ns.popens.append(popen)
    finally:
        listener.close()
    stat = proc_stat(popen.pid)
    relay = Proc("relay", popen.pid, port, str(log), stat[1] if stat else None)
    wait_for_log(relay, "relay: ", 15)
    return relay, port


def _post(url: str, token: str) -> None:
    req = urllib.request.Request(url, data=b"{}", method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def wait_online(tb: VirtualTestbed, timeout_s: float) -> None:
    """Return once the master sees every node online; TestbedError naming a node that is not."""
    deadline = time.monotonic() + timeout_s
    online: dict[str, bool] = {}
    while True:
        for p in (tb.master, *tb.services.values()):
            if not p.alive():
                raise TestbedError(f"{p.name} exited; from {p.log}:\n{complaints(p.log)}")
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            nodes = get_json(tb.master_url + "/api/v1/nodes", 3.0)["nodes"]
            # online, and polled since this start: its agent answers, not only its boot report
            online = {d["name"]: d.get("online") is True
                      and (d.get("last_ok_s") or 0.0) > tb.started_s for d in nodes}
            if all(online.get(name) for name in tb.vms):
                return
        ended = [name for name, p in tb.vms.items() if not p.alive()]
        if ended:
            name = ended[0]
            raise TestbedError(f"{name} did not boot: its VM stopped: "
                               f"{why_not_booted(tb.console(name))}; the end of its console "
                               f"({tb.vms[name].log}):\n{this_start(tb.vms[name].log)}")
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    late = [name for name in tb.vms if not online.get(name)]
    raise TestbedError(
        f"not online after {timeout_s:g} s: {', '.join(late)}" + "".join(
            f"\n{name}: {why_not_booted(tb.console(name))}; the end of its console:\n"
            f"{this_start(tb.vms[name].log)}" for name in late[:3]))
