"""rpiaas as container images: the recipe, the compose files, and a live run through them.

The integration test builds the images with ``scripts/build-images.sh`` (a Debian base from
mmdebstrap, the master and the agent with podman and runc), starts the master and two agents
with ``podman-compose`` (``deploy/compose/compose.yaml`` and ``agents.yaml``) and replays a
small scenario through them with ``rpiaas run --live``.  The images are tagged by a hash of
their recipe and sources, so a second run on the same machine builds nothing; the master's
dependencies are kept as wheels in ``$RPIAAS_IMAGE_CACHE`` (``/var/tmp/rpiaas-images``).

Skipped, with the reason, where it cannot run (not root, podman, podman-compose or
mmdebstrap missing); with ``RPIAAS_REQUIRE_IMAGES=1`` (CI) that is a failure instead.
Run with ``-s`` to see the build and start times.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rpiaas.auth import node_token
from rpiaas.testbed.plan import free_ports

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "build-images.sh"
IMAGES = ROOT / "deploy" / "images"
COMPOSE = ROOT / "deploy" / "compose"
NAMES = ["node1.local.rpiaas.test", "node2.local.rpiaas.test"]
MASTER_UID, AGENT_UID = 10001, 10002  # the images' users (their Containerfiles)
# podman-compose: $RPIAAS_PODMAN_COMPOSE (a command), else the one beside this Python (the test
# extra's), else the one on the PATH
PODMAN_COMPOSE = (os.environ.get("RPIAAS_PODMAN_COMPOSE", "").split()
                  or [shutil.which("podman-compose", path=str(Path(sys.executable).parent)) or "podman-compose"])


# ---------------------------------------------------------------- the recipe, without building
def _compose(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((COMPOSE / name).read_text())
    return doc


def test_the_compose_files_take_their_secrets_from_files_never_from_the_image() -> None:
    for name in ("compose.yaml", "agents.yaml"):
        doc = _compose(name)
        for service in doc["services"].values():
            assert service["network_mode"] == "host"
            for secret in service.get("secrets", []):
                assert doc["secrets"][secret]["file"].startswith("${RPIAAS_SECRETS_DIR:-./secrets}/")
            env = " ".join(f"{k}={v}" for k, v in (service.get("environment") or {}).items())
            assert not re.search(r"TOKEN=|SECRET=", env), f"{name}: a credential in the environment"
    for containerfile in IMAGES.glob("*/Containerfile"):
        text = containerfile.read_text()
        assert not re.search(r"(?i)^(COPY|ADD)\s.*(token|secret)", text, re.M), containerfile
        assert re.search(r"^USER (?!root|0)\S+$", text, re.M), f"{containerfile}: runs as root"


def test_the_agents_compose_file_names_only_agent_settings() -> None:
    from rpiaas_agent.config import ENV_PREFIX, SETTINGS
    for service in _compose("agents.yaml")["services"].values():
        for var in service["environment"]:
            assert var.startswith(ENV_PREFIX) and var[len(ENV_PREFIX):].lower() in SETTINGS, var


def test_the_tags_follow_the_sources(tmp_path: Path) -> None:
    """A change to rpiaas's sources gives new master and agent tags, and the same base."""
    def tags(root: Path) -> list[str]:
        done = subprocess.run([str(root / "scripts" / "build-images.sh"), "--print-tags"],
                              capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.split()

    copy = tmp_path / "src"
    for part in ("scripts", "deploy", "src", "agent", "pyproject.toml", "README.md"):
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, copy / part, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        else:
            shutil.copy2(src, copy / part)
    before = tags(copy)
    assert before == tags(copy)  # stable
    assert [t.split(":")[0] for t in before] == [f"localhost/rpiaas-{n}" for n in ("base", "master", "agent")]
    model = copy / "src" / "rpiaas" / "model.py"
    model.write_text(model.read_text() + "\n# changed\n")
    after = tags(copy)
    assert after[0] == before[0] and after[1] != before[1] and after[2] != before[2]
    bad = subprocess.run([str(copy / "scripts" / "build-images.sh"), "--arch", "s390x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--arch" in bad.stderr


# ---------------------------------------------------------------- built and started
@dataclass
class Images:
    base: str
    master: str
    agent: str


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (rootful podman; mmdebstrap)"
    missing = [p for p in ("podman", PODMAN_COMPOSE[0], "mmdebstrap", "runc") if shutil.which(p) is None]
    return f"needs {', '.join(missing)}" if missing else None


@pytest.fixture(scope="module")
def images() -> Images:
    why = _unavailable()
    if why:
        if os.environ.get("RPIAAS_REQUIRE_IMAGES") == "1":
            pytest.fail(why)
        pytest.skip(why)
    start = time.monotonic()
    done = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, f"scripts/build-images.sh failed:\n{done.stderr[-3000:]}"
    print(f"\nimages ready in {time.monotonic() - start:.1f} s:\n{done.stderr.strip()}")
    base, master, agent = done.stdout.split()
    return Images(base, master, agent)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as r:
        return json.loads(r.read())


def _private(path: Path, text: str, uid: int) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chown(path, uid, uid)
    path.chmod(0o400)
    return path


@dataclass
class Deployment:
    dir: Path
    url: str
    master_token: Path
    secrets: list[str]
    project: str
    compose: list[str]
    env: dict[str, str]

    def containers(self) -> list[str]:
        done = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}",
                               "--filter", f"label=io.podman.compose.project={self.project}"],
                              capture_output=True, text=True, timeout=30, check=True)
        return done.stdout.split()

    def logs(self) -> str:
        return "".join(subprocess.run(["podman", "logs", name], capture_output=True, text=True,
                                      timeout=30).stdout + subprocess.run(
                                          ["podman", "logs", name], capture_output=True, text=True,
                                          timeout=30).stderr for name in self.containers())


