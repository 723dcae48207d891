"""The testbed's image registry: docker-registry beside the master, pushes with skopeo, pulls by the agents.

The real programs run on loopback: ``docker-registry`` (two processes over one
storage), ``skopeo`` for pushes, the agents' container runner (podman and runc)
for pulls, and the image is built here from the machine's static busybox (no
outside registry is reachable).  A scenario of container tasks runs live twice
on ``testbed up --local 2 --registry``: the first run pulls (measured), the
second finds the image cached (``pull_s`` 0).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rpiaas_agent.config import ConfigError, load_config
from rpiaas_agent.images import image_reference, plain_http

from agent.tests.helpers import clean_env, gone
from agent.tests.images import build_busybox_image, missing
from rpiaas.cli import main
from rpiaas.testbed.plan import TestbedError
from rpiaas.testbed.registry import PULL, PUSH, push_image, registry_config, registry_info, repository, start_registry

TOOLS = ("docker-registry", "skopeo", "podman", "runc")
MISSING = [t for t in TOOLS if shutil.which(t) is None]
REQUIRED = bool(os.environ.get("RPIAAS_REQUIRE_CONTAINERS"))  # CI: run, never skip
needs_tools = pytest.mark.skipif(bool(MISSING) and not REQUIRED, reason=f"not installed: {', '.join(MISSING)}")
IMAGE = f"localhost/rpiaas-registry-test/busybox:{os.getpid()}"  # this run's own: others share podman's storage
TASK_IMAGE = f"rpiaas-registry-test/busybox:{os.getpid()}"  # what a task names, once pushed

SCENARIO = f"""
name: registry-pulls
seed: 1
cluster:
  clusters:
    - {{domain: local.rpiaas.test, prefix: 127.0.1, count: 2, type: rpi4b}}
workload:
  tasks:
    - {{id: 0, arrival_s: 0, cores: 1, mem_mb: 32, work_core_s: 1, image: "{TASK_IMAGE}", command: [sleep, "1"]}}
    - {{id: 1, arrival_s: 0, cores: 1, mem_mb: 32, work_core_s: 1, image: "{TASK_IMAGE}", command: [sleep, "1"]}}
    - {{id: 2, arrival_s: 6, cores: 1, mem_mb: 32, work_core_s: 1, image: "{TASK_IMAGE}", command: [sleep, "1"]}}
    - {{id: 3, arrival_s: 6, cores: 1, mem_mb: 32, work_core_s: 1, image: "{TASK_IMAGE}", command: [sh, -c, "exit 3"]}}
