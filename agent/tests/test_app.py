"""The agent in-process (aiohttp's test server on loopback): endpoints, errors, the token."""

from __future__ import annotations

import logging
import socket
import string
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from rpiaas_agent import __version__, create_app
from rpiaas_agent.prometheus import CONTENT_TYPE

from . import promtext
from .helpers import (
    LAX_AIOHTTP_PARSER,
    TOKEN,
    InProcessAgent,
    fake_thermal_tree,
    fake_vcgencmd,
    in_process,
    test_config,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def check_info(info: dict[str, Any]) -> None:
    """The /info document has every field, with the documented types and units."""
    assert set(info) == {"agent", "node", "time_s", "uptime_s", "cpu", "load", "memory", "disk",
                         "throttling", "speed", "tasks", "emulated", "power"}
    assert info["power"] is None  # no power_source configured
    assert isinstance(info["emulated"], bool)
    assert info["agent"]["name"] == "rpiaas-agent" and info["agent"]["version"] == __version__
    assert isinstance(info["agent"]["pid"], int)
    assert info["node"]["hostname"] == socket.gethostname() and isinstance(info["node"]["name"], str)
    assert isinstance(info["time_s"], float)
    up = info["uptime_s"]
    assert isinstance(up["system"], float) and isinstance(up["process"], float)
    assert 0 <= up["process"] <= up["system"]
    cpu = info["cpu"]
    assert isinstance(cpu["cores"], int) and cpu["cores"] >= 1
    if cpu["usage_ratio"] is not None:
        assert len(cpu["usage_ratio"]) == cpu["cores"]
        assert all(isinstance(u, float) and 0 <= u <= 1 for u in cpu["usage_ratio"])
        assert cpu["usage_ratio_mean"] == pytest.approx(sum(cpu["usage_ratio"]) / cpu["cores"], abs=1e-3)
    else:
        assert cpu["usage_ratio_mean"] is None
    assert cpu["temperature_c"] is None or isinstance(cpu["temperature_c"], float)
    assert isinstance(cpu["busy_s"], float) and cpu["busy_s"] >= 0  # counters
    assert isinstance(cpu["agent_busy_s"], float) and cpu["agent_busy_s"] > 0
    if info["emulated"]:  # the host's load is no emulated node's own
        assert info["load"] is None
    else:
        assert set(info["load"]) == {"1m", "5m", "15m"}
    mem = info["memory"]
    assert {k: type(v) for k, v in mem.items()} == {
        "total_bytes": int, "available_bytes": int, "used_bytes": int, "used_ratio": float}
    assert mem["used_bytes"] + mem["available_bytes"] == mem["total_bytes"]
    disk = info["disk"]
    assert set(disk) == {"path", "total_bytes", "used_bytes", "free_bytes", "used_ratio"}
    assert all(isinstance(disk[k], int) for k in ("total_bytes", "used_bytes", "free_bytes"))
    t = info["throttling"]
    assert t is None or (isinstance(t["raw"], str) and all(isinstance(v, bool) for k, v in t.items()
                                                            if k != "raw"))


def check_metrics(text: str, info: dict[str, Any]) -> dict[str, promtext.Family]:
    """/metrics parses, every family is a documented gauge, and agrees with /info."""
    families = promtext.parse(text)
    for fam in families.values():
        assert fam.name.startswith("rpiaas_") and fam.help, fam
        assert fam.type == ("counter" if fam.name.endswith("_seconds_total") else "gauge"), fam
    cores = info["cpu"]["cores"]
    assert families["rpiaas_cpu_cores"].value() == cores
    assert families["rpiaas_agent_info"].value(version=__version__, node=info["node"]["name"],
                                               hostname=info["node"]["hostname"]) == 1
    if info["cpu"]["usage_ratio"] is not None:
        usage = families["rpiaas_cpu_usage_ratio"]
        assert [lab for lab, _ in usage.samples] == [{"core": str(i)} for i in range(cores)]
        assert all(0 <= v <= 1 for _, v in usage.samples)
    assert families["rpiaas_memory_total_bytes"].value() == info["memory"]["total_bytes"]
    assert families["rpiaas_emulated"].value() == int(info["emulated"])
    # (read a moment after /info: the machine's memory use may have moved a little since)
    assert abs(families["rpiaas_memory_used_bytes"].value() - info["memory"]["used_bytes"]) \
        <= 0.02 * info["memory"]["total_bytes"]
    assert info["emulated"] or info["memory"]["used_bytes"] > 0
    assert families["rpiaas_disk_total_bytes"].value(path=info["disk"]["path"]) \
        == info["disk"]["total_bytes"]
    assert {"rpiaas_node_uptime_seconds", "rpiaas_agent_uptime_seconds",
            "rpiaas_memory_available_bytes", "rpiaas_disk_used_bytes",
            "rpiaas_disk_free_bytes"} <= set(families)
    loads = {"rpiaas_load1", "rpiaas_load5", "rpiaas_load15"}
    assert loads.isdisjoint(families) if info["load"] is None else loads <= set(families)
    return families


def wait_for_readings(agent: InProcessAgent, timeout_s: float = 20.0) -> dict[str, Any]:
    """/info once the CPU sampler and the throttle monitor have both reported."""
    deadline = time.monotonic() + timeout_s
    while True:
        info: dict[str, Any] = agent.get("/info").json()
        ready = info["cpu"]["usage_ratio"] is not None and info["throttling"] is not None
        if ready or time.monotonic() > deadline:
            return info
        agent.sleep(0.05)


# ---------------------------------------------------------------- the endpoints
def test_ping(tmp_path: Path) -> None:
    with in_process(test_config(tmp_path)) as agent:
        r = agent.get("/ping")
        assert r.status == 200 and r.json() == {"status": "ok"}
        assert agent.request("HEAD", "/ping").status == 200


def test_info_and_metrics(tmp_path: Path) -> None:
    with in_process(test_config(tmp_path)) as agent:
        check_info(agent.get("/info").json())
        agent.sleep(0.35)  # a few sampling intervals
        r = agent.get("/info")
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
        info = r.json()
        check_info(info)
        assert info["node"]["name"] == "pi-test" and info["disk"]["path"] == str(tmp_path)
        assert info["cpu"]["usage_ratio"] is not None
        # an empty sysfs tree and no vcgencmd: null, not 0
        assert info["cpu"]["temperature_c"] is None and info["throttling"] is None
        m = agent.get("/metrics")
        assert m.status == 200 and m.headers["Content-Type"] == CONTENT_TYPE
        families = check_metrics(m.text, info)
        assert "rpiaas_cpu_temperature_celsius" not in families
        assert "rpiaas_throttle_flag" not in families


def test_temperature_and_throttling_where_the_node_has_them(tmp_path: Path) -> None:
    sysfs = fake_thermal_tree(tmp_path / "sys", {"cpu-thermal": "48300"})
    config = test_config(tmp_path, sysfs_root=str(sysfs), vcgencmd=str(fake_vcgencmd(tmp_path)))
    with in_process(config) as agent:
        info = wait_for_readings(agent)  # the throttle monitor's first reading
        check_info(info)
        assert info["cpu"]["temperature_c"] == 48.3
        assert info["throttling"]["raw"] == "0x50005"
        assert info["throttling"]["under_voltage"] is True
        assert info["throttling"]["soft_temperature_limit"] is False
        families = check_metrics(agent.get("/metrics").text, info)
        assert families["rpiaas_cpu_temperature_celsius"].value() == 48.3
        flags = families["rpiaas_throttle_flag"]
        assert flags.value(flag="under_voltage") == 1 and flags.value(flag="throttled_occurred") == 1
        assert flags.value(flag="arm_frequency_capped") == 0
        assert len(flags.samples) == 8


def test_default_config_on_this_machine(tmp_path: Path) -> None:
    # the real /sys and vcgencmd where present: whatever they give, the types hold
    with in_process(test_config(tmp_path, sysfs_root="/sys", vcgencmd="vcgencmd")) as agent:
        agent.sleep(0.3)
        info = agent.get("/info").json()
        check_info(info)
        check_metrics(agent.get("/metrics").text, info)


def test_metrics_escape_label_values(tmp_path: Path) -> None:
    with in_process(test_config(tmp_path, name='pi "1"\\ok')) as agent:
        families = promtext.parse(agent.get("/metrics").text)
        [(labels, _)] = families["rpiaas_agent_info"].samples
        assert labels["node"] == 'pi "1"\\ok'


# ---------------------------------------------------------------- the token
def test_config_needs_the_token(tmp_path: Path) -> None:
    with in_process(test_config(tmp_path)) as agent:
        ok = agent.get("/config", headers=AUTH)
        assert ok.status == 200
        body = ok.json()
        assert body["token_set"] is True and "token" not in body and TOKEN not in ok.text
        assert body["name"] == "pi-test"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": "Bearer"}, {"Authorization": f"Bearer {TOKEN}x"},
                        {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": ""}):
            r = agent.get("/config", headers=headers)
            assert r.status == 401, headers
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert set(r.json()) == {"error", "status"} and r.json()["status"] == 401
        assert agent.get("/config", headers={"Authorization": f"bearer   {TOKEN}"}).status == 200


def test_without_a_token_control_endpoints_are_off(tmp_path: Path) -> None:
    with in_process(test_config(tmp_path, token=None)) as agent:
        r = agent.get("/config", headers={"Authorization": "Bearer anything"})
        assert r.status == 401 and "no token" in r.json()["error"]
        assert agent.get("/info").status == 200  # reports stay open


# ---------------------------------------------------------------- errors
def test_errors_are_json(tmp_path: Path) -> None:
    with in_process(test_config(tmp_path, max_body_bytes=1000)) as agent:
        r = agent.get("/nope")
        assert (r.status, r.json()) == (404, {"error": "Not Found", "status": 404})
        r = agent.request("POST", "/info")
        assert r.status == 405 and r.json()["status"] == 405 and "GET" in r.headers["Allow"]
        r = agent.request("POST", "/ping", data=b"x" * 5000)
        assert r.status == 413 and "limit of 1000" in r.json()["error"]
        assert agent.request("POST", "/config", data=b"x" * 5000, headers=AUTH).status == 413


def test_a_body_without_a_length_is_limited_too(tmp_path: Path) -> None:
    app = create_app(test_config(tmp_path, max_body_bytes=1000))

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"read": len(await request.read())})

    app.router.add_post("/echo", echo)

    async def chunks(n: int) -> Any:
        for _ in range(n):
            yield b"y" * 100

    with InProcessAgent(app) as agent:
        assert agent.request("POST", "/echo", data=chunks(5)).json() == {"read": 500}
        r = agent.request("POST", "/echo", data=chunks(50))
        assert r.status == 413 and r.json()["status"] == 413


