"""Small scenarios and runs shared by the command tests (in-process through rpiaas.cli.main)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate

TINY = """\
name: tiny
seed: 3
cluster: {clusters: [{domain: c.test, prefix: 10.0.1, count: 2, type: rpi4b}]}
workload:
  generator: {count: 20, arrival: {rate_per_s: 0.5}, cores: 1, mem_mb: 64, work_core_s: 10}
policy: first_fit
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A scenario of 20 tasks on two nodes (a run takes milliseconds)."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture
def two_runs(tmp_path: Path, tiny: Path) -> tuple[Path, Path]:
    """The tiny scenario simulated under two policies."""
    a = simulate(load_scenario(tiny), tmp_path / "a")[1]
    b = simulate(load_scenario(tiny, policy="best_fit", seed=4), tmp_path / "b")[1]
    assert a is not None and b is not None
    return a, b
