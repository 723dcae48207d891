"""The scenario's images: and node types' link_mbps, pull_latency_s and image_cache_mb, with file:line:key errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpiaas.inputs.source import InputError
from rpiaas.model import PROFILES
from rpiaas.scenario import load_scenario

from .inputfiles import write

HEAD = """\
name: imgs
cluster:
  node_types:
    pi: {base: rpi3b, link_mbps: 50, image_cache_mb: 300}
  clusters:
    - {domain: c.test, prefix: 10.0.1, count: 2, type: pi}
policy: image_locality
workload:
  tasks:
    - {id: 1, arrival_s: 0, cores: 1, mem_mb: 64, work_core_s: 5, image: "app:1"}
"""


def test_images_and_links_are_read(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, HEAD + """\
images:
  app:1:
    size_mb: 42.5
    layers:
      - {id: base, size_mb: 30}
      - {id: app, size_mb: 12.5}
  tool:2: {size_mb: 8}
"""))
    app, tool = sc.images["app:1"], sc.images["tool:2"]
    assert [(la.id, la.size_mb) for la in app.layers] == [("base", 30.0), ("app", 12.5)] and app.size_mb == 42.5
    assert [(la.id, la.size_mb) for la in tool.layers] == [("tool:2", 8.0)]
    t = sc.cluster.nodes[0].type
    assert (t.link_mbps, t.image_cache_mb) == (50.0, 300.0) and t.pull_s(6.25) == 1.0
    assert t.pull_latency_s == 0.0  # no fixed part unless the type gives one
    sc = load_scenario(write(tmp_path, HEAD.replace("image_cache_mb: 300", "image_cache_mb: 300, pull_latency_s: 0.4")
                             + "images:\n  app:1: {size_mb: 1}\n"))
    t = sc.cluster.nodes[0].type
    assert t.pull_latency_s == 0.4 and t.pull_s(6.25) == pytest.approx(1.4) and t.pull_s(0) == 0.0
    # the built-in types' published figures: a Pi 3 B's Ethernet behind USB 2.0, a Pi 4 B's gigabit
    assert PROFILES["rpi3b"].link_mbps < 100 < PROFILES["rpi3bplus"].link_mbps < PROFILES["rpi4b"].link_mbps


@pytest.mark.parametrize(("images", "where"), [
    ("images:\n  app:1: {layers: [{id: a, size_mb: 10}], size_mb: 12}\n",
     r":12: images\.app:1\.size_mb: 12 MB is not the sum of its layers \(10 MB\)"),
    ("images:\n  app:1: {layers: [{id: a, size_mb: -1}]}\n",
     r":12: images\.app:1\.layers\[0\]\.size_mb: expected a positive number, got -1"),
    ("images:\n  app:1: {layers: [{id: a, size_mb: 1}, {id: a, size_mb: 1}]}\n",
     r":12: images\.app:1\.layers\[1\]\.id: layer 'a' is twice in this image"),
    ("images:\n  app:1:\n    layers: [{id: a, size_mb: 1}]\n  b:1:\n    layers: [{id: a, size_mb: 2}]\n",
     r":15: images\.b:1\.layers\[0\]\.size_mb: layer 'a' is 1 MB where another image has it \(line 13\), 2 MB"),
    ("images:\n  app:1: {}\n", r":12: images\.app:1: missing key 'size_mb' \(or give layers\)"),
    ("images:\n  app:1: {size_mb: 1, layer: []}\n", r":12: images\.app:1\.layer: unknown key"),
    ("images:\n  other:1: {size_mb: 1}\n",
     r":10: workload\.tasks\[0\]\.image: image 'app:1' is not among the scenario's images \(other:1\)"),
])
def test_bad_images_name_file_line_and_key(tmp_path: Path, images: str, where: str) -> None:
    with pytest.raises(InputError, match=where):
        load_scenario(write(tmp_path, HEAD + images))


@pytest.mark.parametrize(("spec", "where"), [
    ("link_mbps: 0", r"node_types\.pi\.link_mbps: expected a positive number, got 0"),
    ("image_cache_mb: -5", r"node_types\.pi\.image_cache_mb: expected a non-negative number, got -5"),
    ("pull_latency_s: -0.5", r"node_types\.pi\.pull_latency_s: expected a non-negative number, got -0\.5"),
    ("pull_latency_s: soon", r"node_types\.pi\.pull_latency_s: expected a non-negative number, got 'soon'"),
    ("pull_latency_s: .nan", r"node_types\.pi\.pull_latency_s: expected a non-negative number, got nan"),
    ("pull_latency_s: .inf", r"node_types\.pi\.pull_latency_s: expected a non-negative number, got inf"),
])
def test_bad_links_and_caches_are_refused(tmp_path: Path, spec: str, where: str) -> None:
    text = HEAD.replace("link_mbps: 50, image_cache_mb: 300", spec) + "images:\n  app:1: {size_mb: 1}\n"
    with pytest.raises(InputError, match=r":4: cluster\." + where):
        load_scenario(write(tmp_path, text))
