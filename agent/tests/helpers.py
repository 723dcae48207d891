"""Running the agent for tests: in-process with aiohttp's test server, or as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy

from rpiaas_agent import Config, create_app

TOKEN = "test-token-0123456789abcdef"

#: the installed aiohttp's (major, minor)
AIOHTTP_VERSION = tuple(int(n) for n in re.findall(r"\d+", aiohttp.__version__)[:2])
#: aiohttp before 3.9 has a laxer HTTP parser: 3.8.4 (on PyPI, and Debian bookworm's
#: python3-aiohttp) takes a raw non-ASCII byte in a request's path, and refuses the
#: QUERY method itself (400) before any application sees the request
LAX_AIOHTTP_PARSER = AIOHTTP_VERSION < (3, 9)


def test_config(tmp_path: Path, **changes: Any) -> Config:
    """Settings for a test: loopback, a fixed name, an empty sysfs tree, no vcgencmd, fast sampling."""
    sysfs = tmp_path / "sysfs-empty"
    sysfs.mkdir(exist_ok=True)
    # no container engine: a request that names an image is answered without one (503)
    base: dict[str, Any] = dict(host="127.0.0.1", port=0, name="pi-test", token=TOKEN,
                                sysfs_root=str(sysfs), vcgencmd="", sample_interval_s=0.1,
                                throttle_interval_s=0.5, disk_path=str(tmp_path), container_engine="none")
    base.update(changes)
    return Config(**base)


test_config.__test__ = False  # type: ignore[attr-defined]  # a builder, not a test


def fake_thermal_tree(root: Path, zones: dict[str, str]) -> Path:
    """A sysfs tree with ``class/thermal/thermal_zoneN/{type,temp}`` from ``{type: temp}``."""
    for i, (kind, temp) in enumerate(zones.items()):
        zone = root / "class" / "thermal" / f"thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(temp + "\n")
    return root


def fake_vcgencmd(directory: Path, output: str = "throttled=0x50005", code: int = 0) -> Path:
    """An executable that answers ``get_throttled`` like a Pi's vcgencmd."""
    path = directory / "vcgencmd"
    path.write_text(f"#!/bin/sh\n[ \"$1\" = get_throttled ] || exit 2\necho '{output}'\nexit {code}\n")
    path.chmod(0o755)
    return path


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


class InProcessAgent:
    """The agent app on aiohttp's TestServer (loopback, free port), driven synchronously.

    Its event loop runs only inside :meth:`request` and :meth:`sleep`, so the
    background samplers make progress exactly then.
    """

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.client: TestClient[web.Request, web.Application] | None = None

    def __enter__(self) -> InProcessAgent:
        async def start() -> TestClient[web.Request, web.Application]:
            client = TestClient(TestServer(self.app, host="127.0.0.1"))
            await client.start_server()
            return client

        self.client = self.loop.run_until_complete(start())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.client is not None
        self.loop.run_until_complete(self.client.close())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def request(self, method: str, path: Any, **kwargs: Any) -> Reply:
        assert self.client is not None
        client = self.client

        async def go() -> Reply:
            async with client.request(method, path, **kwargs) as r:
                return Reply(r.status, r.headers, await r.read())

        return self.loop.run_until_complete(go())

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def sleep(self, seconds: float) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def raw(self, data: bytes, timeout_s: float = 5.0) -> bytes:
        """Send ``data`` on a fresh connection and read until the server closes it."""
        assert self.client is not None
        host, port = self.client.server.host, self.client.server.port
        assert port is not None

        async def go() -> bytes:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(data)
            await writer.drain()
            try:
                return await asyncio.wait_for(reader.read(), timeout_s)
            finally:
                writer.close()

        return self.loop.run_until_complete(go())


def in_process(config: Config) -> InProcessAgent:
    return InProcessAgent(create_app(config))


# ---------------------------------------------------------------- a real process
def agent_command() -> list[str]:
    """The installed ``rpiaas-agent`` script beside this Python (as ``make`` installs it)."""
    script = shutil.which("rpiaas-agent", path=str(Path(sys.executable).parent))
    assert script, "rpiaas-agent is not installed beside sys.executable (run `make install`)"
    return [script]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPIAAS_AGENT_")}
    env.update(extra)
    return env


@dataclass
class AgentProcess:
    """A real ``rpiaas-agent`` process listening on a loopback port."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    base: str = field(init=False)

    def __post_init__(self) -> None:
        self.base = f"http://127.0.0.1:{self.port}"

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def wait_up(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if self.get("/ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"agent not up after {timeout_s}s:\n{self.log.read_text()}")

    def terminate(self, timeout_s: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def start_agent(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                port: int | None = None) -> AgentProcess:
    """Start ``rpiaas-agent --host 127.0.0.1 --port N ARGS`` with its output in a file."""
    port = free_port() if port is None else port
    log = tmp_path / f"agent-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*agent_command(), "--host", "127.0.0.1", "--port", str(port), *args],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=clean_env() if env is None else env, cwd=tmp_path)
    return AgentProcess(proc, port, log)


# ---------------------------------------------------------------- tasks
def task_config(tmp_path: Path, **changes: Any) -> Config:
    """:func:`test_config` with tasks working in ``tmp_path``."""
    return test_config(tmp_path, **{"work_dir": str(tmp_path), **changes})


def call(agent: AgentProcess, method: str, path: str, body: Any = None,
         token: str | None = TOKEN) -> tuple[int, Any]:
    """``METHOD path`` on a real agent with a JSON body and the token; the status and the JSON."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(agent.base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
