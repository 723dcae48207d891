"""Testbeds on this machine: a master and N node agents on loopback, to try live mode without Pis.

:func:`~.local.start_local_testbed` starts one (``rpiaas testbed up --local N``)
and returns a :class:`~.local.LocalTestbed`; :mod:`.plan` says what each node
gets of this machine, :mod:`.procs` keeps the processes.
"""

from __future__ import annotations

from .local import LocalTestbed, load_testbed, start_local_testbed, stop_testbed
from .plan import TestbedError, TestbedRunning

__all__ = ["LocalTestbed", "TestbedError", "TestbedRunning", "load_testbed", "start_local_testbed",
           "stop_testbed"]
