"""The image pull model: a shared link, layers pulled once, a bounded cache with LRU eviction;
the simulation runs a container task after its pull, and image locality prefers holders."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpiaas.core.images import ImageCaches
from rpiaas.model import Image, Layer, Task
from rpiaas.sim import simulate

from ..helpers import node_type, nodes, read_tasks, scenario

# 80 Mbit/s: 10 MB/s, so sizes in MB read as tenths of seconds
LINK = dataclasses.replace(node_type(), link_mbps=80.0, image_cache_mb=1000.0)


def _images(**layers: tuple[tuple[str, float], ...]) -> dict[str, Image]:
    return {name: Image(name, tuple(Layer(i, s) for i, s in ls)) for name, ls in layers.items()}


def _task(tid: int, image: str) -> Task:
    t = Task(tid, 0.0, 1, 64, 10.0, kind="container", image=image)
    t.node = 0
    return t


def _run_pulls(caches: ImageCaches, node: int, starts: list[tuple[float, Task]]) -> dict[int, float]:
    """Start each task at its time on ``node`` and follow the pulls as a shell would: every
    task's pull end by id."""
    ends: dict[int, float] = {}
    pending = sorted(starts, key=lambda s: s[0])
    while True:
        wake = caches.nodes[node].next_end_s()
        if pending and (wake is None or pending[0][0] <= wake):
            at, task = pending.pop(0)
            done = caches.begin(task, node, at)
            if done is not None:
                ends[task.id] = done.end_s
            continue
        if wake is None:
            return ends
        for done in caches.settle(node, wake):
            ends[done.task.id] = done.end_s
            assert done.pull_s == pytest.approx(done.end_s - next(a for a, t in starts if t is done.task))


def test_a_pull_alone_takes_size_over_the_link() -> None:
    assert LINK.pull_s(25.0) == 2.5  # 25 MB at 80 Mbit/s
    caches = ImageCaches(nodes(LINK), _images(a=(("x", 25.0),)))
    assert _run_pulls(caches, 0, [(1.0, _task(1, "a"))]) == {1: pytest.approx(3.5)}


def test_concurrent_pulls_share_the_link_and_an_end_moves_when_another_starts() -> None:
    caches = ImageCaches(nodes(LINK), _images(a=(("x", 10.0),), b=(("y", 10.0),)))
    # x alone from 0; at 0.5 y starts with 5 MB of x left: both at 5 MB/s, x ends at 1.5,
    # then y alone (5 MB left) ends at 2.0: the link carried 20 MB in 2 s
    ends = _run_pulls(caches, 0, [(0.0, _task(1, "a")), (0.5, _task(2, "b"))])
    assert ends == {1: pytest.approx(1.5), 2: pytest.approx(2.0)}


def test_a_shared_layer_is_pulled_once_and_a_second_task_waits_for_that_pull() -> None:
    imgs = _images(a=(("base", 20.0), ("app", 10.0)), b=(("base", 20.0), ("tool", 10.0)))
    caches = ImageCaches(nodes(LINK), imgs)
    # base, app and tool pulled once each (40 MB: 4 s); base and app/tool share the link
    ends = _run_pulls(caches, 0, [(0.0, _task(1, "a")), (0.0, _task(2, "b"))])
    assert max(ends.values()) == pytest.approx(4.0)
    assert set(caches.nodes[0].cached) == {"base", "app", "tool"}
    # a third task of image a, started while nothing pulls: every layer held, no pull
    caches.release(_task(1, "a"))
    assert _run_pulls(caches, 0, [(5.0, _task(3, "a"))]) == {3: 5.0}
    # the same image twice at once: one pull, both tasks end with it
    fresh = ImageCaches(nodes(LINK), imgs)
    assert _run_pulls(fresh, 0, [(0.0, _task(1, "a")), (0.0, _task(2, "a"))]) == {
        1: pytest.approx(3.0), 2: pytest.approx(3.0)}


