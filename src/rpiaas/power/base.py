"""The interface of power drivers and meters, and the registries that build them by name.

A driver is built once per node from the node's :class:`~rpiaas.model.PowerSpec`
(``driver_for``); its calls are coroutines and raise :class:`PowerError` (one
line, no credential in it) when the switch cannot be reached, refuses, or
does not answer in time.  What to do about a failure (an event on the node,
a retry with backoff) is the caller's: the master's.

A meter is built the same way from a :class:`~rpiaas.model.MeterSpec`
(``meter_for``); ``read`` gives one :class:`Reading` (watts at a time) or
raises :class:`PowerError`.  A meter that runs on the node itself (``hwmon``,
``pmic``) is read by the node's agent, not here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..model import MeterSpec, Node, PowerSpec

__all__ = ["DRIVERS", "METERS", "Meter", "PowerDriver", "PowerError", "Reading", "SwitchState",
           "driver_for", "meter_for", "register_driver", "register_meter"]


class PowerError(Exception):
    """A power call that failed: one line naming the node and the driver, never a credential."""


class SwitchState(str, enum.Enum):
    """What a driver says of a node's power."""

    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Reading:
    """One power reading: ``watts`` at unix time ``time_s`` (the meter's own time if it gives
    one, else when the answer came)."""

    time_s: float
    watts: float


class PowerDriver(Protocol):
    """Switches one node."""

    name: str  # the driver's name, as the cluster file gives it

    async def on(self) -> None: ...

    async def off(self) -> None: ...

    async def state(self) -> SwitchState: ...


class Meter(Protocol):
    """Reads one node's power."""

    name: str  # the source's name, as the cluster file gives it

    async def read(self) -> Reading: ...


DriverFactory = Callable[[Node, PowerSpec], PowerDriver]
MeterFactory = Callable[[Node, MeterSpec], Meter]
DRIVERS: dict[str, DriverFactory] = {}
METERS: dict[str, MeterFactory] = {}


def register_driver(name: str) -> Callable[[DriverFactory], DriverFactory]:
    def add(factory: DriverFactory) -> DriverFactory:
        DRIVERS[name] = factory
        return factory
    return add


def register_meter(name: str) -> Callable[[MeterFactory], MeterFactory]:
    def add(factory: MeterFactory) -> MeterFactory:
        METERS[name] = factory
        return factory
    return add


def driver_for(node: Node) -> PowerDriver | None:
    """The driver that switches ``node``, or ``None`` when its power is emulated (no
    ``power:`` or ``driver: none``)."""
    spec = node.power
    if spec is None or spec.driver == "none":
        return None
    try:
        factory = DRIVERS[spec.driver]
    except KeyError:
        raise PowerError(f"{node.name}: unknown power driver {spec.driver!r}") from None
    return factory(node, spec)


def meter_for(node: Node) -> Meter | None:
    """The meter that the master reads for ``node``, or ``None`` (no ``meter:``, or one the
    node's agent reads itself)."""
    spec = node.meter
    if spec is None or spec.source in ("hwmon", "pmic"):
        return None
    try:
        factory = METERS[spec.source]
    except KeyError:
        raise PowerError(f"{node.name}: unknown meter source {spec.source!r}") from None
    return factory(node, spec)
