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
cluster of identical nodes, and ``power:`` / ``meter:`` on a group or a node
(how the testbed switches and meters it: :mod:`rpiaas.inputs.power`).
``docs/scenario.md`` documents every key.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

from ..model import PROFILES, Cluster, ClusterSpec, Node, NodeType
from . import limits, power
from .errors import did_you_mean
from .source import KeyPath, LimitError, Source, load_file

__all__ = ["NODE_TYPE_KEYS", "load_cluster", "parse_cluster", "read_cluster"]

NODE_TYPE_KEYS = ("base", "cores", "mem_mb", "speed", "power_idle_w", "power_max_w",
                  "power_off_w", "boot_s", "power_boot_w", "start_overhead_s", "source", "link_mbps", "image_cache_mb",
                  "pull_latency_s")
CLUSTER_KEYS = ("interface", "node_types", "clusters")
GROUP_KEYS = ("domain", "prefix", "nodes", "count", "type", "hostname", "first_suffix", "power",
              "meter")
NODE_KEYS = ("hostname", "type", "suffix", "hwaddr", "serial", "address", "power", "meter")


_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^({_LABEL})(\.{_LABEL})*$")
_SERIAL = re.compile(r"^[0-9a-fA-F]{8}$")
_IFACE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


def load_cluster(path: str | Path) -> ClusterSpec:
    """Read a cluster file (YAML, or the original RPiaaS ``config.json``)."""
    return read_cluster(path)[0]


def read_cluster(path: str | Path) -> tuple[ClusterSpec, Any]:
    """Read a cluster file: the cluster, and its data as read (values read as text kept as
    text), which a scenario can carry inline instead of the file's name."""
    src = load_file(path)
    if src.data is None:
        src.fail((), "empty cluster file")
    return parse_cluster(src, (), src.mapping((), src.data)), src.with_text(src.data)


def parse_cluster(src: Source, path: KeyPath, data: Any) -> ClusterSpec:
    """Build a :class:`ClusterSpec` from ``data`` found at ``path`` in ``src``.

    ``data`` is a cluster mapping, or the name of a cluster file relative to
    the file ``src`` was read from.
    """
    if isinstance(data, str):
        if not data.strip() or any(c in data for c in "\n\r\x00"):
            src.fail(path, "expected a cluster mapping or the name of a cluster file, got a text "
                           f"of {len(data):,} characters over {data.count(chr(10)) + 1} lines")
        return load_cluster(src.input_file(path, data, "cluster file"))
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
    _check_total(src, path, groups)
    index = 0
    # value -> where it was first given; names are compared as DNS does, ignoring case
    seen: dict[str, dict[str, KeyPath]] = {"name": {}, "MAC address": {}, "address": {},
                                           "serial": {}}
    domains: dict[str, KeyPath] = {}
    prefixes: list[tuple[str, KeyPath]] = []
    ranges: list[tuple[str, int, int, KeyPath]] = []  # the addresses of count groups
    for gi, group in enumerate(groups):
        gp: KeyPath = (*path, "clusters", gi)
        g = src.mapping(gp, group, GROUP_KEYS)
        domain = src.string((*gp, "domain"), g.get("domain", ""))
        if domain and not _DOMAIN.match(domain):
            src.fail((*gp, "domain"), f"not a DNS domain: {domain!r}")
        if domain:
            _first((*gp, "domain"), domain.lower(), domains, src,
                   f"two clusters with the domain {domain} (DNS would hold both clusters' "
                   "names under it)")
        prefix = src.string((*gp, "prefix"), g.get("prefix", ""))
        if prefix and not _octets(prefix, 1, 3):
            src.fail((*gp, "prefix"), f"expected 1 to 3 octets like 10.0.1, got {prefix!r}")
        if prefix:
            for other, other_at in prefixes:
                if (prefix + ".").startswith(other + ".") or (other + ".").startswith(prefix + "."):
                    line = src.line_of(other_at)
                    src.fail((*gp, "prefix"), f"the network of prefix {prefix} overlaps that of "
                                              f"prefix {other}"
                                              f"{f' (line {line})' if line else ''}: DHCP and DNS "
                                              "would serve two clusters on one network")
            prefixes.append((prefix, (*gp, "prefix")))
        group_power = power.raw(src, (*gp, "power"), g["power"]) if "power" in g else None
        group_meter = power.raw(src, (*gp, "meter"), g["meter"]) if "meter" in g else None
        if "count" in g:
            members = _count_group(src, gp, g, types, domain, prefix, index, seen, ranges)
            if group_power is not None or group_meter is not None:
                pspec = None if group_power is None else power.parse_power(src, (*gp, "power"), group_power)
                mspec = None if group_meter is None else power.parse_meter(src, (*gp, "meter"), group_meter)
                members = [dataclasses.replace(n, power=pspec, meter=mspec) for n in members]
            index += len(members)
            clusters.append(Cluster(domain, prefix, tuple(members)))
            continue
        members = []
        for where, nd in _group_nodes(src, gp, g):
            node = _node(src, where, nd, types, domain, prefix, index)
            node = _power_and_meter(src, where["node"], nd, node, group_power, group_meter)
            for what, value in (("name", node.name.lower()), ("MAC address", node.hwaddr),
                                ("address", node.address), ("serial", node.serial)):
                if value is None or (what == "MAC address" and value == _NO_MAC):
                    continue
                key = {"name": "hostname", "MAC address": "hwaddr", "address": "address",
                       "serial": "serial"}[what]
                if what == "address" and (counted := _in_ranges(value, ranges)) is not None:
                    _first(where[key], value, {value: counted}, src, f"duplicate {what} {value}")
                _first(where[key], value, seen[what], src, f"duplicate {what} {value}")
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


