"""A live run's simulated twin: the same scenario, seed and policy, simulated.

The master hands :func:`simulate_twin` to each live run (the live shell
imports nothing of the simulation shell); when the run ends it is called, and
its figures go into the run's ``fidelity.json`` (:mod:`rpiaas.rundir.fidelity`).
"""

from __future__ import annotations

from typing import Any

from ..rundir.fidelity import Outcome, outcome
from ..scenario import Scenario
from .engine import Simulation

__all__ = ["simulate_twin"]


def simulate_twin(scenario: Scenario) -> tuple[dict[str, Any], dict[int, Outcome]]:
    """Simulate ``scenario`` (no run directory); its summary and every task's outcome."""
    names = [n.name for n in scenario.cluster.nodes]
    outcomes: dict[int, Outcome] = {}
    sim = Simulation(scenario, None, on_task=lambda t: outcomes.__setitem__(t.id, outcome(t, names)))
    return sim.run(), outcomes
