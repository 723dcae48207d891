"""Calibration against a real run: ``cpu`` tasks on a local testbed, fitted, simulated again.

The local testbed's agents run the tasks' real work on this machine's CPUs
(shared by the three agents), so their runtimes are nothing like a Pi 4B's:
the uncalibrated simulation is far off, and the calibrated one must be closer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rpiaas.analysis.calibrate import calibrate, format_calibration
from rpiaas.analysis.compare import compare_runs
from rpiaas.client.client import run_live
from rpiaas.scenario import load_scenario
from rpiaas.testbed.local import start_local_testbed

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SCENARIO = {
    "name": "cpu-calibration", "seed": 5, "sample_interval_s": 1,
    "cluster": {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 3,
                              "type": "rpi4b"}]},
    "workload": {"generator": {"count": 24, "arrival": {"rate_per_s": 1.0}, "cores": 1,
                               "mem_mb": {"dist": "uniform", "low": 64, "high": 256},
                               "work_core_s": {"dist": "uniform", "low": 2, "high": 12}}},
    "policy": "round_robin",
}


def test_calibrated_simulation_is_closer_to_the_testbed(tmp_path: Path) -> None:
    path = tmp_path / "cpu.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    scenario = load_scenario(path)
    with start_local_testbed(tmp_path / "tb", 3, poll_interval_s=0.5) as tb:
        _, live = run_live(scenario, tb.master_url, tb.master_token, tmp_path / "live",
                           task_kind="cpu", quiet=True)
    record = json.loads((live / "run.json").read_text())
    assert record["mode"] == "live" and record["live"]["task_kind"] == "cpu"
    assert record["summary"]["completed"] == 24

    result = calibrate(live, tmp_path / "calibrated.yaml", keep_runs=tmp_path / "sims")
    report = format_calibration(result)
    print(report)  # the figures, for the record (pytest -s)
    fit = result.fits["rpi4b"]
    assert fit.tasks == 24 and fit.speed > 0 and fit.start_overhead_s >= 0
    assert result.error_before_s is not None and result.error_after_s is not None
    assert result.error_after_s < result.error_before_s
    # the same figures, as rpiaas compare shows them
    before = compare_runs([live, tmp_path / "sims" / "before"])["pairs"][0]["tasks"]
    after = compare_runs([live, tmp_path / "sims" / "after"])["pairs"][0]["tasks"]
    assert before["response_diff_s"]["mean_abs"] == pytest.approx(result.error_before_s)
    assert after["response_diff_s"]["mean_abs"] == pytest.approx(result.error_after_s)
    (tmp_path / "figures.json").write_text(json.dumps(
        {"before_s": result.error_before_s, "after_s": result.error_after_s,
         "speed": fit.speed, "start_overhead_s": fit.start_overhead_s}))
