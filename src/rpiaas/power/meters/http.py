"""``http``: a smart plug's own power reading (Tasmota ``Status 8``, Shelly Gen1 ``meters[0].power``,
Shelly Gen2 ``Switch.GetStatus`` ``apower``); see :mod:`rpiaas.power.plugs`."""

from __future__ import annotations

from ...model import MeterSpec, Node
from ..base import Reading, register_meter
from ..plugs import Plug

__all__ = ["HttpMeter"]


class HttpMeter:
    """Reads one plug's power, timed when its answer came."""

    name = "http"

    def __init__(self, node: Node, spec: MeterSpec) -> None:
        self.plug = Plug(node.name, self.name, spec)

    async def read(self) -> Reading:
        watts, at = await self.plug.power_w()
        return Reading(at, watts)


@register_meter("http")
def _http(node: Node, spec: MeterSpec) -> HttpMeter:
    return HttpMeter(node, spec)