def test_the_cache_evicts_the_least_recently_used_layers_not_in_use() -> None:
    small = dataclasses.replace(LINK, image_cache_mb=100.0)
    imgs = _images(a=(("la", 40.0),), b=(("lb", 40.0),), c=(("lc", 40.0),))
    caches = ImageCaches(nodes(small), imgs)
    ta, tb, tc = _task(1, "a"), _task(2, "b"), _task(3, "c")
    _run_pulls(caches, 0, [(0.0, ta)])
    _run_pulls(caches, 0, [(10.0, tb)])
    # a and b in use: c's layer goes over the capacity rather than evict a layer in use
    _run_pulls(caches, 0, [(20.0, tc)])
    assert set(caches.nodes[0].cached) == {"la", "lb", "lc"} and caches.nodes[0].held_mb == 120.0
    for t in (ta, tb, tc):
        caches.release(t)
    # a used again (the most recently used now), then d needs room: b, the least recent, goes
    ta2 = _task(4, "a")
    assert _run_pulls(caches, 0, [(30.0, ta2)]) == {4: 30.0}
    imgs["d"] = Image("d", (Layer("ld", 40.0),))
    caches2 = ImageCaches(nodes(small), imgs)
    for i, name in enumerate("abc"):
        t = _task(10 + i, name)
        _run_pulls(caches2, 0, [(10.0 * i, t)])
        caches2.release(t)
    assert list(caches2.nodes[0].cached) == ["lb", "lc"]  # la evicted for lc (over 100 MB)
    t = _task(20, "b")  # b used again: lc is now the least recent
    _run_pulls(caches2, 0, [(40.0, t)])
    caches2.release(t)
    _run_pulls(caches2, 0, [(50.0, _task(21, "d"))])
    assert list(caches2.nodes[0].cached) == ["lb", "ld"]
    assert caches2.nodes[0].held_mb <= small.image_cache_mb
    # the per-node arrays a policy reads follow every layer cached and evicted
    for name, im in imgs.items():
        assert caches2.held_mb_all(im).tolist() == [caches2.held_mb(0, im)], name


_IMGS = _images(a=(("base", 20.0), ("x", 5.0)), b=(("base", 20.0), ("y", 12.5)), c=(("z", 7.0),),
                d=(("x", 5.0), ("z", 7.0)))
_SIZES = {layer.id: layer.size_mb for im in _IMGS.values() for layer in im.layers}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("abcd"), min_size=1, max_size=8))
def test_pulls_started_together_keep_the_link_busy(names: list[str]) -> None:
    """Work conservation: pulls started together end, the last of them, when the link has
    carried every distinct layer once; no task's pull beats its own image alone on the link."""
    caches = ImageCaches(nodes(LINK), _IMGS)
    tasks = [(0.0, _task(i, name)) for i, name in enumerate(names)]
    ends = _run_pulls(caches, 0, tasks)
    rate = LINK.pull_rate_mb_s()
    distinct = {layer.id for name in names for layer in _IMGS[name].layers}
    assert max(ends.values()) == pytest.approx(sum(_SIZES[lid] for lid in distinct) / rate)
    for _, t in tasks:
        assert ends[t.id] >= _IMGS[str(t.image)].size_mb / rate - 1e-9


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.floats(0.0, 5.0)), min_size=1, max_size=8))
def test_pulls_at_any_times_end_in_order_and_within_the_links_bound(starts: list[tuple[str, float]]) -> None:
    """Every pull ends after its start, and all of them by the last start plus every distinct
    layer over the link; every layer pulled is then cached (the cache is large enough)."""
    caches = ImageCaches(nodes(LINK), _IMGS)
    tasks = [(at, _task(i, name)) for i, (name, at) in enumerate(starts)]
    ends = _run_pulls(caches, 0, tasks)
    assert len(ends) == len(tasks)
    distinct = {layer.id for name, _ in starts for layer in _IMGS[name].layers}
    bound = max(at for at, _ in tasks) + sum(_SIZES[lid] for lid in distinct) / LINK.pull_rate_mb_s()
    for at, t in tasks:
        assert at <= ends[t.id] <= bound + 1e-9
    assert set(caches.nodes[0].cached) == distinct and not caches.nodes[0].pulling


# ---------------------------------------------------------------- the fixed part of a pull
SLOW = dataclasses.replace(LINK, pull_latency_s=0.75)  # 10 MB/s and 0.75 s per pull that carries something


def test_a_lone_pull_pays_its_latency_once_and_a_held_image_nothing() -> None:
    assert SLOW.pull_s(25.0) == 3.25 and SLOW.pull_s(0.0) == 0.0
    caches = ImageCaches(nodes(SLOW), _images(a=(("base", 20.0), ("x", 5.0)), b=(("base", 20.0),)))
    first = _task(1, "a")
    # two layers, one pull: the latency once, after the last layer came in
    assert _run_pulls(caches, 0, [(1.0, first)]) == {1: pytest.approx(1.0 + SLOW.pull_s(25.0))}
    # a held image pulls nothing and pays nothing, the whole image or the part of it another has
    assert _run_pulls(caches, 0, [(10.0, _task(2, "a")), (10.0, _task(3, "b"))]) == {2: 10.0, 3: 10.0}


