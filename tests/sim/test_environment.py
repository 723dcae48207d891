"""SimEnvironment: callbacks at exact absolute times, in SimPy's own order, beside SimPy's processes."""

from __future__ import annotations

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
