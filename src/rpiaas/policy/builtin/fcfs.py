"""First come, first served: the queue in arrival order, strictly."""

from __future__ import annotations

from ..base import Policy

NAME = "fcfs"


class FCFS(Policy):
    """Serve the queue in arrival order; a task that cannot start blocks those behind it.

    This is the control plane's own behaviour when no queue hook is
    implemented; the policy exists so scenarios can name it.
    """

    NAME = NAME
    KINDS = ("queue",)
