"""The virtual testbed's plan and preparation: its cluster, the boot server's address, each
VM's size, the boot files, tokens, the VMs' kernel and the nodes' roots.

The virtual nodes' scripts ship with the package (``rpiaas/netboot/vm``):
``prepare.sh`` builds the Debian arm64 kernel and initramfs, ``make-agent-root.sh``
the nodes' roots, ``boot-vm.sh`` boots one (see its README).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import time
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..auth import node_token
from ..inputs.cluster import load_cluster
from ..inputs.source import InputError
from ..model import ClusterSpec
from ..netboot.ganesha import render_ganesha
from ..netboot.plan import NetbootError, NetbootPlan, make_plan
from ..netboot.render import render
from . import netns
from .netns import BRIDGE_IF
from .plan import TestbedError
from .procs import tail, write_private
from .state import TOKENS_DIR

__all__ = [
    "DOMAIN",
    "HEADROOM_MB",
    "MASTER_PORT_NS",
    "MAX_NODES",
    "MAX_VM_CPUS",
    "MAX_VM_MEM_MB",
    "POWER_DIR",
    "PREFIX",
    "PROGRAMS",
    "VM_NODE_TYPE",
    "default_cluster",
    "mounts_under",
    "prepare",
    "run_step",
    "server_address",
    "vm_files",
    "vm_script",
    "vm_sizes",
    "why_not_booted",
    "write_cluster",
]

VM_NODE_TYPE = "qemu_a53"
MASTER_PORT_NS = 8080  # the master's port inside the namespace
# A virtual node answers /info in some 25 ms, but up to seconds while a task or the
# agent's speed measurement holds its emulated core: a longer timeout, one more miss.
POLL_TIMEOUT_S, OFFLINE_AFTER = 3.0, 3
MAX_VM_CPUS, MAX_VM_MEM_MB = 8, 16384
HEADROOM_MB = 128  # a VM's memory beyond its node type's: its kernel, its agent
DOMAIN, PREFIX = "virtual.rpiaas.test", "10.77.0"
MAX_NODES = 200
POWER_DIR = "power"  # the qemu driver's state_dir: each VM's command line, pid and QMP socket
POWER_TIMEOUT_S = 10.0  # from QMP system_powerdown to quit, when the master switches a VM off
PROGRAMS = ("ip", "nsenter", "dnsmasq", "rpcbind", "ganesha.nfsd", "qemu-system-aarch64",
            "apt-get", "dpkg-deb", "depmod", "cpio")


def vm_script(name: str) -> Path:
    """A script of the virtual Pi (``rpiaas/netboot/vm``), shipped with the package."""
    return Path(str(resources.files("rpiaas.netboot").joinpath("vm").joinpath(name)))


def default_cluster(n: int) -> dict[str, Any]:
    """N ``qemu_a53`` nodes ``vnode1`` ... in ``DOMAIN``, MACs in QEMU's range (52:54:00)."""
    if not 1 <= n <= MAX_NODES:
        raise TestbedError(f"--virtual: expected 1 to {MAX_NODES} nodes, got {n}", exit_code=2)
    return {"interface": BRIDGE_IF, "clusters": [{
        "domain": DOMAIN, "prefix": PREFIX,
        # the master switches each VM through the qemu driver
        "power": {"driver": "qemu", "state_dir": POWER_DIR, "timeout_s": POWER_TIMEOUT_S},
        "nodes": [{"hostname": f"vnode{i}", "type": VM_NODE_TYPE, "suffix": 10 + i,
                   "hwaddr": f"52:54:00:77:{i >> 8:02x}:{i & 0xff:02x}"}
                  for i in range(1, n + 1)]}]}


def vm_sizes(spec: ClusterSpec, mem_mb: int | None) -> dict[str, tuple[int, int, int | None]]:
    """Each node's VM: its CPUs and memory, and the memory its agent admits (None: all).

    A VM has as many CPUs as its node type has cores, and the type's memory plus
    :data:`HEADROOM_MB`, so that its agent admits exactly the type's cores and
    memory, as the model does; ``mem_mb`` gives every VM that memory instead (its
    agent then admits what the VM has).
    """
    sizes: dict[str, tuple[int, int, int | None]] = {}
    for node in spec.nodes:
        t = node.type
        if t.cores > MAX_VM_CPUS or (mem_mb is None and t.mem_mb + HEADROOM_MB > MAX_VM_MEM_MB):
            raise TestbedError(
                f"{node.name}: a {t.name} ({t.cores} cores, {t.mem_mb} MB) is more than a "
                f"virtual node may have ({MAX_VM_CPUS} CPUs, {MAX_VM_MEM_MB} MB); give it a "
                "smaller node type in the cluster", exit_code=2)
        sizes[node.name] = (t.cores, t.mem_mb + HEADROOM_MB, t.mem_mb) if mem_mb is None \
            else (t.cores, mem_mb, None)
    return sizes


def server_address(spec: ClusterSpec) -> tuple[str, int]:
    """The boot server's address and prefix length: the highest free host of the first network."""
    cluster = next((c for c in spec.clusters if c.prefix and c.nodes), None)
    if cluster is None:
        raise TestbedError("the cluster has no network (no cluster with a prefix and nodes)",
                           exit_code=2)
    octets = cluster.prefix.split(".")
    network = ipaddress.IPv4Network(".".join(octets + ["0"] * (4 - len(octets)))
                                    + f"/{8 * len(octets)}")
    taken = {n.address for n in spec.nodes}
    for host in reversed(list(network.hosts())[-254:]):
        if str(host) not in taken:
            return str(host), network.prefixlen
    raise TestbedError(f"no free address for the boot server in {network}", exit_code=2)