@pytest.fixture
def deployment(images: Images, tmp_path: Path) -> Iterator[Deployment]:
    master_port, port1, port2 = free_ports(3)
    config, secrets = tmp_path / "config", tmp_path / "secrets"
    config.mkdir()
    secrets.mkdir()
    cluster = {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 2, "type": "rpi4b"}]}
    (config / "cluster.yaml").write_text(yaml.safe_dump(cluster))
    master = {"cluster": "cluster.yaml", "poll_interval_s": 0.5, "listen": f"127.0.0.1:{master_port}",
              "agents": {NAMES[0]: f"127.0.0.1:{port1}", NAMES[1]: f"127.0.0.1:{port2}"},
              "token_file": "/run/secrets/master-token", "node_secret_file": "/run/secrets/node-secret",
              "store": "/var/lib/rpiaas/history.db", "runs_dir": "/var/lib/rpiaas/runs"}
    (config / "master.yaml").write_text(yaml.safe_dump(master))
    master_token, node_secret = os.urandom(16).hex(), os.urandom(16).hex()
    _private(secrets / "master-token", master_token, MASTER_UID)
    _private(secrets / "node-secret", node_secret, MASTER_UID)
    tokens = [node_token(node_secret, name) for name in NAMES]
    for i, token in enumerate(tokens, 1):
        _private(secrets / f"node{i}.token", token, AGENT_UID)
    host_token = tmp_path / "master-token"  # the researcher's copy, for rpiaas run
    host_token.write_text(master_token)
    host_token.chmod(0o600)
    url = f"http://127.0.0.1:{master_port}"
    env = {**os.environ, "RPIAAS_IMAGE_MASTER": images.master, "RPIAAS_IMAGE_AGENT": images.agent,
           "RPIAAS_CONFIG_DIR": str(config), "RPIAAS_SECRETS_DIR": str(secrets),
           "RPIAAS_NODE1_PORT": str(port1), "RPIAAS_NODE2_PORT": str(port2), "RPIAAS_MASTER_URL": url,
           "CONTAINERS_CONF": str(COMPOSE / "containers.conf")}
    project = f"rpiaas-deploy-test-{os.getpid()}"
    compose = [*PODMAN_COMPOSE, "-p", project, "-f", str(COMPOSE / "compose.yaml"),
               "-f", str(COMPOSE / "agents.yaml")]
    dep = Deployment(tmp_path, url, host_token, [master_token, node_secret, *tokens], project, compose, env)
    try:
        yield dep
    finally:
        subprocess.run([*compose, "down", "-v", "-t", "5"], capture_output=True, text=True, timeout=120,
                       env=env, cwd=tmp_path)
        for name in dep.containers():  # whatever compose left behind
            subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, timeout=60)
        subprocess.run(["podman", "volume", "rm", "-f", f"{project}_rpiaas-data"], capture_output=True,
                       timeout=60)
        subprocess.run(["podman", "network", "rm", "-f", f"{project}_default"], capture_output=True, timeout=60)


def _online(url: str) -> set[str]:
    try:
        return {n["name"] for n in _get(url + "/api/v1/nodes")["nodes"] if n.get("online") is True}
    except OSError:
        return set()


