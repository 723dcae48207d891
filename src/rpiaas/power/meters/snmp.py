"""``snmp``: a node's power as its PoE switch reports it for its port.

POWER-ETHERNET-MIB (RFC 3621) has no per-port power object: each vendor has
its own (in mW, or in tenths of a W), so ``oid`` is the full numeric OID of
the node's port reading and ``scale`` (default 1) turns its value into W
(``0.001`` for mW).  Connection options and errors:
:mod:`rpiaas.power.snmpclient`.
"""

from __future__ import annotations

import math
import time

from ...model import MeterSpec, Node
from ..base import Reading, register_meter
from ..snmpclient import SnmpTarget

__all__ = ["SnmpMeter"]


class SnmpMeter:
    """Reads one port's power, timed when the answer came."""

    name = "snmp"

    def __init__(self, node: Node, spec: MeterSpec) -> None:
        self.target = SnmpTarget(node.name, self.name, spec)
        self.oid = str(spec.get("oid"))
        self.scale = float(spec.get("scale", 1.0))

    async def read(self) -> Reading:
        answer = await self.target.call("read", self.oid)
        at = time.time()
        try:
            value = float(answer)
        except (TypeError, ValueError):
            raise self.target.fail("read", f"{self.oid} is not a number ({type(answer).__name__})") from None
        watts = value * self.scale
        if not math.isfinite(watts) or watts < 0:
            raise self.target.fail("read", f"{self.oid} gives {value:g}, not a power")
        return Reading(at, watts)


@register_meter("snmp")
def _snmp(node: Node, spec: MeterSpec) -> SnmpMeter:
    return SnmpMeter(node, spec)