def test_concurrent_pulls_share_the_link_and_each_pays_its_latency() -> None:
    caches = ImageCaches(nodes(SLOW), _images(a=(("x", 10.0),), b=(("y", 10.0),)))
    # x and y at 5 MB/s each: both in at 2.0, each pull ends its latency later (not two of them)
    ends = _run_pulls(caches, 0, [(0.0, _task(1, "a")), (0.0, _task(2, "b"))])
    assert ends == {1: pytest.approx(2.75), 2: pytest.approx(2.75)}
    # staggered: x alone from 0, shared from 0.5 (x ends 1.5, y alone to 2.0), each its own latency
    caches = ImageCaches(nodes(SLOW), _images(a=(("x", 10.0),), b=(("y", 10.0),)))
    ends = _run_pulls(caches, 0, [(0.0, _task(1, "a")), (0.5, _task(2, "b"))])
    assert ends == {1: pytest.approx(2.25), 2: pytest.approx(2.75)}


def test_a_shared_layer_is_pulled_once_and_the_latency_does_not_hold_the_link() -> None:
    imgs = _images(a=(("base", 20.0), ("app", 10.0)), b=(("base", 20.0), ("tool", 10.0)))
    caches = ImageCaches(nodes(SLOW), imgs)
    # base, app and tool once each: 40 MB, 4 s of link; the last pull ends its latency later
    ends = _run_pulls(caches, 0, [(0.0, _task(1, "a")), (0.0, _task(2, "b"))])
    assert max(ends.values()) == pytest.approx(4.0 + 0.75)
    # b joins a's pull of base late: it waits for that pull (not a second one) and pays its own latency
    caches = ImageCaches(nodes(SLOW), imgs)
    ends = _run_pulls(caches, 0, [(0.0, _task(1, "a")), (1.0, _task(2, "b"))])
    # base and app at 5 MB/s each until 1.0, then with tool at 10/3 MB/s each: app in at 2.5,
    # tool at 3.5, base (pulled once: 40 MB in all) at 4.0; both pulls end their latency later
    assert ends == {1: pytest.approx(4.0 + 0.75), 2: pytest.approx(4.0 + 0.75)}
    # a layer is held once it came in: a task needing only it then pulls nothing
    caches = ImageCaches(nodes(SLOW), {**imgs, **_images(c=(("base", 20.0),))})
    ends = _run_pulls(caches, 0, [(0.0, _task(1, "a")), (3.1, _task(3, "c"))])
    assert ends == {1: pytest.approx(3.75), 3: 3.1}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.floats(0.0, 5.0)), min_size=1, max_size=8))
def test_with_a_latency_every_pull_pays_it_and_the_link_stays_busy(starts: list[tuple[str, float]]) -> None:
    """A pull ends no sooner than its latency after its start plus what it lacked over the link
    alone, and by the last start plus every distinct layer over the link plus one latency."""
    caches = ImageCaches(nodes(SLOW), _IMGS)
    tasks = [(at, _task(i, name)) for i, (name, at) in enumerate(sorted(starts, key=lambda s: s[1]))]
    ends = _run_pulls(caches, 0, tasks)
    rate = SLOW.pull_rate_mb_s()
    distinct = {layer.id for name, _ in starts for layer in _IMGS[name].layers}
    bound = max(at for at, _ in tasks) + sum(_SIZES[lid] for lid in distinct) / rate + SLOW.pull_latency_s
    seen: set[str] = set()
    for at, t in tasks:
        lacked = {layer.id for layer in _IMGS[str(t.image)].layers} - seen
        seen |= {layer.id for layer in _IMGS[str(t.image)].layers}
        if lacked:  # the first to need a layer pulls it: latency and its own layers at least
            assert ends[t.id] >= at + SLOW.pull_s(sum(_SIZES[lid] for lid in lacked)) - 1e-9, t
        assert at <= ends[t.id] <= bound + 1e-9


