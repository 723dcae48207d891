"""Boot reports: a node tells the master that it has booted, and how long that took.

``POST /api/v1/nodes/{name}/booted`` with ``{"uptime_s": 2.1}`` is made by
the node itself once it is up: by the agent's service when it starts on a
real Pi, by the init of the minimal root of ``netboot/vm/`` on a virtual one.
``uptime_s`` is the node's ``/proc/uptime``, the seconds since its kernel
started; the master keeps it as the boot time ``boot_s`` (kernel start to
first report: it leaves out the boot ROM, firmware and TFTP stage before the
kernel, which the node cannot measure).  This is the figure that calibrates
``boot_s`` of a node type in simulation.

``POST /api/v1/nodes/{name}/booting`` (the master's token) says the node was
just powered on (by an operator, a power switch script, a test): the node's
state is *booting* (``booting_since_s`` in its document, a badge on the
dashboard) until its boot report, which then also records ``power_on_s``,
the seconds from power-on to the report, boot ROM and TFTP included.

The boot report does not take the master's bearer token but the node's own
token (:func:`~rpiaas.auth.node_token` of the master's node secret and
the node's name, the token its agent holds; ``netboot/prepare-nfsroot.sh
--node-secret-file`` writes it into each node's root).  It is accepted only
when both

- it carries the node's token, ``Authorization: Bearer <token>``, and
- it comes from the node's own address (``request.remote`` is the node's
  address in the cluster config: the master must see the node's address,
  not a proxy's),

and refused with 403, logged with the address it came from, otherwise (a
local process that binds a node's address has not the node's token; a node's
token used from elsewhere is one taken from the node).  The boot time is what
calibration uses, so a report is never taken on one proof alone.  An
accepted report is recorded as a ``boot`` event ``{"boot_s", "address",
"via"}`` (``via`` is ``"token"``) at the master's time, and marks the node
online (a state change with the reason ``"boot report"``) if it was not.  The
node's document (``GET /api/v1/nodes/{name}``) shows the last one as
``last_boot``.  A live run that switched the node on through its power driver
(:mod:`rpiaas.live.switching`) takes it as booted at the moment of the report.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time

from aiohttp import web

from ..auth import node_token, same_token
from .http import bearer, body, body_number, json_error
from .keys import NODE_TOKENS, REGISTRY, RUNS, STORE
from .registry import NodeEntry

__all__ = ["BOOT_EVENT", "BOOT_PATH", "node_boot_token", "setup_boot_routes"]

log = logging.getLogger(__name__)

BOOT_PATH = "/api/v1/nodes/{name}/booted"
BOOT_EVENT = "boot"
BOOT_STATE_REASON = "boot report"
BOOTING_PATH = "/api/v1/nodes/{name}/booting"
POWER_ON_EVENT = "power_on"


def node_boot_token(secret: str, name: str) -> str:
    """Node ``name``'s token, which its boot report carries: :func:`~rpiaas.auth.node_token`."""
    return node_token(secret, name)


def _same_address(remote: str | None, address: str | None) -> bool:
    if remote is None or address is None:
        return False
    try:
        ip = ipaddress.ip_address(remote)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack listener sees ::ffff:10.0.0.11
        return ip == ipaddress.ip_address(address)
    except ValueError:
        return False


def _refusal(request: web.Request, entry: NodeEntry) -> str | None:
    """Why the report is not the node's, or None if it carries its token from its address."""
    expected = request.app[NODE_TOKENS].get(entry.name)
    given = bearer(request)
    if expected is None:
        return "this master has no node secret"
    if given is None or not same_token(given, expected):
        return "not with the node's token"
    if not _same_address(request.remote, entry.node.address):
        return f"not from the node's address ({entry.node.address})"
    return None


async def booted(request: web.Request) -> web.Response:
    """A node reports that it has booted (its address or its boot token; see the module)."""
    name = request.match_info["name"]
    entry = request.app[REGISTRY].get(name)
    if entry is None:
        log.warning("boot report for unknown node %r from %s refused", name, request.remote)
        return json_error(404, f"no such node: {name}")
    why = _refusal(request, entry)
    if why is not None:
        log.warning("boot report for %s from %s refused: %s", name, request.remote, why)
        return json_error(403, f"boot report for {name} refused: it must come from the node's "
                               f"address with the node's token")
    via = "token"
    data = await body(request, ("uptime_s",), ("uptime_s",))
    boot_s = body_number(data, "uptime_s")
    now = time.time()
    store = request.app[STORE]
    data_out: dict[str, object] = {"boot_s": boot_s, "address": request.remote, "via": via}
    if entry.booting_since_s is not None:
        data_out["power_on_s"] = round(now - entry.booting_since_s, 6)
        entry.booting_since_s = None
    await asyncio.to_thread(store.record_event, name, now, BOOT_EVENT, data_out)
    entry.boot_s = boot_s
    if entry.power_state is not None:
        entry.power_state = "on"
    runs = request.app.get(RUNS)
    if runs is not None:
        runs.booted(name, now)  # a live run that switched it on: booted now
    if entry.online is not True:
        # not set_online(): that would count the report as a successful poll; the polls
        # that failed while it was off count no more (nor one begun before its agent listened)
        entry.online, entry.changed_s, entry.reason = True, now, ""
        entry.failed_polls = 0
        await asyncio.to_thread(store.record_state, name, now, True, BOOT_STATE_REASON)
    log.info("%s booted in %.2f s (reported from %s, by %s)", name, boot_s, request.remote, via)
    return web.json_response({"node": name, "time_s": now, "boot_s": boot_s, "via": via})


async def booting(request: web.Request) -> web.Response:
    """The node was just powered on (master token): booting until it reports."""
    name = request.match_info["name"]
    entry = request.app[REGISTRY].get(name)
    if entry is None:
        return json_error(404, f"no such node: {name}")
    await body(request, ())
    now = time.time()
    entry.booting_since_s = now
    await asyncio.to_thread(request.app[STORE].record_event, name, now, POWER_ON_EVENT, {})
    log.info("%s is booting", name)
    return web.json_response(entry.to_json())


def setup_boot_routes(app: web.Application) -> None:
    app.router.add_post(BOOT_PATH, booted)
    app.router.add_post(BOOTING_PATH, booting)
