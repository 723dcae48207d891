"""``command``: a user's program switches the node: ``CMD on|off|status NODE``.

``command`` is the program and its first arguments (split as a shell would,
but run without one); the driver appends the action and the node's name.
``on`` and ``off`` succeed when it exits 0; ``status`` must exit 0 and print
``on`` or ``off`` (the first word of its output, any case).  Anything else,
or no end within ``timeout_s`` (default 30 s; its process group is then
killed), is a :class:`~rpiaas.power.base.PowerError` quoting the last line
it wrote, redacted.
"""

from __future__ import annotations

import shlex

from ...model import Node, PowerSpec
from ..base import PowerError, SwitchState, register_driver
from ..calls import ProgramResult, failure, run_checked

__all__ = ["DEFAULT_TIMEOUT_S", "CommandDriver"]

DEFAULT_TIMEOUT_S = 30.0


class CommandDriver:
    """Runs the user's power command for one node."""

    name = "command"

    def __init__(self, node: Node, spec: PowerSpec) -> None:
        self.node = node.name
        self.argv = shlex.split(str(spec.get("command")))
        self.timeout_s = float(spec.get("timeout_s", DEFAULT_TIMEOUT_S))
        self.secrets = spec.secrets()

    async def run(self, action: str) -> ProgramResult:
        return await run_checked([*self.argv, action, self.node], self.timeout_s,
                                 lambda why: self.fail(action, why))

    def fail(self, action: str, why: str) -> PowerError:
        return failure(self.node, self.name, action, why, self.secrets)

    async def on(self) -> None:
        await self.run("on")

    async def off(self) -> None:
        await self.run("off")

    async def state(self) -> SwitchState:
        done = await self.run("status")
        words = done.out.split()
        word = words[0].lower() if words else ""
        if word not in ("on", "off"):
            raise self.fail("status", f"expected on or off on its output, got {word or 'nothing'!r}")
        return SwitchState(word)


@register_driver("command")
def _command(node: Node, spec: PowerSpec) -> CommandDriver:
    return CommandDriver(node, spec)
