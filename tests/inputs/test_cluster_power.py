"""The ``power:`` and ``meter:`` keys of a cluster file: parsed onto each node, or one clear error."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rpiaas.inputs.cluster import load_cluster
from rpiaas.inputs.power import DRIVER_KEYS, SOURCE_KEYS
from rpiaas.inputs.source import InputError
from rpiaas.model import SECRET_OPTIONS, MeterSpec, PowerSpec

COMMUNITY = "s3cret-community"


def write(tmp_path: Path, text: str, name: str = "cluster.yaml") -> Path:
    f = tmp_path / name
    f.write_text(textwrap.dedent(text).lstrip("\n"))
    return f


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InputError) as e:
        load_cluster(write(tmp_path, text))
    return str(e.value)


GROUP = f"""
clusters:
  - domain: c1.test
    prefix: 10.0.1
    power: {{driver: snmp, host: 192.0.2.1, community: {COMMUNITY}, timeout_s: 2}}
    meter: {{source: hwmon}}
    nodes:
      - {{hostname: n1, type: rpi4b, suffix: 1, power: {{port: 1}}}}
      - {{hostname: n2, type: rpi4b, suffix: 2, power: {{port: 2, group: 2}}, meter: {{source: pmic}}}}
      - hostname: n3
        type: rpi4b
        suffix: 3
        power: {{driver: command, command: /usr/local/bin/pwr}}
        meter: {{path: /sys/class/hwmon/hwmon2}}
  - count: 2
    type: rpi4b
    power: {{driver: process, state_dir: /tmp/bed}}
"""


def test_a_node_merges_its_keys_over_its_groups_or_replaces_them_with_a_driver(tmp_path: Path) -> None:
    spec = load_cluster(write(tmp_path, GROUP))
    n1, n2, n3, c1, c2 = spec.nodes
    assert n1.power == PowerSpec("snmp", (("host", "192.0.2.1"), ("community", COMMUNITY),
                                          ("timeout_s", 2.0), ("port", 1)))
    assert n2.power is not None and n2.power.get("group") == 2 and n2.power.get("port") == 2
    assert n3.power == PowerSpec("command", (("command", "/usr/local/bin/pwr"),))
    assert n1.meter == MeterSpec("hwmon") and n2.meter == MeterSpec("pmic")
    assert n3.meter == MeterSpec("hwmon", (("path", "/sys/class/hwmon/hwmon2"),))
    assert c1.power == c2.power == PowerSpec("process", (("state_dir", "/tmp/bed"),))
    assert c1.meter is None


def test_no_power_key_leaves_power_emulated(tmp_path: Path) -> None:
    spec = load_cluster(write(tmp_path, """
        clusters:
          - {count: 1, type: rpi4b}
        """))
    assert spec.nodes[0].power is None and spec.nodes[0].meter is None


def test_a_credential_never_shows_in_a_spec_repr(tmp_path: Path) -> None:
    node = load_cluster(write(tmp_path, GROUP)).nodes[0]
    assert COMMUNITY not in repr(node) and COMMUNITY not in str(node.power)
    assert node.power is not None and node.power.secrets() == [COMMUNITY]


def test_every_credential_option_is_known_as_one() -> None:
    secret = {k for keys in (*DRIVER_KEYS.values(), *SOURCE_KEYS.values())
              for k, v in keys.items() if v.kind == "secret"}
    assert secret == SECRET_OPTIONS


def test_process_and_qemu_take_exactly_state_dir_and_timeout() -> None:
    for name in ("process", "qemu"):
        assert dict(DRIVER_KEYS[name]).keys() == {"state_dir", "timeout_s"}
        assert DRIVER_KEYS[name]["state_dir"].required
    assert dict(SOURCE_KEYS["hwmon"]).keys() == {"path"} and not SOURCE_KEYS["pmic"]


def test_a_relative_state_dir_is_the_cluster_files_wherever_it_is_read_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rpiaas testbed up`` writes ``state_dir: power`` beside its cluster file: the master (its
    working directory the testbed's) and a tool run from anywhere else find the same directory."""
    bed = tmp_path / "bed"
    bed.mkdir()
    path = write(bed, """
clusters:
  - domain: local.rpiaas.test
    prefix: 127.0.1
    count: 1
    type: rpi4b
    power: {driver: process, state_dir: power}
""")
    monkeypatch.chdir(tmp_path)
    assert load_cluster(path).nodes[0].power.get("state_dir") == str(bed / "power")  # type: ignore[union-attr]


