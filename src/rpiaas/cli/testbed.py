"""``rpiaas testbed up | status | down``: a master and agents on this machine (needs the live extra).

Without the live extra the command is still listed, and says what to install
when it is used.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from .common import LIVE_EXTRA, live_missing, need_live

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``testbed`` to the ``rpiaas`` subparsers ``sub``."""
    if live_missing(quick=True) is None:
        tb = _full_parser(sub)
    else:  # say what is missing when it is used, not at every start
        tb = sub.add_parser("testbed", help=f"a master and agents on this machine (needs {LIVE_EXTRA})",
                            description=f"Needs the live extra: {LIVE_EXTRA}")
        tb.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    tb.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rpiaas testbed COMMAND``; the exit code."""
    need_live("rpiaas testbed")
    return _run(args)


def _full_parser(sub: Any) -> Any:
    """``testbed up | status | down`` under the ``rpiaas`` subparsers ``sub``."""
    from ..testbed.plan import DEFAULT_DIR

    tb = sub.add_parser("testbed", help="a master and agents on this machine, to try live mode")
    cmds = tb.add_subparsers(dest="testbed_command", required=True, metavar="COMMAND")
    up = cmds.add_parser("up", help="start a master and N nodes (agents on loopback, or virtual "
                         "Pis), wait until online")
    kind = up.add_mutually_exclusive_group(required=True)
    kind.add_argument("--local", type=int, metavar="N",
                      help="N agents on loopback, sharing this machine")
    kind.add_argument("--virtual", type=int, metavar="N",
                      help="N virtual Pis (QEMU arm64) that boot over the network and run the "
                           "agent (needs root; see docs/testbed.md)")
    kind.add_argument("--emulated", type=int, metavar="N",
                      help="N emulated nodes served by one process, their tasks timers: the master "
                           "at lab scale (a thousand nodes on one machine; see docs/testbed.md)")
    up.add_argument("--type", default="rpi4b",
                    help="node type of --local and --emulated nodes (default rpi4b)")
    up.add_argument("--allow-commands", action="store_true",
                    help="--local: the agents run command tasks (a scenario's `command:` with "
                         "--task-kind scenario); off by default, as on a Pi")
    up.add_argument("--registry", action="store_true",
                    help="--local: also run the testbed's image registry (docker-registry) on "
                         "loopback; the agents pull container images from it, `rpiaas image push` "
                         "puts them there")
    up.add_argument("--cluster", metavar="CLUSTER.yaml",
                    help="--virtual: boot this cluster's nodes (every one with a MAC) instead "
                         "of N generated qemu_a53 nodes")
    up.add_argument("--mem-mb", type=int,
                    help="--virtual: each VM's memory in MiB (default: its node type's, and "
                         "128 MB for its kernel and agent)")
    up.add_argument("--cache", metavar="DIR",
                    help="--virtual: downloads and built roots (default $RPIAAS_VM_CACHE or "
                         "~/.cache/rpiaas/vm)")
    up.add_argument("--icount", type=int, metavar="SHIFT",
                    help="--virtual: run each virtual CPU at a fixed 2^SHIFT ns per instruction "
                         "(QEMU -icount), whatever else this machine runs")
    up.add_argument("--keep-roots", action="store_true",
                    help="--virtual: boot the nodes' roots in DIR/nfs as they are (no rebuild)")
    up.add_argument("--poll-interval-s", type=float,
                    help="the master's poll interval (default 1; --emulated beyond 500 nodes: 2)")
    up.add_argument("--master-port", type=int, default=8080,
                    help="the master's port (default 8080; 0: a free one)")
    up.add_argument("--timeout-s", type=float,
                    help="how long to wait for every node to be online (default 30; "
                         "--virtual: 300; --emulated: 60, and 1 s more per 20 nodes beyond 200)")
    status = cmds.add_parser("status", help="each process alive or dead, and the master's summary")
    down = cmds.add_parser("down", help="stop the testbed (keeps logs, history and runs)")
    for p in (up, status, down):
        p.add_argument("--dir", default=DEFAULT_DIR,
                       help=f"the testbed's directory (default {DEFAULT_DIR})")
    return tb


def _run(args: argparse.Namespace) -> int:
    from ..testbed.plan import TestbedError

    try:
        if args.testbed_command == "up":
            with warnings.catch_warnings():
                # up leaves its master, agents and VMs running on purpose, in sessions of their
                # own: Python's note that a started process still runs is no warning here
                warnings.filterwarnings("ignore", r"subprocess \d+ is still running", ResourceWarning)
                return _up(args)
        if args.testbed_command == "status":
            return _status(args.dir)
        return _down(args.dir)
    except TestbedError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


def _up(args: argparse.Namespace) -> int:
    from ..testbed.local import start_local_testbed
    from ..testbed.plan import DEFAULT_DIR
    from ..testbed.state import TOKENS_DIR, check_not_running

    if not 0 <= args.master_port < 65536:
        print(f"error: --master-port: expected 0-65535, got {args.master_port}", file=sys.stderr)
        return 2
    if args.poll_interval_s is not None and not args.poll_interval_s > 0:
        print("error: --poll-interval-s: expected a positive number", file=sys.stderr)
        return 2
    check_not_running(Path(args.dir).absolute())
    dir_flag = "" if args.dir == DEFAULT_DIR else f" --dir {args.dir}"
    if args.registry and args.local is None:
        print("error: --registry goes with --local (a cluster's master runs `rpiaas registry serve`; "
              "see docs/testbed.md, The registry)", file=sys.stderr)
        return 2
    if args.virtual is not None or args.cluster is not None:
        return _up_virtual(args, dir_flag)
    if args.emulated is not None:
        return _up_emulated(args, dir_flag)
    print(f"starting a master and {args.local} agents in {args.dir} ...", flush=True)
    tb = start_local_testbed(args.dir, args.local, node_type=args.type,
                             poll_interval_s=args.poll_interval_s or 1.0,
                             master_port=args.master_port, timeout_s=args.timeout_s or 30.0,
                             allow_commands=args.allow_commands, registry=args.registry)
    for note in tb.notes:
        print(f"note: {note}")
    registry = "" if tb.registry is None else (
        f"  registry   {tb.registry.pull_address} (pulls, read-only), {tb.registry.push_address} "
        f"(pushes: `rpiaas image push IMAGE{dir_flag}`)\n")
    print(f"{len(tb.agents)} nodes ({tb.node_type}, {tb.cores} cores, {tb.mem_mb} MB each) online\n"
          f"  master     {tb.master_url}   (API: {tb.master_url}/api/v1/summary)\n"
          f"  dashboard  {tb.master_url}/\n"
          f"  tokens     {tb.master_token_file} (the master's), {tb.node_secret_file} (the nodes' "
          f"secret), {tb.dir / TOKENS_DIR}/NODE.token (each node's)\n"
          f"  logs       {tb.dir / 'logs'}\n"
          f"{registry}"
          f"then try:\n"
          f"  rpiaas testbed status{dir_flag}\n"
          f"  rpiaas testbed down{dir_flag}")
    return 0


def _up_emulated(args: argparse.Namespace, dir_flag: str) -> int:
    from ..testbed.emulated import start_emulated_testbed

    print(f"starting a master and {args.emulated} emulated nodes (one process) in {args.dir} ...",
          flush=True)
    timeout_s = args.timeout_s or 60.0 + max(0, args.emulated - 200) / 20
    tb = start_emulated_testbed(args.dir, args.emulated, node_type=args.type,
                                poll_interval_s=args.poll_interval_s or 1.0, master_port=args.master_port,
                                timeout_s=timeout_s)
    for note in tb.notes:
        print(f"note: {note}")
    print(f"{len(tb.nodes)} emulated nodes ({tb.node_type}, {tb.cores} cores, {tb.mem_mb} MB each) "
          f"online\n"
          f"  master     {tb.master_url}   (API: {tb.master_url}/api/v1/summary)\n"
          f"  dashboard  {tb.master_url}/\n"
          f"  emulator   pid {tb.emulator.pid}, log {tb.emulator.log}\n"
          f"  tokens     {tb.master_token_file} (the master's), {tb.node_secret_file} (the nodes' "
          f"secret)\n"
          f"then try:\n"
          f"  rpiaas run SCENARIO.yaml --live --master {tb.master_url} --token-file "
          f"{tb.master_token_file} --task-kind sleep\n"
          f"  rpiaas testbed status{dir_flag}\n"
          f"  rpiaas testbed down{dir_flag}")
    return 0


def _up_virtual(args: argparse.Namespace, dir_flag: str) -> int:
    from ..testbed.virtual import start_virtual_testbed

    if args.allow_commands:
        print("error: --allow-commands goes with --local (a virtual Pi's agent allows commands with "
              "allow_commands = true in its /etc/rpiaas-agent/agent.toml)", file=sys.stderr)
        return 2
    if args.virtual is None:
        print("error: --cluster goes with --virtual, not --local or --emulated", file=sys.stderr)
        return 2
    what = f"{args.virtual} virtual Pis" if args.cluster is None else f"the nodes of {args.cluster}"
    print(f"starting {what} in {args.dir} (the first time downloads and builds their "
          "kernel and roots) ...", flush=True)
    tb = start_virtual_testbed(args.dir, args.virtual, cluster=args.cluster, mem_mb=args.mem_mb,
                               master_port=args.master_port, poll_interval_s=args.poll_interval_s or 1.0,
                               timeout_s=args.timeout_s or 300.0, cache=args.cache,
                               prepare_roots=not args.keep_roots, icount_shift=args.icount)
    kinds = sorted({(tb.node_types[n], tb.sizes[n][0], tb.sizes[n][1]) for n in tb.vms})
    types = "; ".join(f"{t}: {c} CPU{'s' if c > 1 else ''}, {m} MB" for t, c, m in kinds)
    print(f"{len(tb.vms)} virtual nodes ({types}) booted and online\n"
          f"  master     {tb.master_url}   (API: {tb.master_url}/api/v1/summary)\n"
          f"  dashboard  {tb.master_url}/\n"
          f"  tokens     {tb.master_token_file} (the master's), {tb.node_secret_file} (the nodes' "
          f"secret)\n"
          f"  network    namespace {tb.namespace}, boot server {tb.server_ip}\n"
          f"  consoles   {tb.dir / 'logs'}/vm-*.log\n"
          f"then try:\n"
          f"  rpiaas run SCENARIO.yaml --live --master {tb.master_url} --token-file "
          f"{tb.master_token_file} --task-kind cpu\n"
          f"  rpiaas testbed status{dir_flag}\n"
          f"  sudo rpiaas testbed down{dir_flag}")
    return 0


def _status(dir: str) -> int:
    from ..testbed.emulated import EmulatedTestbed
    from ..testbed.local import LocalTestbed, load_testbed
    from ..testbed.procs import get_json
    from ..testbed.virtual import VirtualTestbed

    tb = load_testbed(dir)
    if tb is None:
        print(f"no testbed in {Path(dir).absolute()}")
        return 1
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(tb.started_s))
    where = f", namespace {tb.namespace}" if isinstance(tb, VirtualTestbed) else ""
    registry = tb.registry if isinstance(tb, LocalTestbed) else None
    if registry is not None:
        where += f", registry {registry.pull_address} (push {registry.push_address})"
    print(f"{tb.kind} testbed in {tb.dir}, started {started}, master {tb.master_url}{where}")
    online: dict[str, bool | None] = {}
    summary: dict[str, Any] | None = None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        summary = tb.summary()
        online = {d["name"]: d.get("online")
                  for d in get_json(tb.master_url + "/api/v1/nodes", 3.0)["nodes"]}
    width = max(len(p.name) for p in tb.processes())
    dead = 0
    for p in tb.processes():
        alive = p.alive()
        dead += not alive
        node = online.get(p.name)
        state = "" if p.name not in tb.agents else \
            "  not polled yet" if node is None else "  online" if node else "  offline"
        cpus = f"  CPUs {','.join(map(str, p.cpu_set))}" if p.cpu_set else ""
        port = f"port {p.port:<5}" if p.port else "VM        " if p.name in tb.agents else " " * 10
        print(f"  {p.name:<{width}}  pid {p.pid:<7}  {port}  "
              f"{'alive' if alive else 'DEAD '}{state}{cpus}")
    if summary is None:
        print("the master does not answer")
        return 1
    print(f"master: {summary['nodes']} nodes, {summary['online']} online, "
          f"{summary['offline']} offline, {summary['unknown']} not polled yet")
    expected = len(tb.nodes) if isinstance(tb, EmulatedTestbed) else len(tb.agents)
    if isinstance(tb, EmulatedTestbed):
        print(f"emulated: {expected} nodes served by the emulator (pid {tb.emulator.pid}), "
              "their tasks timers")
    return 1 if dead or summary["online"] != expected else 0


def _down(dir: str) -> int:
    from ..testbed.local import load_testbed

    tb = load_testbed(dir)
    if tb is None:
        print(f"no testbed in {Path(dir).absolute()}: nothing to stop")
        return 0
    for line in tb.stop():
        print(line)
    print(f"testbed stopped; logs, history and runs kept in {tb.dir}")
    return 0
