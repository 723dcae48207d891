"""The comparison report in headless Chromium: it renders, offline, and shows every plot."""

from __future__ import annotations

import asyncio
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rpiaas.analysis.compare import compare_runs, write_comparison
from rpiaas.analysis.report import render_report
from rpiaas.analysis.tables import format_comparison, format_value
from rpiaas.sim import simulate

from ..helpers import scenario

pytest.importorskip("aiohttp")
from ..master.test_dashboard import SCREEN, Chromium, _check_png

PLOTS = ("response-cdf", "wait-cdf", "utilization", "cpu-utilization", "power", "node-utilization",
         "node-cpu", "node-power", "energy", "scatter-B", "gantt")


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
                               " && document.querySelectorAll('figure.plot svg').length === 20")
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
        for per_node in ("node-utilization", "node-cpu", "node-power"):
            assert by_id[per_node]["panels"] == 4 and by_id[per_node]["lines"] == 2, by_id[per_node]
        for line_plot in ("response-cdf", "wait-cdf", "utilization", "cpu-utilization", "power"):
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
        assert tables[0] > 10 and tables[1] == 4  # wait, response and the tolerance line
        # what the terminal prints is on the page: the verdicts, the tolerance, Cohen's d, the sources
        seen = await browser.evaluate("""(() => ({
            verdicts: Array.from(document.querySelectorAll('table.tasks td.agree, table.tasks td.differ'),
                                 td => td.textContent),
            head: Array.from(document.querySelectorAll('table.tasks th'), th => th.textContent),
            tolerance: document.querySelector('table.tasks tr.tolerance').textContent,
            energy: document.querySelector('#summary tr[data-metric="energy_j"]').textContent,
            sources: document.querySelectorAll('#sources tr[data-run]').length}))()""")
        assert len(seen["verdicts"]) == 2 and "Cohen's d" in seen["head"], seen
        assert "tolerance of 0 s" in seen["tolerance"], seen
        assert seen["energy"].endswith("modelledmodelled on both sides") and seen["sources"] == 2, seen
        resources = await browser.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name)")
        assert resources == []  # nothing loaded but the page
        assert not browser.exceptions, browser.exceptions
        # the plots are really drawn: the screenshot is far from one flat colour
        await browser.evaluate("document.getElementById('plot-response-cdf').scrollIntoView()")
        _check_png(await browser.screenshot(tmp_path / "report.png"), *SCREEN)


class _Cells(HTMLParser):
    """The text of each table cell, by table id (or class), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.figures: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id") or a.get("class") or ""
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "figure":
            self.figures.append(str(a.get("id")))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_the_report_says_what_the_terminal_says(tmp_path: Path) -> None:
    """Parsed, the page holds the verdicts, tolerance and Cohen's d the terminal prints, each run's
    sources, 'modelled on both sides' for the energy of two simulations, both utilisations as
    plots of their own, and the live runs' spread."""
    a, b = _runs(tmp_path)
    lives = []
    for i, k in enumerate((0.99, 1.01)):
        d = tmp_path / f"live{i}"
        shutil.copytree(a, d)
        record = json.loads((d / "run.json").read_text())
        record["mode"] = "live"
        record["sources"] = {**record["sources"], "cpu_utilization": "measured",
                             "energy_j": "measured", "power_w": "measured"}
        record["summary"]["makespan_s"] *= k
        (d / "run.json").write_text(json.dumps(record))
        lives.append(d)
    result = compare_runs([a, b], tolerance_s=0.5, live_runs=lives)
    page = _Cells()
    page.feed(render_report(result))
    terminal = format_comparison(result)
    tasks = page.tables["tasks"]
    assert tasks[0][-2:] == ["Cohen's d", "verdict"]
    for row in tasks[1:3]:
        dist = result["pairs"][0]["tasks"]["distributions"][("wait_s", "response_s")[tasks.index(row) - 1]]
        assert row[-2] == format_value(dist["cohens_d"])
        assert row[-1] == ("agree" if dist["agree"] else "differ")
        assert f"{row[-2]}  {row[-1]}" in terminal  # the same figures as the terminal's
    assert "tolerance of 0.5 s (given)" in tasks[3][0]
    summary = {row[0]: row for row in page.tables["summary"]}
    assert summary["energy_j"][-1] == "modelled on both sides (B with A)"
    assert "A modelled" in summary["energy_j"][-2] and "C measured" in summary["energy_j"][-2]
    assert summary["mean_utilization"][-1] == "" and "mean_cpu_utilization" in summary
    sources = {row[0]: row for row in page.tables["sources"]}
    assert sources["A"][1:] == ["allocated", "modelled", "modelled", "modelled", "modelled", "modelled"]
    assert sources["C"][2] == "measured"
    assert {"plot-utilization", "plot-cpu-utilization", "plot-node-utilization", "plot-node-cpu"} <= set(page.figures)
    spread = {row[0]: row for row in page.tables["spread"]}
    makespan = result["spread"]["metrics"]["makespan_s"]["runs"]
    assert spread["makespan_s"][-4] == makespan["best_fit"]["verdict"] == "inside the live runs' range"
    assert spread["makespan_s"][-1] == makespan["worst_fit"]["verdict"]
