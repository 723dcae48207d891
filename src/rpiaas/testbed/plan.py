"""The plan of a local testbed: its cluster and what each node gets of this machine.

N nodes of one type: each agent admits the type's cores and memory.  A type
with more memory than the whole machine becomes a local type with what the
machine has (written into ``cluster.yaml``, so model and agents still agree);
where the machine has at least N × cores CPUs each agent is pinned to CPUs of
its own, else they share them.  The nodes are named in ``DOMAIN`` and
addressed in ``PREFIX`` (loopback), their ports free loopback ports.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from ..model import PROFILES

__all__ = ["DOMAIN", "HOST", "MAX_NODES", "PREFIX", "TestbedError", "TestbedRunning",
           "free_ports", "machine", "plan"]

DEFAULT_DIR = ".rpiaas-testbed"  # where `rpiaas testbed up` keeps its files

DOMAIN, PREFIX = "local.rpiaas.test", "127.0.1"  # loopback even where a node's address is used
HOST = "127.0.0.1"
MAX_NODES = 254  # one suffix of PREFIX each


class TestbedError(RuntimeError):
    """The testbed could not be started or stopped; ``exit_code`` 2 for bad input."""

    __test__ = False  # a pytest collector would take the name for a test class

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class TestbedRunning(TestbedError):
    """The directory already has a running testbed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


def machine() -> tuple[list[int], int]:
    """The CPUs this process may run on, and the memory in MiB (as the agent counts them)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else list(range(os.cpu_count() or 1))
    mem_mb = (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) >> 20
    return cpus, mem_mb


def plan(n: int, node_type: str) -> tuple[dict[str, Any], int, int, list[list[int]] | None,
                                            list[str]]:
    """The cluster document, cores and memory per node, CPU sets (or None) and notes."""
    if node_type not in PROFILES:
        from ..inputs.errors import did_you_mean  # here: every command's parser reads this module

        raise TestbedError(f"--type: unknown node type {node_type!r}{did_you_mean(node_type, PROFILES)} "
                           f"(known: {', '.join(sorted(PROFILES))})", exit_code=2)
    if not 1 <= n <= MAX_NODES:
        raise TestbedError(f"--local: expected 1 to {MAX_NODES} nodes, got {n}", exit_code=2)
    profile = PROFILES[node_type]
    cpus, total_mb = machine()
    cores, mem_mb, notes = profile.cores, profile.mem_mb, []
    doc: dict[str, Any] = {}
    type_name = node_type
    if mem_mb > total_mb:
        mem_mb = total_mb
        type_name = f"{node_type}-local"
        doc["node_types"] = {type_name: {"base": node_type, "mem_mb": mem_mb}}
        notes.append(f"a {node_type} has {profile.mem_mb} MB, this machine {total_mb} MB: the "
                     f"nodes are {type_name}, a {node_type} with {mem_mb} MB")
    if cores > len(cpus):
        # the agents admit the node type's cores and let its tasks share the CPUs there are,
        # so a scenario written for the real nodes replays here unchanged
        notes.append(f"a {node_type} has {cores} cores, this machine {len(cpus)} CPUs: the "
                     "agents are oversubscribed (their tasks share the CPUs)")
    cpu_sets = None
    if len(cpus) >= n * cores:
        cpu_sets = [cpus[i * cores:(i + 1) * cores] for i in range(n)]
    else:
        notes.append(f"no CPU pinning: {n} nodes × {cores} cores need {n * cores} CPUs, this "
                     f"machine has {len(cpus)}; the agents share them")
    doc["clusters"] = [{"domain": DOMAIN, "prefix": PREFIX, "count": n, "type": type_name}]
    return doc, cores, mem_mb, cpu_sets, notes


def free_ports(n: int) -> list[int]:
    """``n`` different free loopback ports (held together, so none repeats)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]
