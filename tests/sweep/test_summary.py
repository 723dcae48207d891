"""A sweep's aggregation: groups, means and intervals by hand, the files, the table, the plots."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest

from rpiaas.sweep.ci import t_quantile
from rpiaas.sweep.summary import (
    aggregate,
    format_table,
    is_constant,
    metric_bounds,
    plot_summary,
    series_positions,
    summarize,
)


def _rows() -> list[dict[str, Any]]:
    rows = []
    for policy, waits in (("best_fit", [1.0, 2.0, 3.0]), ("first_fit", [4.0, 4.0, 4.0])):
        for seed, w in enumerate(waits, start=1):
            rows.append({"run": f"s-{policy}-s{seed}", "scenario": "s", "policy": policy, "seed": seed,
                         "set:queue": "fcfs", "tasks": 10, "mean_wait_s": w,
                         "p95_wait_s": None if seed == 3 else 2 * w, "wall_s": 0.5, "ok": True})
    return rows


def test_summarize_by_hand() -> None:
    summary = summarize(_rows())
    by = {(r["policy"], r["metric"]): r for r in summary}
    # metrics: numbers only, not the grid's coordinates nor booleans
    assert {m for _, m in by} == {"tasks", "mean_wait_s", "p95_wait_s", "wall_s"}
    r = by["best_fit", "mean_wait_s"]
    half = t_quantile(0.975, 2) * 1.0 / math.sqrt(3)  # sd 1
    assert (r["scenario"], r["set:queue"], r["n"], r["mean"], r["sd"]) == ("s", "fcfs", 3, 2.0, 1.0)
    assert r["ci95_half"] == pytest.approx(half) and half == pytest.approx(4.302653 / math.sqrt(3))
    # 2 - 2.48 < 0: a mean wait cannot be negative, so the interval is clipped at 0
    assert (r["ci95_low"], r["ci95_high"]) == (0.0, pytest.approx(2.0 + half))
    assert r["ci95_clipped"] is True
    r = by["first_fit", "mean_wait_s"]
    assert (r["mean"], r["sd"], r["ci95_half"]) == (4.0, 0.0, 0.0)  # exactly: no rounding noise
    assert by["best_fit", "p95_wait_s"]["n"] == 2  # a missing value is no zero


def test_aggregate_writes_the_files(tmp_path: Path) -> None:
    rows = _rows()
    summary = aggregate(rows, tmp_path, plots=False)
    with open(tmp_path / "sweep.csv", newline="") as f:
        written = list(csv.DictReader(f))
    assert len(written) == 6 and written[2]["p95_wait_s"] == "" and written[0]["mean_wait_s"] == "1.0"
    with open(tmp_path / "summary.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(summary) == 8
    assert not (tmp_path / "plots").exists() and not list(tmp_path.glob("*.tmp"))
    text = (tmp_path / "summary.txt").read_text()
    assert text == format_table(summary) + "\n"


def test_the_table() -> None:
    lines = format_table(summarize(_rows())).splitlines()
    assert lines[0].split() == ["scenario", "policy", "queue", "n", "mean_wait_s"]
    assert lines[2].split() == ["s", "best_fit", "fcfs", "3", "2.000", "[0,", "4.484]"]  # clipped
    assert lines[3].split() == ["s", "first_fit", "fcfs", "3", "4.000", "±", "0"]
    assert lines[-1].startswith("(mean ± half-width of the 95 % confidence interval, Student t;")


def test_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    paths = plot_summary(summarize(_rows()), tmp_path / "plots")
    # (a swept key: lines over it); tasks and wall_s, 10 and 0.5 in every run, get none
    assert sorted(p.name for p in paths) == ["mean_wait_s.png", "p95_wait_s.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_numbers_in_one_format_and_tables_within_100_columns() -> None:
    from rpiaas.sweep.summary import format_number

    assert [format_number(x) for x in (288424.0, 14860.3, 0.0004979, 3.14159, 0.0, -2.5)] == [
        "288,424", "14,860", "0.0004979", "3.142", "0", "-2.500"]
    rows = [{"run": f"r{i}", "scenario": "a-scenario-with-a-long-name", "policy": p, "seed": i,
             "set:workload.generator.count": 100, "tasks": 10, "mean_wait_s": 288_424.0 + 9000 * i,
             "mean_response_s": 0.0004979 * i, "mean_bounded_slowdown": 1.0 + i,
             "mean_utilization": 0.99 - 0.4 * (i % 2), "energy_j": 1e9 + i}
            for p in ("best_fit", "worst_fit") for i in range(1, 4)]
    text = format_table(summarize(rows))
    assert max(len(line) for line in text.splitlines()[:-1]) <= 100
    assert "e+" not in text and "e-" not in text
    assert "306,424 ± 22,357" in text  # the same format for the mean and its half-width
    assert text.count("scenario  ") >= 2  # the metrics that do not fit go to a second table
    for r in summarize(rows):  # no interval leaves the metric's range
        assert r["ci95_low"] >= (1.0 if r["metric"] == "mean_bounded_slowdown" else 0.0)
        assert r["metric"] != "mean_utilization" or r["ci95_high"] <= 1.0


def test_no_swept_key_gives_bars_and_constant_zero_metrics_no_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = [{"run": f"r-{p}-{i}", "scenario": "s", "policy": p, "seed": i, "failed": 0,
             "mean_wait_s": 0.001 * i if p == "best_fit" else 0.0}
            for p in ("best_fit", "worst_fit") for i in range(1, 4)]
    paths = plot_summary(summarize(rows), tmp_path)
    assert [p.name for p in paths] == ["mean_wait_s.png"]  # "failed" is 0 in every run
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_metric_with_one_value_in_every_run_gets_no_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = [{"run": f"r-{p}-{c}-{i}", "scenario": "s", "policy": p, "seed": i, "set:count": c,
             "completed": 50, "tasks": 50, "mean_wait_s": float(i + c)}
            for p in ("best_fit", "worst_fit") for c in (10, 20) for i in range(1, 4)]
    summary = summarize(rows)
    assert is_constant([r for r in summary if r["metric"] == "completed"])
    assert not is_constant([r for r in summary if r["metric"] == "mean_wait_s"])
    # equal means in every group but values that vary within them: not constant
    assert not is_constant([{"mean": 2.0, "sd": 1.0}, {"mean": 2.0, "sd": 0.5}])
    paths = plot_summary(summary, tmp_path)
    assert [p.name for p in paths] == ["mean_wait_s.png"]  # completed and tasks: 50 in every run


def test_series_at_one_x_are_set_apart_within_their_x(tmp_path: Path) -> None:
    rows = [{"scenario": "s", "policy": p, "set:count": c, "metric": "m", "mean": 1.0, "n": 3}
            for p in ("a", "b", "c") for c in (10, 20, 40)]
    positions = series_positions(rows, ["set:count"])
    assert list(positions) == [("s", "a"), ("s", "b"), ("s", "c")]
    for i, x in enumerate((10.0, 20.0, 40.0)):
        at_x = [points[i][0] for points in positions.values()]
        assert [points[i][1]["set:count"] for points in positions.values()] == [x] * 3
        assert len(set(at_x)) == 3 and at_x == sorted(at_x)  # one position per series, in order
        assert sum(at_x) / 3 == pytest.approx(x)  # centred on the x
        assert max(at_x) - min(at_x) < 5  # within half the smallest gap (10)
    # values that are not numbers: one x per combination, 0, 1, ...
    words = [{**r, "set:count": f"q{r['set:count']}"} for r in rows]
    xs = [x for x, _ in series_positions(words, ["set:count"])[("s", "b")]]
    assert xs == [0.0, 1.0, 2.0]  # the middle series sits on its x
    one = series_positions(rows[:1] + rows[3:4], ["set:count"])  # one x, two series
    assert [p[0][0] for p in one.values()] == [pytest.approx(10 - 0.75), pytest.approx(10 + 0.75)]


def test_with_no_row_both_csv_files_have_their_header_and_the_report_says_so(tmp_path: Path) -> None:
    aggregate([], tmp_path, params=["set:workload.generator.count"])
    assert (tmp_path / "sweep.csv").read_text().splitlines() == [
        "run,scenario,policy,seed,set:workload.generator.count"]
    assert (tmp_path / "summary.csv").read_text().splitlines() == [
        "scenario,policy,set:workload.generator.count,metric,n,mean,sd,ci95_low,ci95_high,ci95_half,ci95_clipped"]
    page = (tmp_path / "report.html").read_text()
    assert "No run completed" in page and "<table" not in page


def test_the_report_holds_the_table_and_every_plot_inline(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    summary = aggregate(_rows(), tmp_path)
    page = (tmp_path / "report.html").read_text()
    plots = sorted((tmp_path / "plots").glob("*.png"))
    assert [p.name for p in plots] == ["mean_wait_s.png", "p95_wait_s.png"]
    assert page.count("<img src='data:image/png;base64,") == len(plots)
    for p in plots:
        assert f"id='plot-{p.stem}'" in page
    assert "src='http" not in page and "href=" not in page
    for metric in {r["metric"] for r in summary}:
        assert f"<tr id='metric-{metric}'>" in page
    assert "<td>2.000 [0, 4.484]</td>" in page and "<td>4.000 ± 0</td>" in page  # as summary.txt
    assert "No plot for the metrics with one value in every run: tasks, wall_s." in page


def test_a_node_types_utilisation_is_bounded_as_the_runs() -> None:
    assert metric_bounds("by_node_type.rpi4b.mean_utilization") == metric_bounds("mean_utilization") == (0.0, 1.0)
    assert metric_bounds("by_node_type.rpi4b.mean_wait_s") == (0.0, math.inf)
