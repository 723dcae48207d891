"""--format parquet: the tables as Parquet, run.json saying so, every reader reading either."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from rpiaas.cli import main
from rpiaas.rundir.format import NODE_COLUMNS, TASK_COLUMNS
from rpiaas.rundir.reader import RunFileError, load_run, table_file

ROOT = Path(__file__).resolve().parent.parent.parent
QUICK = str(ROOT / "scenarios" / "quickstart.yaml")


def test_parquet_run_matches_the_csv_run(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    base = ["run", "-q", QUICK, "--set", "workload.generator.count=300"]
    assert main([*base, "-o", str(tmp_path / "c")]) == 0
    assert main([*base, "-o", str(tmp_path / "p"), "--format", "parquet"]) == 0
    c, p = tmp_path / "c", tmp_path / "p"
    assert sorted(x.name for x in p.iterdir()) == ["events.jsonl", "nodes.parquet", "parts.csv", "run.json",
                                                  "tasks.parquet", "timing.json"]
    rc, rp = json.loads((c / "run.json").read_text()), json.loads((p / "run.json").read_text())
    assert "tables" not in rc and rp.pop("tables") == "parquet" and rp == rc
    assert (c / "events.jsonl").read_bytes() == (p / "events.jsonl").read_bytes()
    assert table_file(p, "tasks") == p / "tasks.parquet" and table_file(c, "nodes") == c / "nodes.csv"
    assert tuple(pq.read_schema(p / "tasks.parquet").names) == TASK_COLUMNS
    assert tuple(pq.read_schema(p / "nodes.parquet").names) == NODE_COLUMNS
    assert pq.read_metadata(p / "tasks.parquet").num_rows == 300
    a, b = load_run(c), load_run(p)
    for name in ("task_id", "arrival_s", "start_s", "end_s", "wait_s", "response_s", "node", "state",
                 "cores", "work_core_s", "kind"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert a.series is not None and b.series is not None
    for name in ("time_s", "node", "utilization", "power_w", "on"):
        assert np.array_equal(getattr(a.series, name), getattr(b.series, name)), name
    # compare reads either: a run against its Parquet twin agrees everywhere
    assert main(["compare", str(c), str(p), "-o", str(tmp_path / "cmp"), "-q"]) == 0
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert all(row["diff"] in (0, None) for row in result["pairs"][0]["summary"].values())


def test_a_run_with_no_rows_in_parquet(tmp_path: Path) -> None:
    from rpiaas.rundir.writer import RunWriter

    out = RunWriter(tmp_path / "r", event_log=False, tables="parquet").commit({"summary": {}}, {})
    assert sorted(x.name for x in out.iterdir()) == ["nodes.parquet", "parts.csv", "run.json", "tasks.parquet",
                                                    "timing.json"]
    run = load_run(out)
    assert run.task_id.size == 0 and run.series is not None and run.series.time_s.size == 0
    with pytest.raises(ValueError, match="tables: expected one of csv, parquet, got 'xml'"):
        RunWriter(tmp_path / "x", tables="xml")


def test_a_run_json_naming_an_unknown_format_is_refused(tmp_path: Path) -> None:
    assert main(["run", "-q", QUICK, "--set", "workload.generator.count=5", "-o",
                 str(tmp_path / "p"), "--format", "parquet"]) == 0
    f = tmp_path / "p" / "run.json"
    f.write_text(f.read_text().replace('"tables": "parquet"', '"tables": "hdf5"'))
    with pytest.raises(RunFileError, match=r"run.json: tables: expected 'csv' or 'parquet', got 'hdf5'"):
        load_run(tmp_path / "p")
    (tmp_path / "p" / "run.json").write_text(f.read_text().replace('"hdf5"', '"parquet"'))
    (tmp_path / "p" / "nodes.parquet").unlink()
    assert load_run(tmp_path / "p").series is None  # as a CSV run without nodes.csv
