"""A node's clock offset, as the master estimates it from its polls."""

from __future__ import annotations

import pytest

from rpiaas.master.registry import CLOCK_WINDOW, NodeEntry
from rpiaas.model import PROFILES, Node


def _entry() -> NodeEntry:
    node = Node(0, "node1", "c1.rpiaas.test", PROFILES["rpi4b"], "10.0.0.11")
    return NodeEntry(node, "10.0.0.11", 8081)


def test_the_offset_is_the_reading_of_the_shortest_round_trip() -> None:
    e = _entry()
    assert e.node_to_local(100.0) == 100.0  # nothing known yet: taken as it is
    # the node is 2.5 s ahead; a slow answer (1 s round trip) read late says 2.9
    e.observe_clock(1003.0, 999.9, 1000.9)
    assert e.clock_offset_s == pytest.approx(2.6) and e.clock_error_s == pytest.approx(0.5)
    e.observe_clock(1012.51, 1010.0, 1010.02)  # a quick one: 2.5 give or take 10 ms
    assert e.clock_offset_s == pytest.approx(2.5) and e.clock_error_s == pytest.approx(0.01)
    e.observe_clock(1023.3, 1020.0, 1020.6)  # slower again: does not move it
    assert e.clock_offset_s == pytest.approx(2.5)
    assert e.node_to_local(1100.0) == pytest.approx(1097.5)
    doc = e.to_json()
    assert doc["clock_offset_s"] == pytest.approx(2.5) and doc["clock_error_s"] == pytest.approx(0.01)


def test_a_stepped_clock_is_followed_within_the_window() -> None:
    e = _entry()
    e.observe_clock(1000.0, 1000.0, 1000.0)  # in step, exactly
    for i in range(CLOCK_WINDOW):  # then the node's clock is set back by 30 s
        e.observe_clock(970.0 + i + 1.002, 1000.0 + i + 1, 1000.0 + i + 1.004)
    assert e.clock_offset_s == pytest.approx(-30.0, abs=0.01)


def test_an_offset_within_its_error_is_no_offset() -> None:
    """A node on our own clock, polled slowly, reads a little off: nothing is taken out."""
    e = _entry()
    e.observe_clock(1000.3, 999.9, 1000.9)  # 0.3 s off, give or take 0.5 s
    assert e.clock_offset_s == pytest.approx(-0.1)
    assert e.node_to_local(2000.0) == 2000.0
    e.observe_clock(1010.9, 1010.0, 1010.2)  # 0.8 s ahead, give or take 0.1 s: real
    assert e.node_to_local(2000.0) == pytest.approx(1999.2)
