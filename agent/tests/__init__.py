"""Tests of the node agent (``agent/``, the ``rpiaas_agent`` package)."""
