"""The poller: asks every agent for ``/info`` at an interval, concurrently, and keeps what it learns.

Each round also reads the power of every node that has a meter: the reading
its agent made (``power`` in ``/info``: an ``hwmon`` or ``pmic`` source on the
node, its time taken onto the master's clock) or the node's master-side meter
(:func:`rpiaas.power.meter_for`: a PoE port, a smart plug, a Prometheus
query), read at the same time as the agents are polled.  Readings go to the
history store's power table; a meter that fails leaves a gap (logged, and
counted in ``meter_failures``), never a made-up value.

A round polls all nodes, at most :data:`MAX_IN_FLIGHT` at a time (bounded
concurrency: a thousand nodes are a thousand requests a round, and a
thousand at once would spend their timeouts queued behind each other), each
with its own timeout from when its request is sent, so a slow or dead node
delays nobody by more than that timeout over :data:`MAX_IN_FLIGHT`.  A round
of more than :data:`MAX_IN_FLIGHT` nodes is paced: node ``i`` is sent at
``i × PACE_SHARE × interval_s / N`` into the round, so its requests (and the
agents' answers, and the round's CPU) are spread over the first part of the
interval instead of a burst that task starts would wait behind.  A late
round starts the next at once, so each node is read once a round: its *poll
age* (the seconds since its agent's last answer, :meth:`Poller.poll_ages`)
stays within about two rounds.  A node turns offline at its second failed poll in a row (``offline_after``:
one late answer from a busy node is not a node lost), online at a good one;
each change is recorded in the store with its reason, and the round's
samples are written in one batch (store calls block: they run in the
:class:`~rpiaas.master.storeaccess.StoreWriter`'s thread, and a store in
trouble never holds up a round: what it could not write waits in memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ..live.agent_client import AgentClient, AgentError
from ..power import Meter, PowerError, meter_for
from ..store import HistoryStore, PowerReading, Sample
from .registry import NodeEntry, Registry
from .storeaccess import StoreWriter

__all__ = ["MAX_IN_FLIGHT", "LatencyStats", "Poller", "power_from_info", "sample_from_info"]

log = logging.getLogger(__name__)

_MIB = 1024 * 1024
MAX_IN_FLIGHT = 128  # polls of one round in flight at once
PACE_SHARE = 0.5  # a paced round sends its polls over this share of the interval


def _ratio(value: Any) -> float:
    """A fraction clamped into [0, 1]; 0 for a missing reading."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return 0.0
    return min(1.0, max(0.0, float(value)))


def sample_from_info(node: str, time_s: float, info: dict[str, Any]) -> Sample:
    """A store :class:`~rpiaas.store.Sample` from an agent's ``/info`` report.

    Readings the agent lacks (CPU usage before its first sample, the disk when
    it does not answer) count as 0; temperature stays None.
    """
    cpu = info.get("cpu") or {}
    mem = info.get("memory") or {}
    disk = info.get("disk") or {}
    load = info.get("load") or {}
    per_core = cpu.get("usage_ratio")
    temp = cpu.get("temperature_c")
    load1 = load.get("1m")
    busy = cpu.get("busy_s")
    return Sample(
        node=node,
        time_s=time_s,
        cpu_util=_ratio(cpu.get("usage_ratio_mean")),
        mem_used_mb=max(0.0, float(mem.get("used_bytes") or 0)) / _MIB,
        mem_total_mb=max(0.0, float(mem.get("total_bytes") or 0)) / _MIB,
        load1=max(0.0, float(load1)) if isinstance(load1, (int, float)) else 0.0,
        disk_used_ratio=_ratio(disk.get("used_ratio")),
        temperature_c=float(temp) if isinstance(temp, (int, float)) else None,
        cpu_per_core=tuple(_ratio(u) for u in per_core) if isinstance(per_core, list) else None,
        cpu_busy_s=float(busy) if isinstance(busy, (int, float)) and not isinstance(busy, bool)
        and math.isfinite(busy) and busy >= 0 else None,
    )


