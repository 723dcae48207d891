"""The testbed's master service: polls node agents, keeps their history, serves a JSON API.

It hosts the live runs (:mod:`rpiaas.live`) but holds none of their logic.
``rpiaas master CONFIG.yaml`` runs it; :func:`create_app` builds it for tests
and embedding.  Needs aiohttp (installed with the agent).
"""

from __future__ import annotations

from .app import create_app
from .config import MasterConfig, load_master_config
from .poller import Poller, sample_from_info
from .registry import NodeEntry, Registry

__all__ = [
    "MasterConfig",
    "NodeEntry",
    "Poller",
    "Registry",
    "create_app",
    "load_master_config",
    "sample_from_info",
]
