"""Measured image pulls against the model, after calibration: a scenario of container tasks run
live on a local testbed (one agent, podman and runc) pulling from the testbed's own registry
(``docker-registry`` on loopback), then calibrated and simulated, and the two runs compared.

The images are built here: a base of the machine's static busybox (the existing container
tests' builder) and four images on it, each with one layer of random bytes of its own size,
pushed with ``rpiaas image push``'s code and then removed from the machine's container
storage, so the node's cache is cold.  The scenario's ``images:`` are the layers the registry
serves (its manifests' digests and compressed sizes: what a pull carries).

The run has two waves on one node: each image pulled cold, one at a time (the shared base
with the first, never again), then every image again, held.  A simulation starts with empty
caches, so the held images are compared within one run.  One node, because the local
testbed's agents share this machine's container storage: a second node would find the
first one's layers, where the model's nodes each keep their own.

``calibrate`` fits the link (``link_mbps``) and the fixed part of a pull (``pull_latency_s``)
to the live run; the calibrated scenario is simulated and compared with the live run.  Each
cold pull's modelled time must be within what the fit's own residuals allow: no single one of
``n`` residuals exceeds ``sqrt(n)`` times their root mean square.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.tests.images import build_busybox_image, missing
from rpiaas.analysis.calibrate import calibrate, format_calibration
from rpiaas.analysis.compare import compare_runs
from rpiaas.client.client import run_live
from rpiaas.scenario import load_scenario
from rpiaas.sim import simulate
from rpiaas.testbed.local import LocalTestbed, start_local_testbed
from rpiaas.testbed.registry import push_image

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TOOLS = ("docker-registry", "skopeo", "podman", "runc")
REQUIRED = bool(os.environ.get("RPIAAS_REQUIRE_CONTAINERS"))  # CI: run, never skip
REPO = "rpiaas-pulls-test"
TAG = str(os.getpid())  # this run's own: others share podman's storage
BASE = f"localhost/{REPO}/base:{TAG}"
# each image's own layer (MB of random bytes: incompressible, so the registry's blob is as large)
LAYERS_MB = {"small": 8, "mid": 30, "large": 60, "xl": 120}
SPACING_S = 3.5  # between the cold pulls: each pull and its container are over before the next
SLEEPS_S = {"small": 1.0, "mid": 1.5, "large": 1.0, "xl": 1.5}  # two task lengths for the speed fit


@dataclass(frozen=True)
class Pushed:
    """The images in the registry: each one's name as a task gives it, and its layers as the
    registry serves them (digest, bytes), the base first."""

    testbed: LocalTestbed
    images: dict[str, tuple[tuple[str, int], ...]]


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=300, check=check,
                          stdin=subprocess.DEVNULL)


def _manifest_layers(pull_address: str, name: str) -> tuple[tuple[str, int], ...]:
    repo, _, tag = name.rpartition(":")
    req = urllib.request.Request(f"http://{pull_address}/v2/{repo}/manifests/{tag}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        doc = json.loads(r.read())
    return tuple((str(la["digest"]), int(la["size"])) for la in doc["layers"])


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushed]:
    lacking = ", ".join(t for t in TOOLS if shutil.which(t) is None) or missing()
    if lacking:
        if REQUIRED:
            pytest.fail(f"not installed: {lacking}")
        pytest.skip(f"not installed: {lacking}")
    t0 = time.monotonic()
    build_busybox_image(BASE)
    ctx = tmp_path_factory.mktemp("ctx")
    local = {tag: f"localhost/{REPO}/{tag}:{TAG}" for tag in LAYERS_MB}
    try:
        for tag, mb in LAYERS_MB.items():
            (ctx / f"{tag}.bin").write_bytes(os.urandom(mb * 1_000_000))
            (ctx / f"Containerfile.{tag}").write_text(f"FROM {BASE}\nCOPY {tag}.bin /{tag}.bin\n")
            _podman("build", "--pull=never", "--quiet", "-f", str(ctx / f"Containerfile.{tag}"), "-t", local[tag],
                    str(ctx))
        built_s = time.monotonic() - t0
        with start_local_testbed(tmp_path_factory.mktemp("tb"), 1, poll_interval_s=0.25, registry=True) as tb:
            reg = tb.registry
            assert reg is not None
            t1 = time.monotonic()
            with ThreadPoolExecutor(2) as pool:  # two at a time: the machine has two CPUs
                results = list(pool.map(lambda name: push_image(name, reg.push_address, reg.auth_file),
                                        local.values()))
            # the node's cache cold: the layers only in the registry now
            _podman("rmi", "--force", *local.values(), BASE)
            images = {r.image: _manifest_layers(reg.pull_address, r.image) for r in results}
            print(f"images built in {built_s:.1f} s, pushed in {time.monotonic() - t1:.1f} s: "
                  + ", ".join(f"{name} {sum(s for _, s in layers) / 1e6:.2f} MB in {len(layers)} layers"
                              for name, layers in images.items()))
            try:
                yield Pushed(tb, images)
            finally:
                _podman("rmi", "--force", *(f"{reg.pull_address}/{name}" for name in images), check=False)
    finally:
        _podman("rmi", "--force", *local.values(), BASE, check=False)


def _scenario(images: dict[str, tuple[tuple[str, int], ...]]) -> dict[str, Any]:
    """Wave 1: each image alone on a cold node, SPACING_S apart; wave 2: all of them again, held."""
    names = {name.partition("/")[2].partition(":")[0]: name for name in images}
    tasks = []
    for i, tag in enumerate(LAYERS_MB):
        for wave, at in ((0, i * SPACING_S), (1, len(LAYERS_MB) * SPACING_S)):
            sleep = SLEEPS_S[tag]
            tasks.append({"id": wave * 10 + i, "arrival_s": at, "cores": 1, "mem_mb": 32, "work_core_s": sleep,
                          "image": names[tag], "command": ["sleep", f"{sleep:g}"]})
    return {
        "name": "pulls-compare", "seed": 1, "policy": "image_locality",
        "cluster": {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 1,
                                  "type": "rpi4b"}]},
        "images": {name: {"layers": [{"id": digest.partition(":")[2][:16], "size_mb": size / 1e6}
                                     for digest, size in layers]} for name, layers in images.items()},
        "workload": {"tasks": sorted(tasks, key=lambda t: (t["arrival_s"], t["id"]))},
    }


def _rows(run: Path) -> dict[int, dict[str, str]]:
    with (run / "tasks.csv").open(newline="") as f:
        return {int(r["task_id"]): r for r in csv.DictReader(f)}


def test_measured_pulls_against_the_calibrated_model(pushed: Pushed, tmp_path: Path) -> None:
    tb = pushed.testbed
    doc = _scenario(pushed.images)
    path = tmp_path / "pulls.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    t0 = time.monotonic()
    _, live = run_live(load_scenario(path), tb.master_url, tb.master_token, tmp_path / "live",
                       task_kind="scenario", quiet=True)
    live_s = time.monotonic() - t0

    # the link fitted to the live run, written into the calibrated cluster beside the speed
    result = calibrate(live, tmp_path / "calibrated.yaml", simulate_check=False)
    print(format_calibration(result))
    link = result.fits["rpi4b"].link
    assert link is not None and link.pulls == len(LAYERS_MB) == link.bursts  # each cold pull alone
    written = yaml.safe_load((tmp_path / "calibrated.yaml").read_text())["cluster"]["node_types"]["rpi4b-calibrated"]
    assert written["link_mbps"] == pytest.approx(link.link_mbps, rel=1e-5)
    assert written["pull_latency_s"] == pytest.approx(link.latency_s, rel=1e-5, abs=1e-6)
    sim = tmp_path / "sim"
    simulate(load_scenario(tmp_path / "calibrated.yaml"), sim)

    # rpiaas compare: every task in both, placed alike, completed in both
    pair = compare_runs([live, sim])["pairs"][0]
    tasks = pair["tasks"]
    n = len(doc["workload"]["tasks"])
    assert pair["same_tasks"] and tasks["matched"] == n == tasks["both_completed"], pair
    assert tasks["placement"]["agreement"] == 1.0
    # its pulls: every task pulled (a container task each), the cold ones something in both worlds
    pulls = tasks["pull_diff_s"]
    assert (pulls["tasks"], pulls["pulled_a"], pulls["pulled_b"]) == (n, len(LAYERS_MB), len(LAYERS_MB)), pulls

    measured, modelled = _rows(live), _rows(sim)
    assert set(measured) == set(modelled) == {t["id"] for t in doc["workload"]["tasks"]}
    print(f"live run {live_s:.1f} s; link {link.link_mbps:.4g} Mbit/s, pull latency {link.latency_s:.3g} s, "
          f"pull rmse {link.rmse_s:.3g} s over {link.bursts} pulls")
    print(f"{'task':>4}  {'image':<30} {'node':<24} {'carried MB':>10} {'measured pull_s':>15} "
          f"{'modelled pull_s':>15}")
    sizes = {la["id"]: la["size_mb"] for im in doc["images"].values() for la in im["layers"]}
    image_of = {t["id"]: t["image"] for t in doc["workload"]["tasks"]}
    held: set[str] = set()
    bound_s = math.sqrt(link.bursts) * link.rmse_s + 1e-6  # the largest residual a fit of this rmse can have
    assert pulls["max_abs"] <= bound_s, (pulls, bound_s)
    for tid in sorted(measured):
        m, s = measured[tid], modelled[tid]
        image = image_of[tid]
        ids = [la["id"] for la in doc["images"][image]["layers"]]
        carried = sum(sizes[i] for i in ids if i not in held)
        held |= set(ids)
        meas_s, mod_s = float(m["pull_s"]), float(s["pull_s"])
        print(f"{tid:>4}  {image:<30} {m['node']:<24} {carried:>10.2f} {meas_s:>15.3f} {mod_s:>15.3f}")
        assert m["node"] == s["node"] and m["state"] == s["state"] == "completed", (m, s)
        if tid < 10:  # wave 1: a cold pull, in both worlds, within the fit's residuals of the measure
            assert carried > 0 and meas_s > 0 and mod_s > 0, (m, s)
            # the simulation's lone pull is the calibrated line itself (latency + MB over the
            # link), so its error is the fit's residual, which no fit of this rmse exceeds
            # beyond sqrt(n) x rmse: the fit's accuracy is printed above, not asserted
            line_s = link.latency_s + 8 * carried / link.link_mbps
            assert mod_s == pytest.approx(line_s, rel=1e-4, abs=2e-3), (tid, mod_s, line_s)
            assert abs(mod_s - meas_s) <= bound_s, (tid, meas_s, mod_s, bound_s)
        else:  # wave 2: held, nothing to pull
            assert carried == 0 and mod_s == 0.0, s
            # live, the agent found it in its storage: no pull, so at most what the fit puts
            # before a pull's first byte
            assert meas_s <= link.latency_s, m
