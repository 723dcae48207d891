"""rpiaas-agent: the node agent of the rpiaas testbed, one per Raspberry Pi.

It serves, on port 8081 by default, what the master needs to know about the
node: ``GET /ping``, ``GET /info`` (JSON) and ``GET /metrics`` (Prometheus
text), and control endpoints behind a bearer token: ``GET /config``, and
``/tasks``, the workloads that the master places on the node.  It depends on aiohttp
and psutil only, and runs on Python >= 3.9 (Raspberry Pi OS bullseye and later).

The public API is :func:`create_app` and its :class:`Config`; the command is
``rpiaas-agent`` (:func:`rpiaas_agent.cli.main`).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .app import create_app
from .config import Config, ConfigError, load_config

__all__ = ["Config", "ConfigError", "__version__", "create_app", "load_config"]
