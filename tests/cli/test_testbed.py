"""rpiaas testbed, in process: listed with or without the live extra; what it says when it cannot run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rpiaas.cli import main


def test_status_of_no_testbed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testbed", "status", "--dir", str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"no testbed in {tmp_path}\n"


def test_without_the_live_extra_it_names_the_extra(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "rpiaas.master", None)  # as on a core install
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # (what the parser looks for, without importing)
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "a master and agents on this machine (needs pip install 'rpiaas[live]')" in \
        " ".join(capsys.readouterr().out.split())
    assert main(["testbed", "up", "--local", "2"]) == 2
    assert capsys.readouterr().err == ("error: rpiaas testbed needs the live extra "
                                       "(pip install 'rpiaas[live]'): no module 'rpiaas.master'\n")


def test_allow_commands_goes_with_a_local_testbed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testbed", "up", "--virtual", "1", "--allow-commands", "--dir", str(tmp_path / "tb")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --allow-commands goes with --local") and len(err.splitlines()) == 1
    assert not (tmp_path / "tb").exists()  # nothing started
