"""A live run against its simulated twin: the figures by hand, the twin is the simulation."""

from __future__ import annotations

import pytest

from rpiaas.model import Task, TaskState
from rpiaas.rundir.fidelity import (
    FIDELITY_FORMAT,
    FIDELITY_METRICS,
    Outcome,
    boot_fidelity,
    fidelity,
    outcome,
    summary_line,
)


def test_outcome_of_a_task() -> None:
    t = Task(1, 2.0, cores=1, mem_mb=1, work_core_s=1.0)
    assert outcome(t, ["a", "b"]) == Outcome("", False, None, None)
    t.state, t.node, t.start_s, t.end_s = TaskState.COMPLETED, 1, 3.0, 7.5
    assert outcome(t, ["a", "b"]) == Outcome("b", True, 1.0, 5.5)
    t.state, t.end_s = TaskState.KILLED, -1.0
    assert outcome(t, ["a", "b"]) == Outcome("b", False, 1.0, None)


def test_fidelity_by_hand() -> None:
    sim = {1: Outcome("n0", True, 0.0, 10.0), 2: Outcome("n1", True, 1.0, 20.0),
           3: Outcome("n0", True, 0.0, 5.0), 4: Outcome("", False, None, None)}
    live = {1: Outcome("n0", True, 0.1, 11.0), 2: Outcome("n0", True, 1.2, 22.0),
            3: Outcome("", False, None, None), 4: Outcome("n1", True, 0.0, 3.0)}
    sim_summary = {"makespan_s": 40.0, "mean_wait_s": 0.0, "mean_utilization": 0.5, "energy_j": 100.0}
    live_summary = {"makespan_s": 41.0, "mean_wait_s": 0.2, "mean_utilization": 0.5, "energy_j": None}
    doc = fidelity(live_summary, live, sim_summary, sim)
    assert doc["format"] == FIDELITY_FORMAT and list(doc["metrics"]) == [m for m, _ in FIDELITY_METRICS]
    m = doc["metrics"]
    assert m["makespan_s"] == {"unit": "s", "sim": 40.0, "live": 41.0, "diff": 1.0, "rel": 0.025}
    assert m["mean_wait_s"]["diff"] == 0.2 and m["mean_wait_s"]["rel"] is None  # over a zero
    assert m["mean_utilization"]["diff"] == 0.0 and m["mean_utilization"]["rel"] == 0.0
    assert m["energy_j"]["diff"] is None and m["p95_wait_s"]["sim"] is None  # not in the summaries
    # p95 of the responses (10, 20, 5) and (11, 22, 3): linear interpolation
    assert m["p95_response_s"]["sim"] == pytest.approx(19.0)
    assert m["p95_response_s"]["live"] == pytest.approx(20.9)
    # tasks 1 and 2 completed in both; only task 1 on the same node
    assert doc["placement"] == {"tasks": 2, "same_node": 1, "agreement": 0.5}
    line = summary_line(doc)
    assert line == ("live vs its simulation: makespan +2.5 %, mean wait +0.2 s, allocated utilisation +0.0 %, "
                    "same node 50.0 % of 2 tasks")


def test_energy_modelled_on_both_sides_gets_no_verdict_but_measured_energy_is_compared() -> None:
    """The twin's energy is the model; a live run's modelled from measured CPU is the same model:
    fidelity.json says so instead of calling them an agreement. A metered run is compared."""
    sim_summary = {"makespan_s": 10.0, "energy_j": 100.0, "mean_cpu_utilization": 0.5}
    live_summary = {"makespan_s": 10.0, "energy_j": 100.0, "mean_cpu_utilization": 0.2}
    modelled = {"utilization": "allocated", "cpu_utilization": "measured", "power_w": "modelled-from-measured",
                "energy_j": "modelled-from-measured", "boot_s": "modelled", "switching": "emulated"}
    doc = fidelity(live_summary, {}, sim_summary, {}, modelled)
    energy = doc["metrics"]["energy_j"]
    assert energy["source"] == {"sim": "modelled", "live": "modelled-from-measured"}
    assert energy["verdict"] == "modelled on both sides"
    assert "verdict" not in doc["metrics"]["mean_cpu_utilization"]  # measured against the model
    assert "verdict" not in doc["metrics"]["makespan_s"] and "source" not in doc["metrics"]["makespan_s"]
    assert "energy +0.0 % (modelled on both sides)" in summary_line(doc)
    assert doc["sources"]["sim"]["energy_j"] == "modelled"
    metered = fidelity(live_summary, {}, sim_summary, {}, {**modelled, "energy_j": "measured"})
    assert "verdict" not in metered["metrics"]["energy_j"]
    assert "modelled on both sides" not in summary_line(metered)


def test_boots_compare_the_modelled_boot_s_with_the_measured_list() -> None:
    doc = boot_fidelity({"rpi4b": 30.0, "qemu_a53": 20.0}, {"rpi4b": [27.0, 29.0, 31.0, 25.0]}, "measured")
    assert doc["source"] == "measured"
    pi = doc["types"]["rpi4b"]
    assert pi["measured"]["count"] == 4 and pi["measured"]["median_s"] == 28.0
    assert pi["measured"]["min_s"] == 25.0 and pi["measured"]["max_s"] == 31.0
    assert pi["measured"]["iqr_s"] == pytest.approx(29.5 - 26.5)
    assert pi["diff_s"] == -2.0 and pi["rel"] == pytest.approx(-2.0 / 30.0, rel=1e-5)
    assert doc["types"]["qemu_a53"] == {"modelled_boot_s": 20.0, "measured": None, "diff_s": None, "rel": None}
    whole = fidelity({}, {}, {}, {}, None, doc)
    assert whole["boots"] == doc and "sources" not in whole


def test_a_figure_next_to_nothing_gets_its_difference_not_a_relative_error() -> None:
    # a simulated mean wait of 1e-16 s (rounding) against a live 0.24 s: no +2.4e17 %
    sim = {1: Outcome("n0", True, 0.0, 10.0)}
    doc = fidelity({"makespan_s": 10.0, "mean_wait_s": 0.24}, sim, {"makespan_s": 10.0, "mean_wait_s": 1e-16}, sim)
    assert doc["metrics"]["mean_wait_s"]["rel"] is None and doc["metrics"]["mean_wait_s"]["diff"] == 0.24
    assert "mean wait +0.24 s" in summary_line(doc)
