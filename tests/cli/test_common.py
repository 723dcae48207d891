"""What the command modules share: one-line argument errors, the live-extra check, scenario loading."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from rpiaas.cli.common import (
    EXIT_INPUT,
    LIVE_PACKAGES,
    Exit,
    Parser,
    live_missing,
    load,
    need_live,
    trace_report,
)


def test_a_bad_argument_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    p = Parser(prog="rpiaas x")
    p.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--n", "many"])
    assert e.value.code == EXIT_INPUT
    err = capsys.readouterr().err
    assert err == "error: rpiaas x: argument --n: invalid int value: 'many' (see rpiaas x --help)\n"


def test_need_live_passes_with_the_extra_and_names_it_without(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert live_missing() is None  # the test environment has the live extra
    need_live("rpiaas master")
    monkeypatch.setitem(sys.modules, "rpiaas.master", None)  # an import of it now fails
    assert live_missing() == "no module 'rpiaas.master'"
    with pytest.raises(Exit) as e:
        need_live("rpiaas master")
    assert e.value.code == EXIT_INPUT
    assert capsys.readouterr().err == ("error: rpiaas master needs the live extra "
                                       "(pip install 'rpiaas[live]'): no module 'rpiaas.master'\n")


def test_the_quick_check_looks_for_what_the_live_extra_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    """LIVE_PACKAGES is pyproject.toml's ``live`` extra, and a missing one is named."""
    tomllib = pytest.importorskip("tomllib")  # (Python 3.11's)
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    extra = [re.match(r"[A-Za-z0-9_.-]+", req).group(0)  # type: ignore[union-attr]
             for req in pyproject["project"]["optional-dependencies"]["live"]]
    assert extra and sorted(LIVE_PACKAGES) == sorted(extra)
    assert live_missing(quick=True) is None
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert live_missing(quick=True) == "no module 'aiohttp'"


class _Args:
    def __init__(self, scenario: Path, overrides: list[str], no_event_log: bool = False) -> None:
        self.scenario, self.overrides, self.no_event_log = str(scenario), overrides, no_event_log
        self.seed, self.policy = 9, None


def test_load_applies_overrides_seed_and_no_event_log(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sc = load(_Args(tiny, ["workload.generator.count=5"], no_event_log=True))  # type: ignore[arg-type]
    assert sc.workload.count == 5 and sc.seed == 9 and sc.event_log is False
    sc = load(_Args(tiny, ["description=[unclosed"]))  # type: ignore[arg-type]
    assert sc.event_log is True and sc.description == "[unclosed"
    err = capsys.readouterr().err  # not YAML: taken as a string, and said so
    assert err.startswith("note: --set description: ") and err.endswith("read as the string '[unclosed'\n")


def test_trace_report_speaks_only_for_traces(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace_report(load(_Args(tiny, [])))  # type: ignore[arg-type]
    assert capsys.readouterr().err == ""
