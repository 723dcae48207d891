"""The shell base: one dispatch of actions; NodeUsage integrates energy and busy time exactly."""

from __future__ import annotations

import pytest

from rpiaas.core.energy import STATE_NAMES
from rpiaas.core.events import (
    Kill,
    Migrate,
    PowerOff,
    PowerOn,
    Reject,
    Start,
    WakeAt,
)
from rpiaas.core.shell import Shell
from rpiaas.model import Task
from rpiaas.scenario import rng_streams


class Recorder(Shell):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, float]] = []

    def start(self, action: Start, now: float) -> None:
        self.seen.append(("start", now))

    def migrate(self, action: Migrate, now: float) -> None:
        self.seen.append(("migrate", now))

    def power_on(self, action: PowerOn, now: float) -> None:
        self.seen.append(("power_on", now))

    def wake_at(self, action: WakeAt, now: float) -> None:
        self.seen.append(("wake_at", action.time_s))


def test_every_action_goes_to_its_method_in_order() -> None:
    t = Task(1, 0.0, 1, 10, 1.0)
    shell = Recorder()
    shell.carry_out([Start(t, 0), Reject(t, "x"), WakeAt(9.0), Kill(t), Migrate(t, 1, 0),
                     PowerOn(2), PowerOff(3)], 4.0)
    assert shell.seen == [("start", 4.0), ("wake_at", 9.0), ("migrate", 4.0), ("power_on", 4.0)]
    with pytest.raises(NotImplementedError):
        Shell().carry_out([Start(t, 0)], 0.0)


def test_states_and_streams() -> None:
    assert STATE_NAMES == {0: "off", 1: "booting", 2: "on", 3: "down"}
    a, b = rng_streams(5), rng_streams(5)
    assert a["workload"].random() == b["workload"].random()
    assert rng_streams(5)["workload"].random() != rng_streams(5)["policy"].random()