def test_a_failing_handler_gives_a_500_without_a_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(test_config(tmp_path))

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/boom", boom)
    with InProcessAgent(app) as agent, caplog.at_level(logging.ERROR):
        r = agent.get("/boom")
        assert r.status == 500 and r.json() == {"error": "internal error (see the agent's log)",
                                                "status": 500}
        assert "secret internals" not in r.text and "Traceback" not in r.text
    assert "secret internals" in caplog.text  # but the operator sees it


def test_no_cors_and_no_software_versions(tmp_path: Path) -> None:
    with in_process(test_config(tmp_path)) as agent:
        for path in ("/ping", "/info", "/metrics", "/nope"):
            r = agent.get(path, headers={"Origin": "http://evil.example"})
            assert not [h for h in r.headers if h.lower().startswith("access-control-")]
            assert r.headers["Server"] == "rpiaas-agent" and r.headers["Cache-Control"] == "no-store"
        r = agent.request("OPTIONS", "/info", headers={"Origin": "http://evil.example",
                                                       "Access-Control-Request-Method": "GET"})
        assert r.status == 405 and "Access-Control-Allow-Origin" not in r.headers


def test_malformed_requests_get_400_without_a_traceback(tmp_path: Path) -> None:
    with in_process(test_config(tmp_path)) as agent:
        for raw in (b"GARBAGE\r\n\r\n", b"GET /info HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                    b"GET /\xff HTTP/1.1\r\nConnection: close\r\n\r\n",
                    b"GET /info HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
                    b"\x00\x01\x02\r\n\r\n"):
            reply = agent.raw(raw)
            assert b"Traceback" not in reply and b"File \"" not in reply
            if LAX_AIOHTTP_PARSER and reply.startswith(b"HTTP/1.1 404"):
                # aiohttp 3.8.4 parses it: the agent answers it like any unknown path
                assert raw.startswith(b"GET /\xff"), raw
                assert reply.endswith(b'{"error": "Not Found", "status": 404}'), reply[-200:]
                continue
            assert reply.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), reply[:200]


