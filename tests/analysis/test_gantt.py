"""Gantt charts: the model (lanes, packing, grouping), the SVG in headless Chromium, the PNG."""

from __future__ import annotations

import asyncio
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rpiaas.analysis.gantt import gantt_model, gantt_png, gantt_svg
from rpiaas.rundir.reader import load_run
from rpiaas.sim import simulate

from ..helpers import scenario


def _doc(nodes: int, tasks: int, policy: str = "best_fit") -> dict[str, Any]:
    return {"name": "gantt", "seed": 5, "sample_interval_s": 60,
            "cluster": {"clusters": [{"domain": f"c{i}.test", "prefix": f"10.0.{i + 1}",
                                      "count": min(250, nodes - 250 * i), "type": "rpi4b"}
                                     for i in range(-(-nodes // 250))]},
            "workload": {"generator": {"count": tasks, "arrival": {"rate_per_s": 0.02 * nodes},
                                       "cores": {"dist": "choice", "values": [1, 2, 4]},
                                       "mem_mb": 128,
                                       "work_core_s": {"dist": "exponential", "mean": 120}}},
            "policy": policy}


def _run(tmp_path: Path, nodes: int, tasks: int, policy: str = "best_fit") -> Any:
    _, path = simulate(scenario(_doc(nodes, tasks, policy)), tmp_path / f"{policy}-{nodes}")
    assert path is not None
    run = load_run(path, series=False)
    run.label = policy
    return run


def test_a_lane_per_node_and_no_node_over_its_cores(tmp_path: Path) -> None:
    run = _run(tmp_path, 10, 400)
    m = gantt_model(run)
    assert m["mode"] == "tasks" and len(m["lanes"]) == m["nodes"] == 10
    assert all(lane["cores"] == 4 and lane["nodes"] == 1 for lane in m["lanes"])
    bars = np.array(m["bars"])
    started = np.isfinite(run.start_s).sum()
    assert len(bars) >= started  # a task on non-adjacent cores is two bars
    # the bars of a task cover exactly its cores, each within the node's four
    assert bars[:, 4].sum() == run.cores[np.isfinite(run.start_s)].sum()
    assert (bars[:, 3] >= 0).all() and (bars[:, 3] + bars[:, 4] <= 4).all()
    # no two bars share a core at the same time
    for lane in range(10):
        mine = bars[bars[:, 0] == lane]
        for core in range(4):
            on = mine[(mine[:, 3] <= core) & (core < mine[:, 3] + mine[:, 4])]
            on = on[np.argsort(on[:, 1])]
            assert (on[1:, 1] >= on[:-1, 2] - 1e-3).all()
    q = m["queue"]
    assert len(q["time_s"]) == len(q["queued"]) and min(q["queued"]) >= 0


def test_a_thousand_nodes_group_into_lanes_of_busy_cores(tmp_path: Path) -> None:
    run = _run(tmp_path, 1000, 4000)
    m = gantt_model(run)
    assert m["mode"] == "busy" and len(m["lanes"]) <= 60 and m["nodes"] == 1000
    assert sum(lane["nodes"] for lane in m["lanes"]) == 1000
    frac = np.array(m["busy"]["frac"])  # lanes x kinds x bins
    assert frac.shape[0] == len(m["lanes"]) and (frac >= 0).all() and (frac <= 1).all()
    # the area under the lanes is the work done: core-seconds of every task that ran
    width = np.diff(m["busy"]["edges"])
    caps = np.array([lane["cores"] for lane in m["lanes"]])
    area = float((frac.sum(axis=1) * width * caps[:, None]).sum())
    ran = np.isfinite(run.start_s)
    work = float((run.cores[ran] * (np.where(np.isfinite(run.end_s[ran]), run.end_s[ran], m["t1"])
                                    - run.start_s[ran])).sum())
    assert area == pytest.approx(work, rel=0.01)
    svg = gantt_svg([m])
    assert svg.count('class="lane"') == len(m["lanes"]) and "path class=\"busy\"" in svg
    assert len(svg) < 2_000_000


def test_png_is_a_real_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    a, b = _run(tmp_path, 6, 200), _run(tmp_path, 6, 200, "worst_fit")
    out = gantt_png([gantt_model(a), gantt_model(b)], tmp_path / "g.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    assert w >= 800 and h >= 400 and len(data) > 20_000


def test_svg_in_chromium_has_a_lane_per_node(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    from ..master.test_dashboard import SCREEN, Chromium, _check_png

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    a, b = _run(tmp_path, 10, 300), _run(tmp_path, 10, 300, "worst_fit")
    f = tmp_path / "gantt.svg"
    f.write_text(gantt_svg([gantt_model(a), gantt_model(b)], standalone=True))

    async def check() -> None:
        async with Chromium(chromium, tmp_path) as browser:
            await browser.navigate(f.as_uri())
            await browser.wait_for("document.readyState === 'complete'")
            page = await browser.evaluate("""(() => {
                const svg = document.documentElement;
                return {root: svg.tagName, width: svg.getBoundingClientRect().width,
                        runs: Array.from(document.querySelectorAll('g.run'), g => ({
                            label: g.dataset.label,
                            lanes: Array.from(g.querySelectorAll('g.lane'), l => l.dataset.node),
                            bars: g.querySelectorAll('rect.task').length,
                            drawn: Array.from(g.querySelectorAll('rect.task')).filter(
                                r => r.getBBox().width > 0).length}))};
            })()""")
            assert page["root"] == "svg" and page["width"] >= 900
            assert [r["label"] for r in page["runs"]] == ["best_fit", "worst_fit"]
            for r in page["runs"]:
                assert len(r["lanes"]) == 10 == len(set(r["lanes"])), r
                assert r["bars"] >= 300 and r["drawn"] == r["bars"], r
            assert not browser.exceptions, browser.exceptions
            _check_png(await browser.screenshot(tmp_path / "gantt.png"), *SCREEN)

    asyncio.run(check())
