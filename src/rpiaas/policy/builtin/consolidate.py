"""Energy-aware consolidation: pack tasks, switch idle nodes off, boot them when needed."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ...model import PowerState, Task, part_cores
from ..base import Policy, PowerPlan, hookimpl
from .best_fit import tightest, tightest_nodes

if TYPE_CHECKING:
    from ...core.view import ClusterView

NAME = "consolidate"


class Consolidate(Policy):
    """Pack tasks on few nodes, switch nodes off after an idle timeout, boot them when the queue needs them.

    :param idle_timeout_s: how long a node must idle before it is switched off.
    :param min_on: nodes kept on (or booting) at all times.
    """

    NAME = NAME

    def __init__(self, idle_timeout_s: float = 300.0, min_on: int = 1) -> None:
        if idle_timeout_s < 0:
            raise ValueError("idle_timeout_s must be >= 0")
        if min_on < 0:
            raise ValueError("min_on must be >= 0")
        self.idle_timeout_s = idle_timeout_s
        self.min_on = min_on

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> int | list[int] | None:
        if task.nodes != 1:
            return tightest_nodes(task, view)
        return tightest(task, view)

    @hookimpl
    def rpiaas_power(self, view: ClusterView, now: float) -> PowerPlan:
        state = view.state
        plan = PowerPlan()
        queue = view.queued() if view.queue_length else []
        off = np.flatnonzero(state == PowerState.OFF)
        if queue and off.size:
            # boot nodes until the cores that are free or coming cover the queue
            booting = state == PowerState.BOOTING
            on = state == PowerState.ON
            supply = int(view.cores_free[on].sum()) + int(view.cores[booting].sum())
            demand = sum(sum(part_cores(t)) for t in queue)
            head = queue[0]
            head_covered = bool((view.could_ever_fit(head) & booting).any())
            # most cores per idle watt first, then index
            ranked = sorted(off.tolist(), key=lambda n: (-view.cores[n] / view.power_idle_w[n], n))
            for n in ranked:
                if supply >= demand and head_covered:
                    break
                fits_head = bool(view.cores[n] >= head.cores and view.mem_mb[n] >= head.mem_mb)
                if supply >= demand and not fits_head:
                    continue  # enough cores coming; only the head still needs a node
                plan.on.append(int(n))
                supply += int(view.cores[n])
                head_covered = head_covered or fits_head
        # switch off nodes idle for long enough, keeping min_on
        alive = int(((state == PowerState.ON) | (state == PowerState.BOOTING)).sum())
        idle = np.flatnonzero((state == PowerState.ON) & (view.tasks == 0))
        wake = math.inf
        for n in sorted(idle.tolist(), key=lambda n: (view.idle_since_s[n], n)):
            due = float(view.idle_since_s[n]) + self.idle_timeout_s
            if alive <= self.min_on:
                break
            if due <= now:
                plan.off.append(int(n))
                alive -= 1
            else:
                wake = min(wake, due)
        if math.isfinite(wake):
            plan.wake_at_s = wake
        return plan