def _power_and_meter(src: Source, at: KeyPath, nd: dict[str, Any], node: Node,
                     group_power: tuple[dict[str, Any], dict[str, KeyPath]] | None,
                     group_meter: tuple[dict[str, Any], dict[str, KeyPath]] | None) -> Node:
    """``node`` with its ``power:`` and ``meter:`` (its own merged over its group's)."""
    merged_power = power.merge_power(src, (*at, "power"), nd.get("power"), group_power, "power")
    merged_meter = power.merge_power(src, (*at, "meter"), nd.get("meter"), group_meter, "meter")
    if node.index < 0:
        for key, merged in (("power", merged_power), ("meter", merged_meter)):
            if merged is not None:
                src.fail((*at, key) if key in nd else at,
                         f"a service host (no type: the master) is never switched off or metered; "
                         f"remove {key}: or give it a type")
        return node
    # a missing key is blamed on the node's own mapping, else on the node
    pspec = (None if merged_power is None else
             power.parse_power(src, (*at, "power") if "power" in nd else at, merged_power))
    mspec = (None if merged_meter is None else
             power.parse_meter(src, (*at, "meter") if "meter" in nd else at, merged_meter))
    return node if pspec is None and mspec is None else dataclasses.replace(node, power=pspec, meter=mspec)


def _first(where: KeyPath, value: str, seen: dict[str, KeyPath], src: Source, message: str) -> None:
    """Record where ``value`` was given; fail at ``where`` if it was given before."""
    if value in seen:
        line = src.line_of(seen[value])
        src.fail(where, f"{message}{f' (first at line {line})' if line else ''}")
    seen[value] = where


def _check_total(src: Source, path: KeyPath, groups: list[Any]) -> None:
    """Refuse a cluster of more than ``RPIAAS_MAX_NODES`` nodes, before a node is built."""
    limit = limits.NODES.value()
    total = 0
    for gi, g in enumerate(groups):
        if not isinstance(g, dict):
            continue
        n = g.get("count", g.get("nodes"))
        if isinstance(n, list):
            n = len(n)
        elif isinstance(n, float) and math.isfinite(n):  # count: 1e12 is a count too
            n = int(n)
        elif not isinstance(n, int) or isinstance(n, bool):
            n = 0  # not a number: the group's own check says so
        total += max(n, 0)
        if total > limit:
            key = "count" if "count" in g else "nodes"
            src.fail((*path, "clusters", gi, key), f"the cluster reaches {total:,} nodes here "
                                                   f"({limits.NODES.hint()})", LimitError)


def _reserved(address: str, prefix: str) -> str | None:
    """``"network"`` or ``"broadcast"`` if ``address`` is that address of its prefix's network."""
    rest = address.split(".")[len(prefix.split(".")):]
    if rest and all(o == "0" for o in rest):
        return "network"
    if rest and all(o == "255" for o in rest):
        return "broadcast"
    return None