def run_step(what: str, argv: list[str], log: Path, timeout_s: float) -> str:
    """Run a preparation step to its end, its output appended to ``log``; its standard output."""
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n")
        out.flush()
        try:
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=out, text=True,
                                  timeout=timeout_s, env={**os.environ, "PATH": netns.TOOL_PATH})
        except subprocess.TimeoutExpired:
            raise TestbedError(f"{what}: no end after {timeout_s:g} s; see {log}") from None
        out.write(done.stdout)
    if done.returncode != 0:
        raise TestbedError(f"{what} failed (exit {done.returncode}); the end of {log}:\n"
                           f"{tail(str(log))}")
    return done.stdout


def vm_files(root: Path, cache: str | None) -> dict[str, str]:
    argv = [str(vm_script("prepare.sh"))] + (["--cache", cache] if cache else [])
    out = run_step("the virtual Pi's kernel and initramfs (prepare.sh)", argv,
                    root / "logs" / "prepare.log", 1800)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def mounts_under(path: Path) -> list[str]:
    """The host's mounts at or below ``path``."""
    prefix = str(path.absolute())
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target == prefix or target.startswith(prefix + "/"):
            found.append(target)
    return found


def why_not_booted(console: str) -> str:
    """The reason a node's console gives for a failed boot, or a hint if it gives none."""
    for line in console.splitlines():
        if "FAILED" in line or "Kernel panic" in line:
            return line.strip()
    return "no failure on its console (the end of it is below)"


def write_cluster(root: Path, n: int | None, cluster: str | os.PathLike[str] | None
                  ) -> ClusterSpec:
    """``root/cluster.yaml``: the generated cluster of ``n`` nodes, or a copy of ``cluster``
    (checked where it is, so its errors name its own file and line; ``n``, if given, must
    be its number of nodes)."""
    if cluster is None:
        if n is None:
            raise TestbedError("give the number of nodes or a cluster", exit_code=2)
        (root / "cluster.yaml").write_text(yaml.safe_dump(default_cluster(n), sort_keys=False),
                                           encoding="utf-8")
        return load_cluster(root / "cluster.yaml")
    try:
        spec = load_cluster(Path(cluster))
        text = Path(cluster).read_text(encoding="utf-8")
    except InputError as e:
        raise TestbedError(f"--cluster: {e}", exit_code=2) from None
    except OSError as e:
        raise TestbedError(f"--cluster: {cluster}: {e.strerror}", exit_code=2) from None
    if n is not None and n != len(spec.nodes):
        raise TestbedError(f"--virtual {n}: {cluster} has {len(spec.nodes)} nodes", exit_code=2)
    nameless = [node.name for node in spec.nodes if not node.hwaddr
                or node.hwaddr == "00:00:00:00:00:00"]
    if nameless:
        raise TestbedError(f"--cluster: {cluster}: nodes without a MAC (hwaddr) cannot boot: "
                           f"{', '.join(nameless[:5])}", exit_code=2)
    (root / "cluster.yaml").write_text(text, encoding="utf-8")
    return spec


def prepare(root: Path, spec: ClusterSpec, sizes: dict[str, tuple[int, int, int | None]], *,
            cache: str | None, prepare_roots: bool, poll_interval_s: float
            ) -> tuple[NetbootPlan, int, dict[str, str]]:
    """The boot files, tokens, VM files, nodes' roots and master config, written under ``root``.

    Returns the boot plan, the network's prefix length and the VM files (``prepare.sh``'s).
    """
    server_ip, prefix_len = server_address(spec)
    try:
        plan = make_plan(spec, server_ip=server_ip, nfs_root=str(root / "nfs"),
                         tftp_root=str(root / "boot" / "tftp"), interface=BRIDGE_IF)
    except NetbootError as e:
        raise TestbedError(f"{root / 'cluster.yaml'}: {e}", exit_code=2) from None
    source = str(root / "cluster.yaml")
    render(plan, root / "boot", source=source, ganesha=render_ganesha(plan, source=source))

    write_private(root / "master-token", secrets.token_urlsafe(32))
    secret = secrets.token_urlsafe(32)
    write_private(root / "node-secret", secret)
    for node in plan.nodes:
        write_private(root / TOKENS_DIR / f"{node.name}.token", node_token(secret, node.name))
    master_ns_url = f"http://{server_ip}:{MASTER_PORT_NS}"
    files = vm_files(root, cache)
    if prepare_roots:
        argv = [str(vm_script("make-agent-root.sh")), "--render", str(root / "boot"),
                "--master", master_ns_url, "--node-secret-file", str(root / "node-secret"),
                "--busybox", files["BUSYBOX"]] + (["--cache", cache] if cache else [])
        run_step("the nodes' roots (make-agent-root.sh)", argv, root / "logs" / "prepare.log",
                  3600)
        for name, (cpus, _, agent_mem_mb) in sizes.items():
            # each agent admits what its node type has, as the model does
            with open(root / "nfs" / name / "etc/rpiaas-agent/agent.toml", "a",
                      encoding="utf-8") as f:
                f.write(f"cores = {cpus}\n" + ("" if agent_mem_mb is None
                                               else f"mem_mb = {agent_mem_mb}\n"))
    master_doc = {"cluster": "cluster.yaml", "poll_interval_s": poll_interval_s,
                  "poll_timeout_s": POLL_TIMEOUT_S, "offline_after": OFFLINE_AFTER,
                  "store": "history.db", "listen": f"{server_ip}:{MASTER_PORT_NS}",
                  "token_file": "master-token", "node_secret_file": "node-secret",
                  "runs_dir": "runs"}
    (root / "master.yaml").write_text(yaml.safe_dump(master_doc, sort_keys=False),
                                      encoding="utf-8")
    return plan, prefix_len, files
