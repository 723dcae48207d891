"""``scripts/netboot/prepare-nfsroot.sh`` on a small root tree shaped like Raspberry Pi OS's.

The agent step runs the image's own programs under chroot (apt-get for the
distribution's python3-aiohttp and python3-psutil, python3 for the agent's
venv): on a real image that needs arm64 emulation and network access, so the
first test skips it with ``--no-agent``; the agent tests below run it on a fake
image whose programs are logging stubs.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rpiaas.auth import node_token
from rpiaas.cli import main
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


# ---------------------------------------------------------------- the agent step
# The image's programs run under chroot: here a fake image with the host's /bin/sh
# (and its libraries) and stubs of python3, apt-get, useradd and the venv's pip and
# python, each logging its command line to /stub.log in the node's root.
PYTHON3_STUB = """#!/bin/sh
echo "python3 $*" >> /stub.log
case "$1" in
    -c) [ "$2" = pass ] || [ -e /var/lib/stub/packages-installed ] ;;
    *) exit 0 ;;
esac
"""
APT_STUB = """#!/bin/sh
echo "apt-get $* DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> /stub.log
[ "$1" != install ] || [ ! -e /etc/stub-apt-fails ] || { echo "E: Unable to locate package python3-aiohttp"; exit 100; }
[ "$1" != install ] || : > /var/lib/stub/packages-installed
exit 0
"""
LOG_STUB = """#!/bin/sh
echo "$0 $*" >> /stub.log
while read -r line; do :; done
exit 0
"""


def _shell_into(root: Path) -> None:
    """The host's /bin/sh and the shared libraries it loads, at their paths under ``root``."""
    sh = Path(os.path.realpath("/bin/sh"))
    ldd = subprocess.run(["ldd", str(sh)], capture_output=True, text=True, check=False).stdout
    libs = [tok for line in ldd.splitlines() for tok in line.replace("=>", " ").split()
            if tok.startswith("/")]
    for path in [*libs, "/bin/sh"]:
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), dest)


