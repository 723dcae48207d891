"""The live run's power calls (``PowerSwitch``) on real processes through the ``process`` driver:
boots reported and not, a driver that fails, a node that still runs a task."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from rpiaas.core.events import Event, NodeBooted, NodeDown
from rpiaas.live.clock import RunClock
from rpiaas.live.switching import PowerSwitch
from rpiaas.master.registry import NodeEntry
from rpiaas.model import PROFILES, Node, PowerSpec
from rpiaas.power import driver_for
from rpiaas.power.drivers.process import running_pid, write_command
from rpiaas.store import open_store

pytestmark = pytest.mark.integration

NAME = "n1.t.test"


class Bench:
    """One node switched by the process driver, the events the run would get, the store."""

    def __init__(self, tmp_path: Path, argv: list[str]) -> None:
        self.state_dir = tmp_path / "power"
        write_command(self.state_dir, NAME, argv, tmp_path, tmp_path / "n1.log", {"PATH": "/usr/bin:/bin"})
        node = Node(0, "n1", "t.test", PROFILES["rpi4b"], "127.0.1.1",
                    power=PowerSpec("process", (("state_dir", str(self.state_dir)),)))
        self.entry = NodeEntry(node, "127.0.0.1", 1, online=True)
        self.store = open_store(str(tmp_path / "h.db"))
        self.clock = RunClock(1.0)
        self.clock.t0 = time.time()
        self.events: list[tuple[float, Event]] = []
        self.notes: list[dict[str, Any]] = []
        self.jobs: list[asyncio.Task[None]] = []
        self.held: dict[int, bool | None] = {}
        self.running: list[dict[str, Any]] = []
        self.switch = PowerSwitch([self.entry], [driver_for(node)], self.store, self.clock,
                                  lambda t, e: self.events.append((t, e)), self.spawn,
                                  self.agent_tasks, lambda line: self.notes.append(json.loads(line)),
                                  lambda n: self.held.__setitem__(n, None),
                                  lambda n, up: self.held.__setitem__(n, up))
        self.switch.retry_delay_s = 0.01

    def spawn(self, call: Coroutine[Any, Any, None]) -> None:
        self.jobs.append(asyncio.ensure_future(call))

    async def agent_tasks(self, base_url: str) -> list[dict[str, Any]]:
        return self.running  # what the node's agent answers to GET /tasks

    async def settle(self) -> None:
        while not all(j.done() for j in self.jobs):
            await asyncio.sleep(0.02)
        for j in self.jobs:
            j.result()  # no job ends in an exception

    def kinds(self) -> list[str]:
        return [e.kind for e in self.store.events(NAME)]


def test_a_reported_boot_is_measured_and_booted_at_the_report(tmp_path: Path) -> None:
    bench = Bench(tmp_path, ["sleep", "30"])
    on_s = 0.0

    async def go() -> None:
        nonlocal on_s
        on_s = bench.clock.now()
        bench.switch.on(0, on_s)
        await asyncio.sleep(0.3)
        assert bench.entry.power_state == "booting" and bench.held == {0: None}
        assert running_pid(bench.state_dir, NAME) is not None
        reported = time.time()
        assert bench.switch.booted(0, reported)
        assert not bench.switch.booted(0, reported)  # a second report: not waited for
        await bench.settle()
        bench.switch.off(0)
        await bench.settle()

    asyncio.run(go())
    (at, ev), = bench.events
    assert isinstance(ev, NodeBooted) and 0.2 < at < 2
    (name, boot_s), = bench.switch.boots
    assert name == NAME and boot_s == pytest.approx(at - on_s, abs=1e-9)
    assert bench.entry.power_state == "off" and bench.switch.switched_off == 1
    assert running_pid(bench.state_dir, NAME) is None
    assert bench.kinds() == ["power_on", "power_off"] and not bench.notes


def test_a_driver_that_fails_is_retried_then_the_node_is_down(tmp_path: Path) -> None:
    bench = Bench(tmp_path, [str(tmp_path / "no-such-agent")])

    async def go() -> None:
        bench.switch.on(0, 0.0)
        await bench.settle()

    asyncio.run(go())  # no exception: the run goes on
    (_, ev), = bench.events
    assert isinstance(ev, NodeDown) and ev.reason.startswith(f"power on failed: {NAME}: ")
    assert bench.entry.power_state == "failed" and bench.held == {0: False}
    errors = [e for e in bench.store.events(NAME) if e.kind == "power_error"]
    assert len(errors) == 4  # three tries that will be retried, then the last one
    assert [e.data["state"] for e in errors] == ["unknown"] * 3 + ["failed"]
    assert "(after 4 tries)" in errors[-1].data["error"]
    assert [n["power"] for n in bench.notes] == ["error"] * 4
    assert all(n["node"] == NAME and n["action"] == "on" for n in bench.notes)


def test_a_node_that_never_reports_its_boot_is_taken_as_down(tmp_path: Path) -> None:
    bench = Bench(tmp_path, ["sleep", "30"])
    bench.switch.boot_timeout_s = 0.5

    async def go() -> None:
        bench.switch.on(0, 0.0)
        await bench.settle()
        bench.switch.off(0)
        await bench.settle()

    asyncio.run(go())
    (_, ev), = bench.events
    assert isinstance(ev, NodeDown) and ev.reason == "no boot report within 0.5 s"
    assert not bench.switch.boots
    assert bench.notes[0]["state"] == "unknown"
    assert running_pid(bench.state_dir, NAME) is None


def test_a_node_whose_agent_still_runs_a_task_stays_on(tmp_path: Path) -> None:
    bench = Bench(tmp_path, ["sleep", "30"])
    bench.running = [{"id": "other-run-7", "state": "running"}]

    async def go() -> None:
        bench.switch.on(0, 0.0)
        await asyncio.sleep(0.2)
        bench.switch.booted(0, time.time())
        await bench.settle()
        bench.switch.off(0)
        await bench.settle()

    asyncio.run(go())
    assert running_pid(bench.state_dir, NAME) is not None  # still on
    assert bench.entry.power_state == "on" and bench.switch.switched_off == 0
    assert bench.notes[-1]["action"] == "off" and "runs 1 task" in bench.notes[-1]["error"]
    bench.running = []
    asyncio.run(bench.switch.drivers[0].off())  # type: ignore[union-attr]
