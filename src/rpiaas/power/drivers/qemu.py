"""The ``qemu`` driver: a virtual Pi, a QEMU VM that boots over the network.

``off`` asks the VM to shut down cleanly (QMP ``system_powerdown``, the power
button, through the VM's QMP socket), waits ``timeout_s`` for QEMU to end, then
asks QEMU to quit (QMP ``quit``) and at last ends its process (SIGTERM, then
SIGKILL).  ``on`` starts a new VM with the recorded command line: it boots
from the network as ``rpiaas testbed up --virtual`` booted it, from the same
kernel, initramfs, tap device and MAC, and its agent reports the boot to the
master.  ``state`` is whether that QEMU runs.

``state_dir`` is written by the virtual testbed, as for the ``process`` driver
(:mod:`.process`), with the QMP socket's path (``qmp``) in ``NODE.json``.  The
master runs in the testbed's network namespace, so the VM it starts is
plugged into the same bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from ...model import Node, PowerSpec
from ..base import PowerError, SwitchState, register_driver
from .process import NodeProcess, read_command, running_pid

__all__ = ["QemuDriver", "qmp"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
QMP_TIMEOUT_S = 3.0


async def qmp(socket_path: str, command: str) -> dict[str, Any]:
    """Send one QMP ``command`` (after the capabilities handshake); QEMU's answer."""
    async def talk() -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(socket_path)
        try:
            async def answer() -> dict[str, Any]:
                while True:  # asynchronous events come on the same stream: skip them
                    line = await reader.readline()
                    if not line:
                        raise PowerError("QMP: the connection closed")
                    msg = json.loads(line)
                    if "return" in msg or "error" in msg or "QMP" in msg:
                        return dict(msg)

            await answer()  # the greeting
            for cmd in ("qmp_capabilities", command):
                writer.write(json.dumps({"execute": cmd}).encode() + b"\n")
                await writer.drain()
                msg = await answer()
                if "error" in msg:
                    raise PowerError(f"QMP {cmd}: {msg['error'].get('desc', msg['error'])}")
            return msg
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    try:
        return await asyncio.wait_for(talk(), QMP_TIMEOUT_S)
    except (OSError, ValueError, asyncio.TimeoutError) as e:
        raise PowerError(f"QMP {command} on {socket_path}: {type(e).__name__} {e}".strip()) \
            from None


class QemuDriver:
    """Switches a virtual Pi (see the module)."""

    name = "qemu"

    def __init__(self, node: Node, spec: PowerSpec) -> None:
        state_dir = spec.get("state_dir")
        if not isinstance(state_dir, str) or not state_dir:
            raise PowerError(f"{node.name}: power driver {spec.driver!r} needs state_dir")
        self.node = node.name
        self.timeout_s = float(spec.get("timeout_s", DEFAULT_TIMEOUT_S))
        self.proc = NodeProcess(node.name, Path(state_dir), self.timeout_s)

    async def on(self) -> None:
        if running_pid(self.proc.state_dir, self.node) is None:
            qmp_path = read_command(self.proc.state_dir, self.node).get("qmp")
            if isinstance(qmp_path, str):
                with contextlib.suppress(FileNotFoundError):
                    Path(qmp_path).unlink()  # the ended VM's
            self.proc.start()

    async def off(self) -> None:
        current = running_pid(self.proc.state_dir, self.node)
        if current is None:
            return
        qmp_path = read_command(self.proc.state_dir, self.node).get("qmp")
        if isinstance(qmp_path, str):
            for command, wait_s in (("system_powerdown", self.timeout_s), ("quit", 5.0)):
                try:
                    await qmp(qmp_path, command)
                except PowerError as e:
                    log.info("%s: %s", self.node, e)
                    continue
                if await self.proc.gone(*current, wait_s):
                    log.info("%s: the VM ended after QMP %s", self.node, command)
                    return
        await self.proc.end(*current)
        log.info("%s: the VM's QEMU was ended by signal", self.node)

    async def state(self) -> SwitchState:
        return SwitchState.ON if running_pid(self.proc.state_dir, self.node) else SwitchState.OFF


@register_driver("qemu")
def _qemu(node: Node, spec: PowerSpec) -> QemuDriver:
    return QemuDriver(node, spec)
