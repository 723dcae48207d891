"""A virtual Pi boots over the network from what ``rpiaas netboot render`` produced.

Real programs only.  The server namespace runs ``rpiaas netboot serve`` (dnsmasq
on the rendered config, nfs-ganesha exporting the rendered per-node roots,
with rpcbind) and ``rpiaas master``.  Each VM is ``qemu-system-aarch64`` with
the Debian arm64 kernel and the initramfs of ``scripts/netboot/vm/prepare.sh``, its
MAC a node's ``hwaddr``, on a tap device bridged with the server's
interface.  Its kernel takes a DHCP lease, mounts its NFS root with its own
NFS client and runs that root's init (``prepare-nfsroot.sh --minimal``),
which reports the boot to the master, writes a marker into its root and
powers off.  Each node reports with its own token from its own address (the
master takes neither alone); node3's export is missing.

Skipped, with the reason, where this cannot run: not root, no network
namespaces or /dev/net/tun, a program missing, or the arm64 kernel and
busybox not to be had (apt without the arm64 architecture).  With
``RPIAAS_REQUIRE_VM=1`` (CI) the last is a failure instead.  The downloads and
the initramfs are cached (``$RPIAAS_VM_CACHE``, else ``~/.cache/rpiaas/vm``).
``RPIAAS_VM_BOOTS=5`` boots node1 five times in the first test and prints the
median boot time (run with ``-s``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rpiaas.master.boot import node_boot_token

from .netns import (
    BRIDGE_IF,
    SERVER_IP,
    NetnsPair,
    Service,
    missing_programs,
    netns_available,
    netns_pair,
)

RPIAAS = Path(sys.executable).with_name("rpiaas")
VM_DIR = Path(__file__).parents[2] / "scripts" / "netboot" / "vm"
PREPARE_NFSROOT = VM_DIR.parent / "prepare-nfsroot.sh"
PROGRAMS = ("dnsmasq", "busybox", "nsenter", "rpcbind", "ganesha.nfsd", "qemu-system-aarch64",
            "apt-get", "dpkg-deb", "depmod", "cpio")
MASTER_PORT = 8080
MASTER_URL = f"http://{SERVER_IP}:{MASTER_PORT}"
BOOT_TIMEOUT_S = 60.0  # under TCG a boot takes 2-3 s; a failed one ends QEMU (panic=1, poweroff)
SECRET = "vm-boot-secret-0123456789"
MARKER = "rpiaas-booted"
MASTER_TOKEN = "vm-test-master-token"


@dataclass(frozen=True)
class Node:
    name: str
    hostname: str
    address: str
    hwaddr: str
    tap: str


NODE1 = Node("node1.c1.rpiaas.test", "node1", "10.0.0.11", "dc:a6:32:00:00:11", "rpxtap1")
NODE2 = Node("node2.c1.rpiaas.test", "node2", "10.0.0.12", "dc:a6:32:00:00:12", "rpxtap2")
NODE3 = Node("node3.c1.rpiaas.test", "node3", "10.0.0.13", "dc:a6:32:00:00:13", "rpxtap3")
NODES = (NODE1, NODE2, NODE3)

CLUSTER = f"interface: {BRIDGE_IF}\nclusters:\n  - domain: c1.rpiaas.test\n    prefix: 10.0.0\n" \
          "    nodes:\n" + "".join(
              f'      - {{hostname: {n.hostname}, type: rpi4b, suffix: {n.address.rsplit(".")[-1]},'
              f' hwaddr: "{n.hwaddr}"}}\n' for n in NODES)


def _skip_reason() -> str | None:
    reason = netns_available()
    if reason is None and (missing := missing_programs(*PROGRAMS)):
        reason = f"missing programs: {', '.join(missing)}"
    if reason is None and not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        reason = "no /dev/net/tun (tap devices)"
    return reason


pytestmark = pytest.mark.skipif(_skip_reason() is not None,
                                reason=f"VM network boot: {_skip_reason()}")


@dataclass(frozen=True)
class VmFiles:
    kernel: str
    initrd: str
    busybox: str


def _prepare() -> VmFiles:
    """The kernel, initramfs and busybox of prepare.sh (cached); skip if they cannot be had."""
    done = subprocess.run([str(VM_DIR / "prepare.sh")], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        why = f"scripts/netboot/vm/prepare.sh failed: {done.stderr.strip().splitlines()[-1:]}"
        if os.environ.get("RPIAAS_REQUIRE_VM") == "1":
            pytest.fail(why + "\n" + done.stderr)
        pytest.skip(why)
    paths = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return VmFiles(paths["KERNEL"], paths["INITRD"], paths["BUSYBOX"])


@dataclass
class Bed:
    """The served boot, the master and the VM files."""

    bed: NetnsPair
    work: Path
    files: VmFiles
    master: Service

    def root(self, node: Node) -> Path:
        return self.work / "nfs" / node.name

    def log(self, name: str) -> str:
        path = self.bed.state_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api(self, path: str) -> Any:
        """GET ``path`` of the master, from the server namespace."""
        done = self.bed.server.run("busybox", "wget", "-q", "-O", "-", MASTER_URL + path)
        assert done.returncode == 0, f"GET {path}: {done.stderr}\n{self.master.log_text()}"
        return json.loads(done.stdout)

    def power_on(self, node: Node) -> dict[str, Any]:
        """Tell the master the node is being powered on (it is booting until it reports)."""
        done = self.bed.server.run(
            "busybox", "wget", "-q", "-O", "-", "--header", f"Authorization: Bearer {MASTER_TOKEN}",
            "--header", "Content-Type: application/json", "--post-data", "{}",
            f"{MASTER_URL}/api/v1/nodes/{node.name}/booting")
        assert done.returncode == 0, f"booting: {done.stderr}\n{self.master.log_text()}"
        return dict(json.loads(done.stdout))

    def start_vm(self, node: Node, run: int = 0) -> Service:
        return self.bed.start(
            f"vm-{node.hostname}-{run}", str(VM_DIR / "boot-vm.sh"), "--tap", node.tap,
            "--mac", node.hwaddr, "--kernel", self.files.kernel, "--initrd", self.files.initrd)

    def markers(self) -> dict[str, dict[str, str]]:
        """Every node root's marker, as ``key=value`` lines, by node name."""
        out = {}
        for node in NODES:
            path = self.root(node) / MARKER
            if path.exists():
                out[node.name] = dict(line.split("=", 1)
                                      for line in path.read_text().splitlines() if "=" in line)
        return out


