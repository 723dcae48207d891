"""The master's dashboard: its pages in-process, and in real headless Chromium against live agents."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.tests.helpers import AgentProcess, free_port, start_agent
from rpiaas.master import MasterConfig, create_app, load_master_config
from rpiaas.master.dashboard import CONTENT_SECURITY_POLICY, STATIC_DIR

pytestmark = pytest.mark.integration

INTERVAL_S = 0.5
NAMES = [f"node{i}.c1.rpiaas.test" for i in (1, 2, 3, 4)]
LIVE, DEAD = NAMES[:3], NAMES[3]
SCREEN = (1280, 900)
# JavaScript's type depends on the machine's mime.types; browsers run either
CONTENT_TYPES = {".html": {"text/html"}, ".js": {"text/javascript", "application/javascript"},
                 ".css": {"text/css"}}


def _config_file(tmp_path: Path, ports: dict[str, int]) -> Path:
    # every node's agent on 127.0.0.1: the master never polls anything but loopback
    agents = "".join(f'  {name}: "127.0.0.1:{port}"\n' for name, port in ports.items())
    path = tmp_path / "master.yaml"
    path.write_text(
        "cluster:\n"
        "  clusters:\n"
        f"    - {{domain: c1.rpiaas.test, prefix: 127.0.1, count: {len(NAMES)}, type: rpi4b}}\n"
        f"poll_interval_s: {INTERVAL_S}\n"
        "store: history.db\n"
        f"agents:\n{agents}"
        "listen: 127.0.0.1:0\n")
    return path


# ---------------------------------------------------------------- in-process
def test_pages_and_assets_are_self_contained(tmp_path: Path) -> None:
    """Every page and asset: 200, its content type, the CSP, no CORS, nothing from outside."""
    config = load_master_config(_config_file(tmp_path, {n: free_port() for n in NAMES}))
    assets = sorted(p.name for p in STATIC_DIR.iterdir())
    assert {"index.html", "node.html", "dashboard.js", "node.js", "dashboard.css"} <= set(assets)

    async def go() -> None:
        async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as client:
            paths = {"/": {"text/html"}, f"/nodes/{NAMES[0]}": {"text/html"}}
            paths.update({f"/static/{name}": CONTENT_TYPES[Path(name).suffix] for name in assets})
            for path, content_types in paths.items():
                resp = await client.get(path)
                body = await resp.text()
                assert resp.status == 200, path
                assert resp.content_type in content_types, path
                _check_headers(resp.headers)
                assert not re.search(r"https?://", body, re.I), path
                if resp.content_type == "text/html":
                    await _check_html(client, path, body)
            resp = await client.get("/nodes/nope.c1.rpiaas.test")
            assert resp.status == 404 and resp.content_type == "text/html"
            assert "No such node" in await resp.text()
            _check_headers(resp.headers)
            resp = await client.get("/api/v1/summary", headers={"Origin": "http://elsewhere.test"})
            assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers

    asyncio.run(go())
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY


def _check_headers(headers: Any) -> None:
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert not any(k.lower().startswith("access-control-") for k in headers)


async def _check_html(client: TestClient[Any, Any], path: str, body: str) -> None:
    """No inline script, handler or style (the CSP would block them); every link is served here."""
    for attrs, content in re.findall(r"<script\b([^>]*)>(.*?)</script>", body, re.S):
        assert 'src="/static/' in attrs and not content.strip(), path
    assert not re.search(r"\son[a-z]+=|\sstyle=|<style", body, re.I), path
    for url in re.findall(r'(?:src|href)="([^"]*)"', body):
        assert url.startswith("/") and not url.startswith("//"), (path, url)
        resp = await client.get(url)
        assert resp.status == 200, (path, url)


# ---------------------------------------------------------------- in Chromium
def test_dashboard_in_headless_chromium(tmp_path: Path) -> None:
    """Three live agents and a dead one, the master on loopback, the pages as a browser shows them."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    agents: dict[str, AgentProcess] = {}
    try:
        empty = tmp_path / "sysfs-empty"  # no thermal zones: the agents report no temperature
        empty.mkdir()
        for name in LIVE:
            agents[name] = start_agent(tmp_path, "--name", name, "--sysfs-root", str(empty),
                                       "--vcgencmd", "", "--sample-interval-s", "0.2",
                                       "--disk-path", str(tmp_path))
        for agent in agents.values():
            agent.wait_up()
        ports = {name: agent.port for name, agent in agents.items()}
        ports[DEAD] = free_port()  # nothing listens there
        config = load_master_config(_config_file(tmp_path, ports))
        asyncio.run(_in_chromium(tmp_path, chromium, config))
    finally:
        for agent in agents.values():
            agent.terminate()


