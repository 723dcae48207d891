"""What every shell does with the control plane's actions: one method per kind of action.

The simulation shell (:mod:`rpiaas.sim`) and the live shell (:mod:`rpiaas.live`)
drive the same control plane; :class:`Shell` is the part of a shell that must
not differ between them: after each step, :meth:`Shell.carry_out` hands each
action to the method for its kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .events import Action, Kill, Migrate, PowerOff, PowerOn, Reject, Start, WakeAt

__all__ = ["Shell"]


class Shell:
    """What a shell does with the control plane's actions: one method per kind of action.

    After each :meth:`ControlPlane.step <rpiaas.core.control.ControlPlane.step>` a
    shell calls :meth:`carry_out` with the actions it returned, then
    :meth:`NodeUsage.follow` with the control plane.  A shell implements
    :meth:`start`, :meth:`migrate`, :meth:`power_on` and :meth:`wake_at`; a
    rejection, a kill and a switch-off change only the control plane's
    bookkeeping unless the shell has more to do (the live shell stops a killed
    task on its agent).
    """

    def __init__(self) -> None:
        self._do: dict[type, Callable[[Any, float], None]] = {
            Start: self.start, Reject: self.reject, Kill: self.kill, Migrate: self.migrate,
            PowerOn: self.power_on, PowerOff: self.power_off, WakeAt: self.wake_at}

    def carry_out(self, actions: Sequence[Action], now: float) -> None:
        """Carry out the actions of a step taken at ``now``, in order."""
        do = self._do
        for a in actions:
            do[type(a)](a, now)

    def start(self, action: Start, now: float) -> None:
        """Run ``action.task`` on node ``action.node`` (its resources are reserved)."""
        raise NotImplementedError

    def migrate(self, action: Migrate, now: float) -> None:
        """Move the running ``action.task`` from ``action.source`` to ``action.node``."""
        raise NotImplementedError

    def power_on(self, action: PowerOn, now: float) -> None:
        """Boot ``action.node``; the shell answers with ``NodeBooted`` when it is up."""
        raise NotImplementedError

    def wake_at(self, action: WakeAt, now: float) -> None:
        """Give the control plane a ``Tick`` at ``action.time_s``."""
        raise NotImplementedError

    def reject(self, action: Reject, now: float) -> None:
        """A task was refused: nothing runs."""

    def kill(self, action: Kill, now: float) -> None:
        """A running task was killed: its resources are already free."""

    def power_off(self, action: PowerOff, now: float) -> None:
        """A node was switched off."""
