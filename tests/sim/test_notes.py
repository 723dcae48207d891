"""What a run did not apply is said, on stderr and in run.json's ``notes``, and never trips a limit."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from rpiaas.rundir import RunNote
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate

BASE = """\
name: late
cluster: {clusters: [{domain: c.test, prefix: 10.0.1, count: 4, type: rpi4b}]}
workload:
  generator: {count: 50, arrival: {rate_per_s: 1}, cores: 1, mem_mb: 64, work_core_s: 10}
policy: best_fit
"""


def _run(tmp_path: Path, text: str) -> tuple[dict, list[str]]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        simulate(load_scenario(path), tmp_path / "run")
    said = [str(w.message) for w in caught if issubclass(w.category, RunNote)]
    return json.loads((tmp_path / "run" / "run.json").read_text()), said


def test_faults_after_the_end_are_noted_not_dropped(tmp_path: Path) -> None:
    run, said = _run(tmp_path, BASE + "sample_interval_s: 1\nfaults:\n"
                     "  - {node: node2.c.test, at_s: 600000}\n"
                     "  - {node: node3.c.test, at_s: 20, down_s: 1000000}\n"
                     "  - {node: node4.c.test, at_s: 1e9}\n")
    end = run["summary"]["makespan_s"]
    assert end < 100  # the run ended with its work; the late faults did not stretch it
    notes = run["notes"]
    assert said == notes and len(notes) == 3
    assert notes[0].startswith("faults[0]: node2.c.test down at 600000 s came after the run's end at ")
    assert notes[0].endswith(": not applied")
    assert notes[1].startswith("faults[1]: node3.c.test back up at 1.00002e+06 s") and "down at the end" in notes[1]
    assert notes[2].startswith("faults[2]: node4.c.test down at 1e+09 s")
    # the fault inside the run was applied: node3 went down at 20 s
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    downs = [(e["t"], e["node"]) for e in events if e.get("ev") == "node_down"]
    assert downs == [(20.0, "node3.c.test")]


def test_a_run_with_nothing_late_has_no_notes(tmp_path: Path) -> None:
    run, said = _run(tmp_path, BASE + "faults:\n  - {node: node2.c.test, at_s: 5, down_s: 10}\n")
    assert run["notes"] == [] and said == []


def test_wake_ups_after_the_end_are_noted(tmp_path: Path) -> None:
    run, _ = _run(tmp_path, BASE.replace("policy: best_fit", "policy: {name: consolidate, "
                                                              "params: {idle_timeout_s: 600}}"))
    assert any("wake-up" in n and "the policy asked for" in n for n in run["notes"]), run["notes"]


def test_the_horizon_notes_tasks_that_never_arrived(tmp_path: Path) -> None:
    run, _ = _run(tmp_path, BASE + "horizon_s: 10\n")
    assert run["notes"] == ["the horizon at 10 s ended the run before every task arrived (workload.count 50)"]


@pytest.mark.parametrize("at_s", ["600000", "1e9"])
def test_a_late_fault_trips_no_limit(tmp_path: Path, at_s: str) -> None:
    # sampled every 0.5 s, a run stretched to the fault would write far more nodes.csv rows than allowed
    run, _ = _run(tmp_path, BASE + f"sample_interval_s: 0.5\nfaults:\n  - {{node: node2.c.test, at_s: {at_s}}}\n")
    assert run["summary"]["completed"] == 50 and len(run["notes"]) == 1
