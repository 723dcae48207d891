"""Talking to smart plugs and relays over HTTP: Tasmota, Shelly Gen1 and Shelly Gen2 (RPC).

One :class:`Plug` per node, from the ``http`` driver's or meter's options:
``flavour`` (``tasmota``, ``shelly1``, ``shelly2``), ``url`` (the device's
base URL), ``relay`` (the channel, from 0; default 0), ``user`` and
``password`` (optional) and ``timeout_s`` (default 5 s).

- **Tasmota**: ``GET /cm?cmnd=Power1%20On`` (``Off``; ``Power1`` alone asks)
  answers ``{"POWER": "ON"}`` (``POWER1`` on multi-relay devices); ``Status 8``
  answers ``StatusSNS.ENERGY.Power`` in W.  A web password goes as the
  ``user`` and ``password`` parameters, as Tasmota takes it.
- **Shelly Gen1**: ``GET /relay/0?turn=on`` (``off``; ``/relay/0`` asks)
  answers ``{"ison": true}``; ``GET /status`` answers ``meters[0].power`` in
  W.  A password is HTTP basic authentication.
- **Shelly Gen2** (Plus, Pro): RPC over HTTP, ``GET /rpc/Switch.Set?id=0&on=true``
  and ``/rpc/Switch.GetStatus?id=0``, which answers ``output`` and ``apower``
  (W).  A password is HTTP digest authentication (SHA-256), user ``admin``
  unless ``user`` says otherwise.

Every failure is a :class:`~rpiaas.power.base.PowerError` of one line, with
the password (which a Tasmota URL carries) redacted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp

from ..model import MeterSpec, PowerSpec
from .base import PowerError, SwitchState
from .calls import failure

__all__ = ["DEFAULT_TIMEOUT_S", "Plug"]

DEFAULT_TIMEOUT_S = 5.0


class Plug:
    """One plug's relay and meter."""

    def __init__(self, node: str, name: str, spec: PowerSpec | MeterSpec) -> None:
        self.node = node
        self.name = name  # "http": the driver's or the meter's name, for errors
        self.flavour = str(spec.get("flavour"))
        self.url = str(spec.get("url")).rstrip("/")
        self.relay = int(spec.get("relay", 0))
        self.user = spec.get("user")
        self.password = spec.get("password")
        self.timeout_s = float(spec.get("timeout_s", DEFAULT_TIMEOUT_S))
        self.secrets = spec.secrets()

    def fail(self, action: str, why: str) -> PowerError:
        return failure(self.node, self.name, action, why, self.secrets)

    async def get(self, action: str, path: str, params: dict[str, str]) -> Any:
        """``GET url/path?params`` as JSON; PowerError on any failure."""
        headers: dict[str, str] = {}
        middlewares: tuple[aiohttp.DigestAuthMiddleware, ...] = ()
        if self.flavour == "tasmota" and self.password is not None:
            params = {**params, "user": str(self.user or "admin"), "password": str(self.password)}
        elif self.flavour == "shelly1" and self.password is not None:
            pair = f"{self.user or 'admin'}:{self.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif self.flavour == "shelly2" and self.password is not None:
            middlewares = (aiohttp.DigestAuthMiddleware(str(self.user or "admin"), str(self.password)),)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout, headers=headers, middlewares=middlewares) as session, \
                    session.get(f"{self.url}{path}", params=params, allow_redirects=False) as response:
                body = await response.read()
                if response.status != 200:
                    hint = " (wrong user or password?)" if response.status in (401, 403) else ""
                    raise self.fail(action, f"HTTP {response.status} from {self.url}{path}{hint}")
        except asyncio.TimeoutError:
            raise self.fail(action, f"no answer from {self.url} within {self.timeout_s:g} s") from None
        except aiohttp.ClientError as e:
            raise self.fail(action, f"{self.url}: {type(e).__name__}: {e}") from None
        try:
            return json.loads(body)
        except ValueError:
            raise self.fail(action, f"{self.url}{path} did not answer JSON") from None

    # -- switching -------------------------------------------------------------
    async def switch(self, want: SwitchState | None) -> SwitchState:
        """Switch the relay (``None``: only ask); the state the plug reports after it."""
        action = "state" if want is None else want.value
        if self.flavour == "tasmota":
            cmnd = f"Power{self.relay + 1}" + ("" if want is None else f" {want.value.capitalize()}")
            data = await self.get(action, "/cm", {"cmnd": cmnd})
            keys = [f"POWER{self.relay + 1}"] + (["POWER"] if self.relay == 0 else [])
            value = next((data[k] for k in keys if isinstance(data, dict) and k in data), None)
            state = {"ON": SwitchState.ON, "OFF": SwitchState.OFF}.get(str(value).upper())
        elif self.flavour == "shelly1":
            params = {} if want is None else {"turn": want.value}
            data = await self.get(action, f"/relay/{self.relay}", params)
            value = data.get("ison") if isinstance(data, dict) else None
            state = None if not isinstance(value, bool) else SwitchState.ON if value else SwitchState.OFF
        else:
            if want is not None:
                await self.get(action, "/rpc/Switch.Set",
                               {"id": str(self.relay), "on": "true" if want is SwitchState.ON else "false"})
            data = await self.get(action, "/rpc/Switch.GetStatus", {"id": str(self.relay)})
            value = data.get("output") if isinstance(data, dict) else None
            state = None if not isinstance(value, bool) else SwitchState.ON if value else SwitchState.OFF
        if state is None:
            raise self.fail(action, f"no relay state in the answer of {self.url} ({_excerpt(data)})")
        if want is not None and state is not want:
            raise self.fail(action, f"the plug reports {state.value} after switching {want.value}")
        return state

    # -- metering --------------------------------------------------------------
    async def power_w(self) -> tuple[float, float]:
        """The plug's power reading in W, and the unix time its answer came."""
        if self.flavour == "tasmota":
            data = await self.get("read", "/cm", {"cmnd": "Status 8"})
            value = _dig(data, "StatusSNS", "ENERGY", "Power")
            if isinstance(value, list):  # one value per channel
                value = value[self.relay] if self.relay < len(value) else None
            where = "StatusSNS.ENERGY.Power"
        elif self.flavour == "shelly1":
            data = await self.get("read", "/status", {})
            meters = _dig(data, "meters")
            value = (meters[self.relay].get("power") if isinstance(meters, list) and self.relay < len(meters)
                     and isinstance(meters[self.relay], dict) else None)
            where = f"meters[{self.relay}].power"
        else:
            data = await self.get("read", "/rpc/Switch.GetStatus", {"id": str(self.relay)})
            value = _dig(data, "apower")
            where = "apower"
        at = time.time()
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
            raise self.fail("read", f"no power reading ({where}) in the answer of {self.url} ({_excerpt(data)})")
        return float(value), at


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _excerpt(data: Any) -> str:
    return json.dumps(data)[:80]