# ---------------------------------------------------------------- no input gives a 5xx
_STANDARD = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
_METHODS = st.sampled_from(_STANDARD) \
    | st.text(string.ascii_uppercase, min_size=1, max_size=10)
_SEGMENT = st.text(st.characters(codec="utf-8"), max_size=12)
_PATH = st.tuples(st.sampled_from(["", "/ping", "/info", "/metrics", "/config"]),
                  st.lists(_SEGMENT, max_size=4)).map(
    lambda t: t[0] + "".join("/" + quote(s, safe="") for s in t[1]) or "/").map(
    lambda p: "/x" + p if p.startswith("//") else p)  # "//host/..." would name another server
_QUERY = st.text(st.characters(codec="utf-8"), max_size=40).map(
    lambda q: quote(q, safe="=&;%+"))
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


def test_no_request_gives_a_5xx(tmp_path: Path) -> None:
    with in_process(test_config(tmp_path, max_body_bytes=2048)) as agent:

        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
        @given(method=_METHODS, path=_PATH, query=_QUERY, body=st.binary(max_size=4096),
               auth=st.none() | _HEADER_TEXT.map(lambda t: "Bearer " + t) | _HEADER_TEXT,
               content_type=st.none() | _HEADER_TEXT)
        def check(method: str, path: str, query: str, body: bytes, auth: str | None,
                  content_type: str | None) -> None:
            headers = {}
            if auth is not None:
                headers["Authorization"] = auth
            if content_type is not None:
                headers["Content-Type"] = content_type
            url = URL(path + ("?" + query if query else ""), encoded=True)
            r = agent.request(method, url, data=body or None, headers=headers)
            assert r.status < 500, (r.status, r.body[:300])
            if r.status >= 400 and method != "HEAD":
                if r.headers["Content-Type"].startswith("application/json"):
                    assert set(r.json()) == {"error", "status"} and r.json()["status"] == r.status
                else:  # only aiohttp's parser answers in plain text, to methods it does not know
                    assert r.status == 400 and method not in _STANDARD, (method, r.body[:300])

        check()


def test_no_raw_request_line_gives_a_5xx(tmp_path: Path) -> None:
    with in_process(test_config(tmp_path)) as agent:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(method=st.binary(min_size=1, max_size=8).filter(lambda b: not any(c in b for c in b" \r\n")),
               target=st.binary(min_size=1, max_size=60).filter(lambda b: not any(c in b for c in b" \r\n")),
               body=st.binary(max_size=200))
        def check(method: bytes, target: bytes, body: bytes) -> None:
            request = (method + b" " + target + b" HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n"
                       + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            reply = agent.raw(request)
            status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.") else None
            assert status is not None and status < 500, reply[:300]
            assert b"Traceback" not in reply

        check()
