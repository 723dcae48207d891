"""The live testbed's master: polls node agents, keeps their history, serves a JSON API.

``rpiaas master CONFIG.yaml`` runs it; :func:`create_app` builds it for tests
and embedding.  Needs aiohttp (installed with the agent).
"""

from __future__ import annotations

from .app import create_app
from .client import AgentClient, AgentError
from .config import MasterConfig, load_master_config
from .poller import Poller, sample_from_info
from .registry import NodeEntry, Registry

__all__ = [
    "AgentClient",
    "AgentError",
    "MasterConfig",
    "NodeEntry",
    "Poller",
    "Registry",
    "create_app",
    "load_master_config",
    "sample_from_info",
]
