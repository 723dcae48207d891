"""rpiaas calibrate fits a node type's link (bandwidth and pull latency) from measured image pulls."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rpiaas.analysis.calibrate import calibrate, format_calibration
from rpiaas.analysis.linkfit import Pull, pull_bursts
from rpiaas.sim import simulate

from ..helpers import scenario

HIDDEN_LINK_MBPS = 37.0  # the "testbed"'s link, which the calibration is not told
HIDDEN_LATENCY_S = 1.5  # and the fixed part of each of its pulls
IMAGES = {"a:1": {"layers": [{"id": "base", "size_mb": 30}, {"id": "a", "size_mb": 12}]},
          "b:1": {"layers": [{"id": "base", "size_mb": 30}, {"id": "b", "size_mb": 25}]},
          "c:1": {"layers": [{"id": "c", "size_mb": 8}]}}


def _doc(link: dict[str, Any], count: int = 60) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    tasks = [{"id": i, "arrival_s": float(i * 7), "cores": 1, "mem_mb": 64,
              "work_core_s": float(rng.uniform(5, 20)), "image": str(rng.choice(list(IMAGES)))}
             for i in range(count)]
    return {"name": "pulls", "seed": 1, "policy": "random",
            "cluster": {"node_types": {"pi": {"base": "rpi3b", "image_cache_mb": 10000, **link}},
                        "clusters": [{"domain": "c.test", "prefix": "10.0.1", "count": 4, "type": "pi"}]},
            "images": IMAGES, "workload": {"tasks": tasks}}


def _noisy_pulls(run: Path, rel: float, seed: int = 0) -> int:
    """Change each measured pull by seeded relative noise (and its task's end with it)."""
    rng = np.random.default_rng(seed)
    with open(run / "tasks.csv", newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    ip, ie = head.index("pull_s"), head.index("end_s")
    pulled = 0
    for r in rows[1:]:
        if r[ip] and float(r[ip]) > 0:
            new = float(r[ip]) * (1 + rel * rng.standard_normal())
            r[ie] = repr(float(r[ie]) + new - float(r[ip]))
            r[ip] = repr(new)
            pulled += 1
    with open(run / "tasks.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return pulled


def test_bursts_take_overlapping_pulls_on_a_node_together() -> None:
    sizes = {"x": 10.0, "y": 5.0, "z": 1.0}
    pulls = [Pull("n0", 0.0, 2.0, frozenset({"x"})), Pull("n0", 1.0, 2.0, frozenset({"x", "y"})),
             Pull("n0", 3.0, 1.0, frozenset({"z"})), Pull("n1", 0.5, 1.0, frozenset({"y"}))]
    assert pull_bursts(pulls, sizes) == [("n0", 15.0, 3.0, 2), ("n0", 1.0, 1.0, 1), ("n1", 5.0, 1.0, 1)]


@pytest.mark.parametrize("latency_s", [0.0, HIDDEN_LATENCY_S])
def test_calibrate_recovers_a_hidden_link_from_measured_pulls(tmp_path: Path, latency_s: float) -> None:
    run = tmp_path / "testbed"
    simulate(scenario(_doc({"link_mbps": HIDDEN_LINK_MBPS, "pull_latency_s": latency_s})), run)
    assert _noisy_pulls(run, rel=0.01) >= 10
    given = tmp_path / "scenario.yaml"
    given.write_text(yaml.safe_dump(_doc({})))  # rpi3b's own link, 94 Mbit/s, and no latency
    result = calibrate(run, tmp_path / "calibrated.yaml", scenario=given)
    fit = result.fits["pi"]
    assert fit.link is not None and fit.link.link_mbps == pytest.approx(HIDDEN_LINK_MBPS, rel=0.02)
    # the fixed part: within what 1 % noise on pulls of several seconds hides
    assert fit.link.latency_s == pytest.approx(latency_s, abs=0.1)
    # the speed is fitted on the run after the pull: rpi3b's own, no start overhead
    assert fit.speed == pytest.approx(0.45, rel=0.02) and fit.start_overhead_s < 0.05
    written = yaml.safe_load((tmp_path / "calibrated.yaml").read_text())["cluster"]["node_types"]["pi-calibrated"]
    assert written["link_mbps"] == pytest.approx(HIDDEN_LINK_MBPS, rel=0.02)
    assert written["pull_latency_s"] == pytest.approx(latency_s, abs=0.1)
    assert "pull_latency_s" in written["source"]
    assert result.error_before_s is not None and result.error_after_s is not None
    assert result.error_after_s < result.error_before_s / 5
    text = format_calibration(result)
    assert "pi: link 3" in text and "measured image pulls" in text
    assert f"pull latency {fit.link.latency_s:.3g} s" in text
