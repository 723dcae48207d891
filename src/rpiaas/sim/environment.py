"""The SimPy environment of the simulation shell: callbacks at exact absolute times.

``simpy.Environment.schedule`` takes a delay, so an event meant for time ``t``
lands at ``now + (t - now)``, which floating point may round away from ``t``;
the shell's times are absolute (an arrival at 1234.5 s happens at 1234.5 s,
whatever happened before).  :class:`SimEnvironment` adds :meth:`call_at`,
which puts a callback in SimPy's event queue at exactly ``t``, and
:meth:`steps`, SimPy's ``step`` repeated in one loop.  Everything
else is SimPy's own: ``step``, ``peek``, ``now``, ``run``, processes and
timeouts work as usual, so a user can still extend a simulation the SimPy way.

This is the one module of rpiaas that uses names SimPy keeps private: its
event queue (``Environment._queue``, exposed as :attr:`SimEnvironment.heap`),
its event counter (``_eid``), its clock (``_now``) and what its ``step``
reads of an event (``_ok``, ``_value``, ``_defused``).  ``pyproject.toml``
pins SimPy to the series these are tested on (4.1.x), and
``tests/sim/test_environment.py`` fails when an installed SimPy no longer
has them.  What it saves: :meth:`SimEnvironment.steps` is SimPy's ``step``
in one loop, a call per event less; :meth:`call_at` schedules at an exact
absolute time, which ``schedule`` (a delay) cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import NORMAL, URGENT

__all__ = ["NORMAL", "SIMPY_PRIVATE_NAMES", "URGENT", "Arrival", "Due", "SimEnvironment", "TaskEnd"]

# SimPy's private names this module relies on (see the module's docstring)
SIMPY_PRIVATE_NAMES = ("_queue", "_eid", "_now")

# the priority SimPy's step gives an event it puts back after a StopSimulation
_RESUMED = simpy.core.EventPriority(-1) if hasattr(simpy.core, "EventPriority") else URGENT


class Due:
    """What :meth:`SimEnvironment.call_at` schedules: an event already triggered with
    ``value``, whose one callback runs when SimPy reaches it.

    It has what ``Environment.step`` reads of an event (``callbacks``, ``_ok``,
    ``_value``) and nothing else: a third of the cost of a ``simpy.Event``.
    """

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, value: Any, callbacks: Sequence[Callable[[Any], None]]) -> None:
        self._ok = True
        self._value = value
        # SimPy only iterates over them: a tuple made once may serve every event of a kind
        self.callbacks: Sequence[Callable[[Any], None]] | None = callbacks

    @property
    def value(self) -> Any:
        return self._value


class Arrival(Due):
    """The arrival of ``task``: what the shell schedules for each task of the workload."""

    __slots__ = ("task",)

    def __init__(self, task: Any, callbacks: Sequence[Callable[[Any], None]]) -> None:
        self._ok = True
        self._value = task
        self.callbacks = callbacks
        self.task = task


class TaskEnd(Due):
    """The end of ``task`` as started at ``epoch``, due at time ``end``: one object where a
    value tuple, a :class:`Due` and its callback list would be three."""

    __slots__ = ("end", "epoch", "task")

    def __init__(self, task: Any, epoch: int, end: float, callbacks: Sequence[Callable[[Any], None]]) -> None:
        self._ok = True
        self._value = task
        self.callbacks = callbacks
        self.task = task
        self.epoch = epoch
        self.end = end


class SimEnvironment(simpy.Environment):
    """A ``simpy.Environment`` that also schedules callbacks at absolute times.

    ``heap`` is SimPy's event queue itself: a shell that gathers the events of
    one time reads ``heap[0][0]``, the time of the next event, where
    :meth:`peek` would cost a call per event.  It may push
    ``(time, priority, next(event_ids), event)`` onto it with ``heapq``, as
    :meth:`call_at` does, and nothing else.
    """

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.heap: list[tuple[float, int, int, Any]] = self._queue  # type: ignore[assignment]
        # the ids that order events of equal time and priority (SimPy's own counter): a shell
        # that pushes its events onto ``heap`` itself takes each one's id from here
        self.event_ids = self._eid

    def steps(self, n: int) -> None:
        """:meth:`step` ``n`` times, in one loop: SimPy's own step, written out (one call
        per event less on a simulation's hottest path).  Raises ``EmptySchedule`` when no
        event is left, as :meth:`step` does."""
        queue = self._queue
        for _ in range(n):
            try:
                self._now, _, _, event = heappop(queue)
            except IndexError:
                raise EmptySchedule from None
            callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
            try:
                for callback in callbacks:
                    callback(event)
            except StopSimulation:
                event.callbacks = callbacks[callbacks.index(callback) + 1:]
                self.schedule(event, _RESUMED)
                raise
            if not event._ok and not hasattr(event, "_defused"):
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc

    def call_at(self, at: float, value: Any, callback: Callable[[Due], None],
                priority: int = NORMAL) -> None:
        """Run ``callback(due)`` at exactly time ``at`` (``due.value`` is ``value``).

        Among events at the same time, ``URGENT`` ones come first, then the
        others in the order they were scheduled, as in SimPy.
        """
        heappush(self._queue, (at, priority, next(self._eid), Due(value, (callback,))))  # type: ignore[misc]
