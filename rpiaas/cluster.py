"""The cluster description: one parser for scenarios, the master and netboot.

Accepts our YAML layout and the original RPiaaS ``config.json`` layout as it
is (``interface``, ``clusters[]`` with ``domain``, ``prefix`` and ``nodes[]``
of ``type``, ``hostname``, ``suffix``, ``hwaddr``).  A node's address is
``prefix.suffix`` and its name ``hostname.domain``.  Entries without a
``type`` are service hosts (the original lists the master that way): they are
kept in ``ClusterSpec.master`` and never run tasks.

YAML additions: ``node_types`` (custom types, optionally ``base:`` a built-in
profile), per-node ``serial`` (8 hex digits, for Pi 4/5 network boot) and
``address`` (instead of ``suffix``), and the ``count:`` shorthand for a
cluster of identical nodes.  ``docs/scenario.md`` documents every key.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from .model import PROFILES, Cluster, ClusterSpec, Node, NodeType
from .source import KeyPath, Source, load_file

__all__ = ["NODE_TYPE_KEYS", "load_cluster", "parse_cluster"]

NODE_TYPE_KEYS = ("base", "cores", "mem_mb", "speed", "power_idle_w", "power_max_w",
                  "power_off_w", "boot_s", "power_boot_w", "start_overhead_s", "source")
CLUSTER_KEYS = ("interface", "node_types", "clusters")
GROUP_KEYS = ("domain", "prefix", "nodes", "count", "type", "hostname", "first_suffix")
NODE_KEYS = ("hostname", "type", "suffix", "hwaddr", "serial", "address")

MAX_NODES = 1_000_000  # per count: group; beyond this a typo, not an experiment

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_DOMAIN = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_SERIAL = re.compile(r"^[0-9a-fA-F]{8}$")
_IFACE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


def load_cluster(path: str | Path) -> ClusterSpec:
    """Read a cluster file (YAML, or the original RPiaaS ``config.json``)."""
    src = load_file(path)
    if src.data is None:
        src.fail((), "empty cluster file")
    return parse_cluster(src, (), src.mapping((), src.data))


def parse_cluster(src: Source, path: KeyPath, data: Any) -> ClusterSpec:
    """Build a :class:`ClusterSpec` from ``data`` found at ``path`` in ``src``.

    ``data`` is a cluster mapping, or the name of a cluster file relative to
    the file ``src`` was read from.
    """
    if isinstance(data, str):
        file = src.base / data
        if not file.is_file():
            src.fail(path, f"no such cluster file: {file}")
        return load_cluster(file)
    m = src.mapping(path, data, CLUSTER_KEYS, required=("clusters",))
    interface = None
    if "interface" in m:
        interface = src.string((*path, "interface"), m["interface"])
        if not _IFACE.match(interface):
            src.fail((*path, "interface"), f"not a network interface name: {interface!r}")
    types = _node_types(src, (*path, "node_types"), m.get("node_types", {}))
    clusters: list[Cluster] = []
    master: list[Node] = []
    groups = src.sequence((*path, "clusters"), m["clusters"])
    if not groups:
        src.fail((*path, "clusters"), "expected at least one cluster")
    index = 0
    seen: dict[str, dict[str, KeyPath]] = {"name": {}, "MAC address": {}, "address": {}, "serial": {}}
    for gi, group in enumerate(groups):
        gp: KeyPath = (*path, "clusters", gi)
        g = src.mapping(gp, group, GROUP_KEYS)
        domain = src.string((*gp, "domain"), g.get("domain", ""))
        if domain and not _DOMAIN.match(domain):
            src.fail((*gp, "domain"), f"not a DNS domain: {domain!r}")
        prefix = src.string((*gp, "prefix"), g.get("prefix", ""))
        if prefix and not _octets(prefix, 1, 3):
            src.fail((*gp, "prefix"), f"expected 1 to 3 octets like 10.0.1, got {prefix!r}")
        members: list[Node] = []
        for where, nd in _group_nodes(src, gp, g):
            node = _node(src, where, nd, types, domain, prefix, index)
            for what, value in (("name", node.name), ("MAC address", node.hwaddr),
                                ("address", node.address), ("serial", node.serial)):
                if value is None or (what == "MAC address" and value == _NO_MAC):
                    continue
                key = {"name": "hostname", "MAC address": "hwaddr", "address": "address",
                       "serial": "serial"}[what]
                if value in seen[what]:
                    first = src.line_of(seen[what][value])
                    src.fail(where[key], f"duplicate {what} {value}"
                                         f"{f' (first at line {first})' if first else ''}")
                seen[what][value] = where[key]
            if node.index < 0:
                master.append(node)
            else:
                members.append(node)
                index += 1
        if members:
            clusters.append(Cluster(domain, prefix, tuple(members)))
    if index == 0:
        src.fail((*path, "clusters"), "no compute nodes (a node needs a type)")
    return ClusterSpec(tuple(clusters), types, interface, tuple(master))


# the original config writes 00:00:00:00:00:00 for "not known yet"; it may repeat
_NO_MAC = "00:00:00:00:00:00"


def _octets(text: str, least: int, most: int) -> bool:
    parts = text.split(".")
    return least <= len(parts) <= most and all(
        p.isdigit() and int(p) <= 255 and str(int(p)) == p for p in parts)


def _group_nodes(src: Source, gp: KeyPath, g: dict[str, Any],
                 ) -> list[tuple[dict[str, KeyPath], dict[str, Any]]]:
    """The raw nodes of a group, each with the key path to blame for each of its fields."""
    out: list[tuple[dict[str, KeyPath], dict[str, Any]]] = []
    if "count" in g:
        if "nodes" in g:
            src.fail((*gp, "count"), "give either nodes or count, not both")
        count = src.integer((*gp, "count"), g["count"], minimum=1)
        if count > MAX_NODES:
            src.fail((*gp, "count"), f"at most {MAX_NODES:,} nodes, got {count:,}")
        if "type" not in g:
            src.fail(gp, "missing key 'type' (needed with count)")
        pattern = src.string((*gp, "hostname"), g.get("hostname", "node{i}"))
        if "{i}" not in pattern:
            src.fail((*gp, "hostname"), "with count, the hostname needs {i} (e.g. node{i})")
        first = src.integer((*gp, "first_suffix"), g.get("first_suffix", 1), minimum=0)
        host_at = (*gp, "hostname") if "hostname" in g else (*gp, "count")
        suffix_at = (*gp, "first_suffix") if "first_suffix" in g else (*gp, "count")
        where = {"node": gp, "hostname": host_at, "type": (*gp, "type"), "suffix": suffix_at,
                 "address": suffix_at}
        for k in range(count):
            out.append((where, {"hostname": pattern.replace("{i}", str(first + k)),
                                "type": g["type"], "suffix": first + k}))
        return out
    for key in ("type", "hostname", "first_suffix"):
        if key in g:
            src.fail((*gp, key), "only allowed with count")
    if "nodes" not in g:
        src.fail(gp, "missing key 'nodes' (or count: N with type: T)")
    for ni, raw in enumerate(src.sequence((*gp, "nodes"), g["nodes"])):
        np_: KeyPath = (*gp, "nodes", ni)
        nd = src.mapping(np_, raw, NODE_KEYS, required=("hostname",))
        where = {key: (*np_, key) for key in NODE_KEYS}
        where["node"] = np_
        if "address" not in nd:
            where["address"] = (*np_, "suffix")
        out.append((where, nd))
    return out


def _node(src: Source, where: dict[str, KeyPath], nd: dict[str, Any], types: dict[str, NodeType],
          domain: str, prefix: str, index: int) -> Node:
    """One node; a node without a type is a service host (``index`` -1)."""
    hostname = src.string(where["hostname"], nd["hostname"])
    if not _HOST.match(hostname):
        src.fail(where["hostname"], f"not a host name: {hostname!r}")
    ntype: NodeType | None = None
    if nd.get("type") not in (None, ""):
        tname = src.string(where["type"], nd["type"])
        if tname not in types:
            src.fail(where["type"], f"unknown node type {tname!r} (known: {', '.join(sorted(types))})")
        ntype = types[tname]
    address = None
    if "address" in nd:
        address = src.string(where["address"], nd["address"])
        if not _octets(address, 4, 4):
            src.fail(where["address"], f"not an IPv4 address: {address!r}")
        if prefix and not address.startswith(prefix + "."):
            src.fail(where["address"], f"{address} is outside the cluster's prefix {prefix}")
        if nd.get("suffix") not in (None, ""):
            suffix = src.string(where["suffix"], nd["suffix"])
            if prefix and f"{prefix}.{suffix}" != address:
                src.fail(where["suffix"], f"{prefix}.{suffix} disagrees with address {address}")
    elif prefix and nd.get("suffix") not in (None, ""):
        suffix = src.string(where["suffix"], nd["suffix"])
        address = f"{prefix}.{suffix}"
        if not _octets(address, 4, 4):
            if ntype is None:  # a service host's suffix need not be an address part
                address = None
            else:
                src.fail(where["suffix"], f"{address} is not an IPv4 address "
                                          f"(prefix {prefix} + suffix {suffix})")
    elif prefix and ntype is not None:
        src.fail(where["node"], "missing key 'suffix' (the address is prefix.suffix)")
    hwaddr = None
    if nd.get("hwaddr") not in (None, ""):
        hwaddr = src.mac(where["hwaddr"], nd["hwaddr"])
    serial = None
    if "serial" in nd:
        serial = src.string(where["serial"], nd["serial"])
        if not _SERIAL.match(serial):
            src.fail(where["serial"], f"expected 8 hex digits, got {serial!r}")
        serial = serial.lower()
    return Node(index if ntype is not None else -1, hostname, domain,
                ntype if ntype is not None else _SERVICE, address, hwaddr, serial,
                src.line_of(where["node"]))


# service hosts (no type) get a placeholder type so Node stays one shape
_SERVICE = NodeType("service", 0, 0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, "service host, runs no tasks")


def _node_types(src: Source, path: KeyPath, data: Any) -> dict[str, NodeType]:
    types = dict(PROFILES)
    for name, spec in src.mapping(path, data).items():
        tp: KeyPath = (*path, name)
        s = src.mapping(tp, spec, NODE_TYPE_KEYS)
        if "base" in s:
            base_name = src.string((*tp, "base"), s["base"])
            if base_name not in PROFILES:
                src.fail((*tp, "base"), f"unknown profile {base_name!r} (known: {', '.join(sorted(PROFILES))})")
            base: dict[str, Any] = dataclasses.asdict(PROFILES[base_name])
        else:
            missing = [k for k in ("cores", "mem_mb", "speed", "power_idle_w", "power_max_w") if k not in s]
            if missing:
                src.fail(tp, f"missing key {missing[0]!r} (or give base: a built-in profile)")
            base = {"power_off_w": 0.0, "boot_s": 0.0, "source": "user-defined"}
        values = dict(base)
        values["name"] = name
        for key in ("cores", "mem_mb"):
            if key in s:
                values[key] = src.integer((*tp, key), s[key], minimum=1)
        if "speed" in s:
            values["speed"] = src.number((*tp, "speed"), s["speed"], positive=True)
        for key in ("power_idle_w", "power_max_w", "power_off_w", "boot_s", "power_boot_w",
                    "start_overhead_s"):
            if key in s:
                values[key] = src.number((*tp, key), s[key], nonnegative=True)
        if "source" in s:
            values["source"] = src.string((*tp, "source"), s["source"])
        if "power_boot_w" not in s and "base" not in s:
            values["power_boot_w"] = values["power_idle_w"]
        if values["power_max_w"] < values["power_idle_w"]:
            key = "power_max_w" if "power_max_w" in s else "power_idle_w"
            src.fail((*tp, key), f"power_max_w below power_idle_w "
                                 f"({values['power_max_w']:g} < {values['power_idle_w']:g} W)")
        values.pop("base", None)
        types[name] = NodeType(**values)
    return types
