"""The registry: every node of the cluster config with its agent's address and last known state."""

from __future__ import annotations

from pathlib import Path

from rpiaas.master import Registry, load_master_config
from rpiaas.master.registry import NodeEntry
from rpiaas.store import NodeStatus, Sample, StateChange


def _registry(tmp_path: Path) -> Registry:
    path = tmp_path / "master.yaml"
    path.write_text("cluster:\n  clusters:\n"
                    "    - {domain: c.test, prefix: 10.0.0, count: 3, type: rpi4b}\n"
                    "agents:\n  node2.c.test: '127.0.0.1:18082'\n  node3.c.test: '[::1]:18083'\n")
    return Registry(load_master_config(path))


def test_agents_by_address_unless_configured(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    assert [e.name for e in registry] == ["node1.c.test", "node2.c.test", "node3.c.test"]
    assert len(registry) == 3 and registry.get("none") is None
    assert [e.base_url for e in registry] == ["http://10.0.0.1:8081", "http://127.0.0.1:18082",
                                              "http://[::1]:18083"]
    doc = registry.entries["node1.c.test"].to_json()
    assert doc["agent"] == "http://10.0.0.1:8081" and doc["online"] is None


def test_a_node_goes_offline_only_after_misses_in_a_row(tmp_path: Path) -> None:
    entry: NodeEntry = _registry(tmp_path).entries["node1.c.test"]
    assert entry.set_online(True, 1.0)  # the first poll is a change
    assert not entry.set_online(False, 2.0, "timeout", misses=2)  # one late answer
    assert entry.online is True
    assert entry.set_online(False, 3.0, "timeout", misses=2)
    assert (entry.online, entry.changed_s, entry.reason) == (False, 3.0, "timeout")
    assert entry.set_online(True, 4.0) and entry.reason == "" and entry.last_ok_s == 4.0


def test_restore_takes_up_the_stored_states(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    sample = Sample(node="node2.c.test", time_s=9.0, cpu_util=0.1, mem_used_mb=1.0,
                    mem_total_mb=2.0, load1=0.0, disk_used_ratio=0.0)
    latest = {"node2.c.test": NodeStatus("node2.c.test", sample,
                                         StateChange("node2.c.test", 8.0, False, "gone")),
              "removed.c.test": NodeStatus("removed.c.test", None,
                                           StateChange("removed.c.test", 1.0, True))}
    assert registry.restore(latest) == 1
    entry = registry.entries["node2.c.test"]
    assert (entry.online, entry.changed_s, entry.reason, entry.last_ok_s) == (False, 8.0, "gone", 9.0)
