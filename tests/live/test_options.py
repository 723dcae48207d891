"""A live run's options are checked when made; its state is what the API shows."""

from __future__ import annotations

import math

import pytest

from rpiaas.live.options import TASK_KINDS, LiveOptions, RunState


def test_defaults_replay_in_real_time_with_sleep_tasks() -> None:
    options = LiveOptions()
    assert (options.timescale, options.task_kind, options.watch_interval_s) == (1.0, "sleep", 1.0)
    assert TASK_KINDS == ("sleep", "cpu", "scenario")


@pytest.mark.parametrize("timescale", [0.0, -1.0, math.inf, math.nan])
def test_a_timescale_must_be_positive_and_finite(timescale: float) -> None:
    with pytest.raises(ValueError, match="timescale: expected a positive number"):
        LiveOptions(timescale=timescale)


def test_the_task_kind_must_be_known() -> None:
    with pytest.raises(ValueError, match="task_kind: expected one of sleep, cpu, scenario, got 'gpu'"):
        LiveOptions(task_kind="gpu")


def test_run_state_as_json() -> None:
    state = RunState("r1", arrived=3, running=1)
    doc = state.to_json()
    assert doc == {"id": "r1", "state": "running", "error": "", "arrived": 3, "ended": 0,
                   "queued": 0, "running": 1, "now_s": 0.0, "held": "", "held_s": 0.0}
    doc["state"] = "failed"  # a copy: the run's own state is untouched
    assert state.state == "running"


def test_a_scenario_kind_run_sleeps_the_sleep_tasks_and_works_the_others() -> None:
    from rpiaas.live.agent_tasks import agent_kind

    assert [agent_kind("scenario", k) for k in ("sleep", "cpu", "memory", "io", "command")] \
        == ["sleep", "cpu", "cpu", "cpu", "cpu"]
    # a run-wide kind is what every task runs as, whatever its own
    assert {agent_kind("sleep", k) for k in ("sleep", "cpu")} == {"sleep"}
    assert {agent_kind("cpu", k) for k in ("sleep", "cpu")} == {"cpu"}
