"""The plan of a local testbed: cores, memory and CPU sets per node from what this machine has."""

from __future__ import annotations

import os
import socket

import pytest

from rpiaas.testbed import plan as plan_module
from rpiaas.testbed.plan import MAX_NODES, TestbedError, free_ports, machine, plan


def test_cpu_sets_and_local_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_module, "machine", lambda: (list(range(8)), 16384))
    doc, cores, mem_mb, cpu_sets, notes = plan(2, "rpi4b")
    assert (cores, mem_mb, cpu_sets, notes) == (4, 4096, [[0, 1, 2, 3], [4, 5, 6, 7]], [])
    assert doc == {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 2,
                                 "type": "rpi4b"}]}
    doc, cores, _, cpu_sets, notes = plan(3, "rpi4b")  # 12 CPUs needed: shared
    assert cores == 4 and cpu_sets is None and "no CPU pinning" in notes[0]
    # more cores than the machine's CPUs: kept, the agents oversubscribed; more memory than
    # the machine's: a local type with the memory there is
    monkeypatch.setattr(plan_module, "machine", lambda: ([0, 1], 3000))
    doc, cores, mem_mb, cpu_sets, notes = plan(1, "rpi4b")
    assert (cores, mem_mb, cpu_sets) == (4, 3000, None)
    assert doc["node_types"] == {"rpi4b-local": {"base": "rpi4b", "mem_mb": 3000}}
    assert doc["clusters"][0]["type"] == "rpi4b-local" and "rpi4b-local" in notes[0]
    assert "oversubscribed" in notes[1]


@pytest.mark.parametrize(("n", "node_type", "message"), [
    (0, "rpi4b", "--local: expected 1 to 254 nodes, got 0"),
    (MAX_NODES + 1, "rpi4b", f"--local: expected 1 to 254 nodes, got {MAX_NODES + 1}"),
    (2, "rpi9", "--type: unknown node type 'rpi9'"),
])
def test_bad_plans_are_input_errors(n: int, node_type: str, message: str) -> None:
    with pytest.raises(TestbedError, match=message) as e:
        plan(n, node_type)
    assert e.value.exit_code == 2


def test_the_machine_is_what_this_process_may_use() -> None:
    cpus, mem_mb = machine()
    assert cpus == sorted(os.sched_getaffinity(0)) and mem_mb > 0


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
