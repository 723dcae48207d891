"""What a run will cost, checked before it starts (and again while it runs): refused with the key to blame."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from rpiaas.inputs.source import LimitError
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate

from ..inputs.inputfiles import TWENTY, write


# ---------------------------------------------------------------- runs that cannot finish
@pytest.mark.parametrize(("override", "line", "key", "message"), [
    ("sample_interval_s=1e-6", None, "sample_interval_s", "sampling 20 nodes every 1e-06 s"),
    ("horizon_s=1e12", None, "horizon_s", "1e+12 s is beyond the longest simulated time "
                                          "(limit 10,000,000,000 s; set RPIAAS_MAX_SIM_TIME_S"),
    ("workload.generator.work_core_s=1e12", None, "workload.generator.work_core_s",
     "the run would last at least"),
    ("workload.generator.count=1000000000", None, "workload.generator.count",
     "1,000,000,000 tasks is more than a run takes (limit 100,000,000 tasks; set RPIAAS_MAX_TASKS"),
])
def test_a_run_that_cannot_finish_is_refused_before_it_starts(
        tmp_path: Path, override: str, line: int | None, key: str, message: str) -> None:
    f = write(tmp_path, TWENTY)
    t0 = time.perf_counter()
    with pytest.raises(LimitError) as exc:
        load_scenario(f, [override])
    assert time.perf_counter() - t0 < 2.0
    assert str(exc.value).startswith(f"--set: {key}: {message}"), str(exc.value)


def test_explicit_tasks_of_endless_work_are_refused_at_the_task(tmp_path: Path) -> None:
    f = write(tmp_path, TWENTY.replace(
        "  generator: {count: 20, arrival: {rate_per_s: 1}, cores: 1, mem_mb: 64, work_core_s: 10}",
        "  tasks:\n    - {arrival_s: 0, cores: 1, mem_mb: 64, work_core_s: 10}\n"
        "    - {arrival_s: 1, cores: 1, mem_mb: 64, work_core_s: 1e12}"))
    with pytest.raises(LimitError, match=re.escape(f"{f}:6: workload.tasks[1].work_core_s: the run "
                                                   "would last at least")):
        load_scenario(f)


@pytest.mark.parametrize(("tasks", "key", "message"), [
    # finite figures whose run overflows a double: never done, not "no estimate"
    ("    - {arrival_s: 1e308, cores: 1, mem_mb: 64, work_core_s: 1.5e308}", "work_core_s",
     "the run would last longer than any number of simulated seconds"),
    # the arrival, not the work, is what makes the run too long
    ("    - {arrival_s: 1e300, cores: 1, mem_mb: 64, work_core_s: 10}", "arrival_s",
     "the run would last at least 1e+300 simulated seconds"),
])
def test_explicit_tasks_that_cannot_end_are_refused_at_the_key_to_blame(
        tmp_path: Path, tasks: str, key: str, message: str) -> None:
    f = write(tmp_path, TWENTY.replace(
        "  generator: {count: 20, arrival: {rate_per_s: 1}, cores: 1, mem_mb: 64, work_core_s: 10}",
        "  tasks:\n" + tasks))
    t0 = time.perf_counter()
    with pytest.raises(LimitError, match=re.escape(f"{f}:5: workload.tasks[0].{key}: {message}")):
        load_scenario(f)
    assert time.perf_counter() - t0 < 2.0


def test_a_generator_whose_work_overflows_is_refused_before_it_starts(
        tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    """Draws near the largest double: the mean is estimated without overflowing their sum (no
    numpy warning), and a run their work would make endless is refused, not run to a limit."""
    f = write(tmp_path, TWENTY.replace(
        "cluster: {clusters: [{domain: c.test, prefix: 10.0.1, count: 20, type: rpi4b}]}",
        "cluster: {node_types: {slow: {base: rpi4b, speed: 1e-3}},\n"
        "          clusters: [{domain: c.test, prefix: 10.0.1, count: 20, type: slow}]}"))
    with pytest.raises(LimitError, match=re.escape("--set: workload.generator.work_core_s: the run would last "
                                                   "longer than any number of simulated seconds")):
        load_scenario(f, ["workload.generator.work_core_s=1.7e308"])
    assert not [w for w in recwarn if "overflow" in str(w.message)]


def test_a_fault_past_the_longest_simulated_time_is_refused_by_its_own_key(tmp_path: Path) -> None:
    f = write(tmp_path, TWENTY + "faults: [{node: node1.c.test, at_s: 1e300}]\n")
    with pytest.raises(LimitError, match=re.escape(f"{f}:6: faults[0].at_s: 1e+300 s is beyond the longest "
                                                   "simulated time")):
        load_scenario(f)
    g = write(tmp_path, TWENTY + "faults: [{node: node1.c.test, at_s: 5, down_s: 1e300}]\n", "g.yaml")
    with pytest.raises(LimitError, match=re.escape(f"{g}:6: faults[0].down_s: 1e+300 s is beyond")):
        load_scenario(g)


def test_the_run_itself_stops_at_the_sample_limit_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the estimate (mean work) is short of the heavy tail: the run's own check stops it
    f = write(tmp_path, TWENTY.replace(
        "work_core_s: 10", "work_core_s: {dist: choice, values: [1, 1e6], weights: [0.95, 0.05]}"))
    monkeypatch.setenv("RPIAAS_MAX_SAMPLE_ROWS", "5000")
    sc = load_scenario(f)
    out = tmp_path / "runs" / "r"
    with pytest.raises(LimitError, match=r"sample_interval_s: the run wrote 5,0\d\d rows of nodes.csv "
                                         r"by simulated time .* \(limit 5,000 rows"):
        simulate(sc, out)
    assert list((tmp_path / "runs").iterdir()) == []