def _new_markers(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]
                 ) -> dict[str, dict[str, str]]:
    """The markers written (by a boot: a new ``boot_id``) since ``before``.

    Markers are never removed on the server: ganesha may keep a removed
    file in its cache, and a VM's write then goes to the removed file.
    """
    return {name: m for name, m in after.items()
            if m.get("boot_id") != before.get(name, {}).get("boot_id")}


def _wait(vm: Service, timeout: float = BOOT_TIMEOUT_S) -> float:
    """Wait for the VM to power off; its wall time.  Fails (and stops it) after ``timeout``."""
    start = time.monotonic()
    try:
        code = vm.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        vm.stop()
        raise AssertionError(f"{vm.name} still running after {timeout} s:\n{vm.log_text()}") \
            from None
    assert code == 0, f"{vm.name}: QEMU exited {code}:\n{vm.log_text()}"
    return time.monotonic() - start


def _mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines()
            if f" {path}" in line]


@pytest.fixture(scope="module")
def served() -> Iterator[Bed]:
    files = _prepare()
    # Not under pytest's 0700 base directory: dnsmasq and ganesha serve it as other users.
    with tempfile.TemporaryDirectory(prefix="rpiaas-vm-boot-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        yield from _serve(work, files)
        assert _mounts_under(work) == []


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _serve(work: Path, files: VmFiles) -> Iterator[Bed]:
    (work / "cluster.yaml").write_text(CLUSTER)
    out = work / "boot"
    _run(str(RPIAAS), "netboot", "render", str(work / "cluster.yaml"), "--out", str(out),
         "--server-ip", SERVER_IP, "--nfs-root", str(work / "nfs"))
    (work / "boot-secret").write_text(SECRET + "\n")
    _run(str(PREPARE_NFSROOT), "--render", str(out), "--minimal", "--busybox", files.busybox,
         "--master", MASTER_URL, "--boot-secret-file", str(work / "boot-secret"))
    assert (work / "nfs" / NODE2.name / "etc/rpiaas/boot-token").read_text().strip() \
        == node_boot_token(SECRET, NODE2.name)
    (work / "master.yaml").write_text(
        f"cluster: cluster.yaml\nlisten: \"{SERVER_IP}:{MASTER_PORT}\"\nstore: history.db\n"
        "poll_interval_s: 3600\npoll_timeout_s: 1\nboot_secret_file: boot-secret\n"
        "token_file: master-token\n")
    (work / "master-token").write_text(MASTER_TOKEN + "\n")
    # node3's root is missing (a botched preparation): ganesha leaves out its export
    subprocess.run(["rm", "-rf", str(work / "nfs" / NODE3.name)], check=True)
    with netns_pair(work / "state", "02:00:00:00:00:99", bridge=True) as bed:
        bed.start_rpcbind()
        serve = bed.start("serve", str(RPIAAS), "netboot", "serve", str(out),
                          "--state-dir", str(bed.state_dir), "--nfs", "ganesha")
        serve.wait_for_log("started, version")
        serve.wait_for_log("NFS SERVER INITIALIZED", timeout=30)
        master = bed.start("master", str(RPIAAS), "master", str(work / "master.yaml"))
        master.wait_for_log("Running on", timeout=30)
        for node in NODES:
            bed.add_tap(node.tap)
        yield Bed(bed, work, files, master)
        assert serve.stop() == 0, serve.log_text()
        assert master.stop() == 0, master.log_text()


def test_a_vm_boots_from_its_nfs_root_and_reports_to_the_master(served: Bed) -> None:
    boots = int(os.environ.get("RPIAAS_VM_BOOTS", "1"))
    boot_s = []
    for run in range(boots):
        before = served.markers()
        assert served.power_on(NODE1)["booting_since_s"] is not None
        assert served.api(f"/api/v1/nodes/{NODE1.name}")["booting_since_s"] is not None
        vm = served.start_vm(NODE1, run)
        wall_s = _wait(vm)
        console = vm.log_text()
        # the kernel got the node's address, host name and root path by DHCP
        assert (f"lease: ip={NODE1.address} hostname={NODE1.hostname} "
                f"rootpath={SERVER_IP}:{served.root(NODE1)},") in console, console
        assert f"DHCPACK({BRIDGE_IF}) {NODE1.address} {NODE1.hwaddr} {NODE1.hostname}" \
            in served.log("serve")
        # its init ran from its own root, and only there
        markers = _new_markers(before, served.markers())
        assert list(markers) == [NODE1.name], (markers, console)
        marker = markers[NODE1.name]
        assert marker["hostname"] == NODE1.hostname and marker["address"] == NODE1.address
        assert marker["report"] == "ok", console
        # the master recorded the boot, with the boot time the node measured
        doc = served.api(f"/api/v1/nodes/{NODE1.name}")
        assert doc["online"] is True and doc["last_boot"] is not None, doc
        assert doc["last_boot"]["boot_s"] == pytest.approx(float(marker["uptime_s"]))
        assert 0 < doc["last_boot"]["boot_s"] < wall_s
        # booting -> online: from the power-on call to the report, the firmware stage included
        assert doc["booting_since_s"] is None
        assert doc["last_boot"]["boot_s"] < doc["last_boot"]["power_on_s"] < wall_s + 1.0
        boot_s.append(doc["last_boot"]["boot_s"])
    assert [s["reason"] for s in doc["states"] if s["online"]] == ["boot report"]
    assert f"(reported from {NODE1.address}, by token)" in served.master.log_text()
    if boots > 1:
        print(f"\nboot time of node1 over {boots} boots: median {statistics.median(boot_s):.2f} s "
              f"({', '.join(f'{s:.2f}' for s in boot_s)})")


def test_two_vms_booting_at_once_get_their_own_addresses_and_roots(served: Bed) -> None:
    before = served.markers()
    vms = [served.start_vm(node, 100) for node in (NODE1, NODE2)]
    for vm in vms:
        _wait(vm)
    markers = _new_markers(before, served.markers())
    assert sorted(markers) == [NODE1.name, NODE2.name], \
        (markers, *(vm.log_text() for vm in vms))
    for node, vm in zip((NODE1, NODE2), vms, strict=True):
        marker = markers[node.name]
        assert (marker["name"], marker["hostname"], marker["address"]) == \
            (node.name, node.hostname, node.address), vm.log_text()
        assert marker["report"] == "ok", vm.log_text()
    # node2 has its own token in its root: the master took that, from node2's address
    assert f"{NODE2.name} booted in" in served.master.log_text()
    assert f"(reported from {NODE2.address}, by token)" in served.master.log_text()
    assert served.api(f"/api/v1/nodes/{NODE2.name}")["last_boot"] is not None


def test_a_node_whose_export_is_missing_does_not_boot_and_the_log_says_why(served: Bed) -> None:
    before = served.markers()
    vm = served.start_vm(NODE3)
    _wait(vm)  # the initramfs powers off when the mount fails
    console = vm.log_text()
    assert f"lease: ip={NODE3.address} hostname={NODE3.hostname}" in console, console
    reason = next((line for line in console.splitlines() if "FAILED" in line), None)
    assert reason is not None and "the NFS root could not be mounted" in reason, (
        f"node3 did not fail at the mount of its root:\n{console}")
    # why, from the logs: the server refused the mount (MNT3ERR_ACCES) because ganesha
    # could not create the export of a root path that is not there
    root = served.root(NODE3)
    assert f"mount: mounting {SERVER_IP}:{root} on /newroot failed: Permission denied" \
        in console, console
    assert f"Could not create export for ({root})" in served.log("serve"), served.log("serve")
    assert not served.root(NODE3).exists() and _new_markers(before, served.markers()) == {}
    time.sleep(1.0)  # whatever might still come in
    doc = served.api(f"/api/v1/nodes/{NODE3.name}")
    assert doc["last_boot"] is None and doc["online"] is not True, (
        f"node3 reported a boot though its root was missing: {doc}")


def test_a_boot_report_from_another_address_is_refused_and_logged(served: Bed) -> None:
    bed = served.bed
    bed.set_client_address("10.0.0.99")  # no node's address
    try:
        done = bed.client.run("busybox", "wget", "-q", "-O", "-", "--header",
                              "Content-Type: application/json", "--post-data",
                              '{"uptime_s": 1}', f"{MASTER_URL}/api/v1/nodes/{NODE3.name}/booted")
        assert done.returncode != 0 and "403" in done.stderr, done
        done = bed.client.run("busybox", "wget", "-q", "-O", "-", "--header",
                              "Authorization: Bearer " + node_boot_token("not-the-secret",
                                                                         NODE3.name),
                              "--header", "Content-Type: application/json", "--post-data",
                              '{"uptime_s": 1}', f"{MASTER_URL}/api/v1/nodes/{NODE3.name}/booted")
        assert done.returncode != 0 and "403" in done.stderr, done
        # node3's own token, from an address that is not node3's: a token taken from it
        done = bed.client.run("busybox", "wget", "-q", "-O", "-", "--header",
                              "Authorization: Bearer " + node_boot_token(SECRET, NODE3.name),
                              "--header", "Content-Type: application/json", "--post-data",
                              '{"uptime_s": 1}', f"{MASTER_URL}/api/v1/nodes/{NODE3.name}/booted")
        assert done.returncode != 0 and "403" in done.stderr, done
    finally:
        bed.set_client_address(None)
    assert f"boot report for {NODE3.name} from 10.0.0.99 refused" in served.master.log_text()
    assert served.api(f"/api/v1/nodes/{NODE3.name}")["last_boot"] is None


def test_the_minimal_roots_boot_tokens_are_the_masters(tmp_path: Path) -> None:
    """make-minimal-root.sh and the master derive the same per-node token."""
    render = tmp_path / "boot"
    render.mkdir()
    roots = {n.name: tmp_path / "nfs" / n.name for n in NODES}
    (render / "nodes.json").write_text(json.dumps(
        {"nodes": [{"name": name, "root_path": str(root)} for name, root in roots.items()]}))
    (tmp_path / "secret").write_text(SECRET + "\n")
    (tmp_path / "busybox").write_bytes(b"not really busybox")
    _run(str(VM_DIR / "make-minimal-root.sh"), "--render", str(render), "--busybox",
         str(tmp_path / "busybox"), "--master", MASTER_URL,
         "--boot-secret-file", str(tmp_path / "secret"))
    for name, root in roots.items():
        assert (root / "etc/rpiaas/boot-token").read_text().strip() \
            == node_boot_token(SECRET, name)
        assert (root / "etc/rpiaas/node").read_text().strip() == name
        assert (root / "etc/rpiaas/master").read_text().strip() == MASTER_URL
        assert os.access(root / "sbin/init", os.X_OK)

