"""Meter arithmetic: a live run's measured energy is the integral of its meter's power curve.

A scripted meter (``test-trace``, registered here: a test double of a meter
source, such as a PoE port whose power follows a trace) reads a known power
curve: piecewise linear, its changes on the meter's reading times, each
reading stamped with its own time.  The master's real poller reads it into a
real SQLite history, and a live run's result (``LiveResult``: rows, then
``run.json``) integrates it over the run's window.  The run's measured energy
must equal the curve's integral, worked out by hand, within 0.1 %; a stretch
where the meter fails is a gap in ``run.json``, not filled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rpiaas.core.control import ControlPlane
from rpiaas.core.energy import NodeUsage
from rpiaas.live import AgentClient
from rpiaas.live.clock import RunClock
from rpiaas.live.result import LiveResult
from rpiaas.master import Poller, Registry
from rpiaas.master.config import load_master_config
from rpiaas.model import MeterSpec, Node
from rpiaas.power import METERS, PowerError, Reading, register_meter
from rpiaas.rundir import RunWriter
from rpiaas.store import open_store

from ..helpers import cluster, scenario

pytestmark = pytest.mark.integration

DT_S = 0.1  # the meter's reading interval
NODE = "node1.c.test"


def trace_w(k: int) -> float:
    """The curve at reading ``k``: 2 W, a ramp to 6 W over readings 10-20, 6 W, a drop to
    3 W between readings 30 and 31, 3 W.  Straight between readings: the readings are the curve."""
    if k <= 10:
        return 2.0
    if k <= 20:
        return 2.0 + 0.4 * (k - 10)
    return 6.0 if k <= 30 else 3.0


def curve_energy_j(a_s: float, b_s: float, t0: float) -> float:
    """The curve's integral from ``a_s`` to ``b_s`` (unix seconds), by its pieces, worked out
    by hand: the linear interpolation of ``trace_w`` between reading times ``t0 + k * DT_S``."""
    total, step = 0.0, 1e-4  # fine midpoint sums of a piecewise-linear curve: exact to 1e-8
    n = round((b_s - a_s) / step)
    for j in range(n):
        t = a_s + (j + 0.5) * (b_s - a_s) / n
        x = (t - t0) / DT_S
        k = int(np.floor(x))
        total += (trace_w(k) + (trace_w(k + 1) - trace_w(k)) * (x - k)) * (b_s - a_s) / n
    return total


class TraceMeter:
    """Reading ``k`` is ``trace_w(k)`` at ``t0 + k * DT_S``; reads ``failing`` raise."""

    name = "test-trace"
    t0 = 0.0
    failing: range = range(0)

    def __init__(self, node: Node, spec: MeterSpec) -> None:
        self.k = 0

    async def read(self) -> Reading:
        k = self.k
        self.k += 1
        if k in TraceMeter.failing:
            raise PowerError("test-trace: no answer (scripted)")
        return Reading(TraceMeter.t0 + k * DT_S, trace_w(k))


@pytest.fixture
def trace_meter() -> Iterator[type[TraceMeter]]:
    register_meter("test-trace")(TraceMeter)
    yield TraceMeter
    METERS.pop("test-trace", None)


def _run(tmp_path: Path, failing: range) -> tuple[dict[str, object], float, float, float]:
    """Poll the meter 45 times into a history while a one-node live result writes its rows;
    the run's record, the meter's t0 and the run's window (unix seconds)."""
    TraceMeter.failing = failing
    sc = scenario({"name": "metered", "cluster": cluster(1), "sample_interval_s": 0.5,
                   "workload": {"tasks": [{"arrival_s": 0, "cores": 1, "mem_mb": 64,
                                           "work_core_s": 1}]}, "policy": "first_fit"})
    config_file = tmp_path / "master.yaml"
    config_file.write_text("cluster: {clusters: [{domain: c.test, prefix: 10.0.1,"
                           " count: 1, type: rpi4b}]}\nstore: ':memory:'\n"
                           f"agents: {{{NODE}: '127.0.0.1:9'}}\n")
    registry = Registry(load_master_config(config_file))
    entry = registry.get(NODE)
    assert entry is not None
    entry.node = dataclasses.replace(entry.node, meter=MeterSpec("test-trace"))
    store = open_store(str(tmp_path / "history.db"))
    writer = RunWriter(tmp_path / "result")
    writer.node_names = [n.name for n in sc.cluster.nodes]
    control = ControlPlane(sc.cluster.nodes, sc.policies(np.random.default_rng(0)))
    usage = NodeUsage(control, measured=True)
    clock = RunClock(1.0)

    async def go() -> tuple[dict[str, object], float, float]:
        TraceMeter.t0 = time.time() - 0.5  # the meter's clock: readings before the run too
        clock.t0 = TraceMeter.t0 + 0.73  # the run starts between two readings ...
        end = 3.46  # ... and ends between two others (scenario seconds)
        result = LiveResult(sc, writer, usage, control, store, clock)
        # the node as a cluster file with `meter: {source: test-trace}` gives it
        result.nodes = tuple(dataclasses.replace(n, meter=MeterSpec("test-trace")) for n in result.nodes)
        result.metered = [True]
        async with AgentClient(0.2) as client:
            poller = Poller(registry, store, client, DT_S, 0.2)
            for _ in range(45):  # readings 0-44: to 4.4 s on the meter's clock, past the end
                await poller.poll_once()
                now = clock.now()
                if now >= 0 and result.next_sample_s <= min(now, end):
                    result.write(result.next_sample_s, await asyncio.to_thread(result.read))
                await asyncio.sleep(0.01)
        await result.last_row(end)
        usage.close(end)
        path = await result.commit(end, {"run": "metered"}, {})
        return json.loads((path / "run.json").read_text()), clock.t0, clock.wall(end)

    try:
        record, a, b = asyncio.run(go())
    finally:
        store.close()
    return record, TraceMeter.t0, a, b


