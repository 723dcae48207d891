"""SimEnvironment: callbacks at exact absolute times, in SimPy's own order, beside SimPy's processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import simpy
from simpy.core import EmptySchedule

from rpiaas.sim.environment import NORMAL, URGENT, SimEnvironment


def test_callbacks_run_at_exactly_their_time_urgent_first_then_in_order() -> None:
    env = SimEnvironment()
    seen: list[tuple[float, str]] = []
    t = 0.1 + 0.2  # now + (t - now) would not give back exactly this
    for name, prio in (("a", NORMAL), ("b", NORMAL), ("u", URGENT)):
        env.call_at(t, name, lambda due: seen.append((env.now, due.value)), prio)
    env.call_at(1e-9, "first", lambda due: seen.append((env.now, due.value)))

    def proc(env: SimEnvironment):  # type: ignore[no-untyped-def]
        yield env.timeout(0.25)
        seen.append((env.now, "process"))

    env.process(proc(env))
    env.run()
    assert seen == [(1e-9, "first"), (0.25, "process"), (t, "u"), (t, "a"), (t, "b")]
    assert seen[2][0] == 0.30000000000000004


def _twin(seen: list[tuple[float, str]]) -> SimEnvironment:
    """Callbacks, a process, and an event whose first callback stops the simulation."""
    env = SimEnvironment()
    for t, name in ((2.0, "b"), (1.0, "a"), (2.0, "c")):
        env.call_at(t, name, lambda due: seen.append((env.now, due.value)))

    def proc(env: SimEnvironment):  # type: ignore[no-untyped-def]
        yield env.timeout(1.5)
        seen.append((env.now, "process"))

    env.process(proc(env))
    stop = env.event()

    def stopping(ev: object) -> None:
        seen.append((env.now, "stop"))
        raise simpy.core.StopSimulation("stop")

    stop.callbacks.extend([stopping, lambda ev: seen.append((env.now, "after stop"))])
    stop.succeed()
    return env


def test_steps_is_simpys_step_repeated() -> None:
    """The same order, the same times, an event put back after a StopSimulation with its
    remaining callbacks and SimPy's priority, and EmptySchedule at the end."""
    runs: list[list[tuple[float, str]]] = []
    queues = []
    for by_steps in (False, True):
        seen: list[tuple[float, str]] = []
        env = _twin(seen)
        with pytest.raises(simpy.core.StopSimulation):
            if by_steps:
                env.steps(100)
            else:
                for _ in range(100):
                    env.step()
        queues.append([(t, p) for t, p, _, _ in sorted(env.heap)])
        with pytest.raises(EmptySchedule):
            if by_steps:
                env.steps(100)
            else:
                for _ in range(100):
                    env.step()
        runs.append(seen)
    assert runs[0] == runs[1] and queues[0] == queues[1]
    assert runs[0][:2] == [(0.0, "stop"), (0.0, "after stop")]


def test_the_simpy_it_relies_on_is_the_pinned_one() -> None:
    """SimEnvironment reads SimPy's private queue, counter and clock: the installed SimPy is
    of the pinned series and still has them, where its own step uses them."""
    import inspect
    import re

    import simpy
    import tomllib

    from rpiaas.sim.environment import SIMPY_PRIVATE_NAMES

    root = Path(__file__).resolve().parents[2]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(d for d in deps if d.startswith("simpy"))
    low, high = re.findall(r">=([\d.]+),<([\d.]+)", pin)[0]
    version = tuple(int(x) for x in simpy.__version__.split(".")[:2])
    assert tuple(map(int, low.split("."))) <= version < tuple(map(int, high.split("."))), pin
    step = inspect.getsource(simpy.Environment.step) + inspect.getsource(simpy.Environment.schedule)
    for name in SIMPY_PRIVATE_NAMES:
        assert f"self.{name}" in step, name
    event = simpy.Event(simpy.Environment()).succeed(1)
    assert {"_ok", "_value"} <= set(dir(event)) | set(vars(event))
