"""The history store interface: what the master keeps of its nodes over time.

:class:`HistoryStore` is the one interface; :class:`~rpiaas.store.sqlite.SQLiteStore`
(a file, the default) and :class:`~rpiaas.store.mongodb.MongoStore` implement
it, and one contract test suite (``tests/store/test_contract.py``) holds both
to the same behaviour.  The public methods live here, with their docs; the
backends fill in the ``_``-prefixed abstract methods.

Writes of samples are **batched**: :meth:`HistoryStore.add_samples` appends to
an in-memory buffer, written in one transaction once it holds ``batch_size``
samples or its oldest sample has waited ``flush_interval_s`` (checked on each
add: there is no timer thread), on :meth:`~HistoryStore.flush`, on
:meth:`~HistoryStore.close`, and before any query, so a query sees every
sample added before it.  Once ``flush()`` has returned, the samples survive
the process being killed.  State changes and events are written at once.

A store **in trouble** (its file locked by another process, read-only, on a
full disk; its server gone) keeps what it could not write: the buffer holds at
most ``max_pending`` samples (beyond that the oldest are dropped and counted
in :attr:`~HistoryStore.dropped`), and they are written at the next flush that
succeeds.  :attr:`~HistoryStore.status` says ``"ok"`` or ``"failing: <why>"``,
:attr:`~HistoryStore.failed_writes` counts the writes that failed, and a query
while writes fail answers from what was written before (it does not fail
because the flush before it did).

Every call **blocks** (disk or network I/O).  The store is thread-safe: each
public method holds one lock, so an asyncio application runs calls in a
worker thread (``await asyncio.to_thread(store.add_samples, batch)``) and
never blocks its event loop; calls from several threads are serialised.
"""

from __future__ import annotations

import abc
import contextlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from .buckets import bucket_sample, check_resolution, core_means
from .records import CompactResult, Event, NodeStatus, PowerReading, PurgeResult, Sample, StateChange

__all__ = ["DEFAULT_MAX_PENDING", "HistoryStore", "PartialWrite", "StoreClosedError"]

_URL_USER = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")

# Samples kept while the store cannot write: at 1,000 nodes polled every 10 s, 100 rounds.
DEFAULT_MAX_PENDING = 100_000

_Store = TypeVar("_Store", bound="HistoryStore")


class StoreClosedError(RuntimeError):
    """The store was used after :meth:`HistoryStore.close`."""


class PartialWrite(Exception):
    """Raised by a backend's ``_write_samples`` when only the first ``written``
    samples of the batch were stored (chained to the real error)."""

    def __init__(self, written: int) -> None:
        super().__init__(f"{written} samples written before the error")
        self.written = written


