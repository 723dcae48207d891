"""The master's power readings: from an agent's own sensor and from a master-side meter, into
the history store and onto ``/metrics``.

Node 1's agent is a real process reading hwmon sensors from a directory laid
out as the kernel's ``/sys/class/hwmon`` (the layout, not a device).  Node 2
has a master-side meter registered here, ``test-file``: a test double of a
meter *source* (a plug, a PoE port) that reads watts from a file the test
writes; the poller that reads it, the store and the exposition are the real
ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest
from aiohttp import web

from agent.tests.helpers import start_agent
from rpiaas.live import AgentClient
from rpiaas.master import Poller, Registry, load_master_config
from rpiaas.master.keys import POLLER, REGISTRY
from rpiaas.master.metrics import metrics_text
from rpiaas.model import MeterSpec, Node
from rpiaas.power import METERS, PowerError, Reading, register_meter
from rpiaas.store import open_store

pytestmark = pytest.mark.integration

parser = pytest.importorskip("prometheus_client.parser")

NAMES = ["node1.c1.test", "node2.c1.test"]


class FileMeter:
    """Watts from a file (a test double of a meter source): a bad file is a PowerError."""

    name = "test-file"

    def __init__(self, node: Node, spec: MeterSpec) -> None:
        self.path = Path(str(spec.get("path")))

    async def read(self) -> Reading:
        if self.path.read_text() == "crash":  # a meter with a bug of its own
            raise RuntimeError("http://admin:secret@plug/ went wrong")
        try:
            return Reading(time.time(), float(self.path.read_text()))
        except (OSError, ValueError) as e:
            raise PowerError(f"test-file meter: cannot read {self.path.name}: {e}") from None


@pytest.fixture
def file_meter() -> object:
    register_meter("test-file")(FileMeter)
    yield FileMeter
    METERS.pop("test-file", None)


def test_agent_and_master_side_readings_are_stored_and_exported(tmp_path: Path, file_meter: object,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    hwmon = tmp_path / "hwmon"
    (hwmon / "hwmon1").mkdir(parents=True)
    (hwmon / "hwmon1" / "name").write_text("ina219\n")
    (hwmon / "hwmon1" / "power1_input").write_text("2500000\n")
    empty = tmp_path / "sysfs-empty"
    empty.mkdir()
    agent = start_agent(tmp_path, "--name", NAMES[0], "--sysfs-root", str(empty), "--vcgencmd", "",
                        "--disk-path", str(tmp_path), "--power-source", "hwmon",
                        "--hwmon-path", str(hwmon), "--power-interval-s", "0.1")
    agent.wait_up()
    try:
        asyncio.run(_scenario(tmp_path, agent.port, hwmon / "hwmon1" / "power1_input"))
    finally:
        agent.terminate()
    assert "RuntimeError" in caplog.text and "secret" not in caplog.text  # no credential logged


async def _scenario(tmp_path: Path, port: int, sensor: Path) -> None:
    watts_file = tmp_path / "plug-watts"
    watts_file.write_text("4.25")
    config_file = tmp_path / "master.yaml"
    config_file.write_text(
        "cluster: {clusters: [{domain: c1.test, prefix: 127.0.1, count: 2, type: rpi4b}]}\n"
        "poll_interval_s: 0.2\npoll_timeout_s: 1.0\nstore: ':memory:'\n"
        f"agents: {{{NAMES[0]}: '127.0.0.1:{port}', {NAMES[1]}: '127.0.0.1:9'}}\n")
    config = load_master_config(config_file)
    registry = Registry(config)
    plugged = registry.get(NAMES[1])
    assert plugged is not None
    plugged.node = dataclasses.replace(plugged.node, meter=MeterSpec("test-file", (("path", str(watts_file)),)))
    with open_store(config.store) as store:
        async with AgentClient(config.timeout_s) as client:
            poller = Poller(registry, store, client, 0.2, config.timeout_s)
            deadline = time.monotonic() + 10
            while len(store.power(NAMES[0])) < 2 and time.monotonic() < deadline:
                await poller.poll_once()
                await asyncio.sleep(0.15)
            sensor.write_text("3000000\n")
            watts_file.write_text("5.5")
            deadline = time.monotonic() + 10
            while (not store.power(NAMES[0]) or store.power(NAMES[0])[-1].watts != 3.0) \
                    and time.monotonic() < deadline:
                await poller.poll_once()
                await asyncio.sleep(0.15)
            await poller.poll_once()
            watts_file.write_text("not a number")
            failures = poller.meter_failures
            await poller.poll_once()
            assert poller.meter_failures == failures + 1  # a gap, not a made-up reading
            watts_file.write_text("crash")
            stored = len(store.history(NAMES[0]))
            await poller.poll_once()
            assert poller.meter_failures == failures + 2
            assert len(store.history(NAMES[0])) == stored + 1  # the round kept its samples
            doc = plugged.to_json()["power"]  # GET /api/v1/nodes: the dashboard's
            assert doc is not None and doc["power_w"] == 5.5 and doc["source"] == "test-file"
            app = web.Application()
            app[REGISTRY] = registry
            app[POLLER] = poller
            text = metrics_text(app)
        agent_side = store.power(NAMES[0])
        master_side = store.power(NAMES[1])
    assert {r.source for r in agent_side} == {"hwmon"}
    assert agent_side[0].watts == 2.5 and agent_side[-1].watts == 3.0
    times = [r.time_s for r in agent_side]
    assert times == sorted(times) and len(set(times)) == len(times)  # one row per reading
    assert {r.source for r in master_side} == {"test-file"}
    assert master_side[0].watts == 4.25 and master_side[-1].watts == 5.5
    rounds = poller.rounds  # poll_once(entries=None) counts rounds
    assert len(master_side) == rounds - 2  # every round but the failed ones
    assert poller.power_stored == len(agent_side) + len(master_side)
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    power = {labels["node"]: (labels["source"], v) for labels, v in samples["rpiaas_node_power_watts"]}
    assert power == {NAMES[0]: ("hwmon", 3.0), NAMES[1]: ("test-file", 5.5)}
    busy = dict((labels["node"], v) for labels, v in samples["rpiaas_node_cpu_busy_seconds_total"])
    assert set(busy) == {NAMES[0]} and busy[NAMES[0]] > 0  # the host's /proc/stat: not emulated
    assert samples["rpiaas_master_meter_failures_total"][0][1] == 2.0