def _count_group(src: Source, gp: KeyPath, g: dict[str, Any], types: dict[str, NodeType],
                 domain: str, prefix: str, index: int, seen: dict[str, dict[str, KeyPath]],
                 ranges: list[tuple[str, int, int, KeyPath]]) -> list[Node]:
    """The nodes of a ``count: N`` group, checked once for the group, not once per node.

    Only the number varies from node to node, so the first and the last
    host name and address stand for all of them; no per-node dict is made and
    only names and addresses are remembered, to find duplicates in other groups.
    """
    if "nodes" in g:
        src.fail((*gp, "count"), "give either nodes or count, not both")
    count = src.integer((*gp, "count"), g["count"], minimum=1)
    if "type" not in g:
        src.fail(gp, "missing key 'type' (needed with count)")
    tname = src.string((*gp, "type"), g["type"])
    if tname not in types:
        src.fail((*gp, "type"), f"unknown node type {tname!r}{did_you_mean(tname, types)} "
                                f"(known: {', '.join(sorted(types))})")
    ntype = types[tname]
    pattern = src.string((*gp, "hostname"), g.get("hostname", "node{i}"))
    if "{i}" not in pattern:
        src.fail((*gp, "hostname"), "with count, the hostname needs {i} (e.g. node{i})")
    first = src.integer((*gp, "first_suffix"), g.get("first_suffix", 1), minimum=0)
    last = first + count - 1
    host_at = (*gp, "hostname") if "hostname" in g else (*gp, "count")
    suffix_at = (*gp, "first_suffix") if "first_suffix" in g else (*gp, "count")
    for i in (first, last):  # the shortest and the longest name
        hostname = pattern.replace("{i}", str(i))
        if not _HOST.match(hostname):
            src.fail(host_at, f"not a host name: {hostname!r}")
    if prefix:
        for i in (first, last):
            address = f"{prefix}.{i}"
            if not _octets(address, 4, 4):
                src.fail(suffix_at,
                         f"{address} is not an IPv4 address (prefix {prefix} + suffix {i})")
        if len(prefix.split(".")) == 3:
            for bad, what in ((0, "network"), (255, "broadcast")):
                if first <= bad <= last:
                    src.fail(suffix_at, f"{prefix}.{bad} is the {what} address of {prefix}.0/24, "
                                        f"not a node's (suffixes {first} to {last})")
    if prefix:  # an address given explicitly (in a group without a prefix) may fall in the range
        for address, where in seen["address"].items():
            head, _, tail = address.rpartition(".")
            if head == prefix and first <= int(tail) <= last:
                _first(suffix_at, address, {address: where}, src, f"duplicate address {address}")
        ranges.append((prefix, first, last, suffix_at))
    line = src.line_of(gp)
    hosts = [pattern.replace("{i}", str(first + k)) for k in range(count)]
    if not domain:
        # a domain is never given twice and a prefix never overlaps another: only names
        # without a domain can meet names of another group
        names = seen["name"]
        for hostname in hosts:
            _first(host_at, hostname.lower(), names, src, f"duplicate name {hostname.lower()}")
    return [Node(index + k, hostname, domain, ntype, f"{prefix}.{first + k}" if prefix else None,
                 None, None, line) for k, hostname in enumerate(hosts)]


def _in_ranges(address: str, ranges: list[tuple[str, int, int, KeyPath]]) -> KeyPath | None:
    """Where a count group gave ``address`` already, or ``None``."""
    head, _, tail = address.rpartition(".")
    for prefix, first, last, where in ranges:
        if head == prefix and tail.isdigit() and first <= int(tail) <= last:
            return where
    return None


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
            src.fail(where["type"],
                     f"unknown node type {tname!r}{did_you_mean(tname, types)} (known: {', '.join(sorted(types))})")
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
    if address is not None and prefix:
        reserved = _reserved(address, prefix)
        if reserved is not None:
            at = where["address"] if "address" in nd else where["suffix"]
            src.fail(at, f"{address} is the {reserved} address of prefix {prefix}'s network, "
                         "not a node's")
    hwaddr = None
    if nd.get("hwaddr") not in (None, ""):
        hwaddr = src.mac(where["hwaddr"], nd["hwaddr"])
        if int(hwaddr[:2], 16) & 1:
            what = "the broadcast" if hwaddr == "ff:ff:ff:ff:ff:ff" else "a multicast"
            src.fail(where["hwaddr"], f"{hwaddr} is {what} MAC address, not a network card's "
                                      "(the lowest bit of the first byte is set)")
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
                src.fail((*tp, "base"), f"unknown profile {base_name!r} "
                                        f"(known: {', '.join(sorted(PROFILES))})")
            base: dict[str, Any] = dataclasses.asdict(PROFILES[base_name])
        else:
            missing = [k for k in ("cores", "mem_mb", "speed", "power_idle_w", "power_max_w")
                       if k not in s]
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
                    "start_overhead_s", "pull_latency_s"):
            if key in s:
                values[key] = src.number((*tp, key), s[key], nonnegative=True)
        if "link_mbps" in s:
            values["link_mbps"] = src.number((*tp, "link_mbps"), s["link_mbps"], positive=True)
        if "image_cache_mb" in s:
            values["image_cache_mb"] = src.number((*tp, "image_cache_mb"), s["image_cache_mb"], nonnegative=True)
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
