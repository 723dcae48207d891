"""A sweep's report.html in headless Chromium: the table and every plot on one page, offline."""

from __future__ import annotations

import asyncio
import csv
import shutil
from pathlib import Path

import pytest

from rpiaas.sweep.grid import expand
from rpiaas.sweep.runner import sweep

pytest.importorskip("aiohttp")
pytest.importorskip("matplotlib")
from ..master.test_dashboard import SCREEN, Chromium, _check_png


def test_the_report_shows_the_table_and_every_plot_in_chromium(scenario: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    out = tmp_path / "sw"
    specs = expand([str(scenario)], ["best_fit", "first_fit"], [1, 2], ["workload.generator.count=40,80"], out)
    result = sweep(specs, out, workers=1, progress=False)
    assert result.ran == 8 and not result.failed
    with open(out / "summary.csv", newline="") as f:
        metrics = list(dict.fromkeys(r["metric"] for r in csv.DictReader(f)))
    plots = sorted(p.stem for p in (out / "plots").glob("*.png"))
    assert "mean_wait_s" in plots and "failed" in metrics and "failed" not in plots  # 0 in every run
    asyncio.run(_check(chromium, out / "report.html", tmp_path, metrics, plots))


async def _check(chromium: str, html: Path, tmp_path: Path, metrics: list[str], plots: list[str]) -> None:
    async with Chromium(chromium, tmp_path) as browser:
        # network off: the page must need nothing but itself
        await browser.send("Network.enable")
        await browser.send("Network.emulateNetworkConditions", offline=True, latency=0,
                           downloadThroughput=-1, uploadThroughput=-1)
        await browser.navigate(html.as_uri())
        await browser.wait_for("document.readyState === 'complete'")
        page = await browser.evaluate("""(() => ({
            head: Array.from(document.querySelectorAll('#summary thead tr'),
                             tr => Array.from(tr.cells, c => c.textContent)),
            rows: Array.from(document.querySelectorAll('#summary tbody tr'), tr => tr.cells[0].textContent),
            wait: Array.from(document.querySelector('#metric-mean_wait_s').cells, c => c.textContent),
            figures: Array.from(document.querySelectorAll('figure.plot'), f => {
                const img = f.querySelector('img'), box = img.getBoundingClientRect();
                return {id: f.id, complete: img.complete, natural: img.naturalWidth,
                        width: box.width, height: box.height,
                        data: img.getAttribute('src').startsWith('data:image/png;base64,')};
            }),
            violations: window.cspViolations}))()""")
        assert page["head"] == [
            ["scenario", "tiny", "tiny", "tiny", "tiny"],
            ["policy", "best_fit", "best_fit", "first_fit", "first_fit"],
            ["workload.generator.count", "40", "80", "40", "80"],
            ["runs", "2", "2", "2", "2"]], page["head"]
        assert page["rows"] == metrics  # every metric of summary.csv, in its order
        assert len(page["wait"]) == 5 and all("±" in c or "[" in c for c in page["wait"][1:]), page["wait"]
        assert sorted(f["id"] for f in page["figures"]) == [f"plot-{p}" for p in plots]
        for f in page["figures"]:  # each plot decoded and laid out at its size
            assert f["data"] and f["complete"] and f["natural"] == 640, f
            assert f["width"] >= 400 and f["height"] >= 250, f
        assert page["violations"] == [] and not browser.exceptions
        resources = await browser.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'))")
        assert resources == []  # nothing loaded but the page
        await browser.evaluate("document.getElementById('plot-mean_wait_s').scrollIntoView()")
        _check_png(await browser.screenshot(tmp_path / "report.png"), *SCREEN)
