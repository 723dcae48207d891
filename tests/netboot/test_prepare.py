"""``scripts/netboot/prepare-nfsroot.sh`` on a small root tree shaped like Raspberry Pi OS's.

The agent step (a venv built by the image's own python3 under chroot) needs an
arm64 image and qemu-user-static; here it is skipped with ``--no-agent``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from rpiaas.cli import main
from rpiaas.master.auth import node_token
from rpiaas.netboot.check import check

SCRIPT = Path(__file__).parents[2] / "scripts" / "netboot" / "prepare-nfsroot.sh"
CLUSTER = Path(__file__).parent / "golden" / "cluster.yaml"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the script prepares roots owned by root: root only"),
    pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed"),
]


def _image_tree(base: Path) -> tuple[Path, Path]:
    root, boot = base / "root", base / "boot"
    (root / "etc" / "systemd" / "system" / "multi-user.target.wants").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("raspberrypi\n")
    (root / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n")
    (root / "etc" / "fstab").write_text("PARTUUID=1234-01 /boot/firmware vfat defaults 0 2\n"
                                         "PARTUUID=1234-02 / ext4 defaults,noatime 0 1\n")
    (root / "etc" / "systemd" / "system" / "multi-user.target.wants" / "dphys-swapfile.service"
     ).symlink_to("/lib/systemd/system/dphys-swapfile.service")
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "proc").mkdir()
    (root / "proc" / "junk").write_text("not copied")
    boot.mkdir()
    (boot / "start4.elf").write_bytes(b"firmware")
    (boot / "cmdline.txt").write_text("root=PARTUUID=1234-02\n")
    return root, boot


def test_prepare_roots_then_check_passes(tmp_path: Path) -> None:
    root, boot = _image_tree(tmp_path / "image")
    render_dir, nfs = tmp_path / "render", tmp_path / "nfs"
    assert main(["netboot", "render", str(CLUSTER), "--out", str(render_dir), "--server-ip", "10.0.0.1",
                 "--nfs-root", str(nfs)]) == 0
    proc = subprocess.run(["sh", str(SCRIPT), "--render", str(render_dir), "--root-from", str(root),
                           "--boot-from", str(boot), "--no-agent"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    node = nfs / "node2.c1.rpiaas.test"
    assert (node / "etc" / "hostname").read_text() == "node2\n"
    hosts = (node / "etc" / "hosts").read_text()
    assert "127.0.1.1\tnode2.c1.rpiaas.test node2\n" in hosts and "raspberrypi" not in hosts
    assert "10.0.0.12\tnode2.c1.rpiaas.test node2 rpiaas-node" in hosts
    fstab = (node / "etc" / "fstab").read_text()
    assert "PARTUUID" not in fstab and "tmpfs" in fstab
    assert not (node / "etc/systemd/system/multi-user.target.wants/dphys-swapfile.service").is_symlink()
    assert (node / "usr" / "bin" / "tool").is_file() and not (node / "proc" / "junk").exists()
    assert sorted(p.name for p in (render_dir / "boot-files").iterdir()) == ["start4.elf"]
    assert {f.what: f.ok for f in check(render_dir)}["every exported root exists"] is True

    # with the node secret, each root gets its own node's token, readable by root and its group only
    secret = tmp_path / "node-secret"
    secret.write_text("the-node-secret\n")
    subprocess.run(["sh", str(SCRIPT), "--render", str(render_dir), "--root-from", str(root),
                    "--no-agent", "--node-secret-file", str(secret)],
                   capture_output=True, check=True, timeout=120)
    names = sorted(p.name for p in nfs.iterdir())
    assert len(names) >= 2
    for name in names:
        token = nfs / name / "etc" / "rpiaas-agent" / "token"
        assert token.read_text().strip() == node_token("the-node-secret", name)
        assert stat.S_IMODE(token.stat().st_mode) == 0o640
    assert "the-node-secret" not in "".join(
        p.read_text(errors="replace") for p in nfs.rglob("*") if p.is_file())
    # a token shared by every node is refused
    shared = subprocess.run(["sh", str(SCRIPT), "--render", str(render_dir), "--root-from", str(root),
                             "--agent-token-file", str(secret)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert shared.returncode != 0 and "--node-secret-file" in shared.stderr

    # running it again keeps one hosts line per name
    subprocess.run(["sh", str(SCRIPT), "--render", str(render_dir), "--root-from", str(root),
                    "--no-agent"], capture_output=True, check=True, timeout=120)
    assert (node / "etc" / "hosts").read_text().count("node2.c1.rpiaas.test") == 2


def test_bad_arguments_fail_clearly(tmp_path: Path) -> None:
    for args, message in (([], "--render DIR is required"),
                          (["--render", str(tmp_path)], "not a rendered netboot directory"),
                          (["--bogus"], "unknown argument: --bogus")):
        proc = subprocess.run(["sh", str(SCRIPT), *args], capture_output=True, text=True, timeout=30,
                              check=False)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr)
