"""A live run is named on the master as its run directory is named here (``rpiaas run --live
-o runs/X``: run ``X``), on a real local testbed; a name the master has already gets a suffix,
and the client says so in one line."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rpiaas.cli import main
from rpiaas.testbed.local import LocalTestbed
from rpiaas.testbed.plan import DOMAIN

pytestmark = pytest.mark.integration


def _scenario(tmp_path: Path) -> Path:
    tasks = [{"id": i + 1, "arrival_s": 0.1 * i, "cores": 1, "mem_mb": 64, "work_core_s": 0.3}
             for i in range(3)]
    path = tmp_path / "names.json"
    path.write_text(json.dumps({
        "name": "names", "seed": 2, "sample_interval_s": 0.5, "policy": "worst_fit",
        "cluster": {"clusters": [{"domain": DOMAIN, "prefix": "127.0.1", "count": 1,
                                  "type": "rpi4b"}]},
        "workload": {"tasks": tasks}}))
    return path


def _run(tb: LocalTestbed, scenario: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """``rpiaas run --live -q -o out``: its stderr lines (it succeeded)."""
    code = main(["run", str(scenario), "--live", "-q", "--master", tb.master_url,
                 "--token-file", str(tb.master_token_file), "--timescale", "0.5", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (out / "run.json").is_file()
    return err.splitlines()


def _master_run(tb: LocalTestbed, run_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{tb.master_url}/api/v1/runs/{run_id}", timeout=10) as r:
        doc: dict[str, Any] = json.loads(r.read())
    return doc


def test_the_masters_run_id_is_the_run_directorys_name(
        tmp_path: Path, testbed: LocalTestbed, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = _scenario(tmp_path)
    assert _run(testbed, scenario, tmp_path / "runs" / "names-worst_fit-s2-live", capsys) == []
    doc = _master_run(testbed, "names-worst_fit-s2-live")
    assert doc["state"] == "completed" and doc["ended"] == 3
    assert (doc["policy"], doc["task_kind"], doc["timescale"]) == ("worst_fit", "sleep", 0.5)

    # the same name from another folder: the master adds -2 and the client says so, once
    lines = _run(testbed, scenario, tmp_path / "elsewhere" / "names-worst_fit-s2-live", capsys)
    assert lines == ["note: the master has a run names-worst_fit-s2-live already: this run is "
                     "names-worst_fit-s2-live-2 on the master"]
    assert _master_run(testbed, "names-worst_fit-s2-live-2")["state"] == "completed"

    # a directory name the master does not take as it is: the name it took instead
    lines = _run(testbed, scenario, tmp_path / "runs" / "my run (é)", capsys)
    assert lines == ["note: --out's name is not a run id (expected 1 to 80 letters, digits, '.', '_' "
                     "or '-', starting with a letter or digit, got 'my run (é)'): this run is my_run_ "
                     "on the master"]
    assert _master_run(testbed, "my_run_")["state"] == "completed"
