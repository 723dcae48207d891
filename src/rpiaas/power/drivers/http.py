"""``http``: a smart plug or relay switches the node (Tasmota, Shelly Gen1, Shelly Gen2); see
:mod:`rpiaas.power.plugs` for the requests."""

from __future__ import annotations

from ...model import Node, PowerSpec
from ..base import SwitchState, register_driver
from ..plugs import Plug

__all__ = ["HttpDriver"]


class HttpDriver:
    """Switches one plug's relay; each switch is checked against the state the plug reports."""

    name = "http"

    def __init__(self, node: Node, spec: PowerSpec) -> None:
        self.plug = Plug(node.name, self.name, spec)

    async def on(self) -> None:
        await self.plug.switch(SwitchState.ON)

    async def off(self) -> None:
        await self.plug.switch(SwitchState.OFF)

    async def state(self) -> SwitchState:
        return await self.plug.switch(None)


@register_driver("http")
def _http(node: Node, spec: PowerSpec) -> HttpDriver:
    return HttpDriver(node, spec)
