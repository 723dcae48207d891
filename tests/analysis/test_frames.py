"""The notebook API: rpiaas.run / rpiaas.load_run and their typed DataFrames, CSV and Parquet alike."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

import rpiaas  # noqa: E402
from rpiaas.analysis.frames import RunFrames  # noqa: E402
from rpiaas.rundir import reader  # noqa: E402
from rpiaas.rundir.format import TASK_COLUMNS, TASK_STATES  # noqa: E402
from rpiaas.rundir.parquet import convert  # noqa: E402
from rpiaas.rundir.reader import RunFileError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
FLOATS = ("arrival_s", "start_s", "end_s", "wait_s", "response_s", "slowdown", "bounded_slowdown",
          "work_core_s")


def _lines(f: Path) -> int:
    return sum(1 for line in f.read_text().splitlines() if line.strip()) if f.exists() else 0


def as_parquet(run: Path, out: Path) -> Path:
    """A copy of the CSV run ``run`` with its tables in Parquet, as ``--format parquet`` writes."""
    shutil.copytree(run, out)
    convert(out)
    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**record, "tables": "parquet"}))
    return out


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_as_frames(path: Path, tmp_path: Path) -> None:
    r = rpiaas.run(path, overrides={"decision_trace": True}, out=tmp_path / "run")
    assert isinstance(r, RunFrames) and r.path == tmp_path / "run"
    record = json.loads((r.path / "run.json").read_text())
    assert r.summary == record["summary"] and r.scenario == record["scenario"]
    tasks = r.tasks
    assert len(tasks) == _lines(r.path / "tasks.csv") - 1 == r.summary["tasks"]
    assert tuple(tasks.columns) == TASK_COLUMNS
    for c in FLOATS:
        assert tasks[c].dtype == np.float64, c
    for c in ("task_id", "cores", "mem_mb", "attempts"):
        assert tasks[c].dtype == np.int64, c
    for c in ("node", "state", "kind", "tenant"):
        assert isinstance(tasks[c].dtype, pd.CategoricalDtype), c
    assert tuple(tasks["state"].cat.categories) == TASK_STATES
    assert (tasks["state"] == "completed").sum() == r.summary["completed"]
    # a task that never ran has no node (missing), every other one names a node of run.json
    declared = {n["node"] for n in record["nodes"]}
    assert set(tasks["node"].dropna().unique()) <= declared
    assert tasks["node"].isna().sum() == tasks["start_s"].isna().sum()
    nodes = r.nodes
    assert len(nodes) == _lines(r.path / "nodes.csv") - 1
    assert nodes["time_s"].dtype == np.float64 and isinstance(nodes["node"].dtype, pd.CategoricalDtype)
    assert len(r.events) == _lines(r.path / "events.jsonl")
    assert set(r.events["source"].unique()) <= {"event", "action"}
    assert r.events["time_s"].is_monotonic_increasing
    assert len(r.decisions) == _lines(r.path / "decisions.jsonl") > 0
    assert r.decisions["time_s"].dtype == np.float64
    assert isinstance(r.decisions["kind"].dtype, pd.CategoricalDtype)
    # the same run with Parquet tables gives equal frames and equal arrays
    p = rpiaas.load_run(as_parquet(r.path, tmp_path / "parquet"))
    assert p.tables == "parquet" and not (p.path / "tasks.csv").exists()
    pd.testing.assert_frame_equal(p.tasks, tasks)
    pd.testing.assert_frame_equal(p.nodes, nodes)
    a, b = reader.load_run(r.path), reader.load_run(p.path)
    for name in ("task_id", "arrival_s", "start_s", "end_s", "wait_s", "node", "state", "cores",
                 "kind"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert a.node_names == b.node_names and a.kind_names == b.kind_names
    assert a.series is not None and b.series is not None
    assert np.array_equal(a.series.utilization, b.series.utilization)


def test_tables_are_read_on_first_access(tmp_path: Path) -> None:
    r = rpiaas.run(ROOT / "scenarios" / "quickstart.yaml",
                   overrides=["workload.generator.count=50"], out=tmp_path / "q")
    assert "tasks" not in r.__dict__ and "events" not in r.__dict__
    (r.path / "events.jsonl").unlink()
    assert len(r.tasks) == 50 and "tasks" in r.__dict__
    assert r.tasks is r.tasks  # read once
    assert r.events.empty and list(r.events.columns)[:2] == ["time_s", "source"]
    assert r.decisions.empty  # no decision trace in this scenario
    assert "quickstart" in repr(r)


def test_run_takes_a_scenario_with_policy_seed_and_overrides(tmp_path: Path) -> None:
    sc = rpiaas.load_scenario(ROOT / "scenarios" / "quickstart.yaml",
                              {"workload.generator.count": 40})
    a = rpiaas.run(sc, out=tmp_path / "a")
    b = rpiaas.run(sc, policy="worst_fit", seed=7, overrides={"workload.generator.count": 30},
                   out=tmp_path / "b")
    assert (a.record["policy"], a.record["seed"], a.summary["tasks"]) == ("best_fit", 42, 40)
    assert (b.record["policy"], b.record["seed"], b.summary["tasks"]) == ("worst_fit", 7, 30)
    c = rpiaas.run(ROOT / "scenarios" / "quickstart.yaml", overrides={"workload.generator.count": 40},
                   out=tmp_path / "c", tables="parquet")
    assert c.tables == "parquet" and c.summary == a.summary
    pd.testing.assert_frame_equal(c.tasks, a.tasks)


def test_compare_gives_frames(tmp_path: Path) -> None:
    quick = ROOT / "scenarios" / "quickstart.yaml"
    a = rpiaas.run(quick, overrides={"workload.generator.count": 80}, out=tmp_path / "a")
    b = rpiaas.run(quick, policy="worst_fit", overrides={"workload.generator.count": 80},
                   out=tmp_path / "b", tables="parquet")
    cmp = a.compare(b)
    assert list(cmp.summary.columns) == ["a", "b", "diff", "rel", "source_a", "source_b", "verdict"]
    assert cmp.summary.loc["energy_j", "verdict"] == "modelled on both sides"
    assert cmp.summary.loc["energy_j", "source_b"] == "modelled"
    assert cmp.summary.loc["tasks", "a"] == cmp.summary.loc["tasks", "b"] == 80
    assert cmp.summary.loc["mean_wait_s", "diff"] == pytest.approx(
        b.summary["mean_wait_s"] - a.summary["mean_wait_s"], abs=1e-6)
    t = cmp.tasks
    assert len(t) == 80 and t["task_id"].is_monotonic_increasing
    assert np.allclose(t["response_s_diff"], t["response_s_b"] - t["response_s_a"], equal_nan=True)
    assert cmp.result["pairs"][0]["same_tasks"]
    assert a.compare(b.path).summary.equals(cmp.summary)


def test_bad_run_directories_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="no such run directory"):
        rpiaas.load_run(tmp_path / "nothing")
    r = rpiaas.run(ROOT / "scenarios" / "quickstart.yaml", overrides={"workload.generator.count": 20},
                   out=tmp_path / "p", tables="parquet")
    (r.path / "tasks.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(RunFileError, match=r"tasks.parquet: .*") as e:
        rpiaas.load_run(r.path).tasks  # noqa: B018
    assert "\n" not in str(e.value)
    with pytest.raises(RunFileError, match=r"tasks.parquet: not a readable Parquet table"):
        reader.load_run(r.path)


def test_import_rpiaas_does_not_import_pandas_and_names_the_extra() -> None:
    code = ("import sys, rpiaas; assert 'pandas' not in sys.modules and 'pyarrow' not in sys.modules;"
            "sys.modules['pandas'] = None\n"
            "try:\n    rpiaas.load_run('.')\n"
            "except ModuleNotFoundError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("rpiaas's DataFrames need pandas, part of the analysis extra "
                                "(pip install 'rpiaas[analysis]')")