@pytest.mark.slow
@pytest.mark.integration
def test_a_live_run_through_the_master_and_two_agents_in_containers(deployment: Deployment) -> None:
    d = deployment
    start = time.monotonic()
    up = subprocess.run([*d.compose, "up", "-d"], capture_output=True, text=True, timeout=180,
                        env=d.env, cwd=d.dir)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    deadline = time.monotonic() + 60
    while _online(d.url) != set(NAMES):
        assert time.monotonic() < deadline, f"not online after 60 s: {_online(d.url)}\n{d.logs()[-3000:]}"
        time.sleep(0.2)
    print(f"\ncompose up to both nodes online: {time.monotonic() - start:.1f} s "
          f"({len(d.containers())} containers)")
    assert len(d.containers()) == 3

    scenario = {"name": "compose", "seed": 3, "sample_interval_s": 1,
                "cluster": {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 2,
                                          "type": "rpi4b"}]},
                "workload": {"tasks": [{"id": i + 1, "arrival_s": 0.2 * i, "cores": 1 + i % 2,
                                        "mem_mb": 64, "work_core_s": 0.5} for i in range(6)]},
                "policy": "worst_fit"}
    (d.dir / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    rpiaas = shutil.which("rpiaas", path=str(Path(sys.executable).parent))
    assert rpiaas, "rpiaas is not installed beside sys.executable"
    start = time.monotonic()
    run = subprocess.run([rpiaas, "run", "scenario.yaml", "--live", "--task-kind", "cpu", "--master", d.url,
                          "--token-file", str(d.master_token), "-o", "run"],
                         capture_output=True, text=True, timeout=180, cwd=d.dir)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:] + d.logs()[-3000:]
    print(f"live run through the containers: {time.monotonic() - start:.1f} s")
    with (d.dir / "run" / "tasks.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["task_id"]) for r in rows) == list(range(1, 7))
    assert {r["state"] for r in rows} == {"completed"}, rows
    assert {r["node"] for r in rows} == set(NAMES)  # worst fit spreads them over both
    assert json.loads((d.dir / "run" / "run.json").read_text())["mode"] == "live"

    logs = d.logs() + up.stdout + up.stderr + run.stdout + run.stderr
    for secret in d.secrets:
        assert secret not in logs, "a credential in a log"
    for image in (d.env["RPIAAS_IMAGE_MASTER"], d.env["RPIAAS_IMAGE_AGENT"]):
        history = subprocess.run(["podman", "history", "--no-trunc", image], capture_output=True, text=True,
                                 timeout=30).stdout
        assert not any(secret in history for secret in d.secrets)

    down = subprocess.run([*d.compose, "down", "-t", "5"], capture_output=True, text=True, timeout=120,
                          env=d.env, cwd=d.dir)
    assert down.returncode == 0, down.stderr[-2000:]
    assert d.containers() == []


@pytest.mark.slow
@pytest.mark.integration
def test_a_secret_the_master_cannot_read_stops_it_with_one_line(images: Images, tmp_path: Path) -> None:
    config = tmp_path / "config"  # world-readable, as the compose file's config directory
    config.mkdir(mode=0o755)
    (config / "cluster.yaml").write_text(yaml.safe_dump(
        {"clusters": [{"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 1, "type": "rpi4b"}]}))
    (config / "master.yaml").write_text(yaml.safe_dump(
        {"cluster": "cluster.yaml", "listen": f"127.0.0.1:{free_ports(1)[0]}",
         "token_file": "/run/secrets/master-token", "node_secret_file": "/run/secrets/node-secret",
         "store": "/var/lib/rpiaas/history.db"}))
    token = os.urandom(16).hex()
    (tmp_path / "master-token").write_text(token)  # root's, mode 0600: not the image's user's
    (tmp_path / "master-token").chmod(0o600)
    _private(tmp_path / "node-secret", os.urandom(16).hex(), MASTER_UID)
    name = f"rpiaas-deploy-test-secret-{os.getpid()}"
    try:
        done = subprocess.run(["podman", "run", "--rm", "--name", name, "--network", "none",
                               "-v", f"{config}:/etc/rpiaas:ro",
                               "-v", f"{tmp_path / 'master-token'}:/run/secrets/master-token:ro",
                               "-v", f"{tmp_path / 'node-secret'}:/run/secrets/node-secret:ro", images.master],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "CONTAINERS_CONF": str(COMPOSE / "containers.conf")})
    finally:  # a master that started after all is not left running
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert re.fullmatch(r"error: /etc/rpiaas/master\.yaml:\d+: token_file: cannot read "
                        r"/run/secrets/master-token: .*Permission denied.*", done.stderr.strip()), done.stderr
    assert token not in done.stdout + done.stderr