def failure_reason(err: BaseException) -> str:
    """One line on why a store call failed: the error's class and its message (no traceback),
    without the user and password of any URL it quotes (a MongoDB URI's)."""
    text = _URL_USER.sub(r"\1", " ".join(str(err).split()))[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _range(start_s: float | None, end_s: float | None) -> tuple[float, float]:
    start = -math.inf if start_s is None else float(start_s)
    end = math.inf if end_s is None else float(end_s)
    if math.isnan(start) or math.isnan(end):
        raise ValueError("start_s and end_s must be numbers or None, got NaN")
    return start, end


class HistoryStore(abc.ABC):
    """Per-node samples, state changes and events, with downsampling and retention.

    Time ranges are half-open, ``start_s <= time_s < end_s`` (unix seconds),
    and ``None`` leaves a side open.  Results are sorted by time; rows with
    equal times keep the order they were added in.

    :param batch_size: buffered samples that trigger a write (>= 1).
    :param flush_interval_s: age of the oldest buffered sample that triggers a
        write on the next add (>= 0; 0 writes on every add).
    :param clock: monotonic seconds, for the age of the buffer (tests pass a fake).
    :param max_pending: the most samples kept while writes fail (>= ``batch_size``); the
        oldest beyond it are dropped and counted in :attr:`dropped`.
    """

    def __init__(self, *, batch_size: int = 1000, flush_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not isinstance(max_pending, int) or max_pending < batch_size:
            raise ValueError(f"max_pending must be an integer >= batch_size ({batch_size}),"
                             f" got {max_pending!r}")
        if not (0.0 <= flush_interval_s < math.inf):
            raise ValueError(f"flush_interval_s must be finite and >= 0, got {flush_interval_s!r}")
        self.batch_size = batch_size
        self.flush_interval_s = float(flush_interval_s)
        self._clock = clock
        self._buffer: list[Sample] = []
        self._buffered_at = 0.0
        self.max_pending = max_pending
        self.failed_writes = 0  # writes that raised, since the store was opened
        self.dropped = 0  # samples dropped from a full buffer while writes failed
        self._failure: str | None = None  # why the last write failed; None once one succeeds
        self._lock = threading.RLock()
        self._closed = False

    # ------------------------------------------------------------------ writing
    def add_sample(self, sample: Sample) -> None:
        """Buffer one sample (see :meth:`add_samples`)."""
        self.add_samples((sample,))

    def add_samples(self, samples: Iterable[Sample]) -> None:
        """Buffer samples; write the buffer if it is full or old enough.

        Nothing is durable until a flush: call :meth:`flush` where it matters.
        """
        batch = list(samples)
        for s in batch:
            if not isinstance(s, Sample):
                raise TypeError(f"expected a Sample, got {type(s).__name__}")
        with self._lock:
            self._check_open()
            if not batch:
                return
            if not self._buffer:
                self._buffered_at = self._clock()
            self._buffer.extend(batch)
            over = len(self._buffer) - self.max_pending
            if over > 0:  # the oldest go: the newest say most about the nodes now
                del self._buffer[:over]
                self.dropped += over
            if (len(self._buffer) >= self.batch_size
                    or self._clock() - self._buffered_at >= self.flush_interval_s):
                self._flush()

    def flush(self) -> int:
        """Write every buffered sample in one transaction; return how many.

        When it returns, they survive a crash of this process.  If the write
        fails, the samples stay buffered (less any the backend reports written)
        and the error propagates.
        """
        with self._lock:
            self._check_open()
            return self._flush()

    @property
    def pending(self) -> int:
        """Samples buffered and not yet written."""
        return len(self._buffer)

    def record_state(self, node: str, time_s: float, online: bool, reason: str = "") -> None:
        """Record that ``node`` went online (``online=True``) or offline at ``time_s``.

        Written at once (not buffered).  ``reason`` says why, e.g.
        ``"agent unreachable"``, ``"boot report"``.
        """
        change = StateChange(node, float(time_s), bool(online), str(reason))
        with self._lock:
            self._check_open()
            with self._writing():
                self._write_state(change)

    def record_event(self, node: str, time_s: float, kind: str,
                     data: dict[str, Any] | None = None) -> None:
        """Record an event of ``kind`` (e.g. ``"boot"``) with a JSON object of ``data``.

        Written at once.  ``data`` must be a JSON object: it is stored as JSON
        would carry it (tuples become lists, keys strings); anything JSON
        cannot hold (NaN, a set, an object) is a TypeError or ValueError.
        """
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ValueError(f"data must be a JSON object (a dict), got {type(data).__name__}")
        event = Event(node, float(time_s), kind, json.loads(json.dumps(data, allow_nan=False)))
        with self._lock:
            self._check_open()
            with self._writing():
                self._write_event(event)

    def add_power(self, readings: Iterable[PowerReading]) -> None:
        """Store power readings (agent-side and master-side meters alike), in one
        transaction, at once (not buffered)."""
        batch = list(readings)
        for r in batch:
            if not isinstance(r, PowerReading):
                raise TypeError(f"expected a PowerReading, got {type(r).__name__}")
        with self._lock:
            self._check_open()
            if batch:
                with self._writing():
                    self._write_power(batch)

    # ------------------------------------------------------------------ queries
    def power(self, node: str, start_s: float | None = None,
              end_s: float | None = None) -> list[PowerReading]:
        """The power readings of ``node`` in ``[start_s, end_s)``, sorted by time (raw: power
        readings are never downsampled, an energy is integrated from them)."""
        start, end = _range(start_s, end_s)
        with self._lock:
            self._read_ready()
            return self._power(node, start, end)

    def nodes(self) -> list[str]:
        """Every node the store has ever recorded anything for, sorted by name."""
        with self._lock:
            self._read_ready()
            return sorted(self._nodes())

    def latest(self, node: str | None = None) -> dict[str, NodeStatus]:
        """The newest sample and state change of each node (or only of ``node``).

        Keyed by node name; a node the store does not know is absent.
        """
        with self._lock:
            self._read_ready()
            return self._latest(node)

    def history(self, node: str, start_s: float | None = None, end_s: float | None = None,
                resolution_s: float | None = None) -> list[Sample]:
        """The samples of ``node`` in ``[start_s, end_s)``, sorted by time.

        With ``resolution_s``, one mean sample per non-empty bucket
        ``[k * resolution_s, (k + 1) * resolution_s)`` of the samples in the
        range: numeric fields are means weighted by ``count`` (each lies
        between the bucket's minimum and maximum), ``cpu_per_core`` is a mean
        per core, ``online`` is true if any sample was online, ``time_s`` is the
        bucket's start (so the first may precede ``start_s``), ``count`` is the
        number of raw samples it stands for.
        """
        start, end = _range(start_s, end_s)
        r = None if resolution_s is None else check_resolution(resolution_s)
        with self._lock:
            self._read_ready()
            if r is None:
                return self._history(node, start, end)
            rows, cores = self._buckets(node, start, end, r)
            means = core_means(cores)
            return [bucket_sample(node, row, r, means.get(int(row[0]))) for row in rows]

    def states(self, node: str | None = None, start_s: float | None = None,
               end_s: float | None = None) -> list[StateChange]:
        """State changes of ``node`` (of every node if None) in ``[start_s, end_s)``, by time."""
        start, end = _range(start_s, end_s)
        with self._lock:
            self._read_ready()
            return self._states(node, start, end)

    def events(self, node: str | None = None, start_s: float | None = None,
               end_s: float | None = None, kind: str | None = None) -> list[Event]:
        """Events of ``node`` (every node if None), of ``kind`` (any if None), by time."""
        start, end = _range(start_s, end_s)
        with self._lock:
            self._read_ready()
            return self._events(node, start, end, kind)

    # ---------------------------------------------------------------- retention
    def compact(self, older_than_s: float, resolution_s: float) -> CompactResult:
        """Replace samples before the time ``older_than_s`` by their bucket means.

        ``older_than_s`` is a **time** (unix seconds), not an age: to keep a
        week of raw samples, pass ``time.time() - 7 * 86400``.  Only whole
        buckets are compacted: those ending at or before ``older_than_s``
        (``k < floor(older_than_s / resolution_s)``).  Each bucket holding more
        than one row, or a row finer than ``resolution_s``, becomes one row,
        exactly as :meth:`history` at ``resolution_s`` reports it; so a
        history at ``resolution_s`` (or a multiple of it) reads the same means
        before and after, and compacting again changes nothing.  State changes
        and events are kept.  One transaction (on MongoDB, see
        ``docs/history-store.md``).
        """
        r = check_resolution(resolution_s)
        cutoff = float(older_than_s)
        if math.isnan(cutoff):
            raise ValueError("older_than_s must be a time, got NaN")
        with self._lock:
            self._read_ready()
            return self._compact(cutoff, r)

    def purge(self, older_than_s: float) -> PurgeResult:
        """Delete samples, power readings, state changes and events before the time
        ``older_than_s``.

        The newest state change of each node is kept whatever its age, so
        :meth:`latest` still knows whether a node long gone is offline, and
        :meth:`nodes` still lists every node.  One transaction (on MongoDB,
        see ``docs/history-store.md``).
        """
        cutoff = float(older_than_s)
        if math.isnan(cutoff):
            raise ValueError("older_than_s must be a time, got NaN")
        with self._lock:
            self._read_ready()
            return self._purge(cutoff)

    # ---------------------------------------------------------------- lifecycle
    @property
    def status(self) -> str:
        """``"ok"``, or ``"failing: <why>"`` while the last write failed (until one succeeds)."""
        failure = self._failure
        return "ok" if failure is None else f"failing: {failure}"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Flush the buffer and release the database.  Calling it again does nothing.

        If the final flush fails the database is released all the same and the
        error propagates: the samples still buffered are lost.
        """
        with self._lock:
            if self._closed:
                return
            try:
                self._flush()
            finally:
                self._closed = True
                self._close()

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---------------------------------------------------------------- internals
    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the history store is closed")

    def _read_ready(self) -> None:
        self._check_open()
        if self._buffer:
            # a store that cannot write can still be read: the samples stay buffered
            with contextlib.suppress(Exception):
                self._flush()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Count a write that fails and keep why (:attr:`status`); a success clears it."""
        try:
            yield
        except Exception as err:
            self.failed_writes += 1
            self._failure = failure_reason(err)
            raise
        self._failure = None

    def _flush(self) -> int:
        if not self._buffer:
            return 0
        batch = self._buffer
        with self._writing():
            try:
                self._write_samples(batch)
            except PartialWrite as err:
                del batch[:err.written]
                raise (err.__cause__ or err) from None
        self._buffer = []
        return len(batch)

    # ------------------------------------------------------- backends implement
    @abc.abstractmethod
    def _write_samples(self, samples: list[Sample]) -> None:
        """Store ``samples`` in one transaction, or none of them (else raise PartialWrite)."""

    @abc.abstractmethod
    def _write_state(self, change: StateChange) -> None: ...

    @abc.abstractmethod
    def _write_power(self, readings: list[PowerReading]) -> None: ...

    @abc.abstractmethod
    def _power(self, node: str, start_s: float, end_s: float) -> list[PowerReading]: ...

    @abc.abstractmethod
    def _write_event(self, event: Event) -> None: ...

    @abc.abstractmethod
    def _nodes(self) -> list[str]: ...

    @abc.abstractmethod
    def _latest(self, node: str | None) -> dict[str, NodeStatus]: ...

    @abc.abstractmethod
    def _history(self, node: str, start_s: float, end_s: float) -> list[Sample]: ...

    @abc.abstractmethod
    def _buckets(self, node: str, start_s: float, end_s: float, resolution_s: float,
                 ) -> tuple[Sequence[Sequence[Any]], Iterable[Sequence[Any]]]:
        """Bucket rows of ``node`` in the range, sorted by bucket (see
        :data:`~rpiaas.store.buckets.BUCKET_COLUMNS`), and per-core rows
        ``(k, core, sum, n, lo, hi)`` in any order."""

    @abc.abstractmethod
    def _states(self, node: str | None, start_s: float, end_s: float) -> list[StateChange]: ...

    @abc.abstractmethod
    def _events(self, node: str | None, start_s: float, end_s: float,
                kind: str | None) -> list[Event]: ...

    @abc.abstractmethod
    def _compact(self, older_than_s: float, resolution_s: float) -> CompactResult: ...

    @abc.abstractmethod
    def _purge(self, older_than_s: float) -> PurgeResult: ...

    @abc.abstractmethod
    def _close(self) -> None: ...