policy: round_robin
"""


def _rpiaas(*args: str, cwd: Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    script = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    assert script, "rpiaas is not installed beside sys.executable"
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=timeout_s, cwd=cwd,
                          env=clean_env())


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=check,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def busybox_image() -> Iterator[str]:
    """A local image of the machine's static busybox (podman's storage; removed at the end)."""
    lacking = ", ".join(MISSING) or missing()
    if lacking:
        if REQUIRED:
            pytest.fail(f"not installed: {lacking}")
        pytest.skip(f"not installed: {lacking}")
    build_busybox_image(IMAGE)
    yield IMAGE
    _podman("rmi", "--force", IMAGE, check=False)


def _password(auth_file: Path) -> str:
    auths = json.loads(auth_file.read_text())["auths"]
    return base64.b64decode(next(iter(auths.values()))["auth"]).decode().partition(":")[2]


def _live_pulls(tb: Path, scenario: Path, run: str, cwd: Path) -> dict[int, tuple[str, float]]:
    """Run the scenario live on the testbed in ``tb``; each task's state and measured pull."""
    master = json.loads((tb / "testbed.json").read_text())["master_url"]
    done = _rpiaas("run", str(scenario), "--live", "--master", master, "--token-file", str(tb / "master-token"),
                   "--task-kind", "scenario", "-o", str(cwd / run), cwd=cwd, timeout_s=300)
    assert done.returncode == 0, done.stdout + done.stderr
    with (cwd / run / "tasks.csv").open() as f:
        states = {int(row["task_id"]): row["state"] for row in csv.DictReader(f)}
    # the master's journal of the run keeps what each agent measured of its task
    pulls = {}
    for line in (tb / "runs" / run / "journal.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "pull_s" in record:
            pulls[int(record["used"])] = float(record["pull_s"])
    assert set(pulls) == set(states) == {0, 1, 2, 3}, (pulls, states)
    return {i: (states[i], pulls[i]) for i in sorted(states)}


# ---------------------------------------------------------------- the testbed's registry, end to end
@pytest.mark.slow
@pytest.mark.integration
@needs_tools
def test_a_live_run_pulls_from_the_registry_and_the_next_one_hits_the_cache(
        tmp_path: Path, busybox_image: str) -> None:
    tb = tmp_path / "tb"
    d = ["--dir", str(tb)]
    up = _rpiaas("testbed", "up", "--local", "2", "--registry", "--master-port", "0", *d, cwd=tmp_path)
    reference = ""
    state: dict[str, Any] = {}
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((tb / "testbed.json").read_text())
        info = registry_info(tb)
        assert info is not None and state["registry"] == info
        pull, push = info["pull_address"], info["push_address"]
        assert pull != push and f"registry   {pull} (pulls, read-only)" in up.stdout
        assert set(state["services"]) == {PULL, PUSH}
        status = _rpiaas("testbed", "status", *d, cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"registry {pull} (push {push})" in status.stdout
        assert status.stdout.count("alive") == 5  # master, 2 agents, the registry's two sides

        # every agent is told where to pull from
        for name, agent in state["agents"].items():
            token = (tb / "tokens" / f"{name}.token").read_text().strip()
            req = urllib.request.Request(f"http://127.0.0.1:{agent['port']}/config",
                                         headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=5) as r:
                assert json.loads(r.read())["registry"] == pull

        pushed = _rpiaas("image", "push", busybox_image, "--json", *d, cwd=tmp_path)
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        result = json.loads(pushed.stdout)
        assert result["image"] == TASK_IMAGE
        assert result["reference"] == f"{push}/{TASK_IMAGE}" and result["seconds"] > 0

        # a task's `image:` resolves to the registry, where no node has it yet
        reference = image_reference(TASK_IMAGE, pull)
        assert reference == f"{pull}/{TASK_IMAGE}"
        _podman("rmi", "--force", reference, check=False)
        scenario = tmp_path / "pulls.yaml"
        scenario.write_text(SCENARIO)
        first = _live_pulls(tb, scenario, "first", tmp_path)
        second = _live_pulls(tb, scenario, "second", tmp_path)
        print(f"push {result['seconds']:.2f} s; first run {first}; second run {second}")
        want = {0: "completed", 1: "completed", 2: "completed", 3: "failed"}
        assert {i: s for i, (s, _) in first.items()} == want == {i: s for i, (s, _) in second.items()}
        # the first tasks pulled it, the later ones found it: the two nodes of a local testbed share
        # this machine's podman storage, so the second of the first two may find it pulled already
        assert max(first[0][1], first[1][1]) > 0, first
        assert first[2][1] == 0 == first[3][1], first
        assert all(p == 0 for _, p in second.values()), second  # every task of the next run: cached
        # the pulls came from the registry's pull side
        manifests = (tb / "logs" / f"{PULL}.log").read_text().count(
            f'"GET /v2/{TASK_IMAGE.partition(":")[0]}/manifests/')
        assert manifests >= 1

        # the trust model: anyone may read, nobody writes without the credential
        anonymous = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false",
                                    f"containers-storage:{busybox_image}", f"docker://{push}/intruder:1"],
                                   capture_output=True, text=True, timeout=120)
        assert anonymous.returncode != 0 and "authentication required" in anonymous.stderr
        to_pull_side = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false",
                                       f"containers-storage:{busybox_image}", f"docker://{pull}/intruder:1"],
                                      capture_output=True, text=True, timeout=120)
        assert to_pull_side.returncode != 0 and "405" in to_pull_side.stderr
        # a wrong credential is one line that names the file, not the credential
        wrong = tmp_path / "wrong-auth.json"
        wrong.write_text(json.dumps({"auths": {push: {"auth": base64.b64encode(b"rpiaas-push:nope").decode()}}}))
        refused = _rpiaas("image", "push", busybox_image, "--auth-file", str(wrong), *d, cwd=tmp_path)
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1
        assert f"refused the push credential in {wrong}" in refused.stderr
        password = _password(tb / "registry" / "push-auth.json")
        assert len(password) >= 24
        for log in (tb / "logs").iterdir():
            assert password not in log.read_text(errors="replace"), log
        for out in (up, status, pushed, refused):
            assert password not in out.stdout + out.stderr
        assert oct((tb / "registry" / "push-auth.json").stat().st_mode & 0o777) == "0o600"
        assert oct((tb / "registry" / "htpasswd").stat().st_mode & 0o777) == "0o600"
    finally:
        down = _rpiaas("testbed", "down", *d, cwd=tmp_path)
        if reference:
            _podman("rmi", "--force", reference, check=False)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "registry: stopped" in down.stdout and "registry-push: stopped" in down.stdout
    services = state["services"]
    deadline = time.monotonic() + 10
    while not all(gone(p["pid"]) for p in services.values()):
        assert time.monotonic() < deadline, services
        time.sleep(0.1)


