"""A live run held while its directory's file system is full: it pauses, it does not fail.

When the journal cannot reach the disk for lack of space (``ENOSPC``, or a
quota: ``EDQUOT``), the actions it would explain must not go out, so the run
is **held**, and so it is when the result's tables (``tasks.csv``,
``nodes.csv``, ``events.jsonl``, written as the run goes) find no space: no
new start, kill or migration reaches an agent.  The tasks already running go
on, and their ends (pushed or polled) go through the control plane as ever;
the journal's records and the tables' rows wait in memory.  The run tries the
disk again every second and goes on by itself once both are written: the
journal catches up byte for byte, then the held calls go out, in order, so
nothing is lost and nothing runs twice.  (A table's text is kept whole when
the disk refuses it, as long as one drain writes less than the file's 1 MB
buffer: a live run's drains, a sample interval's rows, are far smaller.)

A hold longer than ``limit_s`` (:data:`DEFAULT_HOLD_LIMIT_S`, 10 minutes)
stops the run cleanly, with its journal as far as the disk took it and no
result: :class:`RunSuspended`, and the run is ``suspended``, taken up again
by ``rpiaas master --resume`` once there is space.  A result that cannot be
written at the end stops it the same way.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import time
from collections.abc import Callable

from .journal import Journal

__all__ = ["DEFAULT_HOLD_LIMIT_S", "RETRY_S", "DiskHold", "RunSuspended", "is_no_space"]

log = logging.getLogger(__name__)

DEFAULT_HOLD_LIMIT_S = 600.0
RETRY_S = 1.0  # how often a held run tries the disk again

_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_no_space(err: BaseException) -> bool:
    """Whether ``err`` says the file system (or the user's quota) is full."""
    return isinstance(err, OSError) and err.errno in _NO_SPACE


class RunSuspended(Exception):
    """The run stopped, resumable: it was held too long, or its result found no space."""


class DiskHold:
    """Whether a run is held for lack of space, why, and since when (monotonic seconds)."""

    def __init__(self, limit_s: float = DEFAULT_HOLD_LIMIT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not limit_s > 0:
            raise ValueError(f"hold_limit_s: expected a positive number, got {limit_s!r}")
        self.limit_s = limit_s
        self.clock = clock
        self.reason = ""  # empty while not held
        self.since: float | None = None
        self.holds = 0  # holds since the run began
        self.held_s = 0.0  # seconds held, the holds before this one
        self._ticker: asyncio.Future[None] | None = None

    @property
    def active(self) -> bool:
        return self.since is not None

    def begin(self, err: OSError) -> bool:
        """A write failed for lack of space: held from now (or still).  Whether it is new."""
        self.reason = f"no space left for the run's files: {err.strerror or err}"
        if self.since is not None:
            return False
        self.since = self.clock()
        self.holds += 1
        return True

    def end(self) -> float:
        """A write succeeded: no longer held.  How long this hold lasted (0 if none)."""
        if self.since is None:
            return 0.0
        took = self.clock() - self.since
        self.held_s += took
        self.since, self.reason = None, ""
        return took

    @property
    def for_s(self) -> float:
        """How long the run has been held now (0 if it is not)."""
        return 0.0 if self.since is None else self.clock() - self.since

    @property
    def over(self) -> bool:
        """Whether this hold has lasted past the limit."""
        return self.for_s > self.limit_s

    def fail(self, err: OSError, now_s: float, note: Callable[[str], None],
             wake: Callable[[], None]) -> None:
        """A write of the run's files found no space: held from now.  The first time, a log
        line, an event through ``note``, and ``wake`` called every :data:`RETRY_S` while held
        (the run then tries its writes again)."""
        if self.begin(err):
            log.warning("run held: %s (no new starts until there is space; at most %g s)",
                        self.reason, self.limit_s)
            note(json.dumps({"t": round(now_s, 6), "hold": "begin", "reason": self.reason}) + "\n")
            self._ticker = asyncio.ensure_future(self._tick(wake))

    async def sync(self, journal: Journal, now_s: float, note: Callable[[str], None],
                   wake: Callable[[], None], drain: Callable[[], None] | None = None) -> bool:
        """Sync ``journal``, then ``drain`` the result's files; whether both reached the disk
        (the held calls may go out).

        A write that finds no space holds the run (:meth:`fail`); past the limit,
        :class:`RunSuspended`.  Any other error propagates.
        """
        try:
            await journal.sync_async()
            if drain is not None:
                drain()
        except OSError as err:
            if not is_no_space(err):
                raise
            self.fail(err, now_s, note, wake)
            if self.over:
                raise RunSuspended(f"held {self.for_s:.0f} s, over the limit of {self.limit_s:g} s:"
                                   f" {self.reason}; free space and restart the master with"
                                   " --resume") from err
            return False
        took = self.end()
        if took:
            log.warning("run goes on: its files were written after %.1f s held", took)
            note(json.dumps({"t": round(now_s, 6), "hold": "end", "held_s": round(took, 3)}) + "\n")
        return True

    async def _tick(self, wake: Callable[[], None]) -> None:
        while self.active:
            await asyncio.sleep(RETRY_S)
            wake()

    def stop(self) -> None:
        """The run is over: no more tries."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
