"""Cluster descriptions: our YAML layout and the original RPiaaS config.json."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rpiaas.inputs.cluster import load_cluster
from rpiaas.inputs.source import InputError
from rpiaas.model import PROFILES

REFERENCE = Path("/work/shared/reference/rpiaas-config.example.json")


def write(tmp_path: Path, text: str, name: str = "cluster.yaml") -> Path:
    f = tmp_path / name
    f.write_text(textwrap.dedent(text).lstrip("\n"))
    return f


# ---------------------------------------------------------------- the original layout
def test_the_original_config_is_read_as_it_is() -> None:
    spec = load_cluster(REFERENCE)
    assert spec.interface == "eth0"
    assert [n.name for n in spec.nodes] == [
        "node1.cluster1.rpiaas.test", "node2.cluster1.rpiaas.test",
        "node1.cluster2.rpiaas.test", "node2.cluster2.rpiaas.test"]
    assert [n.address for n in spec.nodes] == ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"]
    assert [n.index for n in spec.nodes] == [0, 1, 2, 3]
    assert all(n.type == PROFILES["rpi3b"] for n in spec.nodes)  # "rpi3" is the Pi 3 B
    assert all(n.hwaddr == "00:00:00:00:00:00" for n in spec.nodes)  # placeholder may repeat
    assert [(c.domain, c.prefix, len(c.nodes)) for c in spec.clusters] == [
        ("cluster1.rpiaas.test", "10.0.1", 2), ("cluster2.rpiaas.test", "10.0.2", 2)]


def test_the_typeless_master_is_kept_apart() -> None:
    spec = load_cluster(REFERENCE)
    (master,) = spec.master
    assert master.name == "master.rpiaas.test"
    assert master.index == -1 and master.address is None and master.hwaddr is None
    assert master not in spec.nodes
    assert all(master not in c.nodes for c in spec.clusters)


def test_nodes_remember_the_line_they_are_declared_on() -> None:
    spec = load_cluster(REFERENCE)
    lines = REFERENCE.read_text().splitlines()
    starts = [n.line for n in (*spec.nodes, *spec.master)]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    for node in (*spec.nodes, *spec.master):
        assert node.line is not None  # the line of the node's opening brace
        assert lines[node.line - 1].rstrip().endswith("{")
        assert f'"hostname": "{node.hostname}"' in "".join(lines[node.line:node.line + 3])


def test_an_error_in_a_json_config_names_its_line(tmp_path: Path) -> None:
    data = json.loads(REFERENCE.read_text())
    data["clusters"][1]["nodes"][1]["suffix"] = "1"  # 10.0.2.1 twice
    f = tmp_path / "config.json"
    f.write_text(json.dumps(data, indent="\t"))
    with pytest.raises(InputError) as exc:
        load_cluster(f)
    line = exc.value.line
    assert line is not None and '"suffix": "1"' in f.read_text().splitlines()[line - 1]
    assert str(exc.value) == (f"{f}:{line}: clusters[1].nodes[1].suffix: duplicate address 10.0.2.1 "
                              f"(first at line {line - 6})")


# ---------------------------------------------------------------- our YAML layout
def test_count_shorthand(tmp_path: Path) -> None:
    spec = load_cluster(write(tmp_path, """
        clusters:
          - {domain: a.test, prefix: 10.0.1, count: 3, type: rpi4b}
          - {domain: b.test, prefix: 10.0.2, count: 2, type: rpi5, hostname: "pi{i}", first_suffix: 10}
          - {count: 1, type: rpi3b}
        """))
    assert [n.name for n in spec.nodes] == [
        "node1.a.test", "node2.a.test", "node3.a.test", "pi10.b.test", "pi11.b.test", "node1"]
    assert [n.address for n in spec.nodes] == [
        "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.2.10", "10.0.2.11", None]
    assert [n.type.name for n in spec.nodes] == ["rpi4b"] * 3 + ["rpi5"] * 2 + ["rpi3b"]
    assert [n.index for n in spec.nodes] == list(range(6))
    assert spec.master == () and spec.interface is None


def test_per_node_lists_with_mac_serial_and_address(tmp_path: Path) -> None:
    spec = load_cluster(write(tmp_path, """
        interface: enp3s0
        clusters:
          - domain: rack.lab
            prefix: 192.168.7
            nodes:
              - {hostname: a, type: rpi4b, suffix: 11, hwaddr: "DC:A6:32:00:00:01", serial: 1A2B3C4D}
              - {hostname: b, type: rpi5, address: 192.168.7.12, serial: 00001234}
              - {hostname: gw, suffix: 1}
        """))
    a, b = spec.nodes
    assert (a.address, a.hwaddr, a.serial) == ("192.168.7.11", "dc:a6:32:00:00:01", "1a2b3c4d")
    assert (b.address, b.hwaddr, b.serial) == ("192.168.7.12", None, "00001234")
    assert spec.interface == "enp3s0"
    (gw,) = spec.master
    assert gw.name == "gw.rack.lab" and gw.address == "192.168.7.1"


def test_node_types_with_and_without_base(tmp_path: Path) -> None:
    spec = load_cluster(write(tmp_path, """
        node_types:
          pi4_8g: {base: rpi4b, mem_mb: 8192}
          slow: {base: rpi4b, speed: 0.5, power_idle_w: 1, power_max_w: 4.5}
          nuc: {cores: 8, mem_mb: 16384, speed: 2, power_idle_w: 6, power_max_w: 28}
        clusters:
          - {count: 1, type: pi4_8g}
          - {count: 1, type: slow, hostname: "s{i}"}
          - {count: 1, type: nuc, hostname: "n{i}"}
        """))
    pi, slow, nuc = (n.type for n in spec.nodes)
    base = PROFILES["rpi4b"]
    assert (pi.name, pi.mem_mb, pi.cores, pi.speed, pi.power_idle_w) == ("pi4_8g", 8192, 4, 1.0, 2.7)
    assert (pi.boot_s, pi.power_off_w, pi.power_boot_w) == (base.boot_s, base.power_off_w,
                                                           base.power_boot_w)
    assert (slow.speed, slow.power_idle_w, slow.power_max_w) == (0.5, 1.0, 4.5)
    assert (nuc.cores, nuc.mem_mb, nuc.speed) == (8, 16384, 2.0)
    # without a base: off draws nothing, boots at once, boots at idle power
    assert (nuc.power_off_w, nuc.boot_s, nuc.power_boot_w, nuc.source) == (0.0, 0.0, 6.0, "user-defined")
    assert set(PROFILES) <= set(spec.node_types)


def test_yaml_numbers_in_string_fields_keep_their_text(tmp_path: Path) -> None:
    spec = load_cluster(write(tmp_path, """
        clusters:
          - domain: lab
            prefix: 10.10
            nodes:
              - {hostname: a, type: rpi4b, suffix: 1.5, hwaddr: 10:20:30:40:50:59, serial: 00000010}
        """))
    (a,) = spec.nodes
    assert (a.address, a.hwaddr, a.serial) == ("10.10.1.5", "10:20:30:40:50:59", "00000010")


# ---------------------------------------------------------------- bad clusters
BASE = """
interface: eth0
node_types:
  big: {base: rpi4b, cores: 8}
