"""Terminal tables of a comparison, from a hand-made ``compare.json``."""

from __future__ import annotations

import re
from typing import Any

from rpiaas.analysis.tables import format_comparison


def _dist(ks: float, agree: bool | None) -> dict[str, Any]:
    return {"ks": ks, "ks_pvalue": 0.5, "wasserstein_s": 0.25, "cohens_d": 0.1, "agree": agree}


def _result() -> dict[str, Any]:
    runs = [{"label": "sim", "mode": "sim", "policy": "best_fit", "seed": 1, "tasks": 1200},
            {"label": "live", "mode": "live", "policy": "best_fit", "seed": 1, "tasks": 1200},
            {"label": "other", "mode": "sim", "policy": "worst_fit", "seed": 2, "tasks": 50}]
    diff = {"mean": 0.018, "mean_abs": 0.02, "p95_abs": 0.05, "max_abs": 1234.5}
    return {
        "runs": runs,
        "tolerance": {"tolerance_s": 0.03, "source": "measured: p95 start lag of live"},
        "pairs": [
            {"b": 1, "note": None,
             "summary": {"mean_wait_s": {"a": 2.0, "b": 2.5, "diff": 0.5, "rel": 0.25},
                         "completed": {"a": 1200, "b": 1200, "diff": 0.0, "rel": 0.0},
                         "p95_wait_s": {"a": None, "b": None, "diff": None, "rel": None},
                         "energy_j": {"a": 100.0, "b": 100.0, "diff": 0.0, "rel": 0.0,
                                      "source": {"a": "modelled", "b": "modelled-from-measured"},
                                      "verdict": "modelled on both sides"}},
             "tasks": {"matched": 1200, "both_completed": 1190,
                       "wait_diff_s": diff, "response_diff_s": diff,
                       "distributions": {"wait_s": _dist(1.0, True), "response_s": _dist(0.5, False)},
                       "placement": {"both_placed": 1190, "same_node": 1178, "agreement": 0.99},
                       "worst": [{"task_id": 7, "diff_s": 1.5}, {"task_id": 9, "diff_s": -0.25}]}},
            {"b": 2, "note": "different task sets (1,200 and 50 tasks)",
             "summary": {"mean_wait_s": {"a": 2.0, "b": 1.0, "diff": -1.0, "rel": -0.5},
                         "energy_j": {"a": 100.0, "b": 90.0, "diff": -10.0, "rel": -0.1,
                                      "source": {"a": "modelled", "b": "modelled"},
                                      "verdict": "modelled on both sides"}},
             "tasks": None},
        ],
        "nodes": [{"n0": {"energy_j": 12345.0, "energy_source": "modelled", "mean_utilization": 0.5,
                          "mean_cpu_utilization": 0.5}},
                  {"n0": {"energy_j": 12000.0, "energy_source": "measured", "mean_utilization": 0.25,
                          "mean_cpu_utilization": 0.125}, "n1": {"energy_j": None}},
                  {}],
    }


def test_the_tables() -> None:
    text = format_comparison(_result())
    lines = text.splitlines()
    assert lines[:3] == ["A: sim (sim, best_fit, seed 1, 1,200 tasks)",
                         "B: live (live, best_fit, seed 1, 1,200 tasks)",
                         "C: other (sim, worst_fit, seed 2, 50 tasks)"]
    head = lines[4].split()
    assert head == ["metric", "A", "B", "B−A", "B/A−1", "C", "C−A", "C/A−1", "sources", "note"]
    assert lines[6].split() == ["mean_wait_s", "2", "2.5", "0.5", "+25.0", "%", "1", "-1", "-50.0", "%"]
    assert lines[7].split()[:5] == ["completed", "1,200", "1,200", "0", "+0.0"]
    assert lines[8].split() == ["p95_wait_s", "—", "—", "—", "—", "—", "—", "—"]  # C has no row
    # the same model on both sides: said, with every run's source, instead of a verdict
    energy = next(x for x in lines if x.startswith("energy_j"))
    assert energy.endswith("A modelled · B modelled-from-measured · C modelled  modelled on both sides")
    assert "A and B, task by task (1,200 tasks, 1,190 completed in both; differences are B − A)" in text
    wait = next(x for x in lines if x.startswith("wait s"))
    assert wait.split() == ["wait", "s", "0.018", "0.02", "0.05", "1,234", "1", "0.5", "0.25", "0.1",
                            "agree"]
    assert next(x for x in lines if x.startswith("response s")).split()[-1] == "differ"
    assert ("verdict: |mean difference| within the tolerance of 0.03 s (measured: p95 start lag of "
            "live) is agreement, whatever KS says") in lines
    assert "same node: 99.0 % of 1,190 tasks placed in both" in lines
    assert "largest response differences: 7 (+1.5 s), 9 (-0.25 s)" in lines
    assert ("A and C: different task sets (1,200 and 50 tasks): only the summaries are compared"
            in lines)
    node_head = lines.index(next(x for x in lines if x.startswith("node ")))
    assert lines[node_head].split() == [
        "node", "A", "energy", "J", "B", "energy", "J", "C", "energy", "J", "A", "energy", "source", "B",
        "energy", "source", "C", "energy", "source", "A", "alloc", "util", "B", "alloc", "util", "C", "alloc",
        "util", "A", "CPU", "util", "B", "CPU", "util", "C", "CPU", "util"]
    assert lines[node_head + 2].split() == ["n0", "12,345", "12,000", "—", "modelled", "measured", "—",
                                            "0.5", "0.25", "—", "0.5", "0.125", "—"]
    assert lines[node_head + 3].split() == ["n1", "—", "—", "—", "—", "—", "—", "—", "—", "—", "—", "—", "—"]


def test_the_live_runs_spread_table() -> None:
    r = _result()
    r["runs"] += [{"label": "live2", "mode": "live", "policy": "best_fit", "seed": 1, "tasks": 1200}]
    r["spread"] = {"live_runs": ["live", "live2"], "judged": ["sim", "other"], "metrics": {
        "makespan_s": {"live_mean": 100.0, "live_sd": 2.0, "live_min": 98.5, "live_max": 101.5,
                       "live_spread_rel": 0.03,
                       "runs": {"sim": {"value": 99.0, "error_rel": -0.01, "verdict": "inside the live runs' range"},
                                "other": {"value": 120.0, "error_rel": 0.2,
                                          "verdict": "outside the testbed's spread"}}}}}
    lines = format_comparison(r).splitlines()
    at = lines.index(next(x for x in lines if x.startswith("against the testbed's own spread (live runs B, D)")))
    assert lines[at + 1].split()[:8] == ["metric", "live", "mean", "live", "sd", "live", "range", "range/mean"]
    row = lines[at + 3]
    assert row.startswith("makespan_s") and "98.5–101.5" in row and "+3.0 %" in row
    assert re.search(r" 99 +-1\.0 % +inside the live runs' range +120 +\+20\.0 % +outside the testbed's spread$", row)


def test_many_nodes_are_cut_short() -> None:
    r = _result()
    r["nodes"] = [{f"n{i}": {"energy_j": 1.0} for i in range(60)}, {}, {}]
    assert format_comparison(r).endswith("… and 10 more nodes (compare.json has them all)")


def test_a_single_reference_has_no_pairs() -> None:
    r = _result()
    r.update(runs=r["runs"][:1], pairs=[], nodes=[{}])
    assert format_comparison(r) == "A: sim (sim, best_fit, seed 1, 1,200 tasks)\n\nmetric  A\n──────  ─\n"
