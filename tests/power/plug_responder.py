"""A smart plug for the tests: one aiohttp app that answers as Tasmota, Shelly Gen1 and Shelly Gen2 do.

It keeps a relay per channel and a power reading, checks each request's
credentials the way that firmware does (Tasmota: ``user`` and ``password``
parameters; Shelly Gen1: HTTP basic; Shelly Gen2: HTTP digest with SHA-256,
``qop=auth``), and records every request it was sent.  ``delay_s`` makes it
answer late; ``broken`` makes it answer text that is not JSON.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

USER, PASSWORD = "admin", "plug-passw0rd"
REALM = "shellyplus1pm-a8032ab12345"


@dataclass
class Plug:
    password: str | None = None  # None: no authentication
    relays: list[bool] = field(default_factory=lambda: [True, True])
    power_w: list[float] = field(default_factory=lambda: [4.2, 1.5])
    delay_s: float = 0.0
    broken: bool = False
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _digest_ok(plug: Plug, request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Digest "):
        return False
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header[len("Digest "):]))
    if fields.get("nonce") not in plug.nonces or fields.get("algorithm", "").upper() != "SHA-256":
        return False
    ha1 = _sha256(f"{fields.get('username')}:{REALM}:{plug.password}")
    ha2 = _sha256(f"{request.method}:{fields.get('uri')}")
    expected = _sha256(f"{ha1}:{fields['nonce']}:{fields.get('nc')}:{fields.get('cnonce')}:"
                       f"{fields.get('qop')}:{ha2}")
    return fields.get("response") == expected and fields.get("username") == USER


def _basic_ok(plug: Plug, request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return False
    return base64.b64decode(header[len("Basic "):]).decode() == f"{USER}:{plug.password}"


def app(plug: Plug) -> web.Application:
    async def answer(request: web.Request, data: Any) -> web.Response:
        plug.requests.append((request.path, dict(request.query)))
        if plug.delay_s:
            await asyncio.sleep(plug.delay_s)
        if plug.broken:
            return web.Response(text="<html>busy</html>")
        return web.json_response(data)

    async def tasmota(request: web.Request) -> web.Response:
        if plug.password is not None and (request.query.get("user") != USER
                                          or request.query.get("password") != plug.password):
            return web.json_response({"WARNING": "Need user=<username>&password=<password>"}, status=401)
        cmnd = request.query.get("cmnd", "")
        if m := re.fullmatch(r"Power(\d)(?: (On|Off))?", cmnd):
            channel = int(m.group(1)) - 1
            if m.group(2):
                plug.relays[channel] = m.group(2) == "On"
            key = "POWER" if channel == 0 else f"POWER{channel + 1}"
            return await answer(request, {key: "ON" if plug.relays[channel] else "OFF"})
        if cmnd == "Status 8":
            return await answer(request, {"StatusSNS": {"Time": "2026-12-07T12:00:00", "ENERGY": {
                "Total": 1.2, "Power": [p if on else 0 for p, on in zip(plug.power_w, plug.relays, strict=False)],
                "Voltage": 230}}})
        return web.json_response({"Command": "Unknown"}, status=400)

    async def shelly1_relay(request: web.Request) -> web.Response:
        if plug.password is not None and not _basic_ok(plug, request):
            return web.Response(status=401, text="401 Unauthorized")
        channel = int(request.match_info["channel"])
        turn = request.query.get("turn")
        if turn is not None:
            plug.relays[channel] = turn == "on"
        return await answer(request, {"ison": plug.relays[channel], "has_timer": False, "source": "http"})

    async def shelly1_status(request: web.Request) -> web.Response:
        if plug.password is not None and not _basic_ok(plug, request):
            return web.Response(status=401, text="401 Unauthorized")
        return await answer(request, {"meters": [{"power": p if on else 0.0, "is_valid": True}
                                                 for p, on in zip(plug.power_w, plug.relays, strict=False)]})

    def rpc_auth(request: web.Request) -> web.Response | None:
        if plug.password is None or _digest_ok(plug, request):
            return None
        nonce = secrets.token_hex(8)
        plug.nonces.add(nonce)
        challenge = f'Digest qop="auth", realm="{REALM}", nonce="{nonce}", algorithm=SHA-256'
        plug.requests.append(("401", {}))
        return web.json_response({"code": 401, "message": "unauthorized"}, status=401,
                                 headers={"WWW-Authenticate": challenge})

    async def rpc_set(request: web.Request) -> web.Response:
        if (refused := rpc_auth(request)) is not None:
            return refused
        channel = int(request.query["id"])
        was = plug.relays[channel]
        plug.relays[channel] = json.loads(request.query["on"])
        return await answer(request, {"was_on": was})

    async def rpc_status(request: web.Request) -> web.Response:
        if (refused := rpc_auth(request)) is not None:
            return refused
        channel = int(request.query["id"])
        on = plug.relays[channel]
        return await answer(request, {"id": channel, "source": "http", "output": on,
                                      "apower": plug.power_w[channel] if on else 0.0, "voltage": 231.2})

    application = web.Application()
    application.router.add_get("/cm", tasmota)
    application.router.add_get("/relay/{channel}", shelly1_relay)
    application.router.add_get("/status", shelly1_status)
    application.router.add_get("/rpc/Switch.Set", rpc_set)
    application.router.add_get("/rpc/Switch.GetStatus", rpc_status)
    return application
