"""Checks a policy's own tests can call: that a declared ``index_rule`` is true.

A policy that declares :attr:`Policy.index_rule <rpiaas.policy.base.Policy.index_rule>`
promises that its ``rpiaas_place`` answers exactly that search of the free
index, and the control plane then asks the index instead of the hook.  A wrong
promise would change the schedule silently; :func:`check_index_rule` puts the
two side by side on random clusters (nodes of several sizes, some of them off)
while tasks come and go, and names the first disagreement.
"""

from __future__ import annotations

import numpy as np

from ..model import Node, NodeType, PowerState, Task
from ..policy.base import Policy
from .ledger import Ledger
from .view import ClusterView

__all__ = ["check_index_rule"]


def check_index_rule(policy: Policy | type[Policy], *, clusters: int = 40, tasks: int = 60,
                     seed: int = 0) -> int:
    """Compare ``policy``'s ``rpiaas_place`` with the index search it declares.

    :param policy: a policy instance, or a class that takes no parameters.
    :param clusters: how many random clusters (1 to 16 nodes of 1 to 8 cores, 256 to 8192 MB).
    :param tasks: tasks offered on each, one at a time; a placed one holds its node's
        resources until it is released at random later.
    :param seed: the clusters' and tasks' seed.
    :returns: how many placements were compared.
    :raises AssertionError: naming the cluster, the task and both answers, at the first
        disagreement (or if the policy declares no rule).
    """
    cls = policy if isinstance(policy, type) else type(policy)
    instance = cls() if isinstance(policy, type) else policy
    name = cls.NAME or cls.__name__
    rule = cls.declared_index_rule()
    if rule is None:
        raise AssertionError(f"policy {name!r} declares no index_rule for its rpiaas_place")
    rng = np.random.default_rng(seed)
    compared = 0
    for c in range(clusters):
        sizes = [(int(rng.integers(1, 9)), int(rng.choice([256, 512, 1024, 2048, 4096, 8192])))
                 for _ in range(int(rng.integers(1, 5)))]
        n = int(rng.integers(1, 17))
        nodes = []
        for i in range(n):
            cores, mem = sizes[int(rng.integers(len(sizes)))]
            kind = NodeType(f"t{cores}x{mem}", cores, mem, 1.0, 2.0, 5.0, 0.1, 10.0, 2.0)
            nodes.append(Node(i, f"n{i}", "check.test", kind))
        states = [int(PowerState.OFF) if rng.random() < 0.15 else int(PowerState.ON) for _ in range(n)]
        ledger = Ledger(nodes, states)
        view = ClusterView(tuple(nodes), ledger)
        for k in range(tasks):
            task = Task(k, 0.0, int(rng.integers(1, 9)), int(rng.integers(64, 8193)), 10.0)
            answer = instance.rpiaas_place(task=task, view=view)  # type: ignore[attr-defined]
            indexed = getattr(ledger.index, rule)(task.cores, task.mem_mb)
            compared += 1
            if answer != indexed:
                raise AssertionError(
                    f"policy {name!r} declares index_rule {rule!r}, but on random cluster {c} "
                    f"(seed {seed}) task {k} ({task.cores} cores, {task.mem_mb} MB) its "
                    f"rpiaas_place answered {answer!r} and the index {indexed!r}")
            # a parallel job of the same parts over 2 to 4 nodes: the first nodes in the
            # rule's order, ties by lowest index (not started: the cluster stays as it is)
            job = Task(-k - 1, 0.0, task.cores, task.mem_mb, 10.0, nodes=int(rng.integers(2, 5)))
            job_answer = instance.rpiaas_place(task=job, view=view)  # type: ignore[attr-defined]
            job_indexed = getattr(ledger.index, f"{rule}_nodes")(job.nodes, job.cores, job.mem_mb)
            compared += 1
            if (None if job_answer is None else tuple(job_answer)) != job_indexed:
                raise AssertionError(
                    f"policy {name!r} declares index_rule {rule!r}, but on random cluster {c} "
                    f"(seed {seed}) a job over {job.nodes} nodes of {job.cores} cores, {job.mem_mb} MB "
                    f"each, its rpiaas_place answered {job_answer!r} and the index {job_indexed!r}")
            if indexed is not None:
                ledger.reserve(task, indexed, 0.0)
            if ledger.running and rng.random() < 0.4:
                running = list(ledger.running.values())
                ledger.release(running[int(rng.integers(len(running)))], 0.0)
    return compared
