"""rpiaas calibrate, in process: a fitted scenario written, bad input as one line with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rpiaas.cli import main


def test_a_run_is_fitted_and_a_scenario_written(
        tmp_path: Path, two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "calibrated.yaml"
    assert main(["calibrate", str(two_runs[0]), "-o", str(out), "--no-check"]) == 0
    printed = capsys.readouterr().out
    assert "rpi4b" in printed and printed.rstrip().endswith(f"calibrated scenario: {out}")
    data = yaml.safe_load(out.read_text())
    assert data["name"] == "tiny" and "node_types" in data["cluster"]


def test_a_missing_run_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", str(tmp_path / "nope"), "-o", str(tmp_path / "c.yaml")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: no such run directory\n"
    assert not (tmp_path / "c.yaml").exists()


def test_the_output_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["calibrate", "run"])
    assert e.value.code == 2
    assert capsys.readouterr().err == ("error: rpiaas calibrate: the following arguments are required: "
                                       "--out/-o (see rpiaas calibrate --help)\n")
