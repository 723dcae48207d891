"""The network boot end to end: real servers in one network namespace, a fake Pi in another.

``rpiaas netboot render`` writes the configs from a cluster file; dnsmasq
(DHCP, DNS, TFTP) and nfs-ganesha with rpcbind serve them in the server
namespace.  The client namespace plays a Pi, with its MAC, and asks as the
boot ROM and the kernel would: busybox ``udhcpc`` sends the vendor class
``PXEClient`` and option 93 (client architecture), which is what makes
dnsmasq add the PXE menu (option 43); busybox ``tftp`` fetches
``<serial>/cmdline.txt``; ``dig`` resolves names; ``showmount`` and
libnfs' ``nfs-cat`` read the node's NFS root, which another address may not.

Runs as root where network namespaces are allowed (CI); skips elsewhere
with the reason: not root, namespaces refused, or which programs are missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .netns import (
    CLIENT_IF,
    SERVER_IF,
    SERVER_IP,
    TOOL_PATH,
    NetnsPair,
    missing_programs,
    netns_available,
    netns_pair,
)

BOOT_PROGRAMS = ("dnsmasq", "busybox", "dig", "nsenter")
NFS_PROGRAMS = ("rpcbind", "ganesha.nfsd", "showmount", "nfs-cat")
RPIAAS = Path(sys.executable).with_name("rpiaas")
UUID = "00112233445566778899aabbccddeeff"  # option 97 (client UUID), as the Pi boot ROM sends it

CLUSTER = f"""\
interface: {SERVER_IF}
clusters:
  - domain: c1.rpiaas.test
    prefix: 10.0.0
    nodes:
      - {{hostname: node1, type: rpi4b, suffix: 11, hwaddr: "dc:a6:32:00:00:11", serial: 1a2b3c4d}}
      - {{hostname: node2, type: rpi4b, suffix: 12, hwaddr: "dc:a6:32:00:00:12", serial: 5e6f7a8b}}
