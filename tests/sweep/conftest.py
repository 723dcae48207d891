"""The scenario the sweep tests run: small, quick, and with a seed of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

SCENARIO = """\
name: tiny
seed: 3
event_log: false
cluster:
  clusters:
    - {domain: lab.test, prefix: 10.0.1, count: 4, type: rpi4b}
workload:
  generator:
    count: 200
    arrival: {rate_per_s: 0.02}
    cores: {dist: choice, values: [1, 2, 4]}
    mem_mb: 256
    work_core_s: {dist: exponential, mean: 300}
policy: best_fit
"""


@pytest.fixture()
def scenario(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(SCENARIO)
    return p