async def _in_chromium(tmp_path: Path, chromium: str, config: MasterConfig) -> None:
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    port = server.port
    try:
        async with Chromium(chromium, tmp_path) as browser:
            base = f"http://127.0.0.1:{port}"
            await _overview(browser, base, tmp_path)

            # the master stops answering: a banner, the last figures stay; it comes back: gone
            await server.close()
            banner = await browser.wait_for(
                "document.body.dataset.state === 'error'"
                " && !document.getElementById('error').hidden"
                " && document.getElementById('error').textContent")
            assert "not answering" in banner
            assert await browser.evaluate("document.querySelectorAll('tr.node').length") == 4
            refreshes = int(await browser.evaluate("document.body.dataset.refreshes"))
            server = TestServer(create_app(config), host="127.0.0.1", port=port)
            await server.start_server()
            await browser.wait_for(
                f"document.body.dataset.state === 'ok' && document.body.dataset.refreshes > {refreshes}"
                " && document.getElementById('error').hidden")

            await _node_page(browser, base, tmp_path)
            await _dead_node_page(browser, base)
            assert not browser.exceptions, browser.exceptions
            await _csp_is_enforced(browser)
    finally:
        await server.close()


def test_the_node_list_pages_in_headless_chromium(tmp_path: Path) -> None:
    """250 nodes: the dashboard shows 100 a page, and its buttons turn the pages."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    path = tmp_path / "master.yaml"
    path.write_text("cluster:\n  clusters:\n"
                    "    - {domain: c1.rpiaas.test, prefix: 127.0.1, count: 250, type: rpi4b}\n"
                    f"poll_interval_s: 60\nstore: history.db\nagent_port: {free_port()}\n"
                    "listen: 127.0.0.1:0\n")
    config = load_master_config(path)

    async def go() -> None:
        server = TestServer(create_app(config), host="127.0.0.1")
        await server.start_server()
        try:
            async with Chromium(chromium, tmp_path) as browser:
                await browser.navigate(f"http://127.0.0.1:{server.port}/")
                shown = ("Array.from(document.querySelectorAll('tr.node'), tr => tr.dataset.name)")
                for first, last, prev, nxt in ((1, 100, True, False), (101, 200, False, False),
                                               (201, 250, False, True)):
                    names = json.dumps([f"node{i}.c1.rpiaas.test" for i in range(first, last + 1)],
                                       separators=(",", ":"))  # as JSON.stringify writes it
                    await browser.wait_for(f"document.body.dataset.state === 'ok' && "
                                           f"JSON.stringify({shown}) === '{names}'")
                    page = await browser.evaluate("""({
                        text: document.getElementById('nodes-page').textContent,
                        hidden: document.getElementById('nodes-pages').hidden,
                        prev: document.getElementById('nodes-prev').disabled,
                        next: document.getElementById('nodes-next').disabled})""")
                    assert page == {"text": f"nodes {first}–{last} of 250", "hidden": False,
                                    "prev": prev, "next": nxt}
                    if not nxt:
                        await browser.evaluate("document.getElementById('nodes-next').click()")
                await browser.evaluate("document.getElementById('nodes-prev').click()")
                await browser.wait_for(f"JSON.stringify({shown}.slice(0, 1)) === "
                                       "'[\"node101.c1.rpiaas.test\"]'")
                assert not browser.exceptions, browser.exceptions
                assert await browser.evaluate("cspViolations") == []
        finally:
            await server.close()

    asyncio.run(go())


async def _overview(browser: Chromium, base: str, tmp_path: Path) -> None:
    await browser.navigate(base + "/")
    await browser.wait_for(
        "document.body.dataset.state === 'ok'"
        " && document.querySelectorAll('tr.node[data-online=\"true\"]').length === 3"
        " && document.querySelectorAll('tr.node[data-online=\"false\"]').length === 1")
    rows = await browser.evaluate("""Array.from(document.querySelectorAll('tr.node'), tr => ({
        name: tr.dataset.name, online: tr.dataset.online, cpu: tr.dataset.cpu,
        memUsed: tr.dataset.memUsedMb, memTotal: tr.dataset.memTotalMb,
        href: tr.querySelector('td.name a').getAttribute('href'),
        badge: tr.querySelector('.badge').textContent, since: tr.querySelector('.since').textContent,
        cpuText: tr.querySelector('td.cpu .value').textContent,
        mem: tr.querySelector('td.mem').textContent, temp: tr.querySelector('td.temp').textContent,
        seen: tr.querySelector('td.seen').textContent}))""")
    api = {n["name"]: n for n in (await browser.get_json(base + "/api/v1/nodes"))["nodes"]}
    assert [r["name"] for r in rows] == NAMES == list(api)
    for row in rows:
        assert row["href"] == f"/nodes/{row['name']}"
        if row["name"] == DEAD:
            assert row["online"] == "false" and row["badge"] == "offline"
            assert row["cpu"] == row["memUsed"] == "" and row["cpuText"] == row["mem"] == "—"
            assert row["seen"] == "never"
        else:
            sample = api[row["name"]]["sample"]
            assert row["online"] == "true" and row["badge"] == "online"
            assert 0 <= float(row["cpu"]) <= 100 and row["cpuText"].endswith(" %")
            assert int(row["memTotal"]) == round(sample["mem_total_mb"]) > 0
            assert 0 < int(row["memUsed"]) <= int(row["memTotal"])
            assert row["mem"] == f"{row['memUsed']} / {row['memTotal']} MB"
            assert re.fullmatch(r"\d+ s ago", row["seen"]), row["seen"]
        assert re.fullmatch(r"for \d+ s", row["since"]), row["since"]
        assert row["temp"] == "—"  # no sensor: a dash, never 0
    summary = await browser.evaluate("""Object.fromEntries(Array.from(
        document.querySelectorAll('#summary dd'), dd => [dd.id, dd.textContent]))""")
    assert summary["summary-nodes"] == "4" and summary["summary-online"] == "3"
    assert summary["summary-offline"] == "1" and summary["summary-unknown"] == "0"
    assert summary["summary-interval"] == f"{INTERVAL_S} s"
    assert re.fullmatch(r"\d+\.\d %", summary["summary-cpu"])
    assert summary["summary-store"] == "ok"
    assert await browser.evaluate("cspViolations") == []
    _check_png(await browser.screenshot(tmp_path / "overview.png"), *SCREEN)


async def _node_page(browser: Chromium, base: str, tmp_path: Path) -> None:
    name = LIVE[0]
    await browser.navigate(f"{base}/nodes/{name}#window=900")
    # a line needs two 2.25 s buckets (15 min / 400 points) in a row
    cpu_line = 'svg.plot[data-metric="cpu"] path.line'
    await browser.wait_for(f"(document.querySelector('{cpu_line}')?.getAttribute('d') || '').includes('L')",
                           timeout_s=20)
    page = await browser.evaluate("""(() => {
        const plot = m => document.querySelector(`svg.plot[data-metric="${m}"]`);
        const texts = (m, sel) => Array.from(plot(m).querySelectorAll(sel), t => t.textContent);
        return {
            title: document.title, state: document.getElementById('node-state').dataset.online,
            mem: document.getElementById('cur-mem').textContent,
            temp: document.getElementById('cur-temp').textContent,
            active: document.querySelector('#windows button.active').dataset.windowS,
            cpuUnit: texts('cpu', 'text.unit'), cpuY: texts('cpu', 'text.tick.y'),
            cpuX: texts('cpu', 'text.tick.x'),
            memLines: Array.from(plot('mem').querySelectorAll('path'), p => p.getAttribute('class')),
            memEmpty: plot('mem').dataset.empty,
            tempEmpty: plot('temp').dataset.empty, tempText: texts('temp', 'text.empty'),
            tempLines: plot('temp').querySelectorAll('path').length,
        };
    })()""")
    assert page["title"].startswith(name) and page["state"] == "true"
    assert re.fullmatch(r"\d+ / \d+ MB", page["mem"]) and page["temp"] == "—"
    assert page["active"] == "900"
    assert page["cpuUnit"] == ["%"] and page["cpuY"][0] == "0" and page["cpuY"][-1] == "100"
    assert len(page["cpuX"]) >= 3 and all(re.fullmatch(r"\d\d:\d\d", t) for t in page["cpuX"])
    assert page["memLines"] == ["line", "total"] and page["memEmpty"] == "false"
    assert page["tempEmpty"] == "true" and page["tempText"] == ["no temperature sensor"]
    assert page["tempLines"] == 0
    # gaps are breaks: a run of points ends where samples are further apart than the gap
    runs = await browser.evaluate(
        "rpiaasPlot.segments([[0, 1], [1, 2], [2, null], [3, 3], [4, 4], [20, 5]], 2.5)")
    assert runs == [[[0, 1], [1, 2]], [[3, 3], [4, 4]], [[20, 5]]]
    assert await browser.evaluate("cspViolations") == []
    _check_png(await browser.screenshot(tmp_path / "node.png"), *SCREEN)

    # another window: the buttons set it, the plots follow
    await browser.evaluate("document.querySelector('#windows [data-window-s=\"21600\"]').click()")
    await browser.wait_for("document.body.dataset.windowS === '21600'"
                           " && document.querySelector('#windows button.active').dataset.windowS === '21600'")


async def _csp_is_enforced(browser: Chromium) -> None:
    """The page itself broke no rule of its CSP, and the browser does enforce it."""
    assert await browser.evaluate("cspViolations") == []
    await browser.evaluate("""(() => {
        const s = document.createElement('script');
        s.textContent = 'window.injected = true';
        document.body.append(s);
    })()""")
    violations = await browser.wait_for("cspViolations.length && cspViolations")
    assert await browser.evaluate("window.injected === undefined")
    assert [v.split()[0] for v in violations] == ["script-src-elem"], violations


async def _dead_node_page(browser: Chromium, base: str) -> None:
    await browser.navigate(f"{base}/nodes/{DEAD}")
    await browser.wait_for(f"document.getElementById('node-name').textContent === '{DEAD}'"
                           " && document.body.dataset.state === 'ok'")
    page = await browser.evaluate("""({
        state: document.getElementById('node-state').dataset.online,
        reason: document.getElementById('reason').hidden,
        cpuEmpty: document.querySelector('svg.plot[data-metric="cpu"]').dataset.empty,
        cpuText: document.querySelector('svg.plot[data-metric="cpu"] text.empty').textContent,
        lines: document.querySelectorAll('svg.plot path').length})""")
    assert page == {"state": "false", "reason": False, "cpuEmpty": "true",
                    "cpuText": "no samples in this window", "lines": 0}


# ---------------------------------------------------------------- helpers
def _check_png(data: bytes, width: int, height: int) -> None:
    """A valid PNG of ``width`` x ``height`` that is not one flat colour."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    w, h, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (w, h) == (width, height) and depth == 8
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    assert len(raw) == h * (1 + w * channels)
    # One flat colour filters down to a handful of byte values whatever the row filters;
    # text, badges and plots give many.
    assert len(set(raw)) > 32


