"""The master's use of its history store when the store is in trouble: it never blinds the master.

A store call blocks: on disk I/O, on another process's lock on the SQLite
file (SQLite's busy timeout), on a MongoDB server that does not answer.  So:

- :class:`StoreWriter` takes the poller's samples, state changes and power
  readings and writes them in its own thread.  A poll round waits for its
  write (so a healthy store has every round by the round's end), but never
  more than a second for one write and not at all while the store fails: a
  locked, read-only or full store never holds up polling.  What could not be written waits (in the
  store's bounded buffer, or here while a write is blocked; the oldest beyond
  ``max_pending`` samples are dropped and counted) and is written when the
  store recovers.
- :class:`StoreReader` runs the API's history reads in a few threads of its
  own, each bounded in time (``timeout_s``, 1 s): a read that fails or is late
  is a :class:`StoreUnavailable` with the reason, answered 503, never a 500
  nor a hang, and a blocked read holds none of the event loop's threads.
- :func:`store_health` is the ``store`` field of ``/api/v1/summary``,
  ``/api/v1/nodes`` and ``/healthz``: ``"ok"`` or ``"failing: <why>"``, with
  the counts of failed writes, samples waiting and samples dropped.

What the master shows of its nodes now (states, the newest sample, the
runs' tasks) is in its memory and never waits for the store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..store import HistoryStore, PowerReading, Sample
from ..store.base import failure_reason

__all__ = ["READ_TIMEOUT_S", "SLOW_WRITE_S", "StoreReader", "StoreUnavailable", "StoreWriter",
           "store_health"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# The longest a history read may take before the API answers 503.
READ_TIMEOUT_S = 1.0
# A write blocked this long makes the store "failing" before it fails (a lock held elsewhere).
SLOW_WRITE_S = 1.0

Change = tuple[str, float, bool, str]  # node, time_s, online, reason


class StoreUnavailable(Exception):
    """A history read the store could not answer in time, or that failed: ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreWriter:
    """Writes the poller's findings to ``store`` in a thread of its own, never holding up a round."""

    def __init__(self, store: HistoryStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self.samples_stored = 0  # samples handed to the store and written, since start
        self.power_stored = 0  # power readings written, since start
        self.dropped = 0  # samples dropped here while a write was blocked
        self._samples: list[Sample] = []
        self._changes: list[Change] = []
        self._power: list[PowerReading] = []
        self._task: asyncio.Task[None] | None = None
        self._since: float | None = None  # when the write under way began
        self._failing = False
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rpiaas-store-write")

    def submit(self, samples: list[Sample], changes: list[Change], power: list[PowerReading]) -> None:
        """Queue a round's findings and start a write unless one is under way."""
        self._samples += samples
        self._changes += changes
        self._power += power
        limit = self.store.max_pending
        for pending in (self._samples, self._power):
            over = len(pending) - limit
            if over > 0:  # the oldest go, as in the store's own buffer
                del pending[:over]
                self.dropped += over
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="rpiaas-store-write")

    async def settle(self, wait_s: float = SLOW_WRITE_S) -> None:
        """Wait for the write under way, as long as the store looks healthy: up to ``wait_s``
        for one write in all (a healthy store, even a slow one, is written by then), not at all
        while the store fails.  So a store in trouble delays at most one round, by ``wait_s``."""
        task = self._task
        if task is None or task.done() or self._failing:
            return
        wait = wait_s - self.blocked_s
        if wait > 0:
            await asyncio.wait({task}, timeout=wait)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._samples or self._changes or self._power:
            samples, changes, power = self._samples, self._changes, self._power
            self._samples, self._changes, self._power = [], [], []
            self._since = self.clock()
            try:
                left_changes, left_power, error = await loop.run_in_executor(
                    self._thread, self._write, samples, changes, power)
            finally:
                self._since = None
            # what failed goes back ahead of what came meanwhile, and waits for the next round
            self._changes[:0] = left_changes
            self._power[:0] = left_power
            self._note(error)
            if error is not None:
                return

    def _write(self, samples: list[Sample], changes: list[Change], power: list[PowerReading],
               ) -> tuple[list[Change], list[PowerReading], str | None]:
        """In the writer's thread: the samples into the store's buffer, then the state changes
        and power readings; what was not written and why."""
        error: str | None = None
        store = self.store
        before, dropped = store.pending, store.dropped
        try:
            store.add_samples(samples)  # buffered by the store if the write fails
            store.flush()
        except Exception as e:
            error = failure_reason(e)
        finally:  # written: what was buffered or came, less what is still buffered or was dropped
            self.samples_stored += before + len(samples) - (store.dropped - dropped) - store.pending
        for i, (name, at, online, reason) in enumerate(changes):
            try:
                self.store.record_state(name, at, online, reason)
            except Exception as e:
                return changes[i:], power, failure_reason(e)
        if power:
            try:
                self.store.add_power(power)
            except Exception as e:
                return [], power, failure_reason(e)
            self.power_stored += len(power)
        return [], [], error

    def _note(self, error: str | None) -> None:
        """Log the store's turns (one line each way, not one per round)."""
        if error is not None and not self._failing:
            log.warning("history store failing: %s; keeping up to %d samples in memory until it"
                        " recovers", error, self.store.max_pending)
        elif error is None and self._failing:
            log.info("history store recovered; the samples kept meanwhile are written")
        self._failing = error is not None

    @property
    def blocked_s(self) -> float:
        """How long the write under way has taken (0 if none)."""
        since = self._since
        return 0.0 if since is None else max(0.0, self.clock() - since)

    @property
    def waiting(self) -> int:
        """Samples not yet handed to the store (a write is blocked)."""
        return len(self._samples)

    async def close(self) -> None:
        """Write what waits, if the store lets it, then stop the thread."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            if self._samples or self._changes or self._power:
                self._task = asyncio.create_task(self._drain())
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._task, 10.0)
        self._thread.shutdown(wait=False)


class StoreReader:
    """History reads off the event loop, each answered or refused within ``timeout_s``."""

    def __init__(self, store: HistoryStore, timeout_s: float = READ_TIMEOUT_S, threads: int = 4) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.timeouts = 0  # reads that took too long, since start
        self._threads = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="rpiaas-store-read")

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` (a store query) in a reader thread; ValueError and TypeError
        (a bad argument) pass through, anything else is :class:`StoreUnavailable`."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, functools.partial(fn, *args, **kwargs))
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        except (asyncio.TimeoutError, TimeoutError):  # one class from Python 3.11 on
            self.timeouts += 1
            why = self.store.status
            raise StoreUnavailable(f"no answer in {self.timeout_s:g} s"
                                   + ("" if why == "ok" else f" ({why})")) from None
        except (ValueError, TypeError):
            raise
        except Exception as e:
            raise StoreUnavailable(failure_reason(e)) from None

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


def store_health(store: HistoryStore, writer: StoreWriter | None) -> dict[str, Any]:
    """The store's state as the API reports it: ``status`` (``ok`` / ``failing: <why>``),
    ``failed_writes``, ``pending_samples`` (kept until it can write) and ``dropped_samples``."""
    status = store.status
    blocked_s = writer.blocked_s if writer is not None else 0.0
    if status == "ok" and blocked_s >= SLOW_WRITE_S:
        status = f"failing: a write has waited {blocked_s:.0f} s (the store is locked or slow)"
    return {
        "status": status,
        "failed_writes": store.failed_writes,
        "pending_samples": store.pending + (writer.waiting if writer is not None else 0),
        "dropped_samples": store.dropped + (writer.dropped if writer is not None else 0),
    }
