"""ClusterView: what a policy sees is the ledger's state, read-only and never copied."""

from __future__ import annotations

import numpy as np
import pytest

from rpiaas.core.ledger import Ledger
from rpiaas.core.view import ClusterView
from rpiaas.model import PowerState, Task

from ..helpers import node_type, nodes


def test_the_view_shows_the_ledger_as_it_changes_and_cannot_be_written() -> None:
    ns = nodes(node_type(cores=2, mem_mb=500), node_type(cores=4, mem_mb=4000), node_type(cores=4))
    ledger = Ledger(ns, [int(PowerState.ON), int(PowerState.ON), int(PowerState.OFF)])
    queue = {7: Task(7, 0.0, 1, 10, 1.0)}
    view = ClusterView(ns, ledger, queue)
    big = Task(1, 0.0, 3, 1000, 30.0)
    assert view.fits(big).tolist() == [False, True, False]  # too small; fits; off
    assert view.could_ever_fit(big).tolist() == [False, True, True]
    ledger.reserve(big, 1, 0.0)
    assert view.cores_free.tolist() == [2, 1, 4] and view.tasks.tolist() == [0, 1, 0]
    assert view.fits(big).tolist() == [False, False, False]
    assert dict(view.running(1)) == {1: big} and view.queued() == [queue[7]]
    assert view.fits_node(Task(2, 0.0, 1, 100, 1.0), 1) and not view.fits_node(big, 2)
    assert view.estimate_s(big, 1) == pytest.approx(10.0)  # 30 core-s on 3 cores at speed 1
    for name in ("cores_free", "state", "utilization", "tasks", "idle_since_s"):
        with pytest.raises(ValueError):
            getattr(view, name)[0] = 1
    assert np.shares_memory(view.cores_free, ledger.cores_free)  # a view, not a copy


def test_the_utilization_sink_says_whether_it_is_measured() -> None:
    view = ClusterView(nodes(node_type(), node_type()))
    assert not view.utilization_measured and view.utilization.tolist() == [0.0, 0.0]
    view.utilization_sink(measured=True)[:] = [0.25, 0.5]
    assert view.utilization_measured and view.utilization.tolist() == [0.25, 0.5]
