"""Power on the testbed: drivers that switch nodes and meters that read their power.

A :class:`~rpiaas.power.base.PowerDriver` switches one node (``on``, ``off``,
``state``); a :class:`~rpiaas.power.base.Meter` reads its power in watts.  The
cluster file chooses them per node or per cluster (``power:`` and ``meter:``,
docs/scenario.md); :func:`~rpiaas.power.base.driver_for` and
:func:`~rpiaas.power.base.meter_for` build them from a node's
:class:`~rpiaas.model.PowerSpec` and :class:`~rpiaas.model.MeterSpec`.
:func:`~rpiaas.power.integrate.integrate_energy` turns a meter's readings into
energy (the trapezoid over the readings' own times), reporting its gaps.
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

# each module registers its driver or meter by name
from .drivers import command as _command  # noqa: F401
from .drivers import http as _http  # noqa: F401
from .drivers import process as _process  # noqa: F401  (registers "process")
from .drivers import qemu as _qemu  # noqa: F401  (registers "qemu")
from .drivers import snmp as _snmp  # noqa: F401
from .drivers import uhubctl as _uhubctl  # noqa: F401
from .integrate import Gap, MeteredEnergy, integrate_energy
from .meters import http as _http_meter  # noqa: F401
from .meters import prometheus as _prometheus  # noqa: F401
from .meters import snmp as _snmp_meter  # noqa: F401

__all__ = ["DRIVERS", "METERS", "Gap", "Meter", "MeteredEnergy", "PowerDriver", "PowerError", "Reading",
           "SwitchState", "driver_for", "integrate_energy", "meter_for", "register_driver", "register_meter"]
