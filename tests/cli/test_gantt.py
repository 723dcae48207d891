"""rpiaas gantt, in process: the pictures it writes, and bad input as one line with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpiaas.cli import main


def test_one_or_two_runs_as_svg_and_png(two_runs: tuple[Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_runs
    assert main(["gantt", str(a), "-o", str(tmp_path / "a.svg")]) == 0
    svg = (tmp_path / "a.svg").read_text()
    assert svg.startswith('<svg class="chart gantt"') and 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert svg.count('class="lane"') == 2 and svg.count('class="run"') == 1
    assert main(["gantt", str(a), str(b), "-o", str(tmp_path / "ab.svg"), "--lanes", "1"]) == 0
    both = (tmp_path / "ab.svg").read_text()
    assert both.count('class="run"') == 2 and both.count('data-mode="busy"') == 2
    assert capsys.readouterr().out.endswith(f"wrote {tmp_path / 'ab.svg'}\n")
    pytest.importorskip("matplotlib")
    assert main(["gantt", str(a), str(b), "-o", str(tmp_path / "ab.png")]) == 0
    assert (tmp_path / "ab.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("args", "message"), [
    (["nowhere", "-o", "x.svg"], "error: nowhere: no such run directory\n"),
    (["{a}", "-o", "x.gif"], "error: --out: expected a .svg or .png file name, got 'x.gif'\n"),
    (["{a}", "{a}", "{a}", "-o", "x.svg"], "error: gantt draws one or two runs\n"),
    (["{a}", "-o", "x.svg", "--lanes", "0"], "error: --lanes: expected a positive number, got 0\n"),
    (["{a}", "-o", "no/such/dir/x.svg"], "error: no/such/dir/x.svg: No such file or directory\n"),
])
def test_bad_input_is_one_line(args: list[str], message: str, two_runs: tuple[Path, Path],
                               capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["gantt", *[x.replace("{a}", str(two_runs[0])) for x in args]]) == 2
    assert capsys.readouterr().err == message
