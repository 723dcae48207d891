"""The master's API contract: the bearer token on mutating calls, request bodies, limits, headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.tests.helpers import free_port
from rpiaas.cli import main
from rpiaas.master import create_app, load_master_config
from rpiaas.master.app import apply_retention
from rpiaas.master.config import Retention
from rpiaas.master.keys import STORE
from rpiaas.store import Sample

TOKEN = "master-token-0123456789"
NAMES = [f"node{i}.c1.rpiaas.test" for i in (1, 2)]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _config(tmp_path: Path, extra: str = "", token: bool = True) -> Path:
    agents = "".join(f'  {name}: "127.0.0.1:{free_port()}"\n' for name in NAMES)
    if token:
        (tmp_path / "token").write_text(TOKEN + "\n")
        extra += "token_file: token\n"
    path = tmp_path / "master.yaml"
    path.write_text("cluster:\n  clusters:\n"
                    "    - {domain: c1.rpiaas.test, prefix: 127.0.1, count: 2, type: rpi4b}\n"
                    f"poll_interval_s: 60\npoll_timeout_s: 0.5\nstore: history.db\nagents:\n{agents}"
                    + extra)
    return path


Client = TestClient[Any, Any]


def _with_master(path: Path, body: Callable[[Client, Any], Awaitable[None]]) -> None:
    app = create_app(load_master_config(path))

    async def go() -> None:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await body(client, app)

    asyncio.run(go())


def _samples(node: str, times: range) -> list[Sample]:
    return [Sample(node=node, time_s=float(t), cpu_util=0.5, mem_used_mb=100.0, mem_total_mb=1000.0,
                   load1=0.1, disk_used_ratio=0.2) for t in times]


def test_mutating_calls_need_the_token(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        url = "/api/v1/history/purge"
        for headers, why in (({}, "missing"), ({"Authorization": "Bearer nope"}, "wrong"),
                             ({"Authorization": f"Basic {TOKEN}"}, "missing"),
                             ({"Authorization": "Bearer "}, "missing")):
            resp = await client.post(url, json={"before": 0}, headers=headers)
            assert resp.status == 401, headers
            assert why in (await resp.json())["error"]
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        resp = await client.post(url, json={"before": 0}, headers=AUTH)
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"samples": 0, "states": 0, "events": 0, "power": 0}
        # reading needs no token; unknown paths and methods answer 404 and 405, not 401
        assert (await client.get("/api/v1/summary")).status == 200
        assert (await client.post("/api/v1/nowhere")).status == 404
        assert (await client.delete("/api/v1/summary")).status == 405

    _with_master(_config(tmp_path), body)


def test_without_a_token_mutating_calls_are_off(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        resp = await client.post("/api/v1/history/purge", json={"before": 0},
                                 headers={"Authorization": "Bearer anything"})
        assert resp.status == 401 and "no token configured" in (await resp.json())["error"]

    _with_master(_config(tmp_path, token=False), body)


def test_the_token_from_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPIAAS_MASTER_TOKEN", "from-the-env")
    assert load_master_config(_config(tmp_path)).token == "from-the-env"
    monkeypatch.setenv("RPIAAS_MASTER_TOKEN", "has a space")
    with pytest.raises(ValueError, match="RPIAAS_MASTER_TOKEN: expected a token"):
        load_master_config(_config(tmp_path))


def test_bad_bodies_are_400_naming_the_field(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        url = "/api/v1/history/compact"
        for payload, field in (({"before": 10}, "resolution: missing"),
                               ({"before": -1, "resolution": 60}, "before: expected"),
                               ({"before": "x", "resolution": 60}, "before: expected"),
                               ({"before": 10, "resolution": 0}, "resolution: expected"),
                               ({"before": 10, "resolution": 60, "extra": 1}, "extra: unknown field"),
                               ([1, 2], "body: expected a JSON object")):
            resp = await client.post(url, json=payload, headers=AUTH)
            assert resp.status == 400, payload
            assert (await resp.json())["error"].startswith(field), payload
        resp = await client.post(url, data=b"{not json", headers={**AUTH,
                                                                   "Content-Type": "application/json"})
        assert resp.status == 400 and "not valid JSON" in (await resp.json())["error"]
        resp = await client.post(url, data=b"before=1", headers={
            **AUTH, "Content-Type": "application/x-www-form-urlencoded"})
        assert resp.status == 415 and resp.content_type == "application/json"
        resp = await client.post(f"/api/v1/nodes/{NAMES[0]}/poll", json={"x": 1}, headers=AUTH)
        assert resp.status == 400 and "x: unknown field" in (await resp.json())["error"]
        resp = await client.post("/api/v1/nodes/nope/poll", headers=AUTH)
        assert resp.status == 404

    _with_master(_config(tmp_path), body)


def test_oversized_bodies_are_refused(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        await asyncio.to_thread(app[STORE].add_samples, _samples(NAMES[0], range(0, 100, 10)))
        big = b'{"before": 1000, "pad": "' + b"x" * 2000 + b'"}'
        resp = await client.post("/api/v1/history/purge", data=big,
                                 headers={**AUTH, "Content-Type": "application/json"})
        assert resp.status == 413 and "over the limit of 1024" in (await resp.json())["error"]

        async def chunks() -> Any:  # no Content-Length: aiohttp's client_max_size stops it
            for _ in range(4):
                yield b" " * 600

        resp = await client.post("/api/v1/history/purge", data=chunks(),
                                 headers={**AUTH, "Content-Type": "application/json"})
        assert resp.status == 413
        # the refused purge did not happen
        assert len(await asyncio.to_thread(app[STORE].history, NAMES[0])) == 10

    _with_master(_config(tmp_path, "max_body_bytes: 1024\n"), body)


def test_no_cors_headers_anywhere(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        origin = {"Origin": "http://evil.example"}
        for method, url in (("GET", "/api/v1/nodes"), ("GET", "/api/v1/summary"),
                            ("OPTIONS", "/api/v1/nodes"), ("POST", "/api/v1/history/purge"),
                            ("GET", "/api/v1/nope")):
            resp = await client.request(method, url, headers={
                **origin, "Access-Control-Request-Method": "POST"})
            assert not any(h.lower().startswith("access-control-") for h in resp.headers), (method, url)

    _with_master(_config(tmp_path), body)


def test_retention_keeps_raw_samples_then_means_then_nothing(tmp_path: Path) -> None:
    async def body(client: Client, app: Any) -> None:
        store = app[STORE]
        now = float(int(time.time()) // 100 * 100)  # bucket-aligned: whole buckets compact
        old = range(int(now) - 5000, int(now) - 100, 10)
        await asyncio.to_thread(store.add_samples, _samples(NAMES[0], old))
        await asyncio.to_thread(store.flush)
        done = await asyncio.to_thread(apply_retention, store, Retention(1000, 100, 3000, 60), now)
        assert done["purged_samples"] == 200 and done["compacted_samples"] == 200
        kept = await asyncio.to_thread(store.history, NAMES[0])
        assert all(s.time_s >= now - 3000 for s in kept)
        assert sum(s.count for s in kept if s.time_s < now - 1000) == 200
        assert all(s.count == 1 for s in kept if s.time_s >= now - 1000)

    _with_master(_config(tmp_path), body)


@pytest.mark.parametrize(("extra", "where"), [
    ("retention: {raw_s: 10, resolution_s: 60}\n", "retention.resolution_s: must not be longer"),
    ("retention: {raw_s: 100, keep_s: 10}\n", "retention.keep_s: must not be shorter"),
    ("retention: {raw_s: -1}\n", "retention.raw_s: expected a positive number"),
    ("retention: {raws: 1}\n", "retention.raws: unknown key"),
    ("token_file: missing-file\n", "token_file: cannot read"),
    ("max_body_bytes: 0\n", "max_body_bytes: expected"),
])
def test_bad_master_settings_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    extra: str, where: str) -> None:
    path = _config(tmp_path, extra, token=False)
    assert main(["master", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}:") and where in err, err
