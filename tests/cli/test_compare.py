"""rpiaas compare, in process: the files it writes, and bad input as one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rpiaas.cli import main


def test_two_runs_give_compare_json_and_a_report(
        tmp_path: Path, two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_runs
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "-o", str(out), "--tolerance-s", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert printed.endswith(f"wrote {out / 'compare.json'} and {out / 'report.html'}\n")
    assert "mean_wait_s" in printed  # the summary table came first
    result = json.loads((out / "compare.json").read_text())
    assert len(result["runs"]) == 2 and (out / "report.html").stat().st_size > 0
    assert main(["compare", str(a), str(b), "-o", str(tmp_path / "q"), "-q"]) == 0
    assert capsys.readouterr().out.startswith("wrote ")  # --quiet: only the paths


def test_fewer_than_two_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "only-one"]) == 2
    assert capsys.readouterr().err == "error: compare needs at least two run directories\n"


def test_live_runs_need_two(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "sim", "--live-runs", "one"]) == 2
    assert capsys.readouterr().err == ("error: --live-runs needs at least two live runs (their spread is what "
                                       "the others are judged against)\n")


def test_a_negative_tolerance_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["compare", "a", "b", "--tolerance-s", "-1"])
    assert e.value.code == 2
    assert capsys.readouterr().err == ("error: rpiaas compare: argument --tolerance-s: expected a number "
                                       "of seconds >= 0, got '-1' (see rpiaas compare --help)\n")


def test_a_missing_run_or_an_output_that_is_a_file(
        tmp_path: Path, two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = two_runs
    assert main(["compare", str(a), str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: no such run directory\n"
    (tmp_path / "file").write_text("x")
    assert main(["compare", str(a), str(a), "-o", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'file'}: exists and is not a directory\n"

