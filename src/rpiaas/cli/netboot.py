"""``rpiaas netboot render | check | serve``: the command line of the network boot (rpiaas.netboot)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_FAILED, EXIT_INPUT, EXIT_OK

__all__ = ["add_parser", "run"]

DEFAULT_NFS_ROOT = "/srv/rpiaas/nfs"


def add_parser(sub: Any) -> None:
    """Add ``netboot`` and its commands to the ``rpiaas`` subparsers ``sub``."""
    nb = sub.add_parser("netboot", help="render, check and serve the network boot of the Pis")
    cmds = nb.add_subparsers(dest="netboot_command", required=True, metavar="COMMAND")

    r = cmds.add_parser("render", help="write dnsmasq config, NFS exports and the TFTP tree")
    r.add_argument("cluster", help="cluster file: our YAML or the original RPiaaS config.json")
    r.add_argument("--out", "-o", required=True, help="directory to write (replaced if a render)")
    r.add_argument("--server-ip", required=True,
                   help="this server's address on the cluster network, e.g. 10.0.1.254")
    r.add_argument("--interface", help="network interface to serve on (default: the config's)")
    r.add_argument("--nfs-root", default=DEFAULT_NFS_ROOT,
                   help=f"directory of the per-node root file systems (default {DEFAULT_NFS_ROOT})")
    r.add_argument("--boot-files", help="the boot partition of a Raspberry Pi OS image, "
                                        "copied into the TFTP tree")
    r.add_argument("--upstream-dns", action="append", default=[], metavar="IP",
                   help="forward other names to this DNS server (repeatable; default: none)")

    c = cmds.add_parser("check", help="check a rendered directory with dnsmasq and exportfs")
    c.add_argument("dir", help="the directory `rpiaas netboot render` wrote")

    s = cmds.add_parser("serve", help="run dnsmasq (and nfs-ganesha) on a rendered directory")
    s.add_argument("dir", help="the directory `rpiaas netboot render` wrote")
    s.add_argument("--state-dir", help="pid, lease and log files (default: DIR/state)")
    s.add_argument("--nfs", choices=("none", "ganesha"), default="none",
                   help="also run the user-space NFS server nfs-ganesha (default: none, "
                        "use the kernel's with the exports file)")
    nb.set_defaults(run=run)


def _render(args: argparse.Namespace) -> int:
    from ..inputs.cluster import load_cluster
    from ..netboot.plan import NetbootError, make_plan
    from ..netboot.render import render

    spec = load_cluster(args.cluster)
    out = Path(args.out).absolute()
    nfs_root = str(Path(args.nfs_root).absolute()) if not args.nfs_root.startswith("/") \
        else args.nfs_root
    try:
        plan = make_plan(spec, server_ip=args.server_ip, nfs_root=nfs_root,
                         tftp_root=str(out / "tftp"), interface=args.interface)
    except NetbootError as e:
        where = "--server-ip" if str(e).startswith("server address") else args.cluster
        print(f"error: {where}: {e}", file=sys.stderr)
        return EXIT_INPUT
    for node in plan.nodes:
        if node.hwaddr is None:
            print(f"warning: {node.name}: no MAC address: no fixed lease, it cannot boot",
                  file=sys.stderr)
    from ..netboot.ganesha import render_ganesha

    render(plan, out, source=str(Path(args.cluster).absolute()), upstream_dns=args.upstream_dns,
           boot_files=args.boot_files,
           ganesha=render_ganesha(plan, source=str(Path(args.cluster).absolute())))
    print(f"{out}: {len(plan.nodes)} nodes, served from {plan.server_ip} on {plan.interface}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from ..netboot.check import check, passed

    findings = check(args.dir)
    for f in findings:
        mark = {True: "ok", False: "FAIL", None: "not checked"}[f.ok]
        detail = f"\n    {f.detail.replace(chr(10), chr(10) + '    ')}" if f.detail and not f.ok else ""
        print(f"{mark:>11}  {f.what}{detail}")
    return EXIT_OK if passed(findings) else EXIT_FAILED


def _serve(args: argparse.Namespace) -> int:
    from ..netboot.render import load_manifest, plan_from_manifest
    from ..netboot.serve import serve

    directory = Path(args.dir)
    state = Path(args.state_dir) if args.state_dir else directory / "state"
    commands = []
    if args.nfs == "ganesha":
        from ..netboot.ganesha import ganesha_command, render_ganesha

        plan = plan_from_manifest(load_manifest(directory))
        state = state.absolute()
        state.mkdir(parents=True, exist_ok=True)
        # the config names its recovery directory: written anew for this state directory
        conf = state / "ganesha.conf"
        conf.write_text(render_ganesha(plan, state_dir=state, source=str(directory / "nodes.json")),
                        encoding="utf-8")
        commands.append(ganesha_command(conf, state))
    return serve(directory, state, commands)


def run(args: argparse.Namespace) -> int:
    """Run ``rpiaas netboot ...``; NetbootError is bad input (exit 2).  (The netboot modules
    are imported here, not at the top: the other commands need none of them.)"""
    from ..netboot.plan import NetbootError

    try:
        if args.netboot_command == "render":
            return _render(args)
        if args.netboot_command == "check":
            return _check(args)
        return _serve(args)
    except NetbootError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