def _stub(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def _agent_image(base: Path) -> Path:
    root, _ = _image_tree(base)
    _shell_into(root)
    _stub(root / "usr" / "bin" / "python3", PYTHON3_STUB)
    _stub(root / "usr" / "bin" / "apt-get", APT_STUB)
    _stub(root / "usr" / "sbin" / "useradd", LOG_STUB)
    for tool in ("pip", "python"):  # what `python3 -m venv` would make
        _stub(root / "opt" / "rpiaas-agent" / "venv" / "bin" / tool, LOG_STUB)
    for d in ("dev", "usr/local/bin", "var/lib/stub"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "resolv.conf").write_text("nameserver 192.0.2.1\n")
    return root


def _prepare_with_agent(tmp_path: Path, root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    render_dir, nfs = tmp_path / "render", tmp_path / "nfs"
    if not render_dir.exists():
        assert main(["netboot", "render", str(CLUSTER), "--out", str(render_dir), "--server-ip",
                     "10.0.0.1", "--nfs-root", str(nfs)]) == 0
    proc = subprocess.run(["sh", str(SCRIPT), "--render", str(render_dir), "--root-from", str(root),
                           "--master-url", "http://10.0.0.1:8080", *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={k: v for k, v in os.environ.items() if k != "DEBIAN_FRONTEND"})
    return proc, nfs / "node2.c1.rpiaas.test"


@pytest.mark.skipif(shutil.which("ldd") is None or shutil.which("unshare") is None,
                    reason="needs ldd (to copy /bin/sh into a fake image) and unshare")
def test_the_agent_comes_with_the_distributions_aiohttp_and_psutil(tmp_path: Path) -> None:
    root = _agent_image(tmp_path / "image")
    proc, node = _prepare_with_agent(tmp_path, root)
    assert proc.returncode == 0, proc.stderr
    venv = "/opt/rpiaas-agent/venv/bin"
    assert (node / "stub.log").read_text().splitlines() == [
        "python3 -c pass",
        "python3 -c import aiohttp, psutil, ensurepip",
        "apt-get --version DEBIAN_FRONTEND=",
        "apt-get update -q DEBIAN_FRONTEND=noninteractive",
        "apt-get install -y -q python3-aiohttp python3-psutil python3-venv DEBIAN_FRONTEND=noninteractive",
        "apt-get clean DEBIAN_FRONTEND=noninteractive",
        "python3 -m venv --system-site-packages /opt/rpiaas-agent/venv",
        f"{venv}/pip install --quiet --no-deps /opt/rpiaas-agent/src",
        f"{venv}/python -",
        "/usr/sbin/useradd --system --no-create-home --shell /usr/sbin/nologin rpiaas-agent",
    ]
    # the agent's source from the repository (the default --agent-src), its settings and unit
    assert (node / "opt" / "rpiaas-agent" / "src" / "rpiaas_agent" / "cli.py").is_file()
    assert os.readlink(node / "usr" / "local" / "bin" / "rpiaas-agent") == f"{venv}/rpiaas-agent"
    settings = (node / "etc" / "rpiaas-agent" / "agent.toml").read_text()
    assert 'name = "node2.c1.rpiaas.test"' in settings
    assert 'master_url = "http://10.0.0.1:8080"' in settings
    assert (node / "etc/systemd/system/multi-user.target.wants/rpiaas-agent.service").is_symlink()
    # /dev, /proc and the DNS settings were lent in a mount namespace that is gone
    assert not any(os.path.ismount(node / d) for d in ("dev", "proc", "etc/resolv.conf"))
    assert (node / "etc" / "resolv.conf").read_text() == "nameserver 192.0.2.1\n"
    assert not list((node / "dev").iterdir()) and not list((node / "proc").iterdir())

    # an image that has the packages already: no apt-get
    (root / "var" / "lib" / "stub" / "packages-installed").touch()
    proc, node = _prepare_with_agent(tmp_path, root)
    assert proc.returncode == 0, proc.stderr
    assert not [ln for ln in (node / "stub.log").read_text().splitlines() if "apt-get" in ln]

    # --agent-wheels: the old way, aiohttp and psutil from PyPI into a plain venv
    (root / "var" / "lib" / "stub" / "packages-installed").unlink()
    proc, node = _prepare_with_agent(tmp_path, root, "--agent-wheels")
    assert proc.returncode == 0, proc.stderr
    assert (node / "stub.log").read_text().splitlines()[:4] == [
        "python3 -c pass",
        "python3 -m venv /opt/rpiaas-agent/venv",
        f"{venv}/pip install --quiet /opt/rpiaas-agent/src",
        f"{venv}/python -",
    ]


@pytest.mark.skipif(shutil.which("ldd") is None or shutil.which("unshare") is None,
                    reason="needs ldd (to copy /bin/sh into a fake image) and unshare")
def test_without_a_usable_apt_it_fails_naming_agent_wheels(tmp_path: Path) -> None:
    root = _agent_image(tmp_path / "image")
    (root / "etc" / "stub-apt-fails").touch()
    proc, node = _prepare_with_agent(tmp_path, root)
    assert proc.returncode != 0
    assert "E: Unable to locate package python3-aiohttp" in proc.stderr  # apt's own words
    assert "apt-get install python3-aiohttp python3-psutil in the chroot failed" in proc.stderr
    assert "--agent-wheels" in proc.stderr and not (node / "opt/rpiaas-agent/venv/bin/rpiaas-agent").exists()

    (root / "usr" / "bin" / "apt-get").unlink()
    proc, _ = _prepare_with_agent(tmp_path, root)
    assert proc.returncode != 0 and "no usable apt-get" in proc.stderr and "--agent-wheels" in proc.stderr


def test_the_library_check_names_a_library_older_than_the_agent_needs(tmp_path: Path) -> None:
    """The script's check of the agent's libraries (run by the venv's python), here on this one's."""
    text = SCRIPT.read_text()
    check_py = text.split("cat > \"$work/check-deps.py\" <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    ok = subprocess.run([sys.executable, "-"], input=check_py, capture_output=True, text=True,
                        timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    old = ("from importlib import metadata\n"
           "metadata.version = lambda name: {'aiohttp': '3.0', 'psutil': '99.0'}[name]\n")
    too_old = subprocess.run([sys.executable, "-"], input=old + check_py, capture_output=True,
                             text=True, timeout=60, check=False)
    assert too_old.returncode != 0
    assert too_old.stderr.startswith("aiohttp 3.0 is older than the agent's aiohttp>="), too_old.stderr
