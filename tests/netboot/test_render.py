"""``rpiaas netboot render`` and ``check``: golden files per template, the real checkers, bad input.

Set ``RPIAAS_REGEN_GOLDEN=1`` to write the golden files anew after a template change
(then read the diff).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rpiaas.cli import main
from rpiaas.inputs.cluster import load_cluster
from rpiaas.netboot import NetbootError, make_plan
from rpiaas.netboot.check import check, passed

from ..helpers import shared_file

GOLDEN = Path(__file__).parent / "golden"
CLUSTER = GOLDEN / "cluster.yaml"
NFS_ROOT = "/srv/rpiaas/nfs"
REGEN = os.environ.get("RPIAAS_REGEN_GOLDEN") == "1"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="exportfs runs in a private mount namespace: root only")
needs_tools = pytest.mark.skipif(
    not all(shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
            for t in ("dnsmasq", "exportfs", "unshare")),
    reason="dnsmasq, exportfs (nfs-kernel-server) and unshare are needed")


def _render(tmp_path: Path, *extra: str, cluster: Path = CLUSTER) -> tuple[int, Path]:
    out = tmp_path / "boot"
    code = main(["netboot", "render", str(cluster), "--out", str(out), "--server-ip", "10.0.0.1",
                 *extra])
    return code, out


def _normalised(text: str, out: Path) -> str:
    return text.replace(str(out), "@OUT@").replace(str(CLUSTER.absolute()), "@CLUSTER@")


@pytest.mark.parametrize(("golden", "rendered"), [
    ("dnsmasq.conf", "dnsmasq.conf"),
    ("exports", "exports"),
    ("cmdline-serial.txt", "tftp/1a2b3c4d/cmdline.txt"),
    ("cmdline-root.txt", "tftp/cmdline.txt"),
])
def test_golden_files(tmp_path: Path, golden: str, rendered: str) -> None:
    code, out = _render(tmp_path, "--nfs-root", NFS_ROOT)
    assert code == 0
    text = _normalised((out / rendered).read_text(), out)
    if REGEN:
        (GOLDEN / golden).write_text(text)
    assert text == (GOLDEN / golden).read_text()


def test_what_render_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boot = tmp_path / "image-boot"
    (boot / "overlays").mkdir(parents=True)
    (boot / "start4.elf").write_bytes(b"\x7fELF firmware")
    (boot / "bootcode.bin").write_bytes(b"boot")
    (boot / "overlays" / "x.dtbo").write_bytes(b"dtbo")
    (boot / "cmdline.txt").write_text("console=tty1 root=PARTUUID=1234-02 rootwait\n")
    code, out = _render(tmp_path, "--boot-files", str(boot), "--nfs-root", str(tmp_path / "nfs"))
    assert code == 0
    captured = capsys.readouterr()
    assert "warning: node4.c1.rpiaas.test: no MAC address" in captured.err
    assert f"{out}: 4 nodes, served from 10.0.0.1 on eth1" in captured.out
    tftp = out / "tftp"
    assert sorted(p.name for p in tftp.iterdir()) == [
        "0000abcd", "1a2b3c4d", "bootcode.bin", "cmdline.txt", "overlays", "start4.elf"]
    own = tftp / "1a2b3c4d"
    assert (own / "start4.elf").read_bytes() == b"\x7fELF firmware"
    assert (own / "start4.elf").stat().st_ino == (tftp / "start4.elf").stat().st_ino  # linked
    assert (own / "overlays" / "x.dtbo").is_file()
    # the image's own cmdline.txt (an SD card root) is replaced, never served
    assert "PARTUUID" not in (tftp / "cmdline.txt").read_text()
    assert "nfsroot=10.0.0.1:" in (own / "cmdline.txt").read_text()
    assert (tftp / "0000abcd" / "cmdline.txt").read_text() != (own / "cmdline.txt").read_text()
    assert {p.name for p in out.iterdir()} == {"dnsmasq.conf", "exports", "ganesha.conf", "nodes.json",
                                                "tftp"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".boot")]  # no temp dirs left


def test_render_again_replaces_the_render_but_nothing_else(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _render(tmp_path)[0] == 0
    out = tmp_path / "boot"
    (out / "tftp" / "stale-file").write_text("x")
    assert _render(tmp_path)[0] == 0 and not (out / "tftp" / "stale-file").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious").write_text("keep me")
    assert main(["netboot", "render", str(CLUSTER), "--out", str(other), "--server-ip",
                 "10.0.0.1"]) == 2
    assert "not a rendered netboot directory; refusing to overwrite" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["precious"]


@needs_root
@needs_tools
def test_check_passes_with_the_real_tools(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nfs = tmp_path / "nfs"
    code, out = _render(tmp_path, "--nfs-root", str(nfs))
    assert code == 0
    for node in load_cluster(CLUSTER).nodes:
        (nfs / node.name).mkdir(parents=True)
    findings = check(out)
    assert passed(findings), findings
    assert [f.what for f in findings][:2] == ["dnsmasq --test", "exportfs -ra"]
    assert main(["netboot", "check", str(out)]) == 0
    assert "FAIL" not in capsys.readouterr().out


@needs_root
@needs_tools
def test_check_fails_on_what_each_tool_finds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nfs = tmp_path / "nfs"
    code, out = _render(tmp_path, "--nfs-root", str(nfs))
    assert code == 0
    for node in load_cluster(CLUSTER).nodes:
        (nfs / node.name).mkdir(parents=True)
    conf = out / "dnsmasq.conf"
    good_conf = conf.read_text()
    conf.write_text(good_conf + "dhcp-range=not-an-address\n")
    assert {f.what: f.ok for f in check(out)}["dnsmasq --test"] is False
    conf.write_text(good_conf)

    exports = out / "exports"
    good_exports = exports.read_text()
    # a space before the options: exportfs only warns, yet it exports to everyone
    exports.write_text(good_exports + f"{nfs / 'node1.c1.rpiaas.test'} (rw,no_subtree_check)\n")
    found = {f.what: f for f in check(out)}
    assert found["exportfs -ra"].ok is False and "No host name given" in found["exportfs -ra"].detail
    exports.write_text(good_exports.replace("10.0.0.12(", "10.0.0.99("))
    found = {f.what: f for f in check(out)}
    assert found["every root path is exported to its node"].ok is False
    assert "node2.c1.rpiaas.test" in found["every root path is exported to its node"].detail
    exports.write_text(good_exports)

    (nfs / "node3.c1.rpiaas.test").rmdir()
    (out / "tftp" / "0000abcd" / "cmdline.txt").unlink()
    found = {f.what: f for f in check(out)}
    assert found["exportfs -ra"].ok is False  # exportfs cannot stat it either
    assert found["every exported root exists"].ok is False
    assert "node3.c1.rpiaas.test" in found["every exported root exists"].detail
    assert found["every node has a cmdline.txt"].ok is False
    assert main(["netboot", "check", str(out)]) == 1
    assert "FAIL  every node has a cmdline.txt" in capsys.readouterr().out


def test_check_refuses_a_directory_that_is_no_render(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["netboot", "check", str(tmp_path)]) == 2
    assert "not a rendered netboot directory" in capsys.readouterr().err


BASE = CLUSTER.read_text()
_LAST = 'hwaddr: "00:00:00:00:00:00"}'


@pytest.mark.parametrize(("old", "new", "where"), [
    ('"DC:A6:32:00:00:12"', '"dc:a6:32:00:00:11"', ":9: clusters[0].nodes[1].hwaddr: duplicate MAC"),
    ("suffix: 12", "suffix: 11", ":9: clusters[0].nodes[1].suffix: duplicate address 10.0.0.11"),
    ("hostname: node2", "hostname: node1", ":9: clusters[0].nodes[1].hostname: duplicate name"),
    ('"DC:A6:32:00:00:12"', '"DC:A6:32:00:00"', ":9: clusters[0].nodes[1].hwaddr: expected a MAC"),
    ("suffix: 12,", "address: 10.0.9.12,", ":9: clusters[0].nodes[1].address: 10.0.9.12 is outside"),
    ("serial: 0000abcd", "serial: 0000abcz", ":9: clusters[0].nodes[1].serial: expected 8 hex digits"),
    ("interface: eth1", "interface: eth 1", ":3: interface: not a network interface name"),
    ("prefix: 10.0.0", "prefix: 10.0.0.0", ":6: clusters[0].prefix: expected 1 to 3 octets"),
    ("hostname: node3,", "hostname: node3, colour: red,", ":10: clusters[0].nodes[2].colour: unknown key"),
    # what dnsmasq --test accepts but no DHCP or DNS server can serve
    ("suffix: 12", "suffix: 0", ":9: clusters[0].nodes[1].suffix: 10.0.0.0 is the network address"),
    ("suffix: 12", "suffix: 255", ":9: clusters[0].nodes[1].suffix: 10.0.0.255 is the broadcast address"),
    ("suffix: 12,", "address: 10.0.0.255,", ":9: clusters[0].nodes[1].address: 10.0.0.255 is the broadcast"),
    ('"DC:A6:32:00:00:12"', '"FF:FF:FF:FF:FF:FF"',
     ":9: clusters[0].nodes[1].hwaddr: ff:ff:ff:ff:ff:ff is the broadcast MAC address"),
    ('"DC:A6:32:00:00:12"', '"01:00:5e:00:00:12"',
     ":9: clusters[0].nodes[1].hwaddr: 01:00:5e:00:00:12 is a multicast MAC address"),
    ("hostname: node2", "hostname: NODE1",
     ":9: clusters[0].nodes[1].hostname: duplicate name node1.c1.rpiaas.test (first at line 8)"),
    (_LAST, _LAST + "\n  - {domain: C1.rpiaas.test, prefix: 10.0.1, count: 2, type: rpi4b}",
     ":12: clusters[1].domain: two clusters with the domain C1.rpiaas.test"),
    (_LAST, _LAST + "\n  - {domain: c2.rpiaas.test, prefix: 10.0.0, count: 2, type: rpi4b}",
     ":12: clusters[1].prefix: the network of prefix 10.0.0 overlaps that of prefix 10.0.0 (line 6)"),
    (_LAST, _LAST + "\n  - {domain: c2.rpiaas.test, prefix: 10.0, count: 2, type: rpi4b}",
     ":12: clusters[1].prefix: the network of prefix 10.0 overlaps that of prefix 10.0.0 (line 6)"),
    (_LAST, _LAST + "\n  - {domain: c2.rpiaas.test, prefix: 10.0.1, count: 255, type: rpi4b}",
     ":12: clusters[1].count: 10.0.1.255 is the broadcast address of 10.0.1.0/24"),
    (_LAST, _LAST + "\n  - {domain: c2.rpiaas.test, prefix: 10.0.1, count: 3, type: rpi4b, first_suffix: 0}",
     ":12: clusters[1].first_suffix: 10.0.1.0 is the network address of 10.0.1.0/24"),
])
def test_bad_cluster_exits_2_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, where: str) -> None:
    assert old in BASE
    bad = tmp_path / "cluster.yaml"
    bad.write_text(BASE.replace(old, new, 1))
    code, out = _render(tmp_path, cluster=bad)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {bad}{where}") and err.count("\n") == 1, err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["cluster.yaml"]


@pytest.mark.parametrize(("args", "message"), [
    (["--server-ip", "10.0.5.1"], "server address 10.0.5.1 is in none of the clusters' networks"),
    (["--server-ip", "10.0.0.300"], "server address: not an IPv4 address"),
    (["--server-ip", "10.0.0.11"], "node1.c1.rpiaas.test: has the server's address"),
    (["--server-ip", "10.0.0.0"], "error: --server-ip: server address 10.0.0.0 is the network address"),
    (["--server-ip", "10.0.0.255"], "error: --server-ip: server address 10.0.0.255 is the broadcast"),
])
def test_bad_server_address_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    args: list[str], message: str) -> None:
    out = tmp_path / "boot"
    assert main(["netboot", "render", str(CLUSTER), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not out.exists()


def test_the_original_config_json_renders(tmp_path: Path) -> None:
    reference = shared_file("reference", "rpiaas-config.example.json")
    if not reference.is_file():
        pytest.skip(f"{reference} is not here")
    spec = load_cluster(reference)
    plan = make_plan(spec, server_ip="10.0.1.254", nfs_root=NFS_ROOT, tftp_root="/tftp")
    assert plan.interface == "eth0" and [s.start for s in plan.subnets] == ["10.0.1.0", "10.0.2.0"]
    assert all(n.hwaddr is None for n in plan.nodes)  # placeholders: no lease, a warning
    with pytest.raises(NetbootError, match="no network interface"):
        make_plan(spec.__class__(spec.clusters), server_ip="10.0.1.254", nfs_root=NFS_ROOT,
                  tftp_root="/tftp")
