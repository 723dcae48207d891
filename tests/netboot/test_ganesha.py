"""render_ganesha against a golden file, and what the config must say whatever its layout.

Set ``RPIAAS_REGEN_GOLDEN=1`` to write the golden file anew (then read the diff).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from rpiaas.inputs.cluster import load_cluster
from rpiaas.netboot import make_plan
from rpiaas.netboot.ganesha import ganesha_command, render_ganesha
from rpiaas.netboot.plan import NetbootPlan

GOLDEN = Path(__file__).parent / "golden" / "ganesha.conf"
REGEN = os.environ.get("RPIAAS_REGEN_GOLDEN") == "1"

CLUSTER = """\
interface: eth0
clusters:
  - domain: c1.rpiaas.test
    prefix: 10.0.1
    nodes:
      - {hostname: node1, type: rpi4b, suffix: 11, hwaddr: "dc:a6:32:00:00:11", serial: 1a2b3c4d}
      - {hostname: node2, type: rpi3b, suffix: 12, hwaddr: "b8:27:eb:00:00:12"}
  - domain: c2.rpiaas.test
    prefix: 10.0.2
    nodes:
      - {hostname: node1, type: rpi5, suffix: 11, hwaddr: "2c:cf:67:00:00:11", serial: 9f8e7d6c}
"""


def _plan(tmp_path: Path) -> NetbootPlan:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(CLUSTER)
    return make_plan(load_cluster(cluster), server_ip="10.0.1.254", nfs_root="/srv/rpiaas/nfs",
                     tftp_root="/srv/rpiaas/boot/tftp")


def test_matches_the_golden_file(tmp_path: Path) -> None:
    text = render_ganesha(_plan(tmp_path), source="cluster.yaml")
    if REGEN:
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_one_export_per_node_for_its_address_only(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    text = render_ganesha(plan)
    exports = re.findall(r"^EXPORT \{\n(.*?)^\}", text, re.M | re.S)
    assert len(exports) == len(plan.nodes) == 3
    for i, (block, node) in enumerate(zip(exports, plan.nodes, strict=True), start=1):
        assert f"Export_Id = {i};" in block
        assert f'Path = "{node.root_path}";' in block and f'Pseudo = "{node.root_path}";' in block
        export_level, client = block.split("CLIENT {")
        assert "Access_Type = None;" in export_level
        assert re.search(rf"Clients = {re.escape(node.address)};\s+Access_Type = RW;"
                         r"\s+Squash = No_Root_Squash;", client)
    assert 'RecoveryRoot = "/srv/rpiaas/boot/state";' in text  # serve's default state dir
    assert "Graceless = true;" in text and "Bind_addr = 10.0.1.254;" in text


def test_the_state_dir_is_named_and_must_be_absolute(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert 'RecoveryRoot = "/var/tmp/st";' in render_ganesha(plan, state_dir="/var/tmp/st")
    with pytest.raises(ValueError, match="absolute"):
        render_ganesha(plan, state_dir="relative/state")


def test_command_runs_in_the_foreground_with_its_pid_file_in_the_state_dir() -> None:
    assert ganesha_command("/b/ganesha.conf", "/b/state") == [
        "ganesha.nfsd", "-F", "-L", "STDERR", "-f", "/b/ganesha.conf", "-p", "/b/state/ganesha.pid"]
