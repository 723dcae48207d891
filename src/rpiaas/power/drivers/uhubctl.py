"""``uhubctl``: a USB hub's port powers the node (a Pi fed from a hub with per-port power switching).

``uhubctl -l LOCATION -p PORT -a on|off`` switches the port; ``uhubctl -l
LOCATION -p PORT`` reports it.  The state is read from uhubctl's own report
of the port (``Port 2: 0503 power highspeed enable connect`` is on, ``Port 2:
0000 off`` is off), the last one it printed: after a switch, that is the
port's new status, and a port that did not change (many hubs only pretend to
switch: uhubctl's list of compatible hubs says which do not) is an error.
``program`` names another uhubctl binary (default ``uhubctl`` on PATH);
``timeout_s`` bounds each call (default 10 s).
"""

from __future__ import annotations

import re

from ...model import Node, PowerSpec
from ..base import PowerError, SwitchState, register_driver
from ..calls import failure, run_checked

__all__ = ["DEFAULT_TIMEOUT_S", "UhubctlDriver", "port_state"]

DEFAULT_TIMEOUT_S = 10.0
_PORT = re.compile(r"^\s*Port\s+(\d+):\s+([0-9a-fA-F]{4})\b(.*)$")


def port_state(output: str, port: int) -> SwitchState:
    """The state of ``port`` in uhubctl's ``output``: its last status line for that port."""
    state = SwitchState.UNKNOWN
    for line in output.splitlines():
        m = _PORT.match(line)
        if m and int(m.group(1)) == port:
            flags = m.group(3).split()
            state = (SwitchState.OFF if "off" in flags else
                     SwitchState.ON if "power" in flags else SwitchState.UNKNOWN)
    return state


class UhubctlDriver:
    """Switches one port of one USB hub."""

    name = "uhubctl"

    def __init__(self, node: Node, spec: PowerSpec) -> None:
        self.node = node.name
        self.location = str(spec.get("location"))
        self.port = int(spec.get("port"))
        self.program = str(spec.get("program", "uhubctl"))
        self.timeout_s = float(spec.get("timeout_s", DEFAULT_TIMEOUT_S))

    def fail(self, action: str, why: str) -> PowerError:
        return failure(self.node, self.name, action, why, [])

    async def call(self, action: str, *extra: str) -> SwitchState:
        argv = [self.program, "-l", self.location, "-p", str(self.port), *extra]
        done = await run_checked(argv, self.timeout_s, lambda why: self.fail(action, why))
        state = port_state(done.out, self.port)
        if state is SwitchState.UNKNOWN:
            raise self.fail(action, f"no status of port {self.port} of hub {self.location} in its output")
        return state

    async def switch(self, want: SwitchState) -> None:
        state = await self.call(want.value, "-a", want.value)
        if state is not want:
            raise self.fail(want.value, f"port {self.port} of hub {self.location} is still {state.value} "
                                        "(does this hub switch its ports' power?)")

    async def on(self) -> None:
        await self.switch(SwitchState.ON)

    async def off(self) -> None:
        await self.switch(SwitchState.OFF)

    async def state(self) -> SwitchState:
        return await self.call("state")


@register_driver("uhubctl")
def _uhubctl(node: Node, spec: PowerSpec) -> UhubctlDriver:
    return UhubctlDriver(node, spec)
