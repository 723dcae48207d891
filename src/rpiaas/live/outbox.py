"""A live run's calls to its agents: held until the journal is on disk, then run and followed.

Each call an action makes (a start, a kill) is a coroutine.  The run holds it
(:meth:`Outbox.hold`) until the journal that explains it has reached the
disk, then lets it go (:meth:`Outbox.release`).  The run does not end while a
call is under way (:attr:`Outbox.pending`); timers (``WakeAt``, boots) are
followed apart, so they do not keep it going, and are cancelled at its end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Call", "Outbox"]

log = logging.getLogger(__name__)

Call = Coroutine[Any, Any, None]


class Outbox:
    """The calls of run ``name`` under way.

    :param name: the run's id (for the log).
    :param wake: called when a call is done (the run's loop may be done too).
    """

    def __init__(self, name: str, wake: Callable[[], None]) -> None:
        self.name = name
        self.wake = wake
        self.held: list[Call] = []  # waiting for the journal to reach the disk
        self.pending: set[asyncio.Task[None]] = set()  # calls under way
        self.timers: set[asyncio.Task[None]] = set()  # WakeAt and boot timers

    def hold(self, call: Call) -> None:
        """A call for an agent: held until :meth:`release` (the journal is on disk)."""
        self.held.append(call)

    def release(self) -> None:
        """Run every held call."""
        held, self.held = self.held, []
        for call in held:
            self.spawn(call)

    def spawn(self, call: Call, timer: bool = False) -> None:
        """Run ``call`` now; unless it is a ``timer`` the run does not end while it is under way."""
        task: asyncio.Task[None] = asyncio.ensure_future(call)
        where = self.timers if timer else self.pending
        where.add(task)

        def done(t: asyncio.Task[None]) -> None:
            where.discard(t)
            self.wake()
            if not t.cancelled() and t.exception() is not None:
                log.error("run %s: %s", self.name, t.exception())

        task.add_done_callback(done)

    async def finish(self) -> None:
        """Cancel the timers, let the held calls go and wait for every call under way."""
        for timer in list(self.timers):
            timer.cancel()
        self.release()
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)
