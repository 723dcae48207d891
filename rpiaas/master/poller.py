"""The poller: asks every agent for ``/info`` at an interval, concurrently, and keeps what it learns.

A round polls all nodes at once, each with its own timeout, so a slow or dead
node delays nobody.  A node turns offline at its second failed poll in a row (``offline_after``:
one late answer from a busy node is not a node lost), online at a good one;
each change is recorded in the store with its reason, and the round's
samples are written in one batch (store calls block: they run in a thread).
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
from ..store import HistoryStore, Sample
from .registry import NodeEntry, Registry

__all__ = ["LatencyStats", "Poller", "sample_from_info"]

log = logging.getLogger(__name__)

_MIB = 1024 * 1024


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
    )


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
        self.samples_stored = 0  # since start (a counter for /metrics)
        self._task: asyncio.Task[None] | None = None

    async def poll_node(self, entry: NodeEntry) -> tuple[NodeEntry, dict[str, Any] | None, str]:
        """One node's report, or None and why not; never raises, never outlasts the timeout."""
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
        node_time_s = info.get("time_s")
        if isinstance(node_time_s, (int, float)) and math.isfinite(node_time_s):
            entry.observe_clock(float(node_time_s), sent_s, received_s)
        return entry, info, ""

    async def poll_once(self, entries: Sequence[NodeEntry] | None = None) -> None:
        """One round: poll every node (or just ``entries``) at once, then record states and samples."""
        t0 = asyncio.get_running_loop().time()
        todo = list(self.registry) if entries is None else entries
        results = await asyncio.gather(*(self.poll_node(e) for e in todo))
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
            if info is not None:
                entry.emulated = info.get("emulated") is True
            if entry.set_online(online, now, reason, self.misses):
                changes.append((entry.name, online, reason if not online else "poll answered"))
                log.info("%s is %s%s", entry.name, "online" if online else "offline",
                         "" if online else f": {reason}")
        await asyncio.to_thread(self._write, now, samples, changes)
        if entries is None:
            self.rounds += 1
            self.latency.last_round_s = asyncio.get_running_loop().time() - t0

    def _write(self, now: float, samples: list[Sample], changes: list[tuple[str, bool, str]]) -> None:
        for name, online, reason in changes:
            self.store.record_state(name, now, online, reason)
        if samples:
            self.store.add_samples(samples)
        self.store.flush()
        self.samples_stored += len(samples)

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