def test_the_original_json_layout_takes_them_too(tmp_path: Path) -> None:
    data = {"interface": "eth0", "clusters": [{
        "domain": "cluster1.rpiaas.test", "prefix": "10.0.1",
        "power": {"driver": "http", "flavour": "shelly2", "url": "http://192.0.2.20"},
        "nodes": [
            {"type": "rpi3", "hostname": "node1", "suffix": "1", "hwaddr": "00:00:00:00:00:00",
             "power": {"url": "http://192.0.2.21", "password": "plugpass1"}},
            {"type": "rpi3", "hostname": "node2", "suffix": "2", "hwaddr": "00:00:00:00:00:00",
             "meter": {"source": "prometheus", "url": "http://192.0.2.30:9090",
                       "query": 'node_power_watts{instance="node2"}'}}]}]}
    f = tmp_path / "config.json"
    f.write_text(json.dumps(data, indent=2))
    n1, n2 = load_cluster(f).nodes
    assert n1.power == PowerSpec("http", (("flavour", "shelly2"), ("url", "http://192.0.2.21"),
                                          ("password", "plugpass1")))
    assert n2.power == PowerSpec("http", (("flavour", "shelly2"), ("url", "http://192.0.2.20")))
    assert n2.meter is not None and n2.meter.get("query") == 'node_power_watts{instance="node2"}'

    data["clusters"][0]["nodes"][1]["meter"]["source"] = "wattmeter"
    f.write_text(json.dumps(data, indent=2))
    with pytest.raises(InputError) as e:
        load_cluster(f)
    line = next(i for i, t in enumerate(f.read_text().splitlines(), 1) if '"wattmeter"' in t)
    assert str(e.value).startswith(f"{f}:{line}: clusters[0].nodes[1].meter.source: unknown meter source "
                                   "'wattmeter'")


def test_snmp_v3_keys(tmp_path: Path) -> None:
    spec = load_cluster(write(tmp_path, """
        clusters:
          - nodes:
              - hostname: n1
                type: rpi4b
                power: {driver: snmp, host: 192.0.2.1, version: 3, user: ops, auth_protocol: sha256,
                        auth_key: authpass1, priv_protocol: aes, priv_key: privpass1, port: 4}
                meter: {source: snmp, host: 192.0.2.1, version: 3, user: ops, auth_key: authpass1,
                        oid: .1.3.6.1.4.1.32473.105.1.1.4, scale: 0.001}
        """))
    node = spec.nodes[0]
    assert node.power is not None and node.power.get("version") == "3"
    assert node.meter is not None and node.meter.get("oid") == "1.3.6.1.4.1.32473.105.1.1.4"
    assert node.meter.get("scale") == 0.001
    assert sorted(node.power.secrets()) == ["authpass1", "privpass1"]