class Chromium:
    """Headless Chromium driven over the DevTools protocol (a websocket on loopback)."""

    def __init__(self, executable: str, tmp_path: Path) -> None:
        self.executable = executable
        self.profile = tmp_path / "chromium-profile"
        self.log_path = tmp_path / "chromium.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self.next_id = 0
        self.exceptions: list[str] = []

    async def __aenter__(self) -> Chromium:
        with self.log_path.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                self.executable, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--no-first-run", "--no-default-browser-check",
                f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
                f"--window-size={SCREEN[0]},{SCREEN[1]}", "about:blank",
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group: the renderers go with it
        try:
            await self._connect()
        except BaseException:
            await self._kill()
            raise
        return self

    async def _connect(self) -> None:
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and len(active.read_text().splitlines()) >= 2):
            assert self.proc is not None and self.proc.returncode is None, self.log_path.read_text()
            assert time.monotonic() < deadline, f"no DevTools port:\n{self.log_path.read_text()}"
            await asyncio.sleep(0.05)
        port = int(active.read_text().splitlines()[0])
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        for domain in ("Page", "Runtime"):
            await self.send(f"{domain}.enable")
        # scripts added over DevTools are not subject to the page's CSP: it sees every violation
        await self.send("Page.addScriptToEvaluateOnNewDocument", source=(
            "window.cspViolations = [];"
            "document.addEventListener('securitypolicyviolation',"
            " e => cspViolations.push(e.effectiveDirective + ' ' + e.blockedURI));"))
        await self.send("Emulation.setDeviceMetricsOverride", width=SCREEN[0], height=SCREEN[1],
                        deviceScaleFactor=1, mobile=False)

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            if self.ws is not None:
                await asyncio.wait_for(self.send("Browser.close"), 5)
        if self.session is not None:
            await self.session.close()
        await self._kill()

    async def _kill(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call ``method``; its result (events that arrive meanwhile are recorded)."""
        assert self.ws is not None
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = json.loads(await self.ws.receive_str(timeout=30))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            if message.get("method") == "Runtime.exceptionThrown":
                self.exceptions.append(json.dumps(message["params"]["exceptionDetails"]))

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def get_json(self, url: str) -> Any:
        """``url`` fetched from the page, as its scripts see it."""
        return await self.evaluate(f"fetch({json.dumps(url)}).then(r => r.json())")

    async def wait_for(self, expression: str, timeout_s: float = 15.0) -> Any:
        """Poll until ``expression`` is truthy in the page; its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(AssertionError):  # the page may be between documents
                value = await self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not true after {timeout_s} s: {expression}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode((await self.send("Page.captureScreenshot", format="png"))["data"])
        path.write_bytes(data)
        return data
