"""The ``http`` driver and meter against a plug that answers as Tasmota, Shelly Gen1 and Gen2 do.

The plug (:mod:`tests.power.plug_responder`) is a real HTTP server on
loopback; it checks what the driver sends (the command, the channel, the
credentials in each firmware's own way: Tasmota's parameters, Gen1's basic
and Gen2's SHA-256 digest authentication).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from rpiaas.model import PROFILES, MeterSpec, Node, PowerSpec
from rpiaas.power import PowerError, SwitchState, driver_for, meter_for

from .plug_responder import PASSWORD, Plug, app


def node(flavour: str, url: str, *extra: tuple[str, Any]) -> Node:
    options = (("flavour", flavour), ("url", url), *extra)
    return Node(0, "pi7", "lab.test", PROFILES["rpi4b"], power=PowerSpec("http", options),
                meter=MeterSpec("http", options))


def with_plug(plug: Plug, test: Callable[[str], Awaitable[None]]) -> None:
    async def go() -> None:
        async with TestServer(app(plug), host="127.0.0.1") as server:
            await test(str(server.make_url("")).rstrip("/"))
    asyncio.run(go())


@pytest.mark.parametrize("flavour", ["tasmota", "shelly1", "shelly2"])
@pytest.mark.parametrize("password", [None, PASSWORD], ids=["open", "password"])
def test_switch_and_read_each_flavour(flavour: str, password: str | None) -> None:
    plug = Plug(password=password)

    async def test(url: str) -> None:
        extra = () if password is None else (("password", password),)
        n = node(flavour, url, ("relay", 1), *extra)
        driver, meter = driver_for(n), meter_for(n)
        assert driver is not None and meter is not None
        assert await driver.state() is SwitchState.ON
        assert (await meter.read()).watts == pytest.approx(1.5)
        await driver.off()
        assert plug.relays == [True, False]  # channel 1 only
        assert await driver.state() is SwitchState.OFF
        assert (await meter.read()).watts == 0.0
        await driver.on()
        assert plug.relays == [True, True]

    with_plug(plug, test)
    asked = [(path, query) for path, query in plug.requests if path != "401"]
    if flavour == "tasmota":
        cmnds = [q["cmnd"] for _, q in asked]
        assert cmnds == ["Power2", "Status 8", "Power2 Off", "Power2", "Status 8", "Power2 On"]
        if password:
            assert all(q["user"] == "admin" and q["password"] == PASSWORD for _, q in asked)
    elif flavour == "shelly1":
        assert asked == [("/relay/1", {}), ("/status", {}), ("/relay/1", {"turn": "off"}), ("/relay/1", {}),
                         ("/status", {}), ("/relay/1", {"turn": "on"})]
    else:
        assert [p for p, _ in asked] == ["/rpc/Switch.GetStatus"] * 2 + ["/rpc/Switch.Set"] + \
            ["/rpc/Switch.GetStatus"] * 3 + ["/rpc/Switch.Set", "/rpc/Switch.GetStatus"]
        assert {q["id"] for _, q in asked} == {"1"}
        assert [q["on"] for p, q in asked if p == "/rpc/Switch.Set"] == ["false", "true"]
        assert any(p == "401" for p, _ in plug.requests) == (password is not None)


@pytest.mark.parametrize("flavour", ["tasmota", "shelly1", "shelly2"])
def test_a_wrong_password_is_one_line_without_it(flavour: str) -> None:
    plug = Plug(password=PASSWORD)

    async def test(url: str) -> None:
        driver = driver_for(node(flavour, url, ("password", "not-the-passw0rd")))
        assert driver is not None
        with pytest.raises(PowerError) as e:
            await driver.off()
        message = str(e.value)
        assert message.startswith(f"pi7.lab.test: http off: HTTP 401 from {url}")
        assert "(wrong user or password?)" in message
        assert "not-the-passw0rd" not in message and "\n" not in message

    with_plug(plug, test)
    assert plug.relays == [True, True]


def test_a_plug_that_answers_late_is_a_timeout() -> None:
    plug = Plug(delay_s=2.0)

    async def test(url: str) -> None:
        driver = driver_for(node("shelly1", url, ("timeout_s", 0.3)))
        assert driver is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PowerError) as e:
            await driver.state()
        assert str(e.value) == f"pi7.lab.test: http state: no answer from {url} within 0.3 s"
        assert loop.time() - started < 1.5

    with_plug(plug, test)


def test_no_plug_there() -> None:
    async def test(url: str) -> None:
        pass

    async def go() -> None:
        server = TestServer(app(Plug()), host="127.0.0.1")
        await server.start_server()
        url = str(server.make_url("")).rstrip("/")
        await server.close()  # nothing listens there any more
        driver = driver_for(node("tasmota", url, ("password", "plug-passw0rd")))
        assert driver is not None
        with pytest.raises(PowerError) as e:
            await driver.on()
        message = str(e.value)
        assert message.startswith(f"pi7.lab.test: http on: {url}: ClientConnectorError")
        assert "plug-passw0rd" not in message and "\n" not in message

    asyncio.run(go())


@pytest.mark.parametrize("flavour", ["tasmota", "shelly1", "shelly2"])
def test_an_answer_that_is_not_json(flavour: str) -> None:
    plug = Plug(broken=True)

    async def test(url: str) -> None:
        meter = meter_for(node(flavour, url))
        assert meter is not None
        with pytest.raises(PowerError, match=r"^pi7\.lab\.test: http read: .* did not answer JSON$"):
            await meter.read()

    with_plug(plug, test)


def test_a_meter_reading_missing_from_the_answer() -> None:
    plug = Plug(power_w=[4.2])  # one channel metered, the node is on the second

    async def test(url: str) -> None:
        meter = meter_for(node("shelly1", url, ("relay", 1)))
        assert meter is not None
        with pytest.raises(PowerError, match=r"^pi7\.lab\.test: http read: no power reading \(meters\[1\]\.power\)"):
            await meter.read()

    with_plug(plug, test)