# ---------------------------------------------------------------- bad input: one line each
@pytest.mark.integration
@needs_tools
def test_push_of_an_image_that_is_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = start_registry(tmp_path)
    try:
        code = main(["image", "push", "nosuch-image-of-rpiaas:1", "--dir", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1
        assert "image nosuch-image-of-rpiaas:1: no such image in this machine's container storage" in err
        # a second registry in the same directory would change the credential under the first
        code = main(["registry", "serve", "--dir", str(tmp_path), "--listen", "127.0.0.1:0"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and f"{tmp_path}: a registry runs there already" in err
    finally:
        registry.stop()
    assert gone(registry.pull.pid) and gone(registry.push.pid)


def test_push_to_a_registry_that_is_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["image", "push", "busybox:1", "--registry", f"127.0.0.1:{port}", "--dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert f"registry 127.0.0.1:{port}: not answering" in err


def test_push_without_a_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["image", "push", "busybox:1", "--dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"no registry in {tmp_path}" in err


def test_an_unreadable_registry_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "registry.json").write_text('{"pull_address": 5}')
    code = main(["image", "push", "busybox:1", "--dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "registry.json: expected pull_address" in err


def test_registry_goes_with_a_local_testbed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["testbed", "up", "--emulated", "1", "--registry", "--dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--registry goes with --local" in err


def test_serve_with_a_bad_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed")
    code = main(["registry", "serve", "--listen", "nowhere", "--dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--listen: expected HOST:PORT, got 'nowhere'" in err


@pytest.mark.parametrize(("image", "expected"), [
    ("busybox", "busybox:latest"),
    ("busybox:1.36", "busybox:1.36"),
    ("localhost/stress:2", "stress:2"),
    ("quay.io/team/stress", "team/stress:latest"),
    ("10.0.0.1:5000/stress:3", "stress:3"),
    ("team/stress", "team/stress:latest"),
    ("stress@sha256:" + "a" * 64, "stress@sha256:" + "a" * 64),
])
def test_the_name_an_image_gets_in_the_registry(image: str, expected: str) -> None:
    assert repository(image) == expected


@pytest.mark.parametrize("image", ["", "Stress:1", "/stress", "str ess"])
def test_a_bad_image_name(image: str) -> None:
    with pytest.raises(TestbedError) as e:
        repository(image)
    assert e.value.exit_code == 2 and "image" in str(e.value)


def test_push_image_checks_the_name_first(tmp_path: Path) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    with pytest.raises(TestbedError, match="lower case"):
        push_image("Bad:1", "127.0.0.1:1", tmp_path / "auth.json")


def test_the_pull_side_is_read_only_and_the_push_side_authenticated(tmp_path: Path) -> None:
    pull = registry_config(tmp_path / "s", "10.0.0.1:5000", htpasswd=None)
    push = registry_config(tmp_path / "s", "127.0.0.1:5001", htpasswd=tmp_path / "htpasswd")
    assert pull["storage"]["maintenance"]["readonly"] == {"enabled": True} and "auth" not in pull
    assert "readonly" not in push["storage"]["maintenance"]
    assert push["auth"]["htpasswd"]["path"] == str(tmp_path / "htpasswd")
    assert pull["storage"]["filesystem"] == push["storage"]["filesystem"]  # one storage
    assert "cache" not in pull["storage"]  # the pull side sees a push at once


# ---------------------------------------------------------------- the agent's side
def test_a_task_image_resolves_to_the_registry() -> None:
    reg = "10.0.0.1:5000"
    assert image_reference("stress:1", reg) == "10.0.0.1:5000/stress:1"
    assert image_reference("team/stress", reg) == "10.0.0.1:5000/team/stress"
    assert image_reference("quay.io/team/stress:1", reg) == "quay.io/team/stress:1"  # its own registry
    assert image_reference("localhost/stress:1", reg) == "localhost/stress:1"  # a local build
    assert image_reference("stress:1", None) == "stress:1"
    # plain HTTP to the testbed's registry only
    assert plain_http("10.0.0.1:5000/stress:1", reg)
    assert not plain_http("quay.io/team/stress:1", reg)
    assert not plain_http("10.0.0.2:5000/stress:1", reg)
    assert not plain_http("10.0.0.1:5000/stress:1", None)


@pytest.mark.parametrize("value", ["10.0.0.1", "10.0.0.1:0", ":5000", "10.0.0.1:http", "http://10.0.0.1:5000",
                                   "10.0.0.1:99999", 5000])
def test_the_agent_refuses_a_bad_registry_setting(value: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config({"registry": value, "work_dir": str(tmp_path)}, env={})
    assert str(e.value).startswith("--registry: expected HOST:PORT")


def test_the_agent_takes_the_registry_from_its_file(tmp_path: Path) -> None:
    conf = tmp_path / "agent.toml"
    conf.write_text(f'registry = "10.0.0.1:5000"\nwork_dir = "{tmp_path}"\n')
    assert load_config({}, env={}, config_file=str(conf)).registry == "10.0.0.1:5000"
    conf.write_text(f'registry = "nowhere"\nwork_dir = "{tmp_path}"\n')
    with pytest.raises(ConfigError, match=f"^{conf}: registry: expected HOST:PORT"):
        load_config({}, env={}, config_file=str(conf))


# ---------------------------------------------------------------- a cluster master's registry
@pytest.mark.slow
@pytest.mark.integration
@needs_tools
def test_serve_runs_until_sigterm_and_takes_its_processes_along(tmp_path: Path) -> None:
    import signal
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    script = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    assert script
    serve = subprocess.Popen([script, "registry", "serve", "--listen", f"127.0.0.1:{ports[0]}",
                              "--push-listen", f"127.0.0.1:{ports[1]}", "--dir", str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        assert line.startswith(f"registry: pulls on 127.0.0.1:{ports[0]} (read-only), pushes on "
                               f"127.0.0.1:{ports[1]}"), line + (serve.stderr.read() if serve.poll() else "")
        info = registry_info(tmp_path)
        assert info is not None and info["pull_address"] == f"127.0.0.1:{ports[0]}"
        import urllib.error
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/v2/", timeout=5) as r:
            assert r.status == 200  # pulls: anonymous
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/v2/", timeout=5)
        assert e.value.code == 401  # pushes: the credential first
        pids = [int(p) for p in subprocess.run(["pgrep", "-P", str(serve.pid)], capture_output=True,
                                               text=True).stdout.split()]
        assert len(pids) == 2
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(20) == 143
    finally:
        if serve.poll() is None:  # SIGTERM first: a SIGKILL would leave its two processes running
            serve.terminate()
            try:
                serve.wait(20)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, pids
        time.sleep(0.1)
