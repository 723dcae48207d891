"""Where a run's figures come from: run.json's sources, and the rule that two models are no agreement."""

from __future__ import annotations

import dataclasses

import pytest

from rpiaas.model import PowerSpec
from rpiaas.rundir.sources import (
    both_modelled,
    combine,
    live_sources,
    metric_source,
    sim_sources,
    sources_of,
    switching_of,
)

from ..helpers import node_type, nodes


def test_a_simulation_is_modelled_throughout() -> None:
    assert sim_sources() == {"utilization": "allocated", "cpu_utilization": "modelled", "power_w": "modelled",
                             "energy_j": "modelled", "boot_s": "modelled", "switching": "modelled",
                             "pull_s": "modelled"}


def test_a_live_run_says_what_was_measured() -> None:
    t = node_type()
    plain = nodes(t, t)
    switched = tuple(dataclasses.replace(n, power=PowerSpec("snmp", (("host", "10.0.0.2"),))) for n in plain)
    none_driver = tuple(dataclasses.replace(n, power=PowerSpec("none")) for n in plain)
    # no driver, no meter: power emulated, energy the model on measured CPU, boots the model's
    assert live_sources(switching_of(plain), ["modelled-from-measured"] * 2) == {
        "utilization": "allocated", "cpu_utilization": "measured", "power_w": "modelled-from-measured",
        "energy_j": "modelled-from-measured", "boot_s": "modelled", "switching": "emulated",
        "pull_s": "measured"}
    assert switching_of(none_driver) == "emulated"
    # drivers on every node and a meter on one: boots measured, power mixed
    s = live_sources(switching_of(switched), ["measured", "modelled-from-measured"])
    assert (s["switching"], s["boot_s"], s["power_w"], s["energy_j"]) == ("switched", "measured", "mixed", "mixed")
    assert live_sources(switching_of(switched), ["measured", "measured"])["energy_j"] == "measured"
    assert switching_of((plain[0], switched[1])) == "mixed"
    assert live_sources(switching_of((plain[0], switched[1])), ["measured"] * 2)["boot_s"] == "mixed"


def test_combine() -> None:
    assert combine([]) == "modelled" and combine(["measured"] * 3) == "measured"
    assert combine(["measured", "modelled-from-measured"]) == "mixed"


def test_a_record_without_sources_reads_as_its_mode_meant() -> None:
    assert sources_of({"mode": "sim"}) == sim_sources()
    old_live = sources_of({"mode": "live"})
    assert old_live["cpu_utilization"] == "measured" and old_live["energy_j"] == "modelled-from-measured"
    assert old_live["switching"] == "emulated"
    given = {**sim_sources(), "energy_j": "measured"}
    assert sources_of({"mode": "live", "sources": given}) == given
    assert sources_of({"mode": "sim", "sources": {"energy_j": "measured"}}) == sim_sources()  # incomplete


@pytest.mark.parametrize(("a", "b", "both"), [
    ("modelled", "modelled", True),
    ("modelled", "modelled-from-measured", True),  # the same power model, on measured utilisation
    ("modelled-from-measured", "modelled-from-measured", True),
    ("modelled", "emulated", True),  # switching: a model against a testbed that switched nothing
    ("modelled", "measured", False),
    ("measured", "measured", False),
    ("modelled", "mixed", False),  # some nodes were metered
    ("allocated", "allocated", False),  # reserved cores: a count, not a model
    (None, "modelled", False),
])
def test_both_modelled(a: str | None, b: str | None, both: bool) -> None:
    assert both_modelled(a, b) is both


def test_metric_source() -> None:
    s = sim_sources()
    assert metric_source(s, "energy_per_task_j") == "modelled" and metric_source(s, "mean_wait_s") is None
    assert metric_source(s, "mean_utilization") == "allocated"
    assert metric_source(s, "time_off_s") == "modelled"  # how the switching was done
