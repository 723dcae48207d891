"""rpiaas calibrate: the start overhead in the simulator, and hidden parameters recovered from a synthetic testbed."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rpiaas.analysis.calibrate import CalibrateError, calibrate, format_calibration
from rpiaas.analysis.compare import compare_runs
from rpiaas.analysis.stats import fit_line
from rpiaas.inputs.source import InputError
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate

from ..helpers import read_tasks, scenario

# the "testbed": speeds and start overheads the calibration is not told
HIDDEN: dict[str, dict[str, Any]] = {"fast": {"base": "rpi4b", "speed": 1.37, "start_overhead_s": 1.2},
          "slow": {"base": "rpi3b", "speed": 0.52, "start_overhead_s": 1.9}}
# measurement noise on each runtime: relative (sd 0.5 %: a busy machine) plus absolute
# (sd 20 ms: timers, process scheduling)
NOISE_REL, NOISE_ABS_S = 0.005, 0.02


def _doc(types: dict[str, Any], count: int = 1500) -> dict[str, Any]:
    return {"name": "synthetic", "seed": 3, "sample_interval_s": 5,
            "cluster": {"node_types": types, "clusters": [
                {"domain": "a.test", "prefix": "10.0.1", "count": 3, "type": "fast"},
                {"domain": "b.test", "prefix": "10.0.2", "count": 3, "type": "slow"}]},
            "workload": {"generator": {"count": count, "arrival": {"rate_per_s": 0.25},
                                       "cores": {"dist": "choice", "values": [1, 2]},
                                       "mem_mb": {"dist": "uniform", "low": 64, "high": 512},
                                       "work_core_s": {"dist": "exponential", "mean": 20, "min": 1}}},
            "policy": "round_robin"}


def _add_noise(run: Path, rel: float, abs_s: float, seed: int = 0) -> None:
    """Change each task's measured runtime by seeded relative and absolute noise."""
    rng = np.random.default_rng(seed)
    with open(run / "tasks.csv", newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    i_start, i_end, i_resp = head.index("start_s"), head.index("end_s"), head.index("response_s")
    i_arr = head.index("arrival_s")
    for r in rows[1:]:
        if r[head.index("state")] != "completed":
            continue
        start, end = float(r[i_start]), float(r[i_end])
        end = start + (end - start) * (1 + rel * rng.standard_normal()) + abs_s * rng.standard_normal()
        r[i_end] = repr(end)
        r[i_resp] = repr(end - float(r[i_arr]))
    with open(run / "tasks.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run of the hidden node types with noisy runtimes, and the scenario without them."""
    base = tmp_path_factory.mktemp("synthetic")
    _, run = simulate(scenario(_doc(HIDDEN)), base / "testbed")
    assert run is not None
    _add_noise(run, NOISE_REL, NOISE_ABS_S)
    plain = base / "plain.yaml"
    plain.write_text(yaml.safe_dump(_doc({"fast": {"base": "rpi4b"}, "slow": {"base": "rpi3b"}})))
    return run, plain


# ---------------------------------------------------------------- the model
def test_start_overhead_adds_to_every_runtime(tmp_path: Path) -> None:
    doc = _doc(HIDDEN)
    doc["workload"] = {"tasks": [
        {"id": i, "arrival_s": 10.0 * i, "cores": c, "mem_mb": 100, "work_core_s": w}
        for i, (c, w) in enumerate([(1, 4.0), (2, 9.0), (1, 0.5), (2, 30.0)])]}
    _, run = simulate(scenario(doc), tmp_path / "run")
    assert run is not None
    types = {n["node"]: n["type"] for n in json.loads((run / "run.json").read_text())["nodes"]}
    for r in read_tasks(run):
        t = HIDDEN[types[r["node"]]]
        expected = t["start_overhead_s"] + float(r["work_core_s"]) / (int(r["cores"]) * t["speed"])
        assert float(r["end_s"]) - float(r["start_s"]) == pytest.approx(expected, rel=1e-12)


def test_start_overhead_defaults_to_zero_and_is_checked() -> None:
    sc = scenario(_doc({"fast": {"base": "rpi4b"}, "slow": {"base": "rpi3b"}}))
    assert {n.type.start_overhead_s for n in sc.cluster.nodes} == {0.0}
    with pytest.raises(InputError, match=r"cluster\.node_types\.fast\.start_overhead_s"):
        scenario(_doc({"fast": {"base": "rpi4b", "start_overhead_s": -1}, "slow": {"base": "rpi3b"}}))


def test_fit_line() -> None:
    x = np.array([1.0, 2.0, 4.0])
    assert fit_line(x, 0.5 + x / 2.0) == pytest.approx((0.5, 0.5))
    # a negative intercept is not a start overhead: the line goes through 0
    a, b = fit_line(x, -0.5 + x)
    assert a == 0.0 and b == pytest.approx(float(np.dot(x, x - 0.5) / np.dot(x, x)))
    assert fit_line(np.array([2.0, 2.0]), np.array([3.0, 3.0])) == (0.0, 1.5)


# ---------------------------------------------------------------- recovery
def test_recovers_hidden_parameters_within_two_percent(testbed: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    run, plain = testbed
    result = calibrate(run, tmp_path / "calibrated.yaml", scenario=plain, keep_runs=tmp_path / "sims")
    for name, hidden in HIDDEN.items():
        fit = result.fits[name]
        assert fit.speed == pytest.approx(hidden["speed"], rel=0.02), name
        assert fit.start_overhead_s == pytest.approx(hidden["start_overhead_s"], rel=0.02), name
        # power was modelled (a simulation): no fit, which would only return the model
        assert fit.power_idle_w is None and fit.power_max_w is None and fit.power_samples == 0
    assert result.notes == ["power: not fitted: the run's power was modelled (a simulation), never "
                            "measured; a fit would return the model that made it"]
    # the calibrated scenario uses them, and its simulation is much closer to the testbed
    sc = load_scenario(tmp_path / "calibrated.yaml")
    by_type = {n.type.name: n.type for n in sc.cluster.nodes}
    assert set(by_type) == {"fast-calibrated", "slow-calibrated"}
    assert by_type["slow-calibrated"].speed == pytest.approx(0.52, rel=0.02)
    assert by_type["slow-calibrated"].cores == 4 and by_type["slow-calibrated"].mem_mb == 1024
    assert result.error_before_s is not None and result.error_after_s is not None
    assert result.error_after_s < 0.2 * result.error_before_s
    before = compare_runs([run, tmp_path / "sims" / "before"])["pairs"][0]["tasks"]
    after = compare_runs([run, tmp_path / "sims" / "after"])["pairs"][0]["tasks"]
    assert before["response_diff_s"]["mean_abs"] == pytest.approx(result.error_before_s)
    assert after["response_diff_s"]["mean_abs"] < before["response_diff_s"]["mean_abs"]
    assert after["distributions"]["response_s"]["wasserstein_s"] < \
        before["distributions"]["response_s"]["wasserstein_s"]


def test_calibrates_the_runs_own_scenario(testbed: tuple[Path, Path], tmp_path: Path) -> None:
    """Without --scenario, the scenario recorded in run.json is calibrated (here: already right)."""
    run, _ = testbed
    result = calibrate(run, tmp_path / "c.yaml")
    doc = yaml.safe_load((tmp_path / "c.yaml").read_text())
    fast = doc["cluster"]["node_types"]["fast-calibrated"]
    assert fast["base"] == "rpi4b" and fast["speed"] == pytest.approx(1.37, rel=0.02)
    assert doc["cluster"]["clusters"][0]["type"] == "fast-calibrated"
    assert result.error_after_s is not None and result.error_before_s is not None
    assert result.error_after_s < 1.0 and result.error_before_s < 1.0  # both close: noise only


def test_command_prints_before_and_after(testbed: tuple[Path, Path], tmp_path: Path) -> None:
    run, plain = testbed
    r = subprocess.run([sys.executable, "-m", "rpiaas", "calibrate", str(run), "--scenario", str(plain),
                        "-o", str(tmp_path / "cal.yaml")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "fast: " in r.stdout and "speed 1.3" in r.stdout
    line = next(x for x in r.stdout.splitlines() if x.startswith("mean response error"))
    before, after = (float(x) for x in re.findall(r"(?:before|after) ([\d.e+-]+) s", line))
    assert after < before
    assert (tmp_path / "cal.yaml").read_text().startswith("# Calibrated by `rpiaas calibrate")


@pytest.mark.parametrize("case", ["missing", "no-scenario-file", "bad-scenario"])
def test_bad_input(testbed: tuple[Path, Path], tmp_path: Path, case: str) -> None:
    run, _ = testbed
    args = [str(run), "-o", str(tmp_path / "c.yaml")]
    if case == "missing":
        args[0] = str(tmp_path / "nope")
        expected = f"error: {tmp_path / 'nope'}: no such run directory"
    elif case == "no-scenario-file":
        args += ["--scenario", str(tmp_path / "nope.yaml")]
        expected = f"error: {tmp_path / 'nope.yaml'}: no such file"
    else:
        (tmp_path / "bad.yaml").write_text("name: [\n")
        args += ["--scenario", str(tmp_path / "bad.yaml")]
        expected = f"error: {tmp_path / 'bad.yaml'}:"
    r = subprocess.run([sys.executable, "-m", "rpiaas", "calibrate", *args], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(expected), r.stderr
    assert not (tmp_path / "c.yaml").exists()


def test_sleep_tasks_of_a_scenario_kind_run_are_left_out(testbed: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    """In a live run of ``--task-kind scenario`` a ``sleep`` task slept its modelled runtime:
    it says nothing of the node, and the fit leaves it out (here its runtime is 3 times off)."""
    run, plain = testbed
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    with open(copy / "tasks.csv", newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    i_kind, i_start, i_end = head.index("kind"), head.index("start_s"), head.index("end_s")
    for r in rows[1::2]:
        r[i_kind] = "sleep"
        r[i_end] = repr(float(r[i_start]) + 3 * (float(r[i_end]) - float(r[i_start])))
    with open(copy / "tasks.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    record = json.loads((copy / "run.json").read_text())
    for task_kind, recovered in (("scenario", True), ("cpu", False)):
        record["live"] = {"task_kind": task_kind}
        (copy / "run.json").write_text(json.dumps(record))
        result = calibrate(copy, tmp_path / f"{task_kind}.yaml", scenario=plain,
                           simulate_check=False)
        fit = result.fits["fast"]
        assert (fit.speed == pytest.approx(HIDDEN["fast"]["speed"], rel=0.02)) is recovered
        if recovered:
            assert fit.tasks < sum(1 for r in rows[1:] if r[head.index("state")] == "completed")


# ---------------------------------------------------------------- what a run can inform
def _with_record(run: Path, dst: Path, **changes: Any) -> Path:
    shutil.copytree(run, dst)
    record = json.loads((dst / "run.json").read_text())
    record.update(changes)
    (dst / "run.json").write_text(json.dumps(record))
    return dst


def test_a_run_whose_tasks_all_slept_is_refused_in_one_line(testbed: tuple[Path, Path], tmp_path: Path) -> None:
    run, plain = testbed
    slept = _with_record(run, tmp_path / "slept", mode="live", live={"task_kind": "sleep"})
    with pytest.raises(CalibrateError, match=r"every task slept \(--task-kind sleep\)"):
        calibrate(slept, tmp_path / "c.yaml", scenario=plain, simulate_check=False)
    assert not (tmp_path / "c.yaml").exists()
    r = subprocess.run([sys.executable, "-m", "rpiaas", "calibrate", str(slept), "-o", str(tmp_path / "c.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"error: {slept}: every task slept (--task-kind sleep): a sleep lasts its "
                               "modelled runtime"), r.stderr
    # --task-kind scenario whose every task is a sleep: the same
    with open(slept / "tasks.csv", newline="") as f:
        rows = list(csv.reader(f))
    for row in rows[1:]:
        row[rows[0].index("kind")] = "sleep"
    with open(slept / "tasks.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    record = json.loads((slept / "run.json").read_text())
    record["live"]["task_kind"] = "scenario"
    (slept / "run.json").write_text(json.dumps(record))
    with pytest.raises(CalibrateError, match=r"every task slept \(--task-kind scenario"):
        calibrate(slept, tmp_path / "c.yaml", scenario=plain, simulate_check=False)


# the testbed's metered power: idle and maximum watts the calibration is not told, and a boot's
METERED = {"fast": (3.1, 7.9), "slow": (1.6, 3.3)}
BOOT_W, BOOT_S = {"fast": 4.2, "slow": 2.4}, {"fast": 21.0, "slow": 33.0}


def _metered(run: Path, dst: Path) -> Path:
    """A copy of ``run`` whose nodes had meters: each row's power is METERED's line at its CPU
    utilisation plus seeded noise (sd 0.05 W), labelled measured; a few rows are a boot (the
    power of BOOT_W), and fidelity.json holds measured boots around BOOT_S."""
    shutil.copytree(run, dst)
    record = json.loads((dst / "run.json").read_text())
    types = {n["node"]: n["type"] for n in record["nodes"]}
    rng = np.random.default_rng(1)
    with open(dst / "nodes.csv", newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    col = {k: i for i, k in enumerate(head)}
    for k, r in enumerate(rows[1:]):
        t = types[r[col["node"]]]
        if k % 50 == 7:
            r[col["state"]], watts = "booting", BOOT_W[t] + 0.05 * rng.standard_normal()
        else:
            idle, peak = METERED[t]
            watts = idle + (peak - idle) * float(r[col["cpu_utilization"]]) + 0.05 * rng.standard_normal()
        r[col["power_w"]], r[col["power_source"]] = repr(watts), "measured"
    with open(dst / "nodes.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    record["mode"] = "live"
    record["live"] = {"task_kind": "cpu"}
    record["sources"] = {**record["sources"], "cpu_utilization": "measured", "power_w": "measured",
                         "energy_j": "measured", "boot_s": "measured", "switching": "switched"}
    (dst / "run.json").write_text(json.dumps(record))
    boots = {"source": "measured", "types": {
        t: {"modelled_boot_s": 30.0, "measured": {"count": 5, "median_s": BOOT_S[t], "min_s": BOOT_S[t] - 1,
                                                  "max_s": BOOT_S[t] + 2, "iqr_s": 1.0, "values_s": []}}
        for t in BOOT_S}}
    (dst / "fidelity.json").write_text(json.dumps({"format": "rpiaas-fidelity/1", "metrics": {}, "boots": boots}))
    return dst


def test_power_and_boots_are_fitted_from_measured_readings_only(testbed: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    run, plain = testbed
    metered = _metered(run, tmp_path / "metered")
    result = calibrate(metered, tmp_path / "c.yaml", scenario=plain, simulate_check=False)
    assert result.notes == []
    for t, (idle, peak) in METERED.items():
        fit = result.fits[t]
        assert fit.power_idle_w == pytest.approx(idle, abs=0.05) and fit.power_max_w == pytest.approx(peak, abs=0.1)
        assert fit.boot_s == BOOT_S[t] and fit.boots == 5
        assert fit.power_boot_w == pytest.approx(BOOT_W[t], abs=0.05)
        assert fit.energy_per_boot_j == pytest.approx(BOOT_W[t] * BOOT_S[t], rel=0.02)
    doc = yaml.safe_load((tmp_path / "c.yaml").read_text())["cluster"]["node_types"]["slow-calibrated"]
    assert doc["boot_s"] == 33.0 and doc["power_idle_w"] == pytest.approx(1.6, abs=0.05)
    text = format_calibration(result)
    print(text)  # the figures, for the record (pytest -s)
    assert "measured readings" in text and "boot 33 s (median of 5 measured boots" in text
    # the model's error against the readings, with the type's own watts and with the fitted ones
    before, after = result.power_mape["slow"]
    assert after < 0.03 < before
    assert f"slow: power model against the measured readings: MAPE {before * 100:.2f} % with the type's " \
           f"figures, {after * 100:.2f} % fitted" in text.splitlines()
    # the same run with its power modelled from the CPU: no power fit, one line saying why
    modelled = tmp_path / "modelled"
    shutil.copytree(metered, modelled)
    (modelled / "nodes.csv").write_text((modelled / "nodes.csv").read_text().replace(",measured\n",
                                                                                     ",modelled-from-measured\n"))
    record = json.loads((modelled / "run.json").read_text())
    record["sources"]["power_w"] = "modelled-from-measured"
    (modelled / "run.json").write_text(json.dumps(record))
    again = calibrate(modelled, tmp_path / "m.yaml", scenario=plain, simulate_check=False)
    assert all(f.power_idle_w is None and f.power_boot_w is None for f in again.fits.values())
    assert again.notes == ["power: not fitted: the run's power was modelled from measured CPU utilisation "
                           "(the node type's power model, no meter), never measured; a fit would return "
                           "the model that made it"]
    assert again.notes[0] in format_calibration(again).splitlines()


def test_the_fit_is_checked_out_of_sample_on_another_workload(testbed: tuple[Path, Path], tmp_path: Path) -> None:
    """Fitted on the testbed's run, checked on another workload on the same (hidden) nodes: the
    out-of-sample error falls too, and both are printed side by side."""
    run, plain = testbed
    doc = _doc(HIDDEN, count=400)
    doc["seed"] = 8
    doc["workload"]["generator"]["work_core_s"] = {"dist": "uniform", "low": 2, "high": 40}
    _, other = simulate(scenario(doc), tmp_path / "other")
    assert other is not None
    _add_noise(other, NOISE_REL, NOISE_ABS_S, seed=1)
    # the other run's scenario as the untold one (the types it runs on: not the hidden ones)
    record = json.loads((other / "run.json").read_text())
    record["scenario"]["cluster"]["node_types"] = {"fast": {"base": "rpi4b"}, "slow": {"base": "rpi3b"}}
    (other / "run.json").write_text(json.dumps(record))
    result = calibrate(run, tmp_path / "c.yaml", scenario=plain, check=other)
    assert result.check_run == other
    assert result.before is not None and result.after is not None
    assert result.check_before is not None and result.check_after is not None
    assert result.check_before.response_s is not None and result.check_after.response_s is not None
    assert result.check_after.response_s < 0.2 * result.check_before.response_s
    assert result.after.makespan_rel is not None and abs(result.after.makespan_rel) < 0.02
    lines = format_calibration(result).splitlines()
    head = next(x for x in lines if x.startswith("error of the simulation"))
    assert head.split() == ["error", "of", "the", "simulation", "in", "sample", "before", "in", "sample", "after",
                            "out", "of", "sample", "before", "out", "of", "sample", "after"]
    assert any(x.startswith("energy ") for x in lines)
    assert "in sample: the run's energy is modelled (the simulation's is modelled: modelled on both sides, " \
           "the error says nothing of the testbed)" in lines
    assert f"out of sample: fitted on the run, checked on {other}" in lines


def test_several_runs_are_pooled_and_judged_by_their_mean(tmp_path: Path) -> None:
    """A testbed whose speed differs from run to run (a virtual one on a shared host): two runs
    of one scenario, 10 % slower and 10 % faster than the hidden types, are fitted as one, and
    the errors are against their mean; a run of other tasks is refused, naming it."""
    speeds = {t: float(str(spec["speed"])) for t, spec in HIDDEN.items()}
    runs = []
    for k, factor in enumerate((0.9, 1.1)):
        varied = {t: {**spec, "speed": speeds[t] * factor} for t, spec in HIDDEN.items()}
        _, run = simulate(scenario(_doc(varied, count=300)), tmp_path / f"run{k}")
        assert run is not None
        _add_noise(run, NOISE_REL, NOISE_ABS_S, seed=k)
        runs.append(run)
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(_doc({"fast": {"base": "rpi4b"}, "slow": {"base": "rpi3b"}}, count=300)))
    one = calibrate(runs[0], tmp_path / "one.yaml", scenario=plain, simulate_check=False)
    two = calibrate(runs[1], tmp_path / "two.yaml", scenario=plain, simulate_check=False)
    both = calibrate(runs, tmp_path / "both.yaml", scenario=plain, keep_runs=tmp_path / "sims",
                     check=runs)
    for name, speed in speeds.items():
        assert one.fits[name].speed == pytest.approx(0.9 * speed, rel=0.02), name
        assert two.fits[name].speed == pytest.approx(1.1 * speed, rel=0.02), name
        pooled = both.fits[name]
        assert pooled.tasks == one.fits[name].tasks + two.fits[name].tasks
        assert 0.9 * speed * 1.02 < pooled.speed < 1.1 * speed * 0.98, name
    assert both.runs == runs and both.check_runs == runs
    # the errors: the simulation against the runs' mean, recomputed from run.json
    summaries = [json.loads((r / "run.json").read_text())["summary"] for r in runs]
    after = json.loads((tmp_path / "sims" / "after" / "run.json").read_text())["summary"]
    assert both.after is not None
    for key, got in (("makespan_s", both.after.makespan_rel), ("mean_response_s", both.after.mean_response_rel)):
        mean = (summaries[0][key] + summaries[1][key]) / 2
        assert got == pytest.approx((after[key] - mean) / mean, rel=1e-9)
    per_run = [compare_runs([r, tmp_path / "sims" / "after"])["pairs"][0]["tasks"]["response_diff_s"]["mean_abs"]
               for r in runs]
    assert both.after.response_s == pytest.approx(sum(per_run) / 2)
    lines = format_calibration(both).splitlines()
    assert "in sample: fitted on 2 runs pooled, the errors against their mean" in lines
    assert f"out of sample: fitted on the runs, checked on {runs[0]}, {runs[1]} (against their mean)" in lines
    # runs of another scenario cannot be pooled: one line naming the run
    doc = _doc(HIDDEN, count=300)
    doc["seed"] = 8
    _, other = simulate(scenario(doc), tmp_path / "other")
    assert other is not None
    with pytest.raises(CalibrateError, match=rf"^{re.escape(str(other))}: the runs fitted together are runs of "
                       "one scenario, and its tasks are not those of"):
        calibrate([runs[0], other], tmp_path / "c.yaml", scenario=plain, simulate_check=False)


def test_a_live_runs_dispatch_goes_into_the_start_overhead(testbed: tuple[Path, Path], tmp_path: Path) -> None:
    """Live, a task starts on its agent some time after the decision: 30 ms when it started on
    its arrival, 250 ms when on another task's end (whose report reached the master first).  The
    first goes into the start overhead; the second is reported, not modelled."""
    _, plain = testbed
    doc = _doc(HIDDEN, count=600)
    doc["workload"]["generator"]["arrival"] = {"rate_per_s": 1.0}  # busy: many tasks queue
    _, run = simulate(scenario(doc), tmp_path / "sim")
    assert run is not None
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    decided = {}
    for line in (copy / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e.get("act") == "start":
            decided[int(e["task"])] = float(e["t"])
    with open(copy / "tasks.csv", newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    i_id, i_arr, i_start, i_end = (head.index(k) for k in ("task_id", "arrival_s", "start_s", "end_s"))
    counts = [0, 0]
    for r in rows[1:]:
        if r[head.index("state")] != "completed":
            continue
        assert float(r[i_start]) == decided[int(r[i_id])]  # simulated: it starts at the decision
        on_arrival = float(r[i_start]) == float(r[i_arr])
        counts[on_arrival] += 1
        lag = 0.03 if on_arrival else 0.25  # the task runs as long as before, later
        r[i_start], r[i_end] = repr(float(r[i_start]) + lag), repr(float(r[i_end]) + lag)
    assert min(counts) > 50  # both kinds of start, many of each
    with open(copy / "tasks.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    record = json.loads((copy / "run.json").read_text())
    record["live"] = {"task_kind": "cpu"}
    (copy / "run.json").write_text(json.dumps(record))
    result = calibrate(copy, tmp_path / "c.yaml", scenario=plain, simulate_check=False)
    for name, hidden in HIDDEN.items():
        fit = result.fits[name]
        assert fit.dispatch_s == pytest.approx(0.03) and fit.handoff_s == pytest.approx(0.22)
        assert fit.dispatches + fit.handoffs == fit.tasks
        assert fit.speed == pytest.approx(hidden["speed"], rel=0.02)
        assert fit.start_overhead_s == pytest.approx(float(str(hidden["start_overhead_s"])) + 0.03, rel=0.02)
    lines = format_calibration(result).splitlines()
    assert any(x.startswith("slow: dispatch 0.03 s from decision to the agent's start") and
               "0.22 s more for a task started on another's end" in x for x in lines), lines
    # a simulated run has no dispatch: nothing is added
    plain_fit = calibrate(run, tmp_path / "p.yaml", scenario=plain, simulate_check=False).fits["slow"]
    assert plain_fit.dispatch_s is None and plain_fit.handoff_s is None


def test_nodes_that_slow_each_other_down_are_shown_two_speeds(tmp_path: Path) -> None:
    """Two one-core nodes on one host: a task alone runs at speed 0.25, two at once at 0.125
    each.  Live, calibrate shows both speeds beside its one fitted speed."""
    tasks: list[dict[str, Any]] = []
    t = 0.0
    for i, work in enumerate([0.3, 0.6, 0.9, 1.2, 1.5, 0.45, 0.75, 1.05]):
        if i % 2:  # a pair: one on each node, from the same moment
            tasks += [{"id": len(tasks) + 1, "arrival_s": t, "cores": 1, "mem_mb": 32, "work_core_s": work},
                      {"id": len(tasks) + 2, "arrival_s": t, "cores": 1, "mem_mb": 32, "work_core_s": work}]
        else:
            tasks.append({"id": len(tasks) + 1, "arrival_s": t, "cores": 1, "mem_mb": 32, "work_core_s": work})
        t += 100.0
    doc = {"name": "host", "seed": 1, "sample_interval_s": 5,
           "cluster": {"clusters": [{"domain": "v.test", "prefix": "10.0.3", "count": 2, "type": "qemu_a53"}]},
           "workload": {"tasks": tasks}, "policy": "round_robin"}
    _, run = simulate(scenario(doc), tmp_path / "sim")
    assert run is not None
    with open(run / "tasks.csv", newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    i_arr, i_start, i_end, i_work = (head.index(k) for k in ("arrival_s", "start_s", "end_s", "work_core_s"))
    arrivals = [float(r[i_arr]) for r in rows[1:]]
    for r in rows[1:]:
        speed = 0.125 if arrivals.count(float(r[i_arr])) == 2 else 0.25
        r[i_end] = repr(float(r[i_start]) + 0.8 + float(r[i_work]) / speed)
    with open(run / "tasks.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    record = json.loads((run / "run.json").read_text())
    record["live"] = {"task_kind": "cpu"}
    (run / "run.json").write_text(json.dumps(record))
    result = calibrate(run, tmp_path / "c.yaml", simulate_check=False)
    fit = result.fits["qemu_a53"]
    assert fit.speed_alone == pytest.approx(0.25) and fit.speed_shared == pytest.approx(0.125)
    assert 0.125 < fit.speed < 0.25
    assert "qemu_a53: speed 0.25 while no other node ran a task, 0.125 while others did (nodes that share a " \
           "host's CPUs slow each other down; the model has one speed)" in format_calibration(result).splitlines()
    # simulated, the same run says nothing of it
    record.pop("live")
    (run / "run.json").write_text(json.dumps(record))
    fit = calibrate(run, tmp_path / "s.yaml", simulate_check=False).fits["qemu_a53"]
    assert fit.speed_alone is None and fit.speed_shared is None