clusters:
  - domain: a.test
    prefix: 10.0.1
    nodes:
      - {hostname: n1, type: rpi4b, suffix: 1, hwaddr: "dc:a6:32:00:00:01"}
      - {hostname: n2, type: rpi4b, suffix: 2, hwaddr: "dc:a6:32:00:00:02"}
  - domain: b.test
    prefix: 10.0.2
    count: 2
    type: big
"""
# line numbers in BASE: 2 interface, 4 big, 6 domain a, 7 prefix, 9 n1, 10 n2, 11 domain b,
# 12 prefix, 13 count, 14 type

BAD = [
    # (edit: old -> new in BASE, line, key path, message)
    ("n2, type: rpi4b, suffix: 2", "n1, type: rpi4b, suffix: 2", 10,
     "clusters[0].nodes[1].hostname", "duplicate name n1.a.test (first at line 9)"),
    ('suffix: 2, hwaddr: "dc:a6:32:00:00:02"', 'suffix: 2, hwaddr: "DC:A6:32:00:00:01"', 10,
     "clusters[0].nodes[1].hwaddr", "duplicate MAC address dc:a6:32:00:00:01 (first at line 9)"),
    ("suffix: 2,", "suffix: 1,", 10,
     "clusters[0].nodes[1].suffix", "duplicate address 10.0.1.1 (first at line 9)"),
    ("prefix: 10.0.2", "prefix: 10.0.1", 12,
     "clusters[1].prefix", "the network of prefix 10.0.1 overlaps that of prefix 10.0.1 (line 7)"),
    ('hwaddr: "dc:a6:32:00:00:02"', 'hwaddr: "dc:a6:32:00:00"', 10,
     "clusters[0].nodes[1].hwaddr", "expected a MAC address like dc:a6:32:01:02:03, got 'dc:a6:32:00:00'"),
    ('hwaddr: "dc:a6:32:00:00:02"', 'hwaddr: "dc:a6:32:00:00:0g"', 10,
     "clusters[0].nodes[1].hwaddr", "expected a MAC address"),
    ("prefix: 10.0.1", "prefix: 10.0.1.0", 7,
     "clusters[0].prefix", "expected 1 to 3 octets like 10.0.1, got '10.0.1.0'"),
    ("prefix: 10.0.1", "prefix: 10.0.256", 7, "clusters[0].prefix", "expected 1 to 3 octets"),
    ("prefix: 10.0.1", "prefix: 10.00.1", 7, "clusters[0].prefix", "expected 1 to 3 octets"),
    ("prefix: 10.0.1", "prefix: 10.0.x", 7, "clusters[0].prefix", "expected 1 to 3 octets"),
    ("suffix: 2,", "address: 10.0.2.2,", 10,
     "clusters[0].nodes[1].address", "10.0.2.2 is outside the cluster's prefix 10.0.1"),
    ("suffix: 2,", "address: 10.0.1.300,", 10,
     "clusters[0].nodes[1].address", "not an IPv4 address: '10.0.1.300'"),
    ("suffix: 2,", "suffix: 2, address: 10.0.1.3,", 10,
     "clusters[0].nodes[1].suffix", "10.0.1.2 disagrees with address 10.0.1.3"),
    ("suffix: 2,", "suffix: 256,", 10,
     "clusters[0].nodes[1].suffix", "10.0.1.256 is not an IPv4 address (prefix 10.0.1 + suffix 256)"),
    ("suffix: 2,", "", 10,
     "clusters[0].nodes[1]", "missing key 'suffix' (the address is prefix.suffix)"),
    ("count: 2\n", "count: 2\n    first_suffix: 255\n", 14,
     "clusters[1].first_suffix", "10.0.2.256 is not an IPv4 address"),
    ("suffix: 2,", "suffix: 2, serial: 1234567,", 10,
     "clusters[0].nodes[1].serial", "expected 8 hex digits, got '1234567'"),
    ("suffix: 2,", "suffix: 2, serial: 1234567g,", 10,
     "clusters[0].nodes[1].serial", "expected 8 hex digits, got '1234567g'"),
    ("interface: eth0", "interface: eth 0", 2, "interface", "not a network interface name: 'eth 0'"),
    ("interface: eth0", "interface: a-very-long-interface-name", 2, "interface",
     "not a network interface name"),
    ("interface: eth0", "interfaces: eth0", 2, "interfaces",
     "unknown key (did you mean 'interface'?) (expected one of: interface, node_types, clusters)"),
    ("  - domain: b.test", "  - domian: b.test", 11, "clusters[1].domian", "unknown key"),
    ("n2, type: rpi4b,", "n2, typ: rpi4b,", 10, "clusters[0].nodes[1].typ",
     "unknown key (did you mean 'type'?) "
     "(expected one of: hostname, type, suffix, hwaddr, serial, address, power, meter)"),
    ("big: {base: rpi4b, cores: 8}", "big: {base: rpi4b, cpus: 8}", 4, "node_types.big.cpus",
     "unknown key"),
    ("type: big", "type: huge", 14, "clusters[1].type", "unknown node type 'huge' (known: big, qemu_a53, rpi3,"),
    ("n2, type: rpi4b", "n2, type: rpi9", 10, "clusters[0].nodes[1].type", "unknown node type 'rpi9'"),
    ("base: rpi4b, cores: 8", "base: rpi9, cores: 8", 4, "node_types.big.base",
     "unknown profile 'rpi9' (known: qemu_a53, rpi3, rpi3b,"),
    ("cores: 8}", "cores: 0}", 4, "node_types.big.cores", "expected a positive integer, got 0"),
    ("cores: 8}", "cores: 2.5}", 4, "node_types.big.cores", "expected a positive integer, got 2.5"),
    ("cores: 8}", "cores: eight}", 4, "node_types.big.cores", "expected a positive integer, got 'eight'"),
    ("cores: 8}", "cores: 8, speed: -1}", 4, "node_types.big.speed", "expected a positive number, got -1"),
    ("cores: 8}", "cores: 8, speed: 0}", 4, "node_types.big.speed", "expected a positive number, got 0"),
    ("cores: 8}", "cores: 8, power_idle_w: -2}", 4, "node_types.big.power_idle_w",
     "expected a non-negative number, got -2"),
    ("cores: 8}", "cores: 8, power_max_w: 1}", 4, "node_types.big.power_max_w",
     "power_max_w below power_idle_w (1 < 2.7 W)"),
    ("cores: 8}", "cores: 8, power_idle_w: 9}", 4, "node_types.big.power_idle_w",
     "power_max_w below power_idle_w (6.4 < 9 W)"),
    ("{base: rpi4b, cores: 8}", "{cores: 8, mem_mb: 1024}", 4, "node_types.big",
     "missing key 'speed' (or give base: a built-in profile)"),
    ("{base: rpi4b, cores: 8}", "8", 4, "node_types.big", "expected a mapping, got 8"),
    ("count: 2", "count: 0", 13, "clusters[1].count", "expected a positive integer, got 0"),
    ("count: 2", "count: -2", 13, "clusters[1].count", "expected a positive integer, got -2"),
    ("count: 2", "count: two", 13, "clusters[1].count", "expected a positive integer, got 'two'"),
    ("    type: big\n", "", 11, "clusters[1]", "missing key 'type' (needed with count)"),
    ("    type: big\n", "    type: big\n    hostname: pi\n", 15, "clusters[1].hostname",
     "with count, the hostname needs {i} (e.g. node{i})"),
    ("    type: big\n", "    type: big\n    nodes: []\n", 13, "clusters[1].count",
     "give either nodes or count, not both"),
    ("    prefix: 10.0.1\n", "    prefix: 10.0.1\n    type: rpi4b\n", 8, "clusters[0].type",
     "only allowed with count"),
    ("    count: 2\n    type: big\n", "", 11, "clusters[1]", "missing key 'nodes' (or count: N with type: T)"),
    ("  - domain: b.test", "  - domain: b..test", 11, "clusters[1].domain", "not a DNS domain: 'b..test'"),
    ("hostname: n2", "hostname: n_2", 10, "clusters[0].nodes[1].hostname", "not a host name: 'n_2'"),
    ("type: big\n", "type: big\n    hostname: 'n {i}'\n", 15, "clusters[1].hostname",
     "not a host name: 'n 1'"),
    ("hostname: n2, ", "", 10, "clusters[0].nodes[1]", "missing key 'hostname'"),
]


def _bad_cases() -> list[tuple[str, int, str, str]]:
    cases = []
    for old, new, line, key, message in BAD:
        assert old in BASE, old
        cases.append((BASE.replace(old, new, 1), line, key, message))
    serial = BASE.replace("suffix: 1,", "suffix: 1, serial: 0000ABCD,").replace(
        "suffix: 2,", "suffix: 2, serial: 0000abcd,")
    cases.append((serial, 10, "clusters[0].nodes[1].serial", "duplicate serial 0000abcd (first at line 9)"))
    cases.append(("clusters: []\n", 1, "clusters", "expected at least one cluster"))
    cases.append(("clusters: 3\n", 1, "clusters", "expected a list, got 3"))
    cases.append(("clusters: [3]\n", 1, "clusters[0]", "expected a mapping, got 3"))
    cases.append(("clusters:\n  - nodes:\n      - {hostname: master}\n", 1, "clusters",
                  "no compute nodes (a node needs a type)"))
    cases.append(("interface: eth0\n", 1, "", "missing key 'clusters'"))
    cases.append(("- a\n- b\n", 1, "", "expected a mapping, got a list"))
    return cases


@pytest.mark.parametrize(("text", "line", "key", "message"), _bad_cases(),
                         ids=[f"{c[2] or 'root'}:{c[3][:30]}" for c in _bad_cases()])
def test_bad_clusters_are_located(tmp_path: Path, text: str, line: int, key: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as exc:
        load_cluster(f)
    where = f"{f}:{line}: {key + ': ' if key else ''}"
    assert str(exc.value).startswith(where + message), (str(exc.value), where + message)


def test_the_base_of_the_bad_table_is_valid(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(BASE)
    spec = load_cluster(f)
    assert [n.name for n in spec.nodes] == ["n1.a.test", "n2.a.test", "node1.b.test", "node2.b.test"]
    assert [n.type.cores for n in spec.nodes] == [4, 4, 8, 8]


def test_an_empty_cluster_file(tmp_path: Path) -> None:
    f = write(tmp_path, "# nothing\n")
    with pytest.raises(InputError, match="empty cluster file"):
        load_cluster(f)