def power_from_info(entry: NodeEntry, info: dict[str, Any]) -> PowerReading | None:
    """The power reading in an agent's ``/info`` (``hwmon`` or ``pmic``), its time on the
    master's clock, or None: no reading, or the one already taken (same time)."""
    power = info.get("power")
    if not isinstance(power, dict):
        return None
    watts, at, source = power.get("power_w"), power.get("time_s"), power.get("source")
    if not (isinstance(watts, (int, float)) and isinstance(at, (int, float))
            and isinstance(source, str) and source and math.isfinite(watts) and math.isfinite(at)):
        return None
    if entry.power_node_time_s == float(at):  # the reading already taken, on the node's clock
        return None
    entry.power_node_time_s = float(at)
    return PowerReading(entry.name, max(0.0, entry.node_to_local(float(at))), float(watts), source)


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values, nearest rank."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class LatencyStats:
    """Latencies of the last ``window`` answered polls, with counts of every poll since start."""

    def __init__(self, window: int = 10_000) -> None:
        self.latencies_s: deque[float] = deque(maxlen=window)
        self.answered = 0
        self.failed = 0
        self.total_s = 0.0  # latency summed over every answered poll
        self.last_round_s: float | None = None

    def add(self, latency_s: float | None) -> None:
        """One poll: its latency, or None if it failed."""
        if latency_s is None:
            self.failed += 1
        else:
            self.answered += 1
            self.total_s += latency_s
            self.latencies_s.append(latency_s)

    def to_json(self) -> dict[str, float | int | None]:
        ordered = sorted(self.latencies_s)
        return {
            "answered": self.answered,
            "failed": self.failed,
            "window": len(ordered),
            "p50_s": _quantile(ordered, 0.5) if ordered else None,
            "p99_s": _quantile(ordered, 0.99) if ordered else None,
            "max_s": ordered[-1] if ordered else None,
            "last_round_s": self.last_round_s,
        }


