"""Rendering the network boot: dnsmasq config, NFS exports, ganesha config, the TFTP tree.

:func:`render` writes, from a :class:`~rpiaas.netboot.plan.NetbootPlan`::

    DIR/dnsmasq.conf       DHCP (a fixed lease and NFS root path per node), DNS, TFTP, PXE
    DIR/exports            one read-write NFS root per node, for its address only
    DIR/ganesha.conf       the same exports for nfs-ganesha (a user-space NFS server)
    DIR/nodes.json         the plan, read back by ``check`` and ``serve``
    DIR/tftp/              the TFTP root: the shared boot files and cmdline.txt,
    DIR/tftp/<serial>/     and a directory per Pi with a serial, with its own cmdline.txt

A Pi 4 or 5 asks TFTP for ``<serial>/start4.elf`` and the rest; a Pi 3 gets
``bootcode.bin`` from the root, which then tries ``<serial>/`` first too.
Nodes without a serial share the root ``cmdline.txt``, which names no NFS
root: the kernel then mounts the root path its DHCP lease gave it, so each
still boots its own root file system.

The output appears whole or not at all: everything is written into a
temporary directory beside ``DIR`` and swapped in at the end.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from .plan import NetbootError, NetbootPlan, NodeBoot, Subnet

__all__ = ["MANIFEST", "NFS_OPTIONS", "cmdline", "load_manifest", "plan_from_manifest", "render",
           "render_dnsmasq", "render_exports"]

MANIFEST = "nodes.json"
NFS_OPTIONS = "rw,sync,no_subtree_check,no_root_squash"
# The kernel's NFS mount options for a root file system (nfsroot= and the DHCP root path).
ROOT_MOUNT_OPTIONS = "vers=3,tcp"


def _template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath("templates").joinpath(name).read_text("utf-8"))


def root_path_option(plan: NetbootPlan, node: NodeBoot) -> str:
    """The DHCP root path (option 17) of ``node``, as the kernel's ``nfsroot=`` reads it."""
    return f"{plan.server_ip}:{node.root_path},{ROOT_MOUNT_OPTIONS}"


def render_dnsmasq(plan: NetbootPlan, source: str, upstream_dns: Sequence[str] = (),
                   lease: str = "infinite") -> str:
    """The dnsmasq configuration (see ``templates/dnsmasq.conf.tmpl``)."""
    upstream = ("\n".join(f"server={ip}" for ip in upstream_dns) if upstream_dns
                else "# a closed testbed: no upstream DNS\nno-resolv")
    hosts = []
    for n in plan.nodes:
        if n.hwaddr is None:
            hosts.append(f"# {n.name}: no MAC address in the cluster config, no lease")
            continue
        hosts.append(f"dhcp-host={n.hwaddr},set:{n.name},{n.address},{n.hostname},{lease}")
        hosts.append(f"dhcp-option=tag:{n.name},option:root-path,{root_path_option(plan, n)}")
    return _template("dnsmasq.conf.tmpl").substitute(
        source=source, interface=plan.interface, server_ip=plan.server_ip,
        dns_upstream=upstream,
        dns_local="\n".join(f"local=/{d}/\ndomain={d},{s.network}"
                            for s in plan.subnets for d in (s.domain,) if d),
        host_records="\n".join(f"host-record={n.name},{n.address}" for n in plan.nodes),
        dhcp_ranges="\n".join(f"dhcp-range={s.start},static,{s.netmask},12h" for s in plan.subnets),
        dhcp_hosts="\n".join(hosts),
        tftp_root=plan.tftp_root,
    )


def render_exports(plan: NetbootPlan, source: str) -> str:
    """The NFS exports file: one line per node, no space before the options."""
    lines = [f"{n.root_path} {n.address}({NFS_OPTIONS})" for n in plan.nodes]
    return _template("exports.tmpl").substitute(source=source, exports="\n".join(lines))


