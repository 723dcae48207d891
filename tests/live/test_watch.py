"""The run's view of its nodes: a node the run could not reach is down until the poller hears
from it after that."""

from __future__ import annotations

from dataclasses import dataclass, field

from rpiaas.core.events import Event, NodeDown, NodeUp
from rpiaas.live.clock import RunClock
from rpiaas.live.watch import NodeWatch
from rpiaas.store import Sample


@dataclass
class _Entry:
    """What the watch reads of a registry entry."""

    name: str
    online: bool | None = True
    reason: str = ""
    sample: Sample | None = field(default=None)


def _sample(name: str, time_s: float) -> Sample:
    return Sample(node=name, time_s=time_s, cpu_util=0.1, mem_used_mb=100.0, mem_total_mb=1000.0,
                  load1=0.1, disk_used_ratio=0.2)


def _watch(entries: list[_Entry], now: list[float]) -> tuple[NodeWatch, list[tuple[float, Event]]]:
    seen: list[tuple[float, Event]] = []
    clock = RunClock(1.0, lambda: now[0])
    clock.t0 = 1000.0
    return NodeWatch(entries, clock, lambda at, ev: seen.append((at, ev))), seen  # type: ignore[arg-type]


def test_an_unreachable_node_is_down_until_the_poller_hears_from_it_afterwards() -> None:
    now = [1010.0]
    entry = _Entry("a", sample=_sample("a", 1009.0))
    watch, seen = _watch([entry], now)
    watch.look()
    assert seen == []
    watch.unreachable(0, 10.0, "unreachable: refused")
    watch.unreachable(0, 10.0, "unreachable: refused")  # once: it is down already
    assert seen == [(10.0, NodeDown(0, "unreachable: refused"))]
    now[0] = 1010.5
    watch.look()  # the poller still holds it online, from an answer before: still down
    assert len(seen) == 1
    entry.sample = _sample("a", 1011.0)  # an answer from after: up again
    now[0] = 1011.5
    watch.look()
    assert seen[1:] == [(11.5, NodeUp(0))]


def test_an_unreachable_node_the_poller_then_finds_offline_comes_back_as_any_other() -> None:
    now = [1010.0]
    entry = _Entry("a", sample=_sample("a", 1009.0))
    watch, seen = _watch([entry], now)
    watch.unreachable(0, 10.0, "unreachable: refused")
    entry.online, entry.reason = False, "no answer"
    watch.look()
    assert len(seen) == 1  # no second NodeDown
    entry.online, entry.sample = True, _sample("a", 1020.0)
    now[0] = 1020.0
    watch.look()
    assert seen[1:] == [(20.0, NodeUp(0))]
