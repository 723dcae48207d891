"""The live shell: a scenario replayed on real node agents through the control plane.

:class:`LiveRun` (:mod:`.shell`) is the counterpart of the simulation: the
same control plane and policy, fed with events from the agents in wall-clock
time, its actions carried out as HTTP calls to the agents
(:class:`AgentClient`).  :class:`RunManager` keeps the runs of one master;
the master service (:mod:`rpiaas.master`) hosts them.  Needs aiohttp.
"""

from __future__ import annotations

from .agent_client import AgentClient, AgentError
from .options import LiveOptions, RunState
from .run_manager import RunManager
from .shell import LiveRun

__all__ = ["AgentClient", "AgentError", "LiveOptions", "LiveRun", "RunManager", "RunState"]
