"""A virtual Pi boots over the network into a Debian arm64 root and runs the real agent.

``scripts/netboot/vm/make-agent-root.sh`` makes node1's NFS root: Debian
bookworm's python3.11, python3-aiohttp and python3-psutil (unpacked, not
installed) and the agent from this checkout, whose init starts the agent
as systemd does on a Raspberry Pi OS node.  One VM boots it (QEMU, TCG),
served as in ``test_vm_boot.py`` by ``rpiaas netboot serve`` (dnsmasq,
nfs-ganesha) and ``rpiaas master`` in a network namespace.  The agent
reports its node's boot to the master with the node's own token from the
node's own address; the master polls it online; its ``/info`` describes the
VM (its name, its memory, its one core), not the host.

Skipped as ``test_vm_boot.py`` is (not root, no namespaces or tap devices, a
program missing, the arm64 packages not to be had); with
``RPIAAS_REQUIRE_VM=1`` a download that fails is a failure instead.  The
packages and the base root are cached (``$RPIAAS_VM_CACHE``, else
``~/.cache/rpiaas/vm``); run with ``-s`` to see the boot's timings.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rpiaas.auth import node_token

from .netns import BRIDGE_IF, SERVER_IP, Service, netns_pair
from .test_vm_boot import (
    MASTER_URL,
    NODE1,
    RPIAAS,
    VM_DIR,
    Bed,
    _mounts_under,
    _prepare,
    _run,
    _skip_reason,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(_skip_reason() is not None, reason=f"VM agent boot: {_skip_reason()}"),
]

MAKE_AGENT_ROOT = VM_DIR / "make-agent-root.sh"
SECRET = "vm-agent-node-secret-0123456789"
MASTER_TOKEN = "vm-agent-master-token"
VM_MEM_MB = 256
AGENT_PORT = 8081
# Under TCG the agent reports some 7-13 s after QEMU starts (its imports take 4 s of that).
REPORT_TIMEOUT_S = 120.0
POLL_TIMEOUT_S = 30.0
CLUSTER = (f"interface: {BRIDGE_IF}\nclusters:\n  - domain: c1.rpiaas.test\n    prefix: 10.0.0\n"
           f"    nodes:\n      - {{hostname: {NODE1.hostname}, type: rpi4b, "
           f'suffix: {NODE1.address.rsplit(".")[-1]}, hwaddr: "{NODE1.hwaddr}"}}\n')


def _make_roots(out: Path, work: Path, busybox: str) -> None:
    """make-agent-root.sh; a download that fails skips (fails under RPIAAS_REQUIRE_VM=1)."""
    done = subprocess.run(
        [str(MAKE_AGENT_ROOT), "--render", str(out), "--master", MASTER_URL,
         "--node-secret-file", str(work / "node-secret"), "--busybox", busybox],
        capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        why = f"make-agent-root.sh failed: {done.stderr.strip().splitlines()[-1:]}"
        if ("apt-get download" in done.stderr or "arm64 architecture" in done.stderr) \
                and os.environ.get("RPIAAS_REQUIRE_VM") != "1":
            pytest.skip(why)
        pytest.fail(why + "\n" + done.stdout + done.stderr)
    assert done.stdout.splitlines() == [f"{NODE1.name}: {work / 'nfs' / NODE1.name} (agent)"], \
        done.stdout


@pytest.fixture(scope="module")
def served() -> Iterator[Bed]:
    files = _prepare()
    # Not under pytest's 0700 base directory: dnsmasq and ganesha serve it as other users.
    with tempfile.TemporaryDirectory(prefix="rpiaas-vm-agent-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        (work / "cluster.yaml").write_text(CLUSTER)
        out = work / "boot"
        _run(str(RPIAAS), "netboot", "render", str(work / "cluster.yaml"), "--out", str(out),
             "--server-ip", SERVER_IP, "--nfs-root", str(work / "nfs"))
        (work / "node-secret").write_text(SECRET + "\n")
        _make_roots(out, work, files.busybox)
        (work / "master.yaml").write_text(
            f"cluster: cluster.yaml\nlisten: \"{SERVER_IP}:{MASTER_URL.rsplit(':')[-1]}\"\n"
            "store: history.db\npoll_interval_s: 1\npoll_timeout_s: 1\n"
            "node_secret_file: node-secret\ntoken_file: master-token\n")
        (work / "master-token").write_text(MASTER_TOKEN + "\n")
        with netns_pair(work / "state", "02:00:00:00:00:98", bridge=True) as bed:
            bed.start_rpcbind()
            serve = bed.start("serve", str(RPIAAS), "netboot", "serve", str(out),
                              "--state-dir", str(bed.state_dir), "--nfs", "ganesha")
            serve.wait_for_log("started, version")
            serve.wait_for_log("NFS SERVER INITIALIZED", timeout=30)
            master = bed.start("master", str(RPIAAS), "master", str(work / "master.yaml"))
            master.wait_for_log("Running on", timeout=30)
            bed.add_tap(NODE1.tap)
            yield Bed(bed, work, files, master)
            assert serve.stop() == 0, serve.log_text()
            assert master.stop() == 0, master.log_text()
        assert _mounts_under(work) == []


def _until(what: str, check: Callable[[], bool], timeout: float, vm: Service,
           master: Service) -> float:
    """Wait until ``check()``; the seconds it took.  Fails, with the logs, if the VM stops first
    (a node that powered off will not get there) or after ``timeout``."""
    start = time.monotonic()
    while not check():
        if not vm.running():
            raise AssertionError(f"{vm.name} exited ({vm.proc.returncode}) before {what}:\n"
                                 f"{vm.log_text()}")
        if time.monotonic() - start > timeout:
            raise AssertionError(f"no {what} after {timeout} s:\n{vm.log_text()}\n----\n"
                                 f"{master.log_text()}")
        time.sleep(0.2)
    return time.monotonic() - start


def test_the_root_holds_the_nodes_own_settings_and_token(served: Bed) -> None:
    root = served.root(NODE1)
    token = root / "etc/rpiaas-agent/token"
    assert token.read_text().strip() == node_token(SECRET, NODE1.name)
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    conf = (root / "etc/rpiaas-agent/agent.toml").read_text()
    for line in (f'name = "{NODE1.name}"', f'master_url = "{MASTER_URL}"', f"port = {AGENT_PORT}",
                 'token_file = "/etc/rpiaas-agent/token"', 'vcgencmd = ""'):
        assert line in conf, conf
    assert (root / "etc/hostname").read_text().strip() == NODE1.hostname
    assert os.access(root / "sbin/init", os.X_OK) and os.access(root / "usr/bin/python3.11", os.X_OK)
    # the agent and Debian's packages come byte-compiled (the VM would take seconds longer)
    agent = root / "usr/local/lib/python3.11/dist-packages/rpiaas_agent"
    assert (agent / "__pycache__" / "app.cpython-311.pyc").exists()
    assert (root / "usr/lib/python3/dist-packages/aiohttp/__pycache__/web.cpython-311.pyc").exists()


def test_a_vm_runs_the_agent_which_reports_its_boot_and_is_polled_online(served: Bed) -> None:
    started = time.time()
    vm = served.bed.start("vm-node1", str(VM_DIR / "boot-vm.sh"), "--tap", NODE1.tap,
                          "--mac", NODE1.hwaddr, "--kernel", served.files.kernel,
                          "--initrd", served.files.initrd, "--mem", str(VM_MEM_MB))
    master = served.master
    try:
        # the agent, started by the root's init, reports the boot with the node's own token
        # from the node's own address (the master accepts it only so)
        report_s = _until("boot report", lambda: f"{NODE1.name} booted in" in master.log_text(),
                          REPORT_TIMEOUT_S, vm, master)
        console = vm.log_text()
        assert f"rpiaas-node: {NODE1.name} starting the agent at" in console, console
        assert "FAILED" not in console and "Traceback" not in console, console
        assert f"(reported from {NODE1.address}, by token)" in master.log_text()
        # and the master polls it: online by a poll answered after the report
        def polled() -> bool:
            doc = served.api(f"/api/v1/nodes/{NODE1.name}")
            return bool(doc["online"] and (doc["last_ok_s"] or 0) > started)
        online_s = report_s + _until("poll answered", polled, POLL_TIMEOUT_S, vm, master)
        doc = served.api(f"/api/v1/nodes/{NODE1.name}")
        assert doc["online"] is True and doc["agent"] == f"http://{NODE1.address}:{AGENT_PORT}"
        assert doc["last_boot"] is not None and 0 < doc["last_boot"]["boot_s"] < report_s + 5
        assert doc["sample"] is not None and doc["sample"]["node"] == NODE1.name
        # the agent describes the VM, not the host: its name, its memory, its one core
        done = served.bed.server.run("busybox", "wget", "-q", "-O", "-",
                                     f"http://{NODE1.address}:{AGENT_PORT}/info")
        assert done.returncode == 0, f"GET /info: {done.stderr}\n{vm.log_text()}"
        info = json.loads(done.stdout)
        assert info["node"] == {"name": NODE1.name, "hostname": NODE1.hostname}, info
        assert info["cpu"]["cores"] == 1, info
        total_mb = info["memory"]["total_bytes"] / 2**20
        assert 0.75 * VM_MEM_MB < total_mb <= VM_MEM_MB, info["memory"]
        assert vm.running(), vm.log_text()
        print(f"\nnode1: the agent reported the boot {report_s:.1f} s after QEMU started "
              f"(uptime {doc['last_boot']['boot_s']:.2f} s), polled online at {online_s:.1f} s")
    finally:
        vm.stop()
