"""Power for real: the live shell's ``PowerOn`` and ``PowerOff`` carried out by the nodes' drivers.

Each node's driver comes from the master's cluster config (``power:``, built by
:func:`rpiaas.power.driver_for` from the master's own node, never from the
scenario a researcher sends).  :class:`PowerSwitch` carries out, one call at a
time per node:

- **off**: only a node that holds no task is switched off.  The control plane
  decides ``PowerOff`` only for a node it runs nothing on; before the driver is
  called, the node's agent is asked for its own tasks, and a node that still
  runs one (of any run) is left on, with an event saying so.
- **on**: the node is *booting* from ``PowerOn`` until its agent's boot report
  reaches the master (:meth:`PowerSwitch.booted`); the control plane gets
  ``NodeBooted`` at the scenario time of that report, and the boot's measured
  duration (``PowerOn`` to report, scenario seconds) is kept in
  :attr:`PowerSwitch.boots`.  A node already on when switched on (an earlier
  switch-off that failed) is booted at once, with no measured boot.  A node
  that does not report within :data:`BOOT_TIMEOUT_S` is taken as down
  (``NodeDown``): its tasks go elsewhere, and it comes back (``NodeUp``) if its
  agent answers the master's poller later.

A failed or timed-out driver call is retried with backoff
(:func:`rpiaas.power.retry.retry_power`); every failure is an event on the
node, in the master's history store (``power_error``) and the run's
``events.jsonl`` (``{"t", "power": "error", "node", "action", "state", "error"}``),
and the node's document shows its ``power_state`` (``unknown`` or ``failed``).
A switch-on that fails for good makes the node down, like a boot that never
reports; a switch-off that fails leaves it ``unknown`` (the control plane keeps
it off and starts nothing there).  No failure ends the run or the master.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from ..core.events import Event, NodeBooted, NodeDown
from ..power import PowerDriver, PowerError, SwitchState
from ..power.retry import retry_power
from ..rundir.sources import switching_of
from ..store import HistoryStore
from .clock import RunClock
from .options import AgentNode

__all__ = ["BOOT_TIMEOUT_S", "CALL_TIMEOUT_S", "PowerSwitch"]

log = logging.getLogger(__name__)

BOOT_TIMEOUT_S = 300.0  # wall seconds from a switch-on to the boot report, at most
CALL_TIMEOUT_S = 30.0  # one driver call, at most (a VM's clean shutdown included)
POWER_OFF_EVENT, POWER_ON_EVENT, POWER_ERROR_EVENT = "power_off", "power_on", "power_error"


class PowerSwitch:
    """The power calls of one live run (see the module).

    :param entries: the nodes' registry entries (their ``power_state`` and ``booting_since_s``
        are set here, for the node documents and the dashboard).
    :param drivers: each node's driver, None where power is emulated.
    :param store: the master's history store (power events on the nodes).
    :param clock: the run's clock.
    :param put: takes an event for the control plane at a scenario time.
    :param spawn: runs a coroutine as one of the run's calls under way.
    :param agent_tasks: the tasks an agent runs now (its own ``GET /tasks``), by base URL.
    :param note: writes a line into the run's ``events.jsonl``.
    :param hold: tells the run's node watch that a node's agent comes and goes by the run's own
        power calls (no ``NodeDown``/``NodeUp`` of it meanwhile).
    :param release: ends that, with whether the node is up now.
    """

    def __init__(self, entries: Sequence[AgentNode], drivers: Sequence[PowerDriver | None],
                 store: HistoryStore, clock: RunClock, put: Callable[[float, Event], None],
                 spawn: Callable[[Coroutine[Any, Any, None]], None],
                 agent_tasks: Callable[[str], Awaitable[list[dict[str, Any]]]],
                 note: Callable[[str], None], hold: Callable[[int], None],
                 release: Callable[[int, bool], None]) -> None:
        self.entries = entries
        self.drivers = drivers
        self.store = store
        self.clock = clock
        self.put = put
        self.spawn = spawn
        self.agent_tasks = agent_tasks
        self.note = note
        self.hold = hold
        self.release = release
        self.boot_timeout_s = BOOT_TIMEOUT_S
        self.call_timeout_s = CALL_TIMEOUT_S
        self.retry_delay_s = 1.0
        #: measured boots: (node, PowerOn to boot report, scenario seconds), in order
        self.boots: list[tuple[str, float]] = []
        self.switched_off = 0  # switch-offs the drivers carried out
        self._locks: dict[int, asyncio.Lock] = {}
        self._booting: dict[int, tuple[float, asyncio.Event]] = {}  # node -> (PowerOn s, report)
        self._waking: dict[int, asyncio.Event] = {}  # switched on before the run starts

    @property
    def switching(self) -> str:
        """``switched`` if a driver carries every node's power actions out, ``emulated`` if none
        does, else ``mixed`` (run.json's ``sources.switching``)."""
        return switching_of([e.node for e in self.entries])

    def _lock(self, node: int) -> asyncio.Lock:
        return self._locks.setdefault(node, asyncio.Lock())

    # ------------------------------------------------------------ events and errors
    def _event(self, node: int, kind: str, data: dict[str, Any]) -> None:
        try:
            self.store.record_event(self.entries[node].name, time.time(), kind, data)
        except Exception:  # a store that fails loses the event, not the run
            log.exception("%s: cannot record %s", self.entries[node].name, kind)

    def _error(self, node: int, action: str, state: str, error: str) -> None:
        entry = self.entries[node]
        entry.power_state = state
        log.warning("%s: power %s: %s (state %s)", entry.name, action, error, state)
        self._event(node, POWER_ERROR_EVENT, {"action": action, "state": state, "error": error})
        self.note(json.dumps({"t": round(self.clock.now(), 6), "power": "error", "node": entry.name,
                              "action": action, "state": state, "error": error},
                             separators=(",", ":")) + "\n")

    async def _call(self, node: int, action: str, call: Callable[[], Awaitable[Any]]) -> Any:
        name = self.entries[node].name

        def failed(attempt: int, why: str) -> None:
            self._error(node, action, "unknown", f"{why} (try {attempt}, again)")

        return await retry_power(call, f"{name}: power {action}", timeout_s=self.call_timeout_s,
                                 first_delay_s=self.retry_delay_s, on_error=failed)

    # ------------------------------------------------------------ off
    def off(self, node: int) -> None:
        """Switch ``node`` off (the control plane has it off already)."""
        self.spawn(self._off(node))

    async def _off(self, node: int) -> None:
        driver, entry = self.drivers[node], self.entries[node]
        assert driver is not None
        async with self._lock(node):
            try:
                running = [t for t in await self.agent_tasks(entry.base_url)
                           if t.get("state") == "running"]
            except Exception:  # no answer: it runs nothing the master could stop either
                running = []
            if running:
                self._error(node, "off", "on", f"refused: its agent runs {len(running)} "
                                               f"task(s) ({running[0].get('id')})")
                return
            self.hold(node)
            try:
                await self._call(node, "off", driver.off)
            except PowerError as e:
                self._error(node, "off", "unknown", str(e))
                return
            entry.power_state = "off"
            self.switched_off += 1
            self._event(node, POWER_OFF_EVENT, {"driver": driver.name})
            log.info("%s switched off (%s)", entry.name, driver.name)

    # ------------------------------------------------------------ on
    def on(self, node: int, now: float) -> None:
        """Switch ``node`` on at scenario time ``now``: ``NodeBooted`` when it reports."""
        self.spawn(self._on(node, now))

    async def _on(self, node: int, now: float) -> None:
        driver, entry = self.drivers[node], self.entries[node]
        assert driver is not None
        async with self._lock(node):
            try:
                already = await asyncio.wait_for(driver.state(), self.call_timeout_s)
            except (PowerError, OSError, asyncio.TimeoutError):
                already = SwitchState.UNKNOWN
            if already is SwitchState.ON and entry.online is True:
                entry.power_state = "on"  # never went off: up now, no boot to measure
                self.release(node, True)
                self.put(self.clock.now(), NodeBooted(node))
                return
            self.hold(node)
            reported = asyncio.Event()
            self._booting[node] = (now, reported)
            entry.power_state = "booting"
            entry.booting_since_s = time.time()
            self._event(node, POWER_ON_EVENT, {"driver": driver.name})
            try:
                await self._call(node, "on", driver.on)
            except PowerError as e:
                self._booting.pop(node, None)
                entry.booting_since_s = None
                self._error(node, "on", "failed", str(e))
                self._down(node, f"power on failed: {e}")
                return
            try:
                await asyncio.wait_for(reported.wait(), self.boot_timeout_s)
            except asyncio.TimeoutError:
                if self._booting.pop(node, None) is not None:
                    entry.booting_since_s = None
                    why = f"no boot report within {self.boot_timeout_s:g} s"
                    self._error(node, "on", "unknown", why)
                    self._down(node, why)

    def _down(self, node: int, reason: str) -> None:
        self.release(node, False)  # an agent that answers later brings it back up
        self.put(self.clock.now(), NodeDown(node, reason))

    # ------------------------------------------------------------ before the run
    async def wake_all(self) -> None:
        """Before the run starts: switch on every node that its driver says is off (an earlier
        run left it so), and wait for its boot report; the run starts with its nodes on, as
        the scenario has them.  A node that does not come is down at the start."""
        await asyncio.gather(*(self._wake(i) for i, (driver, entry)
                               in enumerate(zip(self.drivers, self.entries, strict=True))
                               if driver is not None and entry.online is not True))

    async def _wake(self, node: int) -> None:
        driver, entry = self.drivers[node], self.entries[node]
        assert driver is not None
        try:
            state = await asyncio.wait_for(driver.state(), self.call_timeout_s)
        except (PowerError, OSError, asyncio.TimeoutError):
            return
        if state is not SwitchState.OFF:
            return
        reported = self._waking[node] = asyncio.Event()
        entry.power_state = "booting"
        entry.booting_since_s = time.time()
        self._event(node, POWER_ON_EVENT, {"driver": driver.name, "before_run": True})
        log.info("%s is off: switching it on before the run", entry.name)
        try:
            await self._call(node, "on", driver.on)
            await asyncio.wait_for(reported.wait(), self.boot_timeout_s)
            self.release(node, True)
        except (PowerError, asyncio.TimeoutError) as e:
            entry.power_state = "unknown"
            why = str(e) or f"no boot report within {self.boot_timeout_s:g} s"
            log.warning("%s: not switched on before the run: %s", entry.name, why)
            self._event(node, POWER_ERROR_EVENT, {"action": "on", "state": "unknown",
                                                  "error": why})
        finally:
            self._waking.pop(node, None)

    def booted(self, node: int, unix_s: float) -> bool:
        """Node ``node``'s boot report came at unix time ``unix_s``: ``NodeBooted`` then.
        False if the run was not waiting for it to boot."""
        woken = self._waking.pop(node, None)
        if woken is not None:
            self.entries[node].power_state = "on"
            woken.set()
            return True
        waiting = self._booting.pop(node, None)
        if waiting is None:
            return False
        powered_on, reported = waiting
        at = max(self.clock.scenario_time(unix_s), powered_on)
        entry = self.entries[node]
        entry.power_state = "on"
        self.boots.append((entry.name, at - powered_on))
        self.release(node, True)
        self.put(at, NodeBooted(node))
        reported.set()
        log.info("%s booted in %.2f s (scenario time, from the switch-on)", entry.name,
                 at - powered_on)
        return True

    def close(self) -> None:
        """Nothing waits for a boot any more (the run ends)."""
        for _, reported in self._booting.values():
            reported.set()
        self._booting.clear()
