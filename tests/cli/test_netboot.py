"""rpiaas netboot render | check | serve, in process: what render says, and bad input as one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpiaas.cli import main

CLUSTER = """\
interface: eth1
clusters:
  - domain: c1.test
    prefix: 10.0.0
    nodes:
      - {hostname: node1, type: rpi4b, suffix: 11, hwaddr: "dc:a6:32:00:00:11"}
      - {hostname: node2, type: rpi3b, suffix: 12}
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER)
    return path


def test_render_reports_the_plan_and_warns_of_a_node_without_a_mac(
        tmp_path: Path, cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nb"
    assert main(["netboot", "render", str(cluster), "-o", str(out), "--server-ip", "10.0.0.254",
                 "--nfs-root", "relative/nfs"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{out}: 2 nodes, served from 10.0.0.254 on eth1\n"
    assert captured.err == "warning: node2.c1.test: no MAC address: no fixed lease, it cannot boot\n"
    assert (out / "dnsmasq.conf").is_file() and (out / "nodes.json").is_file()
    # a relative --nfs-root is made absolute: the Pis mount it from the server's root
    assert str((Path.cwd() / "relative" / "nfs").absolute()) in (out / "exports").read_text()


def test_a_server_address_outside_the_cluster_network_names_the_option(
        tmp_path: Path, cluster: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["netboot", "render", str(cluster), "-o", str(tmp_path / "nb"),
                 "--server-ip", "192.168.9.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --server-ip: server address") and len(err.splitlines()) == 1


def test_check_and_serve_of_a_directory_that_is_no_render(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("check", "serve"):
        assert main(["netboot", command, str(tmp_path)]) == 2
        assert capsys.readouterr().err == f"error: {tmp_path}: not a rendered netboot directory (no nodes.json)\n"


def test_a_subcommand_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["netboot"])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("error: rpiaas netboot: the following arguments are required")
