"""The cluster description: one parser for scenarios, the master and netboot.

Accepts our YAML layout and the original RPiaaS ``config.json`` layout as it
is (``interface``, ``clusters[]`` with ``domain``, ``prefix`` and ``nodes[]``
of ``type``, ``hostname``, ``suffix``, ``hwaddr``).  A node's address is
``prefix.suffix`` and its name ``hostname.domain``.  Entries without a
``type`` are service hosts (the original lists the master that way): they are
kept in ``ClusterSpec.master`` and never run tasks.

YAML additions: ``node_types`` (custom types, optionally ``base:`` a built-in
profile), per-node ``serial`` (8 hex digits, for Pi 4/5 network boot), and the
``count:`` shorthand for a cluster of identical nodes.
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
                  "power_off_w", "boot_s", "power_boot_w", "source")
CLUSTER_KEYS = ("interface", "node_types", "clusters")
GROUP_KEYS = ("domain", "prefix", "nodes", "count", "type", "hostname", "first_suffix")
NODE_KEYS = ("hostname", "type", "suffix", "hwaddr", "serial", "address")

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_DOMAIN = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_SERIAL = re.compile(r"^[0-9a-fA-F]{8}$")
_IFACE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


def load_cluster(path: str | Path) -> ClusterSpec:
    """Read a cluster file (YAML, or the original RPiaaS ``config.json``)."""
    src = load_file(path)
    return parse_cluster(src, (), src.data)


def parse_cluster(src: Source, path: KeyPath, data: Any) -> ClusterSpec:
    """Build a :class:`ClusterSpec` from ``data`` found at ``path`` in ``src``."""
    if isinstance(data, str):
        # a reference to a cluster file, relative to the file that names it
        file = (src.base / data) if not Path(data).is_absolute() else Path(data)
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
    index = 0
    seen_name: dict[str, KeyPath] = {}
    seen_mac: dict[str, KeyPath] = {}
    seen_addr: dict[str, KeyPath] = {}
    seen_serial: dict[str, KeyPath] = {}
    for gi, group in enumerate(groups):
        gp: KeyPath = (*path, "clusters", gi)
        g = src.mapping(gp, group, GROUP_KEYS)
        domain = src.string((*gp, "domain"), g.get("domain", ""))
        if domain and not _DOMAIN.match(domain):
            src.fail((*gp, "domain"), f"not a DNS domain: {domain!r}")
        prefix = src.string((*gp, "prefix"), g.get("prefix", ""))
        octets = prefix.split(".") if prefix else []
        if prefix and (len(octets) > 3 or not all(o.isdigit() and 0 <= int(o) <= 255 and str(int(o)) == o for o in octets)):
            src.fail((*gp, "prefix"), f"expected 1 to 3 octets like 10.0.1, got {prefix!r}")
        raw_nodes: list[tuple[KeyPath, dict[str, Any]]] = []
        if "count" in g:
            if "nodes" in g:
                src.fail((*gp, "count"), "give either nodes or count, not both")
            count = src.integer((*gp, "count"), g["count"], minimum=1)
            if "type" not in g:
                src.fail(gp, "missing key 'type' (needed with count)")
            pattern = src.string((*gp, "hostname"), g.get("hostname", "node{i}"))
            if "{i}" not in pattern:
                src.fail((*gp, "hostname"), "with count, the hostname needs {i} (e.g. node{i})")
            first = src.integer((*gp, "first_suffix"), g.get("first_suffix", 1), minimum=0)
            for k in range(count):
                raw_nodes.append(((*gp, "count"), {"hostname": pattern.replace("{i}", str(first + k)),
                                                   "type": g["type"], "suffix": first + k}))
        else:
            for key in ("type", "hostname", "first_suffix"):
                if key in g:
                    src.fail((*gp, key), "only allowed with count")
            for ni, node in enumerate(src.sequence((*gp, "nodes"), g.get("nodes", []))):
                np_: KeyPath = (*gp, "nodes", ni)
                raw_nodes.append((np_, src.mapping(np_, node, NODE_KEYS, required=("hostname",))))
        members: list[Node] = []
        for np_, nd in raw_nodes:
            hostname = src.string((*np_, "hostname"), nd["hostname"])
            if not _HOST.match(hostname):
                src.fail((*np_, "hostname"), f"not a host name: {hostname!r}")
            ntype: NodeType | None = None
            if nd.get("type") not in (None, ""):
                tname = src.string((*np_, "type"), nd["type"])
                if tname not in types:
                    src.fail((*np_, "type"), f"unknown node type {tname!r} (known: {', '.join(sorted(types))})")
                ntype = types[tname]
            suffix = nd.get("suffix")
            address = None
            if ntype is not None and prefix:
                if suffix is None:
                    src.fail(np_, "missing key 'suffix' (the address is prefix.suffix)")
                address = f"{prefix}.{src.string((*np_, 'suffix'), suffix)}"
            if "address" in nd:
                address = src.string((*np_, "address"), nd["address"])
                if prefix and not address.startswith(prefix + "."):
                    src.fail((*np_, "address"), f"{address} is outside the cluster's prefix {prefix}")
            if address is not None and ntype is not None:
                parts = address.split(".")
                if len(parts) != 4 or not all(p.isdigit() and int(p) <= 255 and str(int(p)) == p for p in parts):
                    src.fail((*np_, "suffix"), f"{address} is not an IPv4 address (prefix {prefix!r} + suffix)")
            hwaddr = None
            if nd.get("hwaddr") not in (None, ""):
                hwaddr = src.mac((*np_, "hwaddr"), nd["hwaddr"])
            serial = None
            if "serial" in nd:
                serial = src.string((*np_, "serial"), nd["serial"])
                if not _SERIAL.match(serial):
                    src.fail((*np_, "serial"), f"expected 8 hex digits, got {serial!r}")
                serial = serial.lower()
            node = Node(index if ntype is not None else -1, hostname, domain,
                        ntype if ntype is not None else _SERVICE, address, hwaddr, serial,
                        src.line_of(np_))
            for value, seen, what, key in ((node.name, seen_name, "name", "hostname"),
                                           (hwaddr, seen_mac, "MAC address", "hwaddr"),
                                           (address, seen_addr, "address", "suffix"),
                                           (serial, seen_serial, "serial", "serial")):
                if value is None or (what == "MAC address" and value == "00:00:00:00:00:00"):
                    continue
                if value in seen:
                    src.fail((*np_, key), f"duplicate {what} {value} (first at line {src.line_of(seen[value])})")
                seen[value] = np_
            if ntype is None:
                master.append(node)
            else:
                members.append(node)
                index += 1
        if members:
            clusters.append(Cluster(domain, prefix, tuple(members)))
    if index == 0:
        src.fail((*path, "clusters"), "no compute nodes (a node needs a type)")
    return ClusterSpec(tuple(clusters), types, interface, tuple(master))


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
        for key in ("power_idle_w", "power_max_w", "power_off_w", "boot_s", "power_boot_w"):
            if key in s:
                values[key] = src.number((*tp, key), s[key], nonnegative=True)
        if "source" in s:
            values["source"] = src.string((*tp, "source"), s["source"])
        if "power_boot_w" not in s and "base" not in s:
            values["power_boot_w"] = values["power_idle_w"]
        if values["power_max_w"] < values["power_idle_w"]:
            src.fail((*tp, "power_max_w"), f"below power_idle_w ({values['power_max_w']} < {values['power_idle_w']})")
        values.pop("base", None)
        types[name] = NodeType(**values)
    return types
