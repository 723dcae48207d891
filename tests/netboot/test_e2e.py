"""The network boot end to end: real servers in one network namespace, a fake Pi in another.

dnsmasq (DHCP, DNS, TFTP) and nfs-ganesha with rpcbind serve the rendered
configs in the server namespace; the client namespace plays a Pi with its
MAC and asks as the boot ROM and the kernel would: busybox ``udhcpc`` sends
option 93 (client architecture) so dnsmasq adds the PXE menu, busybox
``tftp`` fetches ``<serial>/cmdline.txt``, ``dig`` resolves names, and
``showmount`` and libnfs' ``nfs-cat`` read the node's NFS root, which
another address may not.

Runs as root where network namespaces are allowed (CI); skips with the
reason elsewhere.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rpiaas.cluster import load_cluster
from rpiaas.netboot import make_plan
from rpiaas.netboot.ganesha import ganesha_command, render_ganesha
from rpiaas.netboot.plan import NetbootPlan, NodeBoot

from .netns import (
    CLIENT_IF,
    SERVER_IF,
    SERVER_IP,
    NetnsPair,
    missing_programs,
    netns_available,
    netns_pair,
)

BOOT_PROGRAMS = ("dnsmasq", "busybox", "dig", "nsenter")
NFS_PROGRAMS = ("rpcbind", "ganesha.nfsd", "showmount", "nfs-cat")
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


@dataclass
class Served:
    bed: NetnsPair
    plan: NetbootPlan
    node: NodeBoot  # the node the client plays
    other: NodeBoot
    work: Path
    nfs: bool

    def log(self, service: str) -> str:
        path = self.bed.state_dir / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _dnsmasq_conf(plan: NetbootPlan) -> str:
    lines = [f"interface={plan.interface}", "bind-interfaces", f"listen-address={plan.server_ip}",
             "except-interface=lo", "no-resolv", "no-hosts", "domain-needed", "bogus-priv",
             "dhcp-authoritative", "log-dhcp"]
    for d in plan.domains:
        lines.append(f"local=/{d}/")
    for s in plan.subnets:
        lines.append(f"dhcp-range={s.start},static,{s.netmask},12h")
    for i, n in enumerate(plan.nodes):
        lines += [f"host-record={n.name},{n.address}",
                  f"dhcp-host={n.hwaddr},set:n{i},{n.address},{n.hostname},infinite",
                  f"dhcp-option=tag:n{i},option:root-path,{plan.server_ip}:{n.root_path},vers=3,tcp"]
    lines += ["enable-tftp", f"tftp-root={plan.tftp_root}", 'pxe-service=0,"Raspberry Pi Boot"']
    return "\n".join(lines) + "\n"


def _render(work: Path) -> tuple[NetbootPlan, Path]:
    cluster = work / "cluster.yaml"
    cluster.write_text(CLUSTER)
    out = work / "boot"
    plan = make_plan(load_cluster(cluster), server_ip=SERVER_IP, nfs_root=str(work / "nfs"),
                     tftp_root=str(out / "tftp"))
    for n in plan.nodes:
        (out / "tftp" / n.tftp_dir).mkdir(parents=True)
        (out / "tftp" / n.tftp_dir / "cmdline.txt").write_text(
            f"root=/dev/nfs nfsroot={plan.server_ip}:{n.root_path},vers=3,tcp rw ip=dhcp\n")
    (out / "dnsmasq.conf").write_text(_dnsmasq_conf(plan))
    (out / "ganesha.conf").write_text(render_ganesha(plan))
    return plan, out


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    # Not under pytest's 0700 base directory: dnsmasq serves TFTP as "nobody",
    # which must be able to read the tree as it would on the server.
    with tempfile.TemporaryDirectory(prefix="rpiaas-netboot-e2e-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        yield from _serve(work)


def _serve(work: Path) -> Iterator[Served]:
    plan, out = _render(work)
    node, other = plan.nodes
    for n in plan.nodes:
        Path(n.root_path).mkdir(parents=True)
        Path(n.root_path, "marker").write_text(f"root of {n.name}\n")
    nfs = _skip_reason(NFS_PROGRAMS) is None
    with netns_pair(work / "state", node.hwaddr or "") as bed:
        bed.start_dnsmasq(out / "dnsmasq.conf")
        if nfs:
            bed.start_nfs(ganesha_command(out / "ganesha.conf", bed.state_dir))
        bed.set_client_address(node.address)  # as after its DHCP lease (which udhcpc leaves alone)
        yield Served(bed, plan, node, other, work, nfs)


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
        env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")})
    assert done.returncode == 0, f"udhcpc: {done.stdout}{done.stderr}\n{s.log('dnsmasq')}"
    return dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)


def test_dhcp_gives_the_node_its_address_name_root_path_and_the_pxe_menu(served: Served) -> None:
    n = served.node
    # As the Pi boot ROM asks: vendor class PXEClient, architecture 0 (option 93), a UUID (97).
    env = _dhcp(served, "-V", "PXEClient:Arch:00000:UNDI:002001",
                "-x", "0x5d:0000", "-x", f"0x61:00{UUID}")
    assert env["ip"] == n.address and env["subnet"] == "255.255.255.0"
    assert env["hostname"] == n.hostname and env["serverid"] == SERVER_IP
    assert env["rootpath"] == f"{SERVER_IP}:{n.root_path},vers=3,tcp"
    assert b"Raspberry Pi Boot".hex() in env.get("opt43", ""), served.log("dnsmasq")
    # Any other DHCP client gets the same lease but no PXE menu (dnsmasq 2.90 keys it on
    # the vendor class, not on option 93 alone).
    env = _dhcp(served, "-x", "0x5d:0000")
    assert env["ip"] == n.address and "opt43" not in env


def test_tftp_serves_the_node_its_cmdline_and_refuses_a_missing_file(served: Served) -> None:
    n, got = served.node, served.work / "cmdline.got"
    done = served.bed.client.run("busybox", "tftp", "-g", "-r", f"{n.tftp_dir}/cmdline.txt",
                                 "-l", str(got), SERVER_IP)
    assert done.returncode == 0, done.stderr
    assert f"nfsroot={SERVER_IP}:{n.root_path}" in got.read_text()
    missing = served.bed.client.run("busybox", "tftp", "-g", "-r", f"{n.tftp_dir}/no-such-file",
                                    "-l", str(served.work / "nothing"), SERVER_IP)
    assert missing.returncode != 0 and "not found" in missing.stderr.lower(), missing.stderr


def test_dns_answers_for_the_nodes_and_nxdomain_for_others(served: Served) -> None:
    for n in served.plan.nodes:
        done = served.bed.client.run("dig", f"@{SERVER_IP}", n.name, "+short", "+time=2",
                                     "+tries=2")
        assert done.returncode == 0 and done.stdout.split() == [n.address], done
    done = served.bed.client.run("dig", f"@{SERVER_IP}", "ghost.c1.rpiaas.test", "+time=2",
                                 "+tries=2")
    assert "status: NXDOMAIN" in done.stdout, done.stdout


@needs_nfs
def test_nfs_serves_each_root_to_its_node_only(served: Served) -> None:
    bed, n = served.bed, served.node
    url = f"nfs://{SERVER_IP}{n.root_path}/marker?version=3"
    try:
        shown = bed.client.run("showmount", "-e", SERVER_IP)
        assert shown.returncode == 0, shown.stderr
        assert f"{n.root_path} {n.address}/32" in shown.stdout.splitlines()
        assert served.other.root_path not in shown.stdout  # another node's root is not listed
        read = bed.client.run("nfs-cat", url)
        assert read.returncode == 0 and read.stdout == f"root of {n.name}\n", read.stderr
        read = bed.client.run("nfs-cat", url.replace("version=3", "version=4"))
        assert read.returncode == 0 and read.stdout == f"root of {n.name}\n", read.stderr

        bed.set_client_address(served.other.address)  # another node asks for this one's root
        refused = bed.client.run("nfs-cat", url)
        assert refused.returncode != 0 and "MNT3ERR_ACCES" in refused.stderr, refused
        assert n.root_path not in bed.client.run("showmount", "-e", SERVER_IP).stdout
        assert "Config File (" not in served.log("ganesha")  # no unknown or bad parameter
    finally:
        bed.set_client_address(n.address)


def test_skip_reasons_name_what_is_missing() -> None:
    assert missing_programs("sh", "no-such-program-rpx") == ["no-such-program-rpx"]
    assert os.geteuid() != 0 or netns_available() is None
