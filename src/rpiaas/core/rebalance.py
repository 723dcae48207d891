"""What a policy does to running tasks and to nodes: rebalance and power.

``rpiaas_rebalance`` answers migrations and kills, ``rpiaas_power`` a
:class:`~rpiaas.policy.PowerPlan`.  :class:`PolicyMoves` checks each (a move
to a node without room, of a task no longer running, is dropped and logged,
not carried out), updates the ledger and returns the actions for the shell.
The control plane calls it after its scheduling pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ..model import Node, PowerState, Task, TaskState
from ..policy.base import PolicyError, PowerPlan
from ..policy.plugins import HookCall
from .decisions import DecisionTrace
from .events import Action, Kill, Migrate, PowerOff, PowerOn, WakeAt
from .ledger import Ledger
from .placement import Placement
from .view import ClusterView

__all__ = ["POLICY_REASON", "PolicyMoves"]

POLICY_REASON = "policy"  # the reason of a task killed by rpiaas_rebalance

_ON = int(PowerState.ON)


class PolicyMoves:
    """Migrations, kills and power changes a policy asks for, checked and carried out.

    :param write: writes one event-log record.
    :param release: gives a task's resources back (the control plane's, which also
        wakes a stuck scheduling pass).
    :param on_final: called with a task that was killed.
    :param tally: counts kills (``kills_walltime``, ``kills_policy``) and ``power_ons``: the
        control plane's :meth:`~rpiaas.core.control.ControlPlane.run_figures`.
    """

    def __init__(self, nodes: tuple[Node, ...], view: ClusterView, ledger: Ledger,
                 placement: Placement, rebalance_hook: HookCall, power_hook: HookCall,
                 trace: DecisionTrace | None, write: Callable[[dict[str, object]], None],
                 release: Callable[[Task, float], None], on_final: Callable[[Task], None],
                 tally: Counter[str] | None = None) -> None:
        self.nodes = nodes
        self.tally: Counter[str] = tally if tally is not None else Counter()
        self.view = view
        self._ledger = ledger
        self._placement = placement
        self._h_rebalance = rebalance_hook
        self._h_power = power_hook
        self._trace = trace
        self._write = write
        self._release = release
        self._on_final = on_final
        self._running, self._running_on, self._st = ledger.running, ledger.running_on, ledger.state_list

    def rebalance(self, now: float, actions: list[Action]) -> None:
        """Ask ``rpiaas_rebalance``; carry out (or drop, saying why) each move and kill."""
        for answer in self._h_rebalance.all(view=self.view, now=now):
            for act in answer:
                if isinstance(act, Migrate):
                    self._migrate(act, now, actions)
                elif isinstance(act, Kill):
                    self._kill(act.task, now, actions)
                else:
                    raise PolicyError(f"rpiaas_rebalance returned {act!r}; expected Migrate or Kill")

    def _migrate(self, act: Migrate, now: float, actions: list[Action]) -> None:
        task = act.task
        dst = self._placement.node_index(act.node, "rpiaas_rebalance", f"moved task {task.id} to")
        if task.nodes != 1:
            raise PolicyError(f"{self._placement.policies('rpiaas_rebalance')}: rpiaas_rebalance moved "
                              f"task {task.id}, a job over {task.nodes} nodes: a job's parts are not moved")
        if task.id not in self._running or dst == task.node or not self.view.fits_node(task, dst):
            if self._trace is not None:
                rec = {"t": now, "decision": "migrate", "task": task.id, "hook": "rebalance",
                       "chosen": self._trace.name(dst)}
                if task.id not in self._running:
                    rec["reason"] = "not running"
                else:
                    rec.update(reason="already there" if dst == task.node else "no room",
                               **{"from": self.nodes[task.node].name})
                self._trace.emit(rec)
            self._write({"t": now, "act": "migrate", "task": task.id, "dropped": True})
            return
        src = task.node
        if self._trace is not None:
            self._trace.emit({"t": now, "decision": "migrate", "task": task.id, "hook": "rebalance",
                        "chosen": self.nodes[dst].name, "from": self.nodes[src].name})
        self._release(task, now)
        task.est_end_s = now + self.view.estimate_s(task, dst)  # (before: the ledger orders by it)
        self._ledger.reserve(task, dst, now)
        task.epoch += 1
        self._write({"t": now, "act": "migrate", "task": task.id,
                     "from": self.nodes[src].name, "node": self.nodes[dst].name})
        actions.append(Migrate(task, dst, src))

    def _kill(self, task: Task, now: float, actions: list[Action]) -> None:
        if self._trace is not None:
            rec = {"t": now, "decision": "kill", "task": task.id, "hook": "rebalance"}
            if task.id not in self._running:
                rec["reason"] = "not running"
            else:
                rec["from"] = self.nodes[task.node].name
            self._trace.emit(rec)
        if task.id not in self._running:
            self._write({"t": now, "act": "kill", "task": task.id, "dropped": True})
            return
        self.kill(task, now, actions, POLICY_REASON)

    def kill(self, task: Task, now: float, actions: list[Action], reason: str) -> None:
        """Kill running ``task`` at ``now`` for ``reason`` (the one home of a kill, the policy's
        or a walltime's): its resources back, state ``killed``, ``Kill`` for the shell, its
        row due.  The log names the reason of any kill but the policy's own."""
        self._release(task, now)
        task.epoch += 1
        task.state = TaskState.KILLED
        task.end_s = now
        task.reason = reason
        self.tally["kills_" + reason] += 1
        record: dict[str, object] = {"t": now, "act": "kill", "task": task.id}
        if reason != POLICY_REASON:
            record["reason"] = reason
        self._write(record)
        actions.append(Kill(task))
        self._on_final(task)

    def power(self, now: float, actions: list[Action]) -> int:
        """Ask ``rpiaas_power``; switch nodes on and off.  Returns how many began booting."""
        plan = self._h_power.first(view=self.view, now=now)
        if plan is None:
            return 0
        booting = 0
        if not isinstance(plan, PowerPlan):
            raise PolicyError(f"rpiaas_power returned {plan!r}; expected a PowerPlan")
        for n in plan.on:
            n = self._placement.node_index(n, "rpiaas_power", "switched on")
            if self._st[n] != PowerState.OFF:
                continue
            self._ledger.set_state(n, int(PowerState.BOOTING), now)
            booting += 1
            self.tally["power_ons"] += 1
            self._write({"t": now, "act": "power_on", "node": self.nodes[n].name})
            actions.append(PowerOn(n))
        for n in plan.off:
            n = self._placement.node_index(n, "rpiaas_power", "switched off")
            if self._st[n] != _ON or self._running_on[n]:
                continue
            self._ledger.take_off(n, int(PowerState.OFF), now)
            self._write({"t": now, "act": "power_off", "node": self.nodes[n].name})
            actions.append(PowerOff(n))
        if plan.wake_at_s is not None and plan.wake_at_s > now:
            actions.append(WakeAt(float(plan.wake_at_s)))
        return booting
