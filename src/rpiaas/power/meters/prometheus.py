"""``prometheus``: a node's power from a Prometheus server the lab already runs.

An instant query (``GET URL/api/v1/query?query=QUERY``) whose answer is one
sample in watts: a vector of exactly one series, or a scalar.  The reading
carries the sample's own time.  ``url`` is the server's base URL, ``query``
the PromQL expression (scale it to watts in the query, e.g.
``tasmota_power_w{instance="plug7"}`` or ``pdu_outlet_power_mw{outlet="3"} / 1000``);
``timeout_s`` bounds the call (default 5 s, also sent to the server as its
query timeout).  No series, several, or a value that is not a finite
non-negative number is a :class:`~rpiaas.power.base.PowerError`.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import aiohttp

from ...model import MeterSpec, Node
from ..base import PowerError, Reading, register_meter
from ..calls import failure

__all__ = ["DEFAULT_TIMEOUT_S", "PrometheusMeter", "sample"]

DEFAULT_TIMEOUT_S = 5.0


def sample(answer: Any) -> tuple[float, float]:
    """``(unix time, value)`` of an instant query's answer; ``ValueError`` saying why not."""
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error") if isinstance(answer, dict) else None
        raise ValueError(f"the query failed: {error or 'no success status'}")
    data = answer.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector" and isinstance(result, list):
        if len(result) != 1:
            raise ValueError(f"the query gives {len(result)} series; it must give exactly one")
        pair = result[0].get("value") if isinstance(result[0], dict) else None
    elif kind == "scalar":
        pair = result
    else:
        raise ValueError(f"the query gives a {kind}; it must give one sample (an instant vector or scalar)")
    if not isinstance(pair, list) or len(pair) != 2:
        raise ValueError("the answer has no [time, value] sample")
    at, value = float(pair[0]), float(pair[1])
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"the sample is {pair[1]}, not a power in W")
    return at, value


class PrometheusMeter:
    """One instant query per reading."""

    name = "prometheus"

    def __init__(self, node: Node, spec: MeterSpec) -> None:
        self.node = node.name
        self.url = str(spec.get("url")).rstrip("/")
        self.query = str(spec.get("query"))
        self.timeout_s = float(spec.get("timeout_s", DEFAULT_TIMEOUT_S))

    def fail(self, why: str) -> PowerError:
        return failure(self.node, self.name, "read", why, [])

    async def read(self) -> Reading:
        params = {"query": self.query, "timeout": f"{self.timeout_s:g}s"}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as session, \
                    session.get(f"{self.url}/api/v1/query", params=params) as response:
                body = await response.read()
        except asyncio.TimeoutError:
            raise self.fail(f"no answer from {self.url} within {self.timeout_s:g} s") from None
        except aiohttp.ClientError as e:
            raise self.fail(f"{self.url}: {type(e).__name__}: {e}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise self.fail(f"HTTP {response.status} from {self.url}, not JSON") from None
        try:
            at, watts = sample(answer)
        except (ValueError, TypeError, AttributeError) as e:
            raise self.fail(f"{e} (query {self.query})") from None
        return Reading(at, watts)


@register_meter("prometheus")
def _prometheus(node: Node, spec: MeterSpec) -> PrometheusMeter:
    return PrometheusMeter(node, spec)
