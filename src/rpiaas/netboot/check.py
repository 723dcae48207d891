"""Checking a rendered netboot directory with the real tools, and what they miss.

- ``dnsmasq --test`` reads the dnsmasq config as the server will.
- ``exportfs -ra`` reads the exports file.  It needs no NFS server: it runs in
  a private mount namespace (``unshare -m``, root only) with the file
  bind-mounted over ``/etc/exports`` and a tmpfs over ``/var/lib/nfs``, so the
  host's exports are neither read nor touched.  Any output on stderr fails
  the check: ``/srv/x (rw)`` with its space is only a warning to exportfs, yet
  exports to every host.
- Then what neither tool knows: the TFTP root and every node's
  ``cmdline.txt`` exist, every node's NFS root is exported to that node and
  exists on disk.

Each check gives a :class:`Finding`; ``ok`` is None for a check that could
not run here (the reason says why), which :func:`passed` counts as a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .render import MANIFEST, NFS_OPTIONS, load_manifest

__all__ = ["Finding", "check", "find_program", "passed"]

_TIMEOUT_S = 30


@dataclass(frozen=True)
class Finding:
    """One check's outcome: ``ok`` True, False, or None when it could not run."""

    what: str
    ok: bool | None
    detail: str = ""


def find_program(name: str) -> str | None:
    """``name`` on the PATH, else in ``/usr/sbin`` or ``/sbin`` (a user's PATH may lack them)."""
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d, name)).exists()), None)


def _dnsmasq(directory: Path) -> Finding:
    exe = find_program("dnsmasq")
    if exe is None:
        return Finding("dnsmasq --test", None, "dnsmasq is not installed")
    proc = subprocess.run([exe, "--test", f"--conf-file={directory / 'dnsmasq.conf'}"],
                          capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    out = (proc.stderr + proc.stdout).strip()
    return Finding("dnsmasq --test", proc.returncode == 0, out)


_EXPORTFS_SCRIPT = """
mount --bind "$1" /etc/exports
if [ -d /etc/exports.d ]; then mount -t tmpfs rpiaas-check /etc/exports.d; fi
mkdir -p /var/lib/nfs
mount -t tmpfs rpiaas-check /var/lib/nfs
exportfs -ra
"""


def _exportfs(directory: Path) -> Finding:
    what = "exportfs -ra"
    if os.geteuid() != 0:
        return Finding(what, None, "needs root (a private mount namespace); run as root")
    for tool in ("unshare", "exportfs", "mount"):
        if find_program(tool) is None:
            return Finding(what, None, f"{tool} is not installed (exportfs: nfs-kernel-server)")
    if not Path("/etc/exports").is_file():
        return Finding(what, None, "/etc/exports is missing (install nfs-kernel-server)")
    env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-ec",
                           _EXPORTFS_SCRIPT, "sh", str(directory / "exports")],
                          capture_output=True, text=True, timeout=_TIMEOUT_S, check=False, env=env)
    out = (proc.stderr + proc.stdout).strip()
    if proc.returncode == 0 and not proc.stderr.strip():
        return Finding(what, True, out)
    return Finding(what, False, out or f"exit status {proc.returncode}")


def _exports(directory: Path) -> dict[str, list[str]]:
    """Export path -> the client specs of its lines in the exports file."""
    out: dict[str, list[str]] = {}
    for line in (directory / "exports").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            path, *clients = line.split()
            out.setdefault(path, []).extend(clients)
    return out


def _ours(directory: Path, manifest: dict[str, Any]) -> list[Finding]:
    findings = []
    tftp = Path(manifest["tftp_root"])
    findings.append(Finding("TFTP root exists", tftp.is_dir(), str(tftp)))
    exports = _exports(directory)
    missing_cmdline, not_exported, no_dir = [], [], []
    for node in manifest["nodes"]:
        cmd = tftp / node["tftp_dir"] / "cmdline.txt"
        if not cmd.is_file():
            missing_cmdline.append(str(cmd))
        if f"{node['address']}({NFS_OPTIONS})" not in exports.get(node["root_path"], []):
            not_exported.append(f"{node['name']}: {node['root_path']} to {node['address']}")
        if not Path(node["root_path"]).is_dir():
            no_dir.append(f"{node['name']}: {node['root_path']}")
    findings.append(Finding("every node has a cmdline.txt", not missing_cmdline,
                            "missing: " + ", ".join(missing_cmdline) if missing_cmdline else ""))
    findings.append(Finding("every root path is exported to its node", not not_exported,
                            "not exported: " + "; ".join(not_exported) if not_exported else ""))
    findings.append(Finding("every exported root exists", not no_dir,
                            "missing (prepare them with scripts/netboot/prepare-nfsroot.sh): "
                            + "; ".join(no_dir) if no_dir else ""))
    return findings


def check(directory: str | Path) -> list[Finding]:
    """Every check of a rendered directory (NetbootError if it is not one)."""
    directory = Path(directory)
    manifest = load_manifest(directory)
    for name in ("dnsmasq.conf", "exports", MANIFEST):
        if not (directory / name).is_file():
            return [Finding(f"{name} exists", False, str(directory / name))]
    return [_dnsmasq(directory), _exportfs(directory), *_ours(directory, manifest)]


def passed(findings: list[Finding]) -> bool:
    """Whether every check ran and passed."""
    return all(f.ok is True for f in findings)