class Poller:
    """Polls the registry's agents every ``interval_s`` seconds into ``store``."""

    def __init__(self, registry: Registry, store: HistoryStore, client: AgentClient,
                 interval_s: float = 10.0, timeout_s: float = 3.0,
                 clock: Callable[[], float] = time.time, misses: int = 2) -> None:
        self.registry = registry
        self.store = store
        self.client = client
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.misses = misses  # failed polls in a row that turn an online node offline
        self.clock = clock
        self.rounds = 0
        self.latency = LatencyStats()
        self.writer = StoreWriter(store)
        self.meter_failures = 0  # master-side meter reads that failed, since start
        self._meters: dict[str, Meter | None] = {}  # node -> its master-side meter, built once
        self._task: asyncio.Task[None] | None = None
        self.answered_s: dict[str, float] = {}  # node -> when its agent last answered (unix s)
        self._slots: asyncio.Semaphore | None = None  # MAX_IN_FLIGHT, made in the running loop

    def poll_ages(self, now_s: float | None = None) -> dict[str, float | int | None]:
        """Seconds since each polled node's agent last answered: ``p50_s``, ``p99_s``, ``max_s``
        over the nodes that answered at least once (``nodes``)."""
        now_s = self.clock() if now_s is None else now_s
        ages = sorted(max(0.0, now_s - t) for t in self.answered_s.values())
        return {"nodes": len(ages),
                "p50_s": round(_quantile(ages, 0.5), 3) if ages else None,
                "p99_s": round(_quantile(ages, 0.99), 3) if ages else None,
                "max_s": round(ages[-1], 3) if ages else None}

    async def poll_node(self, entry: NodeEntry) -> tuple[NodeEntry, dict[str, Any] | None, str]:
        """One node's report, or None and why not; never raises; once sent (at most
        :data:`MAX_IN_FLIGHT` are at once), never outlasts the timeout."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        async with self._slots:
            return await self._poll_node(entry)

    async def _poll_node(self, entry: NodeEntry) -> tuple[NodeEntry, dict[str, Any] | None, str]:
        loop = asyncio.get_running_loop()
        t0, sent_s = loop.time(), time.time()
        try:
            info = await asyncio.wait_for(self.client.info(entry.base_url), self.timeout_s)
        except AgentError as e:
            self.latency.add(None)
            return entry, None, str(e)
        except TimeoutError:
            self.latency.add(None)
            return entry, None, f"{entry.base_url}/info: no answer in {self.timeout_s:g} s"
        received_s = time.time()
        self.latency.add(loop.time() - t0)
        self.answered_s[entry.name] = received_s
        node_time_s = info.get("time_s")
        if isinstance(node_time_s, (int, float)) and math.isfinite(node_time_s):
            entry.observe_clock(float(node_time_s), sent_s, received_s)
        return entry, info, ""

    def meter(self, entry: NodeEntry) -> Meter | None:
        """The node's master-side meter (None: none, or one its agent reads), built once."""
        name = entry.name
        if name not in self._meters:
            try:
                self._meters[name] = meter_for(entry.node)
            except PowerError as e:
                log.error("%s: no power readings: %s", name, e)
                self._meters[name] = None
        return self._meters[name]

    async def read_meter(self, entry: NodeEntry, meter: Meter) -> PowerReading | None:
        """One reading of a master-side meter, or None (logged) if it fails or is late."""
        try:
            got = await asyncio.wait_for(meter.read(), self.timeout_s)
        except PowerError as e:
            self.meter_failures += 1
            log.warning("%s: power meter: %s", entry.name, e)
            return None
        except (asyncio.TimeoutError, TimeoutError):  # one class from Python 3.11 on
            self.meter_failures += 1
            log.warning("%s: power meter %s: no reading in %g s", entry.name, meter.name,
                        self.timeout_s)
            return None
        except Exception as e:  # a meter's own bug must not cost the round its samples
            self.meter_failures += 1
            log.error("%s: power meter %s failed: %s", entry.name, meter.name,
                      type(e).__name__)
            return None
        try:
            return PowerReading(entry.name, got.time_s, got.watts, meter.name)
        except (ValueError, TypeError) as e:
            self.meter_failures += 1
            log.warning("%s: power meter %s: bad reading: %s", entry.name, meter.name, e)
            return None

    async def poll_once(self, entries: Sequence[NodeEntry] | None = None) -> None:
        """One round: poll every node (or just ``entries``) and read the master-side meters at
        once, then record states, samples and power readings."""
        t0 = asyncio.get_running_loop().time()
        begun = self.clock()
        todo = list(self.registry) if entries is None else entries
        metered = [(e, m) for e in todo if (m := self.meter(e)) is not None]
        spacing_s = PACE_SHARE * self.interval_s / len(todo) \
            if entries is None and len(todo) > MAX_IN_FLIGHT else 0.0

        async def paced(i: int, entry: NodeEntry) -> tuple[NodeEntry, dict[str, Any] | None, str]:
            if spacing_s:
                await asyncio.sleep(i * spacing_s)
            return await self.poll_node(entry)

        results, readings = await asyncio.gather(
            asyncio.gather(*(paced(i, e) for i, e in enumerate(todo))),
            asyncio.gather(*(self.read_meter(e, m) for e, m in metered)))
        power = [r for r in readings if r is not None]
        now = self.clock()
        samples: list[Sample] = []
        changes: list[tuple[str, bool, str]] = []
        for entry, info, reason in results:
            if info is not None:
                try:
                    sample = sample_from_info(entry.name, now, info)
                    samples.append(sample)
                    entry.sample = sample
                except (ValueError, TypeError) as e:
                    info, reason = None, f"bad report: {e}"
            online = info is not None
            if not online and entry.online is True and entry.changed_s is not None \
                    and entry.changed_s > begun:
                continue  # it came online (its boot report) after this poll was sent
            if info is not None:
                entry.emulated = info.get("emulated") is True
                tasks = info.get("tasks")
                runner = tasks.get("runner") if isinstance(tasks, dict) else None
                entry.task_runner = runner if isinstance(runner, str) and runner else "process"
                reading = power_from_info(entry, info)
                if reading is not None:
                    power.append(reading)
            if entry.set_online(online, now, reason, self.misses):
                changes.append((entry.name, online, reason if not online else "poll answered"))
                log.info("%s is %s%s", entry.name, "online" if online else "offline",
                         "" if online else f": {reason}")
        by_name = {e.name: e for e in todo}
        for reading in power:
            by_name[reading.node].power = reading
        self.writer.submit(samples, [(name, now, online, why) for name, online, why in changes], power)
        # a healthy store is written before the round ends; one in trouble never holds it up
        await self.writer.settle()
        if entries is None:
            self.rounds += 1
            self.latency.last_round_s = asyncio.get_running_loop().time() - t0

    @property
    def samples_stored(self) -> int:
        """Samples written to the history since start (a counter for /metrics)."""
        return self.writer.samples_stored

    @property
    def power_stored(self) -> int:
        """Power readings written to the history since start."""
        return self.writer.power_stored

    async def run(self) -> None:
        """Poll until cancelled, one round every ``interval_s`` (a late round starts at once)."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup must not stop the master from polling
                log.exception("poll round failed")
            next_at = max(next_at + self.interval_s, loop.time())
            await asyncio.sleep(next_at - loop.time())

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="rpiaas-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.writer.close()
