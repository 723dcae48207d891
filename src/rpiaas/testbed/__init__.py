"""Testbeds on this machine, to try live mode without Pis.

:func:`~.local.start_local_testbed` starts N node agents on loopback with a
master (``rpiaas testbed up --local N``) and returns a
:class:`~.local.LocalTestbed`; :mod:`.plan` says what each node gets of this
machine, :mod:`.procs` keeps the processes, :mod:`.state` is what the testbed's
directory records (``testbed.json``).
:func:`~.virtual.start_virtual_testbed` boots N virtual Pis (QEMU arm64) over
the network in a private namespace (``sudo rpiaas testbed up --virtual N``):
:mod:`.vmplan` plans them, :mod:`.netns` keeps their network, :mod:`.relay` is
the host's way to their master.  :mod:`.registry` is the testbed's own image
registry (``testbed up --local N --registry``, ``rpiaas registry serve``) and
pushes to it (``rpiaas image push``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .local import LocalTestbed, load_testbed, start_local_testbed, stop_testbed
    from .plan import TestbedError, TestbedRunning

__all__ = ["LocalTestbed", "TestbedError", "TestbedRunning", "load_testbed", "start_local_testbed",
           "stop_testbed"]

# the names above, from their modules when first used: importing a light module of the package
# (``rpiaas.testbed.plan``, which every command's parser reads) does not import the testbed,
# the power drivers and aiohttp
_HOMES = {"LocalTestbed": "local", "load_testbed": "local", "start_local_testbed": "local",
          "stop_testbed": "local", "TestbedError": "plan", "TestbedRunning": "plan"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value