def cmdline(plan: NetbootPlan, node: NodeBoot | None) -> str:
    """``cmdline.txt`` for ``node``, or the shared one of the TFTP root (None)."""
    nfsroot = "" if node is None else f"nfsroot={root_path_option(plan, node)} "
    return _template("cmdline.txt.tmpl").substitute(nfsroot=nfsroot)


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy the boot files, keeping symlinks out (TFTP would serve what they point at)."""
    shutil.copytree(src, dst, symlinks=False, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("cmdline.txt"))


def _link_files(root: Path, files: Sequence[Path], dst: Path) -> None:
    """Hard-link ``files`` (relative to ``root``) into ``dst``; copy where links are not possible."""
    for rel in files:
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(root / rel, target)
        except OSError:
            shutil.copy2(root / rel, target)


def _write_tftp(plan: NetbootPlan, tftp: Path, boot_files: Path | None) -> None:
    tftp.mkdir()
    shared: list[Path] = []
    if boot_files is not None:
        _copy_tree(boot_files, tftp)
        shared = sorted(p.relative_to(tftp) for p in tftp.rglob("*") if p.is_file())
    (tftp / "cmdline.txt").write_text(cmdline(plan, None), encoding="utf-8")
    for node in plan.nodes:
        if not node.tftp_dir:
            continue
        own = tftp / node.tftp_dir
        own.mkdir()
        _link_files(tftp, shared, own)
        (own / "cmdline.txt").write_text(cmdline(plan, node), encoding="utf-8")


def _manifest(plan: NetbootPlan, source: str) -> dict[str, object]:
    return {
        "source": source,
        "interface": plan.interface,
        "server_ip": plan.server_ip,
        "nfs_root": plan.nfs_root,
        "tftp_root": plan.tftp_root,
        "subnets": [{"domain": s.domain, "network": str(s.network)} for s in plan.subnets],
        "nodes": [asdict(n) for n in plan.nodes],
    }


def load_manifest(directory: str | Path) -> dict[str, Any]:
    """The ``nodes.json`` of a rendered directory; NetbootError if it is not one."""
    path = Path(directory) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NetbootError(f"{directory}: not a rendered netboot directory (no {MANIFEST})") from None
    except (OSError, ValueError) as e:
        raise NetbootError(f"{path}: unreadable: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise NetbootError(f"{path}: not a netboot manifest")
    return data


def plan_from_manifest(manifest: dict[str, Any]) -> NetbootPlan:
    """The plan a ``nodes.json`` was written from (NetbootError if it does not hold one)."""
    try:
        return NetbootPlan(
            interface=str(manifest["interface"]), server_ip=str(manifest["server_ip"]),
            nfs_root=str(manifest["nfs_root"]), tftp_root=str(manifest["tftp_root"]),
            subnets=tuple(Subnet(s["domain"], ipaddress.IPv4Network(s["network"]))
                          for s in manifest["subnets"]),
            nodes=tuple(NodeBoot(**n) for n in manifest["nodes"]))
    except (KeyError, TypeError, ValueError) as e:
        raise NetbootError(f"{MANIFEST}: not a netboot plan: {e}") from None


def render(plan: NetbootPlan, out: str | Path, *, source: str, upstream_dns: Sequence[str] = (),
           boot_files: str | Path | None = None, ganesha: str | None = None) -> Path:
    """Write the boot files of ``plan`` into ``out`` (see the module docstring).

    ``plan.tftp_root`` must be ``out/tftp`` (absolute): the TFTP tree is
    written there.  ``out`` may be missing, empty or an earlier render; any
    other directory is refused.  ``ganesha`` is the nfs-ganesha config text
    to write beside the exports.  Returns ``out``.
    """
    out = Path(out).absolute()
    if Path(plan.tftp_root) != out / "tftp":
        raise NetbootError(f"the TFTP root must be {out / 'tftp'}, got {plan.tftp_root}")
    boot = Path(boot_files) if boot_files is not None else None
    if boot is not None and not boot.is_dir():
        raise NetbootError(f"--boot-files: no such directory: {boot}")
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / MANIFEST).is_file())):
        raise NetbootError(f"{out}: exists and is not a rendered netboot directory; "
                           "refusing to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "dnsmasq.conf").write_text(render_dnsmasq(plan, source, upstream_dns), "utf-8")
        (tmp / "exports").write_text(render_exports(plan, source), "utf-8")
        if ganesha is not None:
            (tmp / "ganesha.conf").write_text(ganesha, "utf-8")
        _write_tftp(plan, tmp / "tftp", boot)
        (tmp / MANIFEST).write_text(json.dumps(_manifest(plan, source), indent=2) + "\n", "utf-8")
        tmp.chmod(0o755)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
