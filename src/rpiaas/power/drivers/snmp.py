"""``snmp``: a PoE switch powers the node from one of its ports (POWER-ETHERNET-MIB, RFC 3621).

The port is ``pethPsePortAdminEnable`` (1.3.6.1.2.1.105.1.1.1.3.GROUP.PORT),
``true(1)`` powered and ``false(2)`` not: ``on`` and ``off`` SET it and read
it back, ``state`` reads it.  ``group`` (default 1) is the PSE group, often
the stack member; ``port`` the port within it.  Connection options and
errors: :mod:`rpiaas.power.snmpclient`.
"""

from __future__ import annotations

from ...model import Node, PowerSpec
from ..base import SwitchState, register_driver
from ..snmpclient import SnmpTarget

__all__ = ["ADMIN_ENABLE_OID", "SnmpDriver"]

ADMIN_ENABLE_OID = "1.3.6.1.2.1.105.1.1.1.3"  # pethPsePortAdminEnable, indexed by group.port
_TRUE, _FALSE = 1, 2  # SNMPv2-TC TruthValue


class SnmpDriver:
    """Switches one PoE port."""

    name = "snmp"

    def __init__(self, node: Node, spec: PowerSpec) -> None:
        self.target = SnmpTarget(node.name, self.name, spec)
        self.oid = f"{ADMIN_ENABLE_OID}.{int(spec.get('group', 1))}.{int(spec.get('port'))}"

    def parse(self, action: str, answer: object) -> SwitchState:
        try:
            value = int(answer)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise self.target.fail(action, f"{self.oid} is not a TruthValue") from None
        if value not in (_TRUE, _FALSE):
            raise self.target.fail(action, f"{self.oid} is {value}, not a TruthValue (1 or 2)")
        return SwitchState.ON if value == _TRUE else SwitchState.OFF

    async def switch(self, want: SwitchState) -> None:
        await self.target.call(want.value, self.oid, _TRUE if want is SwitchState.ON else _FALSE)
        # read back: a SET's response only echoes the value sent
        state = self.parse(want.value, await self.target.call(want.value, self.oid))
        if state is not want:
            raise self.target.fail(want.value, f"the switch reports the port {state.value}")

    async def on(self) -> None:
        await self.switch(SwitchState.ON)

    async def off(self) -> None:
        await self.switch(SwitchState.OFF)

    async def state(self) -> SwitchState:
        return self.parse("state", await self.target.call("state", self.oid))


@register_driver("snmp")
def _snmp(node: Node, spec: PowerSpec) -> SnmpDriver:
    return SnmpDriver(node, spec)
