"""Talking to a testbed master from the command line or a notebook."""

from __future__ import annotations

from .client import MasterError, run_live

__all__ = ["MasterError", "run_live"]
