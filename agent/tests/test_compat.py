"""The agent on its oldest supported libraries, and on the installed ones.

The oldest are Debian bookworm's (Raspberry Pi OS bookworm): python3-aiohttp
3.8.4 and python3-psutil 5.9.4, the install recommended on a Pi.  The slow test
runs the agent's whole test suite with a Python that has them, named by
``RPIAAS_TEST_OLD_DEPS_PYTHON``; ``agent/tests/old-deps-venv.sh`` makes one::

    bash agent/tests/old-deps-venv.sh /tmp/oldvenv
    RPIAAS_TEST_OLD_DEPS_PYTHON=/tmp/oldvenv/bin/python \\
        .venv/bin/python -m pytest -q agent/tests/test_compat.py

The other tests check, with whatever aiohttp is installed, the two places where
the agent differs between aiohttp 3.8 and later: its state keys and how it
passes the shutdown timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import urllib.request
import warnings
from pathlib import Path

import pytest
import tomllib
from aiohttp import web

from rpiaas_agent import create_app, keys
from rpiaas_agent.cli import serve

from .helpers import free_port, test_config

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "agent"
SCRIPT = AGENT / "tests" / "old-deps-venv.sh"
OLD_DEPS_ENV = "RPIAAS_TEST_OLD_DEPS_PYTHON"
HOW = (f"set {OLD_DEPS_ENV} to a Python with aiohttp 3.8.4 and psutil 5.9.4, "
       f"e.g. made by `bash agent/tests/old-deps-venv.sh /tmp/oldvenv` (then /tmp/oldvenv/bin/python)")


def floors() -> dict[str, str]:
    """``{name: oldest version}`` from the agent's ``pyproject.toml`` (``name>=version``)."""
    out = {}
    for dep in tomllib.loads((AGENT / "pyproject.toml").read_text())["project"]["dependencies"]:
        m = re.fullmatch(r"([\w-]+)>=([\d.]+)", dep)
        assert m, dep
        out[m.group(1)] = m.group(2)
    return out


def test_the_floors_are_debian_bookworms() -> None:
    assert floors() == {"aiohttp": "3.8.4", "psutil": "5.9.4"}
    script = SCRIPT.read_text()
    for name, version in floors().items():
        assert f"{name}=={version}" in script and f"python3-{name}" in script, name


def test_the_keys_suit_the_installed_aiohttp() -> None:
    app_key = getattr(web, "AppKey", None)
    for key in (keys.CONFIG, keys.CPU, keys.THERMAL, keys.THROTTLE, keys.NOTIFIER, keys.TASKS):
        assert isinstance(key, app_key if app_key is not None else str), key
    # aiohttp 3.9 and later warn of a string key (NotAppKeyWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_app()


def test_only_the_keys_module_uses_app_key() -> None:
    for path in sorted((AGENT / "rpiaas_agent").glob("*.py")):
        if path.name != "keys.py":
            assert "AppKey" not in path.read_text(), path.name


def test_serve_answers_and_stops_on_sigterm_without_deprecations(tmp_path: Path) -> None:
    """``serve`` as ``rpiaas-agent`` runs it, in this process: the shutdown timeout goes where
    this aiohttp takes it (on 3.8, given to the runner, it left every request unanswered; on
    3.9 and later, given to the site, it is deprecated)."""
    config = test_config(tmp_path, port=free_port())

    def ping() -> int:
        url = f"http://127.0.0.1:{config.port}/ping"
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)

    async def go() -> None:
        served = asyncio.ensure_future(serve(config))
        for _ in range(100):
            await asyncio.sleep(0.05)
            assert not served.done(), served
            try:
                status = await asyncio.get_running_loop().run_in_executor(None, ping)
            except OSError:
                continue
            assert status == 200
            break
        else:
            pytest.fail("/ping unanswered after 5 s")
        os.kill(os.getpid(), signal.SIGTERM)  # serve's handler takes it, as in the real agent
        await asyncio.wait_for(served, 10)

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        asyncio.run(go())


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get(OLD_DEPS_ENV), reason=HOW)
def test_the_agent_suite_passes_on_the_oldest_libraries() -> None:
    python = os.environ[OLD_DEPS_ENV]
    env = {k: v for k, v in os.environ.items() if k != OLD_DEPS_ENV}
    # this checkout's agent, for the tests and for the rpiaas-agent processes they start
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(AGENT), env.get("PYTHONPATH")) if p)
    probe = subprocess.run(
        [python, "-c", "import json, aiohttp, psutil, rpiaas_agent; "
                       "print(json.dumps([aiohttp.__version__, psutil.__version__, rpiaas_agent.__file__]))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    aiohttp_version, psutil_version, agent_file = json.loads(probe.stdout)
    assert {"aiohttp": aiohttp_version, "psutil": psutil_version} == floors(), HOW
    assert Path(agent_file).resolve().is_relative_to(AGENT), agent_file

    run = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "agent/tests"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", summary) and "failed" not in summary, summary
