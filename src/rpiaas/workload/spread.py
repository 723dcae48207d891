"""How a parallel job asked as ``procs: N`` is split into parts, one per node.

A job that spans nodes is rigid: its parts start together and end together
(:mod:`rpiaas.core.jobs`).  A scenario asks for one either as ``nodes: K`` (``cores`` and
``mem_mb`` on each of K nodes) or as ``procs: N`` with a ``spread`` rule that decides the
parts from the node width (``cores``, the most processes a node takes):

- ``pack`` (the default): as few nodes as can hold N, each filled to the width, the last
  one with the rest (Slurm's ``--ntasks=N`` on nodes of that width);
- ``spread``: one process per node, N nodes of one core (``--ntasks-per-node=1``);
- ``exclusive``: as ``pack``, but every part takes its whole node's width (the rest of a
  node stays idle); the work is still split over the N processes.
"""

from __future__ import annotations

__all__ = ["SPREADS", "split_procs"]

SPREADS = ("pack", "spread", "exclusive")


def split_procs(procs: int, spread: str, width: int) -> tuple[int, ...]:
    """The cores of each part (largest first) of a job of ``procs`` processes split by the
    rule ``spread`` (:data:`SPREADS`) on nodes of ``width`` cores."""
    if procs < 1 or width < 1:
        raise ValueError(f"procs and width must be at least 1, got {procs} and {width}")
    if spread == "spread":
        return (1,) * procs
    full, rest = divmod(procs, width)
    if spread == "exclusive":
        return (width,) * (full + (1 if rest else 0))
    if spread == "pack":
        return (width,) * full + ((rest,) if rest else ())
    raise ValueError(f"unknown spread rule {spread!r} (one of {', '.join(SPREADS)})")
