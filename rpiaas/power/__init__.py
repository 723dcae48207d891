"""Power on the testbed: drivers that switch nodes and meters that read their power.

A :class:`~rpiaas.power.base.PowerDriver` switches one node (``on``, ``off``,
``state``); a :class:`~rpiaas.power.base.Meter` reads its power in watts.  The
cluster file chooses them per node or per cluster (``power:`` and ``meter:``,
docs/scenario.md); :func:`~rpiaas.power.base.driver_for` and
:func:`~rpiaas.power.base.meter_for` build them from a node's
:class:`~rpiaas.model.PowerSpec` and :class:`~rpiaas.model.MeterSpec`.
"""

from .base import (
    DRIVERS,
    METERS,
    Meter,
    PowerDriver,
    PowerError,
    Reading,
    SwitchState,
    driver_for,
    meter_for,
    register_driver,
    register_meter,
)
from .drivers import process as _process  # noqa: F401  (registers "process")
from .drivers import qemu as _qemu  # noqa: F401  (registers "qemu")

__all__ = ["DRIVERS", "METERS", "Meter", "PowerDriver", "PowerError", "Reading", "SwitchState",
           "driver_for", "meter_for", "register_driver", "register_meter"]
