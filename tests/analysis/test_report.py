"""The comparison report in headless Chromium: it renders, offline, and shows every plot."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from rpiaas.analysis.compare import compare_runs, write_comparison
from rpiaas.sim import simulate

from ..helpers import scenario

pytest.importorskip("aiohttp")
from ..master.test_dashboard import SCREEN, Chromium, _check_png

PLOTS = ("response-cdf", "wait-cdf", "utilization", "power", "node-utilization", "node-power",
         "energy", "scatter-B", "gantt")


def _runs(tmp_path: Path) -> list[Path]:
    doc = {"name": "browser", "seed": 1, "sample_interval_s": 30,
           "cluster": {"clusters": [{"domain": "c.test", "prefix": "10.0.1", "count": 4,
                                     "type": "rpi4b"}]},
           "workload": {"generator": {"count": 300, "arrival": {"rate_per_s": 0.05},
                                      "cores": {"dist": "choice", "values": [1, 2]},
                                      "mem_mb": 256, "work_core_s": {"dist": "exponential",
                                                                     "mean": 90}}},
           "policy": "best_fit"}
    out = []
    for policy in ("best_fit", "worst_fit"):
        _, path = simulate(scenario({**doc, "policy": policy}), tmp_path / policy)
        assert path is not None
        out.append(path)
    return out


def test_report_renders_every_plot_in_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    _, html = write_comparison(compare_runs(_runs(tmp_path)), tmp_path / "cmp")
    asyncio.run(_check(chromium, html, tmp_path))


async def _check(chromium: str, html: Path, tmp_path: Path) -> None:
    async with Chromium(chromium, tmp_path) as browser:
        # network off: the page must need nothing but itself
        await browser.send("Network.enable")
        await browser.send("Network.emulateNetworkConditions", offline=True, latency=0,
                           downloadThroughput=-1, uploadThroughput=-1)
        await browser.navigate(html.as_uri())
        await browser.wait_for("document.readyState === 'complete'"
                               " && document.querySelectorAll('figure.plot svg').length === 15")
        figures = await browser.evaluate("""Array.from(document.querySelectorAll('figure.plot'), f => {
            const svg = f.querySelector('svg'), box = svg.getBoundingClientRect();
            return {id: f.id, width: box.width, height: box.height,
                    panels: f.querySelectorAll('svg').length,
                    lines: svg.querySelectorAll('polyline.series').length,
                    points: Math.max(...Array.from(svg.querySelectorAll('polyline.series'),
                                                   p => p.points.numberOfItems), 0),
                    bars: svg.querySelectorAll('rect.bar').length,
                    dots: svg.querySelectorAll('circle').length,
                    caption: f.querySelector('figcaption').textContent};
        })""")
        assert [f["id"] for f in figures] == [f"plot-{p}" for p in PLOTS]
        by_id = {f["id"][5:]: f for f in figures}
        for f in figures:
            assert f["width"] >= 400 and f["height"] >= 200, f
            assert f["caption"], f
        # one panel per node, both runs in each
        for per_node in ("node-utilization", "node-power"):
            assert by_id[per_node]["panels"] == 4 and by_id[per_node]["lines"] == 2, by_id[per_node]
        for line_plot in ("response-cdf", "wait-cdf", "utilization", "power"):
            assert by_id[line_plot]["lines"] == 2 and by_id[line_plot]["points"] > 50, by_id[line_plot]
        assert by_id["energy"]["bars"] == 8  # four nodes, two runs
        assert by_id["scatter-B"]["dots"] == 300
        # the Gantt chart: both runs on one time axis, a lane per node in each, every task a bar
        gantt = await browser.evaluate("""(() => {
            const svg = document.querySelector('#plot-gantt svg');
            return {runs: Array.from(svg.querySelectorAll('g.run'), g => ({
                        label: g.dataset.label, mode: g.dataset.mode,
                        lanes: g.querySelectorAll('g.lane').length,
                        bars: g.querySelectorAll('rect.task').length,
                        queue: g.querySelectorAll('polyline.queue').length})),
                    width: svg.getBoundingClientRect().width};
        })()""")
        assert [r["lanes"] for r in gantt["runs"]] == [4, 4], gantt
        assert all(r["mode"] == "tasks" and r["bars"] >= 300 and r["queue"] == 1
                   for r in gantt["runs"]), gantt
        assert gantt["width"] >= 1000
        tables = await browser.evaluate(
            "[document.querySelectorAll('#summary tr').length, "
            "document.querySelectorAll('table.tasks tr').length]")
        assert tables[0] > 10 and tables[1] == 3
        resources = await browser.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name)")
        assert resources == []  # nothing loaded but the page
        assert not browser.exceptions, browser.exceptions
        # the plots are really drawn: the screenshot is far from one flat colour
        await browser.evaluate("document.getElementById('plot-response-cdf').scrollIntoView()")
        _check_png(await browser.screenshot(tmp_path / "report.png"), *SCREEN)
