"""rpiaas master, in process: every refusal before it serves is one line with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpiaas.cli import main

CONFIG = ("cluster:\n"
          "  clusters:\n"
          "    - {domain: c1.test, prefix: 10.0.0, count: 2, type: rpi4b}\n")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "master.yaml"
    path.write_text(CONFIG)
    return path


def test_a_port_out_of_range(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["master", str(config), "--port", "70000"]) == 2
    assert capsys.readouterr().err == "error: --port: expected a port 0-65535, got 70000\n"


def test_a_bad_store(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["master", str(config), "--store", "redis://nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --store: ") and len(err.splitlines()) == 1


def test_a_missing_or_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["master", str(tmp_path / "nowhere.yaml")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nowhere.yaml'}: no such file\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG + "poll_interval_s: -1\n")
    assert main(["master", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}:4: poll_interval_s: ")


def test_a_port_that_is_taken_is_a_failed_run(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["master", str(config), "--host", "127.0.0.1", "--port", str(port),
                     "--store", ":memory:"]) == 1
    assert capsys.readouterr().err.startswith("error: master: ")