def test_measured_energy_is_the_meters_integral(tmp_path: Path, trace_meter: object) -> None:
    record, t0, a, b = _run(tmp_path, range(0))
    node = record["nodes"][0]  # type: ignore[index]
    truth = curve_energy_j(a, b, t0)
    print(f"\nmeasured {node['energy_j']:.9f} J, the curve's integral {truth:.9f} J")
    assert node["energy_source"] == "measured"
    assert node["energy_j"] == pytest.approx(truth, rel=1e-3)
    assert record["sources"]["energy_j"] == "measured"  # type: ignore[index]
    assert record["gaps"] == []
    assert record["summary"]["energy_j"] == pytest.approx(truth, rel=1e-3)  # type: ignore[index]
    rows = (tmp_path / "result" / "nodes.csv").read_text().splitlines()
    assert float(rows[-1].split(",")[7]) == pytest.approx(truth, rel=1e-3)  # the last row's energy


def test_a_meter_that_fails_leaves_a_gap_in_the_record(tmp_path: Path, trace_meter: object) -> None:
    record, t0, a, b = _run(tmp_path, range(15, 25))  # no readings 15-24: 1.5 s to 2.5 s
    node = record["nodes"][0]  # type: ignore[index]
    gaps = record["gaps"]
    assert isinstance(gaps, list) and len(gaps) == 1 and gaps[0]["node"] == NODE
    # from reading 14 to reading 25 on the meter's clock, in the run's seconds
    assert gaps[0]["start_s"] == pytest.approx(t0 + 1.4 - a, abs=1e-6)
    assert gaps[0]["end_s"] == pytest.approx(t0 + 2.5 - a, abs=1e-6)
    left = curve_energy_j(a, t0 + 1.4, t0) + curve_energy_j(t0 + 2.5, b, t0)
    assert node["energy_j"] == pytest.approx(left, rel=1e-3)  # the gap is not filled
    assert node["metered_s"] == pytest.approx(b - a - 1.1, abs=1e-6)


@pytest.mark.parametrize("failing", [range(1000), range(7, 1000)], ids=["never", "only-before"])
def test_a_meter_that_never_answers_is_one_gap_and_the_model_stands_in(
        tmp_path: Path, trace_meter: object, failing: range) -> None:
    """No reading at all, or readings that stop before the run starts (reading 7 is at 0.7 s,
    the run starts at 0.73 s): the whole run is a gap, and the model stands in, labelled so."""
    record, _, _, _ = _run(tmp_path, failing)
    node = record["nodes"][0]  # type: ignore[index]
    assert node["energy_source"] == "modelled-from-measured" and "metered_s" not in node
    assert record["sources"]["energy_j"] == "modelled-from-measured"  # type: ignore[index]
    assert record["gaps"] == [{"node": NODE, "start_s": 0.0, "end_s": 3.46, "duration_s": 3.46}]
