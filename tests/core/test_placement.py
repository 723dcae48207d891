"""Placement: the hooks in their documented order, a reservation kept, bad answers named."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from rpiaas.core.control import ControlPlane, PolicyError
from rpiaas.core.events import Start, TaskArrived, TaskFinished
from rpiaas.core.view import ClusterView
from rpiaas.model import Task
from rpiaas.policy.base import Policy, Reservation, hookimpl

from ..helpers import node_type, nodes


def task(tid: int, cores: int = 1, work: float = 10.0) -> Task:
    return Task(tid, 0.0, cores, 100, work)


class Answer(Policy):
    """Places on ``place`` (if given), scores by ``scores``, forbids ``forbid``."""

    NAME = "answer"

    def __init__(self, place: object = None, scores: list[float] | None = None,
                 forbid: tuple[int, ...] = ()) -> None:
        self.place, self.scores, self.forbid = place, scores, forbid

    @hookimpl
    def rpiaas_place(self, task: Task, view: ClusterView) -> object:
        return self.place

    @hookimpl
    def rpiaas_score(self, task: Task, view: ClusterView) -> npt.NDArray[np.float64] | None:
        return None if self.scores is None else np.array(self.scores)

    @hookimpl
    def rpiaas_filter(self, task: Task, view: ClusterView) -> npt.NDArray[np.bool_]:
        mask = np.ones(len(view), dtype=bool)
        mask[list(self.forbid)] = False
        return mask


def placed(policy: Policy, n: int = 3, cores: int = 1) -> int:
    cp = ControlPlane(nodes(*[node_type(cores=4)] * n), [policy])
    [start] = [a for a in cp.step(0.0, [TaskArrived(task(1, cores))]) if isinstance(a, Start)]
    return start.node


def test_place_then_filters_then_scores_then_first() -> None:
    assert placed(Answer(place=2)) == 2
    assert placed(Answer(place=2, scores=[0, 9, 1], forbid=(2,))) == 1  # the filter overrules it
    assert placed(Answer(scores=[0, 9, 1])) == 1
    assert placed(Answer(scores=[0, 9, 1], forbid=(1,))) == 2
    assert placed(Answer(forbid=(0,))) == 1  # no score: the first node left


@pytest.mark.parametrize(("answer", "said"), [
    (7, "rpiaas_place put task 1 on node 7, out of range: the cluster has nodes 0 to 2"),
    (-1, "out of range"),
    ("a", "rpiaas_place put task 1 on 'a' (str), which is not a node index"),
    ("2", "rpiaas_place put task 1 on '2' (str), which is not a node index"),
    (1.0, "rpiaas_place put task 1 on 1.0 (float), which is not a node index"),
    (True, "rpiaas_place put task 1 on True (bool), which is not a node index"),
])
def test_a_node_index_that_names_no_node_is_said_as_such(answer: object, said: str) -> None:
    with pytest.raises(PolicyError, match=said.replace("(", r"\(").replace(")", r"\)")):
        placed(Answer(place=answer))


class KeepNode0(Policy):
    """Reserves node 0 for the blocked head from time 100."""

    NAME = "keep"

    @hookimpl
    def rpiaas_blocked(self, task: Task, view: ClusterView, now: float, reservation: object) -> object:
        return Reservation(0, 100.0)


def test_a_task_that_would_delay_the_reserved_head_goes_elsewhere_or_waits() -> None:
    cp = ControlPlane(nodes(node_type(cores=4), node_type(cores=1)), [KeepNode0()])
    cp.step(0.0, [TaskArrived(task(1, cores=3, work=300.0))])  # node 0 busy until 100 s
    acts = cp.step(1.0, [TaskArrived(task(2, cores=4)), TaskArrived(task(3, cores=1, work=1000.0)),
                         TaskArrived(task(4, cores=1, work=10.0))])
    # 3 (long) would hold node 0's last core past the reservation: node 1 instead;
    # 4 (short) ends before 100 s: it may take node 0's free core
    assert {a.task.id: a.node for a in acts if isinstance(a, Start)} == {3: 1, 4: 0}
    acts = cp.step(100.0, [TaskFinished(1), TaskFinished(4)])
    assert {a.task.id: a.node for a in acts if isinstance(a, Start)} == {2: 0}