# ---------------------------------------------------------------- in simulation
def _container_scenario(policy: str, link_mbps: float = 80.0, **pi: float) -> dict[str, object]:
    """Task 1 pulls app:1 on node1 (a long 4-core task holds node0); at 200 s both nodes are
    idle and task 3 needs the image again."""
    return {
        "name": "pulls", "seed": 1, "policy": policy,
        "cluster": {"node_types": {"pi": {"base": "rpi4b", "link_mbps": link_mbps, "image_cache_mb": 500, **pi}},
                    "clusters": [{"domain": "c.test", "prefix": "10.0.1", "count": 2, "type": "pi"}]},
        "images": {"app:1": {"layers": [{"id": "base", "size_mb": 20}, {"id": "app", "size_mb": 10}]}},
        "workload": {"tasks": [
            {"id": 0, "arrival_s": 0, "cores": 4, "mem_mb": 64, "work_core_s": 400},
            {"id": 1, "arrival_s": 0, "cores": 1, "mem_mb": 64, "work_core_s": 10, "image": "app:1"},
            {"id": 3, "arrival_s": 200, "cores": 1, "mem_mb": 64, "work_core_s": 10, "image": "app:1"},
        ]},
    }


def test_a_container_task_runs_after_its_pull(tmp_path: Path) -> None:
    simulate(scenario(_container_scenario("image_locality")), tmp_path / "r")
    rows = {r["task_id"]: r for r in read_tasks(tmp_path / "r")}
    one, cpu, three = rows["1"], rows["0"], rows["3"]
    assert float(one["pull_s"]) == pytest.approx(3.0)  # 30 MB at 10 MB/s
    # start_s is the placement; end_s the pull's end plus the runtime (10 core-s on 1 core)
    assert float(one["start_s"]) == 0.0 and float(one["end_s"]) == pytest.approx(13.0)
    assert cpu["pull_s"] == ""  # no image: nothing pulled
    # the locality policy puts the third where the image is: no pull
    assert three["node"] == one["node"] and float(three["pull_s"]) == 0.0
    assert float(three["end_s"]) == pytest.approx(210.0)


def test_a_node_types_pull_latency_is_paid_by_each_pull_in_simulation(tmp_path: Path) -> None:
    simulate(scenario(_container_scenario("first_fit", pull_latency_s=1.25)), tmp_path / "r")
    rows = {r["task_id"]: r for r in read_tasks(tmp_path / "r")}
    one, three = rows["1"], rows["3"]
    assert float(one["pull_s"]) == pytest.approx(3.0 + 1.25)  # 30 MB at 10 MB/s, then the fixed part
    assert float(one["end_s"]) == pytest.approx(4.25 + 10.0)
    assert three["node"] != one["node"] and float(three["pull_s"]) == pytest.approx(4.25)
    simulate(scenario(_container_scenario("image_locality", pull_latency_s=1.25)), tmp_path / "held")
    held = {r["task_id"]: r for r in read_tasks(tmp_path / "held")}["3"]
    assert float(held["pull_s"]) == 0.0 and float(held["end_s"]) == pytest.approx(210.0)  # held: nothing paid


def test_without_locality_the_image_is_pulled_again(tmp_path: Path) -> None:
    simulate(scenario(_container_scenario("first_fit")), tmp_path / "r")
    rows = {r["task_id"]: r for r in read_tasks(tmp_path / "r")}
    assert rows["3"]["node"] != rows["1"]["node"] and float(rows["3"]["pull_s"]) == pytest.approx(3.0)


def test_the_view_shows_which_nodes_hold_a_tasks_image() -> None:
    from rpiaas.core.view import ClusterView

    sc = scenario(_container_scenario("image_locality"))
    view = ClusterView(sc.cluster.nodes)
    caches = ImageCaches(sc.cluster.nodes, sc.images)
    view.attach_images(caches)
    task = _task(1, "app:1")
    assert view.image_mb(task).tolist() == [0.0, 0.0]
    caches.begin(task, 1, 0.0)
    caches.settle(1, 3.0)
    assert view.image_mb(task).tolist() == [0.0, 30.0] and view.image_share(task).tolist() == [0.0, 1.0]
    assert np.all(view.image_mb(Task(9, 0.0, 1, 1, 1.0)) == 0)  # no image: nothing held


def test_an_image_pulled_outside_the_model_is_held_and_makes_room() -> None:
    """Live, the agent pulls: the run notes the image as held where it was pulled."""
    small = dataclasses.replace(LINK, image_cache_mb=60.0)
    caches = ImageCaches(nodes(small, small), _images(a=(("base", 20.0), ("x", 20.0)), b=(("y", 30.0),)))
    caches.note_pulled(_task(1, "a"), 1)
    assert caches.held_mb(1, caches.images["a"]) == 40.0 and caches.held_mb(0, caches.images["a"]) == 0.0
    caches.note_pulled(_task(2, "b"), 1)  # 70 MB > 60: the least recently used layer goes
    assert list(caches.nodes[1].cached) == ["x", "y"]
