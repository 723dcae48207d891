"""The boot plan: what every file of the network boot says, worked out once from the cluster.

A :class:`NetbootPlan` holds, per node, its address, MAC, serial, NFS root
and TFTP directory, and per cluster the subnet the server answers DHCP on.
The renderers (``render.py`` for dnsmasq, the exports and the TFTP tree,
``ganesha.py`` for the user-space NFS server) only format it, so they cannot
disagree about a node.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..model import ClusterSpec

__all__ = ["NO_MAC", "NetbootError", "NetbootPlan", "NodeBoot", "Subnet", "make_plan"]

NO_MAC = "00:00:00:00:00:00"  # the original config's placeholder: the MAC is not known yet


class NetbootError(ValueError):
    """The cluster cannot be booted as asked (a node outside every served subnet, ...)."""


@dataclass(frozen=True)
class NodeBoot:
    """One node's network boot.

    :param name: ``hostname.domain``, the name DNS answers for ``address``.
    :param hwaddr: lower-case MAC, or None when the config has none (no static lease then).
    :param serial: the Pi's 8 hex digit serial (Pi 4/5 fetch their files from the
        TFTP directory named by it), or None.
    :param root_path: the node's NFS root on the server (an absolute path).
    :param tftp_dir: the node's directory under the TFTP root (its serial), or
        ``""`` for a node without a serial: it boots from the TFTP root (a Pi 3).
    """

    name: str
    hostname: str
    domain: str
    address: str
    hwaddr: str | None
    serial: str | None
    type: str
    root_path: str
    tftp_dir: str


@dataclass(frozen=True)
class Subnet:
    """A cluster's IPv4 network, from its prefix (``10.0.1`` -> ``10.0.1.0/24``)."""

    domain: str
    network: ipaddress.IPv4Network

    @property
    def start(self) -> str:
        return str(self.network.network_address)

    @property
    def netmask(self) -> str:
        return str(self.network.netmask)


@dataclass(frozen=True)
class NetbootPlan:
    """Everything the boot files say; see the module docstring."""

    interface: str
    server_ip: str
    nfs_root: str
    tftp_root: str
    subnets: tuple[Subnet, ...]
    nodes: tuple[NodeBoot, ...]

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n.domain for n in self.nodes if n.domain))


def _subnet(domain: str, prefix: str) -> Subnet:
    octets = prefix.split(".")
    bits = 8 * len(octets)
    base = ".".join(octets + ["0"] * (4 - len(octets)))
    return Subnet(domain, ipaddress.IPv4Network(f"{base}/{bits}"))


def make_plan(spec: ClusterSpec, *, server_ip: str, nfs_root: str | Path, tftp_root: str | Path,
              interface: str | None = None) -> NetbootPlan:
    """The boot plan of ``spec``'s compute nodes, served from ``server_ip`` on ``interface``.

    ``nfs_root`` holds one root file system per node (``nfs_root/<name>``);
    ``tftp_root`` is the directory TFTP serves.  Both are paths on the server
    and must be absolute.  Raises :class:`NetbootError` for a server address
    that is not IPv4 or lies in no cluster's subnet, a node without an address,
    or a relative path.
    """
    try:
        server = ipaddress.IPv4Address(server_ip)
    except ValueError:
        raise NetbootError(f"server address: not an IPv4 address: {server_ip!r}") from None
    for what, path in (("NFS root", nfs_root), ("TFTP root", tftp_root)):
        if not PurePosixPath(path).is_absolute():
            raise NetbootError(f"{what}: expected an absolute path, got {str(path)!r}")
    iface = interface or spec.interface
    if not iface:
        raise NetbootError("no network interface: the cluster config has no 'interface' "
                           "and none was given")
    subnets = tuple(_subnet(c.domain, c.prefix) for c in spec.clusters if c.prefix and c.nodes)
    if not any(server in s.network for s in subnets):
        raise NetbootError(f"server address {server} is in none of the clusters' networks "
                           f"({', '.join(str(s.network) for s in subnets) or 'none'})")
    for s in subnets:
        for what, reserved in (("network", s.network.network_address),
                               ("broadcast", s.network.broadcast_address)):
            if server == reserved:
                raise NetbootError(f"server address {server} is the {what} address of "
                                   f"{s.network}, not a host's")
    nodes = []
    for node in spec.nodes:
        if node.address is None:
            raise NetbootError(f"{node.name}: no address to boot it on")
        if node.address == str(server):
            raise NetbootError(f"{node.name}: has the server's address {server}")
        hwaddr = node.hwaddr if node.hwaddr and node.hwaddr != NO_MAC else None
        nodes.append(NodeBoot(
            name=node.name, hostname=node.hostname, domain=node.domain, address=node.address,
            hwaddr=hwaddr, serial=node.serial, type=node.type.name,
            root_path=str(PurePosixPath(nfs_root) / node.name), tftp_dir=node.serial or ""))
    return NetbootPlan(iface, str(server), str(nfs_root), str(tftp_root), subnets, tuple(nodes))