@pytest.mark.parametrize(("snippet", "line", "key", "message"), [
    ("power: {driver: teleport}", 4, "clusters[0].nodes[0].power.driver", "unknown power driver 'teleport'"),
    ("meter: {source: hwmon, device: x}", 4, "clusters[0].nodes[0].meter.device",
     "unknown key for meter source hwmon (expected one of: path)"),
    ("power: {driver: uhubctl, location: 1-1, port: 0}", 4, "clusters[0].nodes[0].power.port",
     "expected a positive integer, got 0"),
    ("power: {driver: uhubctl, location: 1-1}", 4, "clusters[0].nodes[0].power",
     "missing key 'port' (power driver uhubctl needs it)"),
    ("power: {port: 3}", 4, "clusters[0].nodes[0].power", "missing key 'driver'"),
    ("power: {driver: command, command: x, timeout_s: -1}", 4, "clusters[0].nodes[0].power.timeout_s",
     "expected a positive number, got -1"),
    ("power: {driver: http, flavour: sonoff, url: http://192.0.2.2}", 4,
     "clusters[0].nodes[0].power.flavour", "expected one of tasmota, shelly1, shelly2, got 'sonoff'"),
    ("power: {driver: http, flavour: tasmota, url: 192.0.2.2}", 4, "clusters[0].nodes[0].power.url",
     "expected an http:// or https:// URL"),
    ("power: {driver: snmp, host: h, port: 1}", 4, "clusters[0].nodes[0].power.host",
     "missing key 'community' (SNMP v2c needs it)"),
    ("power: {driver: snmp, host: h, port: 1, community: [a]}", 4, "clusters[0].nodes[0].power.community",
     "expected a string (the value is not shown: it is a credential)"),
    ("power: {driver: snmp, host: h, port: 1, version: 3, user: u, auth_key: short7x}", 4,
     "clusters[0].nodes[0].power.auth_key", "at least 8 characters (the value is not shown)"),
    ("power: {driver: snmp, host: h, port: 1, version: 3, user: u, community: abcdefgh}", 4,
     "clusters[0].nodes[0].power.community", "not a community"),
    ("power: {driver: snmp, host: h, port: 1, community: c0mmunity, user: u}", 4,
     "clusters[0].nodes[0].power.user", "an SNMP v3 key: give version: 3 with it"),
    ("meter: {source: snmp, host: h, community: c0mmunity, oid: 1.3.x}", 4,
     "clusters[0].nodes[0].meter.oid", "expected a numeric OID"),
    ("power: on", 4, "clusters[0].nodes[0].power", "expected a mapping"),
])
def test_bad_power_and_meter_keys_name_file_line_and_key(tmp_path: Path, snippet: str, line: int, key: str,
                                                         message: str) -> None:
    text = f"""
        clusters:
          - nodes:
              - hostname: n1
                {snippet}
                type: rpi4b
        """
    msg = error(tmp_path, text)
    assert msg.startswith(f"{tmp_path / 'cluster.yaml'}:{line}: {key}: "), msg
    assert message in msg
    assert "\n" not in msg
    for secret in ("short7x", "abcdefgh", "c0mmunity"):
        assert secret not in msg


def test_the_master_is_never_switched(tmp_path: Path) -> None:
    msg = error(tmp_path, """
        clusters:
          - nodes:
              - {hostname: master}
              - {hostname: n1, type: rpi4b}
            power: {driver: command, command: /bin/pwr}
        """)
    assert "clusters[0].nodes[0]: a service host (no type: the master) is never switched off" in msg


def test_a_count_group_checks_its_power_once(tmp_path: Path) -> None:
    msg = error(tmp_path, """
        clusters:
          - count: 3
            type: rpi4b
            power: {driver: qemu, state_dir: /tmp/x, cores: 2}
        """)
    assert msg.startswith(f"{tmp_path / 'cluster.yaml'}:4: clusters[0].power.cores: unknown key for power "
                          "driver qemu (expected one of: state_dir, timeout_s)")


def test_what_a_run_directory_keeps_of_a_cluster_has_no_credential(tmp_path: Path) -> None:
    from rpiaas.inputs.power import without_credentials
    from rpiaas.inputs.source import load_file

    data = load_file(write(tmp_path, GROUP)).data
    kept = without_credentials({"name": "x", "cluster": data})
    assert COMMUNITY not in json.dumps(kept)
    assert kept["cluster"]["clusters"][0]["power"] == {"driver": "snmp", "host": "192.0.2.1",
                                                       "community": "[redacted]", "timeout_s": 2}
    assert kept["cluster"]["clusters"][0]["nodes"][2] == data["clusters"][0]["nodes"][2]
    assert COMMUNITY in json.dumps(data)  # the data read is left as it was
