"""The virtual testbed's plan and its refusals, without booting anything."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from rpiaas.cli import main
from rpiaas.inputs.cluster import load_cluster, parse_cluster
from rpiaas.inputs.source import Source
from rpiaas.testbed import virtual
from rpiaas.testbed.plan import TestbedError
from rpiaas.testbed.virtual import start_virtual_testbed
from rpiaas.testbed.vmplan import HEADROOM_MB, default_cluster, server_address, vm_sizes

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def test_the_generated_cluster_is_the_scenarios() -> None:
    """`up --virtual 2` boots the nodes scenarios/virtual-*.yaml name, addresses and MACs too."""
    doc = default_cluster(2)
    spec = parse_cluster(Source(doc, {}, "generated"), (), doc)
    for name in ("virtual-testbed.yaml", "virtual-mixed.yaml"):
        scenario = yaml.safe_load((SCENARIOS / name).read_text())
        theirs = parse_cluster(Source(scenario, {}, name), ("cluster",), scenario["cluster"])
        assert [(n.name, n.address, n.hwaddr, n.type.name) for n in theirs.nodes] == \
            [(n.name, n.address, n.hwaddr, n.type.name) for n in spec.nodes]
    assert server_address(spec) == ("10.77.0.254", 24)
    with pytest.raises(TestbedError, match="1 to 200 nodes"):
        default_cluster(0)


def test_the_server_takes_the_highest_free_address(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "clusters:\n  - domain: a.test\n    prefix: 10.9.0\n    nodes:\n"
        "      - {hostname: n1, type: qemu_a53, suffix: 254, hwaddr: '52:54:00:00:00:01'}\n"
        "      - {hostname: n2, type: qemu_a53, suffix: 253, hwaddr: '52:54:00:00:00:02'}\n")
    assert server_address(load_cluster(tmp_path / "c.yaml")) == ("10.9.0.252", 24)


def test_not_root_is_said_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(TestbedError, match="needs root") as e:
        start_virtual_testbed(tmp_path / "tb", 2)
    assert e.value.exit_code == 2
    assert main(["testbed", "up", "--virtual", "2", "--dir", str(tmp_path / "tb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs root" in err and "sudo" in err
    assert not (tmp_path / "tb").exists()  # nothing written


@pytest.mark.skipif(os.geteuid() != 0, reason="the checks after the root check")
@pytest.mark.parametrize(("args", "message"), [
    (["--mem-mb", "16"], "--mem-mb: expected 64 to 16384"),
    (["--icount", "11"], "--icount: expected 0 to 10"),
])
def test_bad_options_are_refused_before_anything_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        args: list[str], message: str) -> None:
    monkeypatch.setattr(virtual.netns, "missing_programs", lambda *names: [])
    monkeypatch.setattr(virtual.os, "access", lambda *a: True)
    assert main(["testbed", "up", "--virtual", "2", "--dir", str(tmp_path / "tb"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_a_directory_closed_to_other_users_is_refused(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("the checks after the root check")
    monkeypatch.setattr(virtual.netns, "missing_programs", lambda *names: [])
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(TestbedError, match=f"{closed} is closed to other users"):
        start_virtual_testbed(closed / "tb", 1)


def test_each_vm_is_sized_by_its_node_type(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "clusters:\n  - domain: a.test\n    prefix: 10.9.0\n    nodes:\n"
        "      - {hostname: n1, type: qemu_a53, suffix: 1, hwaddr: '52:54:00:00:00:01'}\n"
        "      - {hostname: n2, type: rpi3b, suffix: 2, hwaddr: '52:54:00:00:00:02'}\n"
        "      - {hostname: n3, type: x86_server, suffix: 3, hwaddr: '52:54:00:00:00:03'}\n")
    spec = load_cluster(tmp_path / "c.yaml")
    with pytest.raises(TestbedError, match=r"n3\.a\.test: a x86_server \(32 cores"):
        vm_sizes(spec, None)
    text = (tmp_path / "c.yaml").read_text()
    (tmp_path / "c.yaml").write_text(text[:text.index("      - {hostname: n3")])
    small = load_cluster(tmp_path / "c.yaml")
    # the agent admits exactly the type's cores and memory; the VM has room beyond it
    assert vm_sizes(small, None) == {"n1.a.test": (1, 512 + HEADROOM_MB, 512),
                                     "n2.a.test": (4, 1024 + HEADROOM_MB, 1024)}
    assert vm_sizes(small, 300) == {"n1.a.test": (1, 300, None), "n2.a.test": (4, 300, None)}


@pytest.mark.skipif(os.geteuid() != 0, reason="the checks after the root check")
def test_a_bad_cluster_is_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(virtual.netns, "missing_programs", lambda *names: [])
    monkeypatch.setattr(virtual.os, "access", lambda *a: True)
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters:\n  - domain: a.test\n    prefix: 10.9.0\n    nodes:\n"
                   "      - {hostname: n1, type: rpi42, suffix: 1, hwaddr: '52:54:00:00:00:01'}\n")
    open_dir = Path(tempfile.mkdtemp(prefix="rpiaas-vtb-"))  # pytest's base is closed to others
    open_dir.chmod(0o755)
    args = ["testbed", "up", "--virtual", "1", "--cluster", str(bad), "--dir", str(open_dir / "tb")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--cluster: {bad}:5:" in err and "rpi42" in err, err
    bad.write_text("clusters:\n  - domain: a.test\n    prefix: 10.9.0\n    nodes:\n"
                   "      - {hostname: n1, type: rpi3b, suffix: 1}\n")
    assert main(args) == 2
    assert "nodes without a MAC (hwaddr) cannot boot: n1.a.test" in capsys.readouterr().err
    assert main([*args[:3], "2", *args[4:]]) == 2
    assert f"--virtual 2: {bad} has 1 nodes" in capsys.readouterr().err
    shutil.rmtree(open_dir)
