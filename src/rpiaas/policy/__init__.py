"""The policy API: hook specifications, the :class:`Policy` base class, the plugin manager
and the built-in policies (:mod:`rpiaas.policy.builtin`, one module each)."""

from __future__ import annotations

from .base import SKIP, Policy, PolicyError, PolicyParamError, PowerPlan, Reservation, hookimpl, job_nodes
from .plugins import ENTRY_POINT_GROUP, available_policies, get_plugin_manager, get_policy

__all__ = [
    "ENTRY_POINT_GROUP",
    "SKIP",
    "Policy",
    "PolicyError",
    "PolicyParamError",
    "PowerPlan",
    "Reservation",
    "available_policies",
    "get_plugin_manager",
    "get_policy",
    "hookimpl",
    "job_nodes",
]