"""


def _skip_reason(programs: tuple[str, ...]) -> str | None:
    reason = netns_available()
    if reason is None and (missing := missing_programs(*programs)):
        reason = f"missing programs: {', '.join(missing)}"
    return reason


pytestmark = pytest.mark.skipif(_skip_reason(BOOT_PROGRAMS) is not None,
                                reason=f"netboot end to end: {_skip_reason(BOOT_PROGRAMS)}")
needs_nfs = pytest.mark.skipif(_skip_reason(NFS_PROGRAMS) is not None,
                               reason=f"NFS end to end: {_skip_reason(NFS_PROGRAMS)}")


@dataclass(frozen=True)
class Node:
    """What the cluster file above says of a node, written out as the tests expect it."""

    name: str
    hostname: str
    address: str
    hwaddr: str
    serial: str


NODE = Node("node1.c1.rpiaas.test", "node1", "10.0.0.11", "dc:a6:32:00:00:11", "1a2b3c4d")
OTHER = Node("node2.c1.rpiaas.test", "node2", "10.0.0.12", "dc:a6:32:00:00:12", "5e6f7a8b")


@dataclass
class Served:
    bed: NetnsPair
    work: Path

    def root(self, node: Node) -> str:
        return str(self.work / "nfs" / node.name)

    def log(self, service: str) -> str:
        path = self.bed.state_dir / f"{'serve' if service in ('dnsmasq', 'ganesha') else service}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _render(work: Path) -> Path:
    """``rpiaas netboot render`` of the cluster above, as a user runs it; the output directory."""
    cluster = work / "cluster.yaml"
    cluster.write_text(CLUSTER)
    out = work / "boot"
    done = subprocess.run(
        [str(RPIAAS), "netboot", "render", str(cluster), "--out", str(out),
         "--server-ip", SERVER_IP, "--nfs-root", str(work / "nfs")],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"rpiaas netboot render: {done.stdout}{done.stderr}"
    return out


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    # Not under pytest's 0700 base directory: dnsmasq serves TFTP as "nobody",
    # which must be able to read the tree as it would on the server.
    with tempfile.TemporaryDirectory(prefix="rpiaas-netboot-e2e-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        yield from _serve(work)


def _serve(work: Path) -> Iterator[Served]:
    out = _render(work)
    for node in (NODE, OTHER):
        root = work / "nfs" / node.name
        root.mkdir(parents=True)
        (root / "marker").write_text(f"root of {node.name}\n")
    with netns_pair(work / "state", NODE.hwaddr) as bed:
        # `rpiaas netboot serve` runs the daemons, as an operator would
        serve = [str(RPIAAS), "netboot", "serve", str(out), "--state-dir", str(bed.state_dir)]
        if _skip_reason(NFS_PROGRAMS) is None:
            bed.start_rpcbind()
            serve += ["--nfs", "ganesha"]
        service = bed.start("serve", *serve)
        service.wait_for_log("started, version")  # dnsmasq's log is serve's
        if "--nfs" in serve:
            service.wait_for_log("NFS SERVER INITIALIZED")
        bed.set_client_address(NODE.address)  # as after its DHCP lease (which udhcpc leaves alone)
        dnsmasq_pid = int((bed.state_dir / "dnsmasq.pid").read_text())
        yield Served(bed, work)
        # SIGTERM stops serve, which returns only once its daemons are gone
        assert service.stop() == 0, service.log_text()
        assert not _alive(dnsmasq_pid), "dnsmasq outlived rpiaas netboot serve"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _dhcp(s: Served, *pxe: str) -> dict[str, str]:
    """The lease's variables as udhcpc passes them to its script (``opt43`` and so on)."""
    env_file = s.work / "udhcpc.env"
    env_file.unlink(missing_ok=True)
    script = s.work / "udhcpc.sh"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        [ "$1" = bound ] && env > {env_file}
        exit 0
        """))
    script.chmod(0o755)
    done = s.bed.client.run(
        "busybox", "udhcpc", "-f", "-q", "-n", "-t", "3", "-T", "1", "-i", CLIENT_IF,
        "-s", str(script), "-O", "rootpath", "-O", "43", *pxe,
        env={"PATH": TOOL_PATH})  # only PATH: the script dumps the environment
    assert done.returncode == 0, f"udhcpc: {done.stdout}{done.stderr}\n{s.log('dnsmasq')}"
    return dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)


def test_dhcp_gives_the_node_its_address_name_root_path_and_the_pxe_menu(served: Served) -> None:
    n = NODE
    # As the Pi boot ROM asks: vendor class PXEClient, architecture 0 (option 93), a UUID (97).
    env = _dhcp(served, "-V", "PXEClient:Arch:00000:UNDI:002001",
                "-x", "0x5d:0000", "-x", f"0x61:00{UUID}")
    assert env["ip"] == n.address and env["subnet"] == "255.255.255.0"
    assert env["hostname"] == n.hostname and env["serverid"] == SERVER_IP
    # The root path is "server:path[,mount options]", as the kernel's nfsroot= reads it.
    assert env["rootpath"].split(",")[0] == f"{SERVER_IP}:{served.root(n)}", env["rootpath"]
    assert b"Raspberry Pi Boot".hex() in env.get("opt43", ""), served.log("dnsmasq")
    # Any other DHCP client gets the same lease but no PXE menu (dnsmasq 2.90 keys it on
    # the vendor class, not on option 93 alone).
    env = _dhcp(served, "-x", "0x5d:0000")
    assert env["ip"] == n.address and "opt43" not in env


def test_tftp_serves_the_node_its_cmdline_and_refuses_a_missing_file(served: Served) -> None:
    n, got = NODE, served.work / "cmdline.got"
    done = served.bed.client.run("busybox", "tftp", "-g", "-r", f"{n.serial}/cmdline.txt",
                                 "-l", str(got), SERVER_IP)
    assert done.returncode == 0, done.stderr
    assert f"nfsroot={SERVER_IP}:{served.root(n)}," in got.read_text()
    missing = served.bed.client.run("busybox", "tftp", "-g", "-r", f"{n.serial}/no-such-file",
                                    "-l", str(served.work / "nothing"), SERVER_IP)
    assert missing.returncode != 0 and "not found" in missing.stderr.lower(), missing.stderr


def test_dns_answers_for_the_nodes_and_nxdomain_for_others(served: Served) -> None:
    for n in (NODE, OTHER):
        done = served.bed.client.run("dig", f"@{SERVER_IP}", n.name, "+short", "+time=2",
                                     "+tries=2")
        assert done.returncode == 0 and done.stdout.split() == [n.address], done
    done = served.bed.client.run("dig", f"@{SERVER_IP}", "ghost.c1.rpiaas.test", "+time=2",
                                 "+tries=2")
    assert "status: NXDOMAIN" in done.stdout, done.stdout


@needs_nfs
def test_nfs_serves_each_root_to_its_node_only(served: Served) -> None:
    bed, n, root = served.bed, NODE, served.root(NODE)
    url = f"nfs://{SERVER_IP}{root}/marker?version=3"
    try:
        shown = bed.client.run("showmount", "-e", SERVER_IP)
        assert shown.returncode == 0, shown.stderr
        assert f"{root} {n.address}/32" in shown.stdout.splitlines()
        assert served.root(OTHER) not in shown.stdout  # another node's root is not listed
        read = bed.client.run("nfs-cat", url)
        assert read.returncode == 0 and read.stdout == f"root of {n.name}\n", read.stderr
        read = bed.client.run("nfs-cat", url.replace("version=3", "version=4"))
        assert read.returncode == 0 and read.stdout == f"root of {n.name}\n", read.stderr

        bed.set_client_address(OTHER.address)  # another node asks for this one's root
        refused = bed.client.run("nfs-cat", url)
        assert refused.returncode != 0 and "MNT3ERR_ACCES" in refused.stderr, refused
        refused = bed.client.run("nfs-cat", url.replace("version=3", "version=4"))
        assert refused.returncode != 0 and "NFS4ERR_NOENT" in refused.stderr, refused  # unseen
        assert root not in bed.client.run("showmount", "-e", SERVER_IP).stdout
        assert "Config File (" not in served.log("ganesha")  # no unknown or bad parameter
    finally:
        bed.set_client_address(n.address)

