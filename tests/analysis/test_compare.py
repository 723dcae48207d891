"""rpiaas.analysis.compare: comparisons of known runs, the files written, bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from rpiaas.analysis.compare import compare_runs, write_comparison
from rpiaas.analysis.tables import format_comparison
from rpiaas.rundir.reader import RunFileError, load_run
from rpiaas.rundir.sources import sim_sources
from rpiaas.sim import simulate

from ..helpers import read_tasks, scenario


def _rpiaas(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpiaas", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "cmp", "seed": 4, "sample_interval_s": 20,
        "cluster": {"node_types": {"slow": {"base": "rpi3b"}},
                    "clusters": [{"domain": "a.test", "prefix": "10.0.1", "count": 3, "type": "rpi4b"},
                                 {"domain": "b.test", "prefix": "10.0.2", "count": 2, "type": "slow"}]},
        "workload": {"generator": {"count": 300, "arrival": {"rate_per_s": 0.12},
                                   "cores": {"dist": "choice", "values": [1, 2, 4]},
                                   "mem_mb": {"dist": "uniform", "low": 64, "high": 900},
                                   "work_core_s": {"dist": "exponential", "mean": 60}}},
        "policy": "best_fit"}
    doc.update(changes)
    return doc


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for name, doc in {"best": _doc(), "worst": _doc(policy="worst_fit"), "seed": _doc(seed=5),
                      "other": _doc(workload={"generator": {
                          "count": 50, "arrival": {"rate_per_s": 0.1}, "cores": 1, "mem_mb": 100,
                          "work_core_s": {"dist": "exponential", "mean": 30}}})}.items():
        _, path = simulate(scenario(doc), base / name)
        assert path is not None
        out[name] = path
    return out


# ---------------------------------------------------------------- comparisons
def test_a_run_against_itself_agrees_everywhere(runs: dict[str, Path]) -> None:
    r = compare_runs([runs["best"], runs["best"]])
    pair = r["pairs"][0]
    assert pair["same_tasks"] and pair["note"] is None
    assert all(v["diff"] in (None, 0.0) for v in pair["summary"].values())
    t = pair["tasks"]
    assert t["matched"] == t["both_completed"] == 300
    assert t["response_diff_s"]["max_abs"] == 0.0 and t["wait_diff_s"]["mean"] == 0.0
    assert t["placement"]["agreement"] == 1.0
    assert t["distributions"]["response_s"]["ks"] == 0.0
    assert t["distributions"]["wait_s"]["wasserstein_s"] == 0.0
    assert [x["label"] for x in r["runs"]] == ["best (A)", "best (B)"]


def test_two_policies_task_by_task(runs: dict[str, Path]) -> None:
    r = compare_runs([runs["best"], runs["worst"]])
    pair = r["pairs"][0]
    a, b = (json.loads((runs[k] / "run.json").read_text())["summary"] for k in ("best", "worst"))
    s = pair["summary"]["mean_response_s"]
    assert s["a"] == a["mean_response_s"] and s["b"] == b["mean_response_s"]
    assert s["diff"] == pytest.approx(b["mean_response_s"] - a["mean_response_s"])
    assert s["rel"] == pytest.approx(s["diff"] / a["mean_response_s"])
    # each node type's figures are metrics of their own, with the source of their energy
    for kind in ("rpi4b", "slow"):
        row = pair["summary"][f"by_node_type.{kind}.mean_wait_s"]
        assert (row["a"], row["b"]) == (a["by_node_type"][kind]["mean_wait_s"], b["by_node_type"][kind]["mean_wait_s"])
        assert row["diff"] == pytest.approx(row["b"] - row["a"])
        assert pair["summary"][f"by_node_type.{kind}.energy_j"]["source"] == {"a": "modelled", "b": "modelled"}
    assert "by_node_type" not in pair["summary"]
    # a type's energy carries its own nodes' source, which may differ from the run's
    from rpiaas.analysis.compare import compare_summary

    sa = {"energy_j": 3.0, "by_node_type": {"pi": {"energy_j": 1.0, "energy_source": "measured"}}}
    sb = {"energy_j": 4.0, "by_node_type": {"pi": {"energy_j": 2.0, "energy_source": "modelled"}}}
    mixed = {**sim_sources(), "energy_j": "mixed"}
    rows = compare_summary(sa, sb, mixed, sim_sources())
    assert rows["by_node_type.pi.energy_j"]["source"] == {"a": "measured", "b": "modelled"}
    assert "verdict" not in rows["by_node_type.pi.energy_j"]  # one side was measured
    assert rows["energy_j"]["source"] == {"a": "mixed", "b": "modelled"}
    assert "by_node_type.slow.mean_response_s" in format_comparison(r)
    # recomputed here from the task tables
    ta = {int(x["task_id"]): x for x in read_tasks(runs["best"])}
    tb = {int(x["task_id"]): x for x in read_tasks(runs["worst"])}
    diffs = np.array([float(tb[i]["response_s"]) - float(ta[i]["response_s"]) for i in sorted(ta)])
    same = np.mean([ta[i]["node"] == tb[i]["node"] for i in sorted(ta)])
    t = pair["tasks"]
    assert t["response_diff_s"]["mean"] == pytest.approx(diffs.mean())
    assert t["response_diff_s"]["p95_abs"] == pytest.approx(np.percentile(np.abs(diffs), 95))
    assert t["placement"]["agreement"] == pytest.approx(same)
    assert 0 < same < 1
    worst = t["worst"][0]
    assert abs(worst["diff_s"]) == pytest.approx(np.abs(diffs).max())
    assert worst["node_a"] == ta[worst["task_id"]]["node"]
    ref = stats.ks_2samp([float(x["wait_s"]) for x in ta.values()],
                         [float(x["wait_s"]) for x in tb.values()])
    assert t["distributions"]["wait_s"]["ks"] == pytest.approx(ref.statistic)
    nodes = r["nodes"][1]
    assert set(nodes) == {x["node"] for x in tb.values()} | set(nodes)
    assert all(n["energy_j"] > 0 and 0 <= n["mean_utilization"] <= 1 for n in nodes.values())
    text = format_comparison(r)
    assert "mean_response_s" in text and "same node:" in text and "largest response differences" in text


def test_different_task_sets_compare_only_the_summary(runs: dict[str, Path], tmp_path: Path) -> None:
    r = compare_runs([runs["best"], runs["other"], runs["seed"]])
    p1, p2 = r["pairs"]
    for p in (p1, p2):
        assert not p["same_tasks"] and p["tasks"] is None and "different task sets" in p["note"]
        assert p["summary"]["tasks"]["a"] == 300
    assert r["plots"]["scatter"] == []
    text = format_comparison(r)
    assert "A and B: different task sets (300 and 50 tasks): only the summaries are compared" in text
    _, html = write_comparison(r, tmp_path / "out")
    assert "different task sets" in html.read_text()


def test_files_written_are_self_contained(runs: dict[str, Path], tmp_path: Path) -> None:
    r = _rpiaas(tmp_path, "compare", str(runs["best"]), str(runs["worst"]), str(runs["seed"]),
                "--out", "cmp")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert data["format"] == "rpiaas-compare/1" and len(data["pairs"]) == 2
    assert [p["same_tasks"] for p in data["pairs"]] == [True, False], data["pairs"][0]["note"]
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert not re.search(r"(https?:)?//[a-z]", html, re.I)  # nothing fetched from anywhere
    assert "<script" not in html
    for plot in ("response-cdf", "wait-cdf", "utilization", "power", "node-utilization", "node-power",
                 "energy", "scatter-B"):
        assert f'id="plot-{plot}"' in html
    # three runs in five line plots, and in a panel of each of the five nodes for three metrics
    assert html.count('class="series"') == 3 * 5 + 3 * 5 * 3
    assert "wrote " in r.stdout and "metric" in r.stdout


def test_default_out_directory(runs: dict[str, Path], tmp_path: Path) -> None:
    r = _rpiaas(tmp_path, "compare", str(runs["best"]), str(runs["worst"]), "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "runs" / "compare-best-vs-worst" / "report.html").exists()
    assert r.stdout.startswith("wrote ")


def test_reads_quoted_fields_and_unfinished_tasks(tmp_path: Path) -> None:
    doc = _doc(workload={"tasks": [
        {"id": 1, "arrival_s": 0, "cores": 1, "mem_mb": 10, "work_core_s": 3, "tenant": 'a, "b"'},
        {"id": 2, "arrival_s": 1, "cores": 4, "mem_mb": 10, "work_core_s": 50}]},
        horizon_s=10)
    _, path = simulate(scenario(doc), tmp_path / "run")
    assert path is not None
    run = load_run(path)
    assert run.task_id.tolist() == [1, 2]
    assert run.completed.tolist() == [True, False]
    assert np.isnan(run.response_s[1]) and run.start_s[1] == 1.0
    rows = read_tasks(path)
    assert rows[0]["tenant"] == 'a, "b"'
    assert [run.node_names[i] for i in run.node] == [r["node"] for r in rows]


# ---------------------------------------------------------------- bad input
def _broken(runs: dict[str, Path], tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copytree(runs["best"], dst)
    return dst


@pytest.mark.parametrize("damage,message", [
    ("missing-dir", r"error: \S*missing-dir: no such run directory$"),
    ("no-run-json", r"error: \S*no-run-json/run\.json: no such file \(not a run directory\?\)$"),
    ("bad-json", r"error: \S*bad-json/run\.json:1: not valid JSON: .*$"),
    ("no-summary", r"error: \S*no-summary/run\.json: no 'summary' object .*$"),
    ("no-tasks", r"error: \S*no-tasks/tasks\.csv: no such file$"),
    ("bad-header", r"error: \S*bad-header/tasks\.csv:1: unexpected header .*$"),
    ("short-row", r"error: \S*short-row/tasks\.csv:3: expected 21 fields, got 3$"),
    ("bad-number", r"error: \S*bad-number/tasks\.csv:4: response_s: not a number: 'soon'$"),
    ("bad-state", r"error: \S*bad-state/tasks\.csv:2: state: unknown task state 'done'$"),
    ("dup-task", r"error: \S*dup-task/tasks\.csv: task \d+ has more than one row$"),
    ("bad-nodes", r"error: \S*bad-nodes/nodes\.csv:2: utilization: not a number: 'x'$"),
    ("binary", r"error: \S*binary/tasks\.csv: not UTF-8 text: .*$"),
])
def test_bad_run_directories(runs: dict[str, Path], tmp_path: Path, damage: str, message: str) -> None:
    d = tmp_path / damage
    if damage != "missing-dir":
        d = _broken(runs, tmp_path, damage)
    tasks = d / "tasks.csv"
    if damage == "no-run-json":
        (d / "run.json").unlink()
    elif damage == "bad-json":
        (d / "run.json").write_text("{nope")
    elif damage == "no-summary":
        (d / "run.json").write_text("{}")
    elif damage == "no-tasks":
        tasks.unlink()
    elif damage == "bad-header":
        tasks.write_text("id,when\n1,2\n")
    elif damage in ("short-row", "bad-number", "bad-state", "dup-task"):
        lines = tasks.read_text().splitlines(keepends=True)
        if damage == "short-row":
            lines[2] = "1,2,3\n"
        elif damage == "bad-number":
            f = lines[3].split(",")
            f[7] = "soon"
            lines[3] = ",".join(f)
        elif damage == "bad-state":
            lines[1] = lines[1].replace(",completed,", ",done,")
        else:
            lines.append(lines[5])
        tasks.write_text("".join(lines))
    elif damage == "bad-nodes":
        lines = (d / "nodes.csv").read_text().splitlines(keepends=True)
        f = lines[1].split(",")
        f[5] = "x"
        lines[1] = ",".join(f)
        (d / "nodes.csv").write_text("".join(lines))
    elif damage == "binary":
        tasks.write_bytes(tasks.read_bytes()[:200] + b"\xff\xfe\x00garbage")
    with pytest.raises(RunFileError):
        load_run(d)
    r = _rpiaas(tmp_path, "compare", str(runs["best"]), str(d), "--out", str(tmp_path / "o"))
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.splitlines()) == 1 and re.match(message, r.stderr.strip()), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_one_run_is_not_enough(runs: dict[str, Path], tmp_path: Path) -> None:
    r = _rpiaas(tmp_path, "compare", str(runs["best"]))
    assert r.returncode == 2 and r.stderr == "error: compare needs at least two run directories\n"


def _offset_copy(src: Path, dst: Path, offset_s: float, lag_p95_s: float | None) -> Path:
    """A copy of run ``src`` whose tasks all start and end ``offset_s`` later, as a testbed
    with that dispatch delay would have run them (``lag_p95_s``: its measured jitter)."""
    shutil.copytree(src, dst)
    lines = (dst / "tasks.csv").read_text().splitlines()
    head = lines[0].split(",")
    col = {k: i for i, k in enumerate(head)}
    out = [lines[0]]
    for line in lines[1:]:
        f = line.split(",")
        if f[col["start_s"]] and f[col["end_s"]]:
            for k in ("start_s", "end_s", "wait_s", "response_s"):
                f[col[k]] = repr(float(f[col[k]]) + offset_s)
        out.append(",".join(f))
    (dst / "tasks.csv").write_text("\n".join(out) + "\n")
    if lag_p95_s is not None:
        record = json.loads((dst / "run.json").read_text())
        record["mode"] = "live"
        record["live"] = {"start_lag_s": {"tasks": 300, "p50": lag_p95_s / 2, "p95": lag_p95_s,
                                          "max": lag_p95_s}}
        (dst / "run.json").write_text(json.dumps(record))
    return dst


def test_an_offset_below_the_testbeds_jitter_is_agreement_not_a_failure(
        runs: dict[str, Path], tmp_path: Path) -> None:
    """Every wait 18 ms longer: KS finds it (statistic 1 on the zero waits), the verdict does not."""
    live = _offset_copy(runs["best"], tmp_path / "live", 0.018, lag_p95_s=0.03)
    r = compare_runs([runs["best"], live])
    assert r["tolerance"] == {"tolerance_s": 0.03, "source": "measured: p95 start lag of live"}
    wait = r["pairs"][0]["tasks"]["distributions"]["wait_s"]
    assert wait["ks_pvalue"] < 1e-6  # the test alone would alarm
    assert wait["agree"] is True and wait["abs_diff"] == pytest.approx(0.018)
    assert wait["cohens_d"] > 0
    assert "agree" in format_comparison(r)
    # a stated tolerance below the offset: the same difference is reported as one
    strict = compare_runs([runs["best"], live], tolerance_s=0.005)
    assert strict["tolerance"]["source"] == "given"
    assert strict["pairs"][0]["tasks"]["distributions"]["wait_s"]["agree"] is False
    # no live run and no tolerance given: any difference differs
    plain = compare_runs([runs["best"], _offset_copy(runs["best"], tmp_path / "p", 0.018, None)])
    assert plain["tolerance"]["tolerance_s"] == 0.0
    assert plain["pairs"][0]["tasks"]["distributions"]["response_s"]["agree"] is False


def test_compare_takes_a_tolerance_and_refuses_a_bad_one(runs: dict[str, Path], tmp_path: Path) -> None:
    ok = _rpiaas(tmp_path, "compare", str(runs["best"]), str(runs["best"]), "--tolerance-s", "0.5",
                 "-o", str(tmp_path / "c"))
    assert ok.returncode == 0, ok.stderr
    assert "tolerance of 0.5 s (given)" in ok.stdout
    bad = _rpiaas(tmp_path, "compare", str(runs["best"]), str(runs["best"]), "--tolerance-s", "-1")
    assert bad.returncode == 2 and "expected a number of seconds >= 0" in bad.stderr
    assert "Traceback" not in bad.stderr


# ---------------------------------------------------------------- sources and the testbed's spread
_LIVE_SOURCES = {"utilization": "allocated", "cpu_utilization": "measured", "power_w": "modelled-from-measured",
                 "energy_j": "modelled-from-measured", "boot_s": "modelled", "switching": "emulated"}


def _as_live(src: Path, dst: Path, scale: float, sources: dict[str, str] | None = None) -> Path:
    """A copy of run ``src`` dressed as a live run whose makespan and mean response were
    ``scale`` times the simulated ones (a testbed run of the same scenario)."""
    shutil.copytree(src, dst)
    record = json.loads((dst / "run.json").read_text())
    record["mode"] = "live"
    record["sources"] = sources or _LIVE_SOURCES
    for key in ("makespan_s", "mean_response_s"):
        record["summary"][key] *= scale
    (dst / "run.json").write_text(json.dumps(record))
    return dst


def test_two_simulations_energy_is_modelled_on_both_sides_not_an_agreement(runs: dict[str, Path]) -> None:
    r = compare_runs([runs["best"], runs["worst"]])
    s = r["pairs"][0]["summary"]
    assert s["energy_j"]["source"] == {"a": "modelled", "b": "modelled"}
    assert s["energy_j"]["verdict"] == s["mean_power_w"]["verdict"] == "modelled on both sides"
    assert s["mean_cpu_utilization"]["verdict"] == "modelled on both sides"
    assert "verdict" not in s["mean_utilization"]  # allocated cores: a count, not a model
    assert "source" not in s["mean_wait_s"]
    assert r["runs"][0]["sources"]["energy_j"] == "modelled"
    text = format_comparison(r)
    assert re.search(r"^energy_j .* modelled +modelled on both sides$", text, re.M)
    node = r["nodes"][0][next(iter(r["nodes"][0]))]
    assert node["energy_source"] == "modelled" and node["mean_cpu_utilization"] == node["mean_utilization"]


def test_measured_energy_gets_compared(runs: dict[str, Path], tmp_path: Path) -> None:
    live = _as_live(runs["best"], tmp_path / "metered", 1.0, {**_LIVE_SOURCES, "energy_j": "measured",
                                                             "power_w": "measured"})
    s = compare_runs([runs["best"], live])["pairs"][0]["summary"]
    assert s["energy_j"]["source"] == {"a": "modelled", "b": "measured"} and "verdict" not in s["energy_j"]
    assert "verdict" not in s["mean_cpu_utilization"]  # measured CPU against the model


def test_the_simulation_is_judged_against_the_live_runs_own_spread(runs: dict[str, Path], tmp_path: Path) -> None:
    """Three live runs 2 % apart: a simulation 1 % off their mean is inside their range; one
    30 % off is outside; energy modelled on every side gets no verdict."""
    lives = [_as_live(runs["best"], tmp_path / f"live{i}", k) for i, k in enumerate((0.98, 1.0, 1.02))]
    far = _as_live(runs["best"], tmp_path / "far", 1.3, sim_sources())
    far_record = json.loads((far / "run.json").read_text())
    far_record["mode"] = "sim"
    (far / "run.json").write_text(json.dumps(far_record))
    r = compare_runs([runs["best"], far], live_runs=lives)
    spread = r["spread"]
    assert spread["live_runs"] == ["live0", "live1", "live2"] and spread["judged"] == ["best", "far"]
    mk = spread["metrics"]["makespan_s"]
    base = json.loads((runs["best"] / "run.json").read_text())["summary"]["makespan_s"]
    assert mk["live_mean"] == pytest.approx(base) and mk["live_spread_rel"] == pytest.approx(0.04)
    assert mk["live_sd"] == pytest.approx(0.02 * base)
    assert mk["runs"]["best"]["verdict"] == "inside the live runs' range" and mk["runs"]["best"]["agree"]
    assert mk["runs"]["far"]["verdict"] == "outside the testbed's spread" and not mk["runs"]["far"]["agree"]
    assert mk["runs"]["far"]["error_rel"] == pytest.approx(0.3) and mk["runs"]["far"]["sd_away"] == pytest.approx(15)
    assert spread["metrics"]["energy_j"]["runs"]["best"]["verdict"] == "modelled on both sides"
    assert "tasks" not in spread["metrics"]  # counts of one task set: nothing to judge
    # a time outside the live range and their 2 sd, but within the stated jitter: agreement
    loose = compare_runs([runs["best"], far], tolerance_s=0.31 * base, live_runs=lives)["spread"]["metrics"]
    assert loose["makespan_s"]["runs"]["far"]["verdict"] == "within the timing tolerance"
    assert loose["energy_j"]["runs"]["far"]["verdict"] == "modelled on both sides"
    assert "against the testbed's own spread (live runs C, D, E)" in format_comparison(r)
    with pytest.raises(ValueError, match="at least two live runs"):
        compare_runs([runs["best"]], live_runs=lives[:1])


def test_image_pulls_are_compared_task_by_task(runs: dict[str, Path], tmp_path: Path) -> None:
    """Two runs of a scenario with images, on links of 80 and 40 Mbit/s (the second with a
    fixed part of 0.5 s a pull): each cold pull differs by its transfer over the slower link
    plus the latency, a held image's pull (0 in both) not at all."""
    def doc(**pi: float) -> dict[str, Any]:
        return {"name": "pulls", "seed": 1, "policy": "image_locality",
                "cluster": {"node_types": {"pi": {"base": "rpi4b", "image_cache_mb": 500, **pi}},
                            "clusters": [{"domain": "c.test", "prefix": "10.0.1", "count": 1, "type": "pi"}]},
                "images": {"a:1": {"layers": [{"id": "base", "size_mb": 20}, {"id": "a", "size_mb": 10}]},
                           "b:1": {"layers": [{"id": "base", "size_mb": 20}, {"id": "b", "size_mb": 5}]}},
                "workload": {"tasks": [
                    {"id": 0, "arrival_s": 0, "cores": 1, "mem_mb": 64, "work_core_s": 5, "image": "a:1"},
                    {"id": 1, "arrival_s": 50, "cores": 1, "mem_mb": 64, "work_core_s": 5, "image": "b:1"},
                    {"id": 2, "arrival_s": 100, "cores": 1, "mem_mb": 64, "work_core_s": 5, "image": "a:1"},
                    {"id": 3, "arrival_s": 100, "cores": 1, "mem_mb": 64, "work_core_s": 5}]}}
    simulate(scenario(doc(link_mbps=80.0)), tmp_path / "a")
    simulate(scenario(doc(link_mbps=40.0, pull_latency_s=0.5)), tmp_path / "b")
    result = compare_runs([tmp_path / "a", tmp_path / "b"])
    pull = result["pairs"][0]["tasks"]["pull_diff_s"]
    # task 0: 30 MB, 3 s against 6.5 s; task 1: 5 MB (base held), 0.5 s against 1.5 s; task 2: held
    assert (pull["tasks"], pull["pulled_a"], pull["pulled_b"]) == (3, 2, 2)  # task 3 has no image
    assert pull["max_abs"] == pytest.approx(3.5) and pull["mean"] == pytest.approx((3.5 + 1.0) / 3)
    assert "image pulls (3 tasks with a pull_s in both; something pulled: 2 in A, 2 in B)" in format_comparison(result)
    # runs without images: no pull to compare, and no line of them
    plain = compare_runs([runs["best"], runs["worst"]])
    assert plain["pairs"][0]["tasks"]["pull_diff_s"]["tasks"] == 0
    assert "image pulls" not in format_comparison(plain)
