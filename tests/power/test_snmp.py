"""The ``snmp`` driver and meter against Net-SNMP's snmpd, in a private network namespace.

snmpd answers the POWER-ETHERNET-MIB for four ports through the
``pass_persist`` program :mod:`tests.power.poe_agent`, from a state file,
logging every SET (see :mod:`tests.power.snmpbed`).  Runs as root where
network namespaces are allowed and snmpd is installed (CI); skips elsewhere
with the reason, and fails instead under CI=true.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpiaas.model import PROFILES, MeterSpec, Node, PowerSpec
from rpiaas.power import PowerError, SwitchState, driver_for, meter_for
from rpiaas.power.drivers.snmp import SnmpDriver
from rpiaas.power.meters.snmp import SnmpMeter

from .poe_agent import POWER_OID
from .snmpbed import (
    AGENT,
    COMMUNITY,
    NO_ROUTE,
    SILENT,
    V3_AUTH_KEY,
    V3_PRIV_KEY,
    V3_USER,
    SnmpSwitch,
    snmp_switch,
    unavailable,
)

REASON = unavailable()
if REASON is not None and os.environ.get("CI") == "true":
    raise RuntimeError(f"the SNMP tests must run in CI: {REASON}")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(REASON is not None, reason=f"SNMP against snmpd: {REASON}")]

V2 = (("host", AGENT), ("community", COMMUNITY))
V3 = (("host", AGENT), ("version", "3"), ("user", V3_USER), ("auth_protocol", "sha256"),
      ("auth_key", V3_AUTH_KEY), ("priv_protocol", "aes"), ("priv_key", V3_PRIV_KEY))
FAST = (("timeout_s", 0.5), ("retries", 0))


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSwitch]:
    """One snmpd for the module (its namespace, its pass_persist programs)."""
    with snmp_switch(tmp_path_factory.mktemp("snmpd")) as sw:
        yield sw


@pytest.fixture(autouse=True)
def all_on(switch: SnmpSwitch) -> None:
    data = switch.read_state()
    data["start_unix_s"] = time.time()
    for port in data["ports"].values():
        port.update(admin=1, sleep_s=0, trace_mw=[[0, 2500]])
    switch.write_state(data)


def node(power: tuple[tuple[str, Any], ...] = (), meter: tuple[tuple[str, Any], ...] | None = None) -> Node:
    return Node(0, "pi1", "rack.test", PROFILES["rpi4b"], power=PowerSpec("snmp", power),
                meter=None if meter is None else MeterSpec("snmp", meter))


def driver(*options: tuple[str, Any]) -> SnmpDriver:
    d = driver_for(node(options))
    assert isinstance(d, SnmpDriver)
    return d


def test_the_driver_switches_ports_and_each_set_reaches_the_switch(switch: SnmpSwitch) -> None:
    since = time.time()
    port2, port4 = driver(*V2, ("port", 2)), driver(*V2, ("group", 1), ("port", 4))
    assert switch.loop.run(port2.state()) is SwitchState.ON
    switch.loop.run(port2.off())
    switch.loop.run(port4.off())
    assert switch.loop.run(port2.state()) is SwitchState.OFF
    assert switch.read_state()["ports"]["1.2"]["admin"] == 2
    assert switch.read_state()["ports"]["1.1"]["admin"] == 1  # no other port moved
    switch.loop.run(port2.on())
    assert switch.loop.run(port2.state()) is SwitchState.ON
    sets = [(e["set"], e["value"]) for e in switch.log_entries() if "set" in e and e["time_s"] >= since]
    assert sets == [("1.2", 2), ("1.4", 2), ("1.2", 1)]


def test_a_state_the_switch_changed_by_itself_is_read(switch: SnmpSwitch) -> None:
    switch.set_port("1.3", admin=2)
    assert switch.loop.run(driver(*V2, ("port", 3)).state()) is SwitchState.OFF


def test_the_meter_reads_each_ports_power_from_its_trace(switch: SnmpSwitch) -> None:
    """The scripted meter: a step in the trace shows at its time, an off port reads 0."""
    switch.set_port("1.1", trace_mw=[[0, 2000], [0.6, 4500]])
    meter = meter_for(node(V2, (*V2, ("oid", f"{POWER_OID}.1.1"), ("scale", 0.001))))
    assert isinstance(meter, SnmpMeter)
    first = switch.loop.run(meter.read())
    assert first.watts == pytest.approx(2.0)
    assert abs(first.time_s - time.time()) < 2
    time.sleep(0.7)
    assert switch.loop.run(meter.read()).watts == pytest.approx(4.5)
    other = meter_for(node(V2, (*V2, ("oid", f"{POWER_OID}.1.2"), ("scale", 0.001))))
    assert other is not None
    assert switch.loop.run(other.read()).watts == pytest.approx(2.5)
    switch.loop.run(driver(*V2, ("port", 2)).off())
    assert switch.loop.run(other.read()).watts == 0.0


def _error(switch: SnmpSwitch, call: Any) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(PowerError) as e:
        switch.loop.run(call)
    message = str(e.value)
    assert "\n" not in message
    for secret in (COMMUNITY, "not-the-c0mmunity", V3_AUTH_KEY, V3_PRIV_KEY, "wrong-auth-k3y"):
        assert secret not in message
    return message, time.monotonic() - started


def test_a_wrong_community_is_one_line_without_it(switch: SnmpSwitch) -> None:
    message, took_s = _error(switch, driver(("host", AGENT), ("community", "not-the-c0mmunity"), ("port", 1),
                                            *FAST).off())
    assert message == ("pi1.rack.test: snmp off: no answer from 192.0.2.1:161 after 1 tries of 0.5 s "
                       "(wrong community, or no agent there)")
    assert took_s < 3
    assert switch.read_state()["ports"]["1.1"]["admin"] == 1


def test_a_switch_that_answers_too_late_is_a_timeout(switch: SnmpSwitch) -> None:
    switch.set_port("1.4", sleep_s=1.5)
    since = time.time()
    message, took_s = _error(switch, driver(*V2, ("port", 4), *FAST).state())
    assert "no answer from 192.0.2.1:161" in message and took_s < 1.5
    # snmpd waits for its pass_persist program: let it finish before the next test asks
    switch.wait_for_log(lambda e: e.get("slept") == "1.4" and e["time_s"] >= since)
    switch.set_port("1.4", sleep_s=0)


@pytest.mark.parametrize("host", [SILENT, NO_ROUTE], ids=["drops-packets", "no-route"])
def test_an_unreachable_agent_is_a_timeout(switch: SnmpSwitch, host: str) -> None:
    message, took_s = _error(switch, driver(("host", host), ("community", COMMUNITY), ("port", 1), *FAST).on())
    assert message.startswith(f"pi1.rack.test: snmp on: no answer from {host}:161")
    assert took_s < 3


def test_snmp_v3_authpriv(switch: SnmpSwitch) -> None:
    since = time.time()
    port3 = driver(*V3, ("port", 3))
    switch.loop.run(port3.off())
    assert switch.loop.run(port3.state()) is SwitchState.OFF
    assert [(e["set"], e["value"]) for e in switch.log_entries()
            if "set" in e and e["time_s"] >= since] == [("1.3", 2)]
    meter = meter_for(node(V3, (*V3, ("oid", f"{POWER_OID}.1.1"), ("scale", 0.001))))
    assert meter is not None and switch.loop.run(meter.read()).watts == pytest.approx(2.5)


def test_snmp_v3_with_a_wrong_key_says_so_without_it(switch: SnmpSwitch) -> None:
    options = tuple(("auth_key", "wrong-auth-k3y") if k == "auth_key" else (k, v) for k, v in V3)
    message, _ = _error(switch, driver(*options, ("port", 3), *FAST).state())
    assert message == "pi1.rack.test: snmp state: 192.0.2.1:161: Wrong SNMP PDU digest"


def test_a_refused_set_names_the_object(switch: SnmpSwitch) -> None:
    message, _ = _error(switch, driver(*V2, ("port", 9), *FAST).off())
    assert message.startswith("pi1.rack.test: snmp off: 192.0.2.1:161 refused SET of "
                              "1.3.6.1.2.1.105.1.1.1.3.1.9")
    message, _ = _error(switch, driver(*V2, ("port", 9), *FAST).state())
    assert message == "pi1.rack.test: snmp state: 192.0.2.1:161 has no 1.3.6.1.2.1.105.1.1.1.3.1.9 (NoSuchInstance)"


def test_the_snmpd_under_test_logs_no_community(switch: SnmpSwitch) -> None:
    assert COMMUNITY not in switch.snmpd_log.read_text(errors="replace")


def test_the_switch_is_not_on_the_hosts_network(switch: SnmpSwitch) -> None:
    assert not Path("/sys/class/net/rpxpoe0").exists()
