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

import asyncio
import shlex

from ...model import Node, PowerSpec
from ..base import PowerError, SwitchState, register_driver
from ..calls import ProgramResult, failure, run_program

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
        try:
            done = await run_program([*self.argv, action, self.node], self.timeout_s)
        except asyncio.TimeoutError:
            raise self.fail(action, f"no end within {self.timeout_s:g} s (killed)") from None
        except OSError as e:
            raise self.fail(action, f"cannot run {self.argv[0]}: {e.strerror or e}") from None
        if done.code != 0:
            raise self.fail(action, f"exit code {done.code}: {done.last_words()}")
        return done

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
