"""The drivers that run a program: ``command`` (a user's script) and ``uhubctl``.

``command`` runs a real shell script that keeps the node's power in a file.
``uhubctl`` runs a stand-in program put first on ``PATH``: it checks the
arguments uhubctl would be given and prints what uhubctl prints, from a
state file; it is no hub, and says nothing of whether a real hub switches.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rpiaas.model import PROFILES, Node, PowerSpec
from rpiaas.power import PowerError, SwitchState, driver_for
from rpiaas.power.drivers.uhubctl import port_state

NODE = Node(0, "pi3", "lab.test", PROFILES["rpi4b"])


def executable(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def with_power(spec: PowerSpec) -> Node:
    return Node(NODE.index, NODE.hostname, NODE.domain, NODE.type, power=spec)


# ----------------------------------------------------------------------------------- command
@pytest.fixture
def script(tmp_path: Path) -> Path:
    return executable(tmp_path / "pdu-power", f"""
        #!/bin/sh
        # pdu-power ACTION NODE: the node's power in {tmp_path}/$2.state, every call in calls.log
        echo "$*" >> {tmp_path}/calls.log
        state={tmp_path}/"$2".state
        case "$1" in
          on|off) [ -e {tmp_path}/refuse ] && {{ echo "outlet 3: relay stuck" >&2; exit 3; }}
                  echo "$1" > "$state" ;;
          status) [ -e {tmp_path}/hang ] && sleep 5
                  [ -e {tmp_path}/garbled ] && {{ echo "OUTLET 3 IS READY"; exit 0; }}
                  cat "$state" 2>/dev/null || echo off ;;
          *) echo "usage: pdu-power on|off|status NODE" >&2; exit 2 ;;
        esac
        """)


def test_command_switches_and_reads_through_the_script(script: Path, tmp_path: Path) -> None:
    driver = driver_for(with_power(PowerSpec("command", (("command", f"{script}"),))))
    assert driver is not None

    async def go() -> None:
        assert await driver.state() is SwitchState.OFF
        await driver.on()
        assert await driver.state() is SwitchState.ON
        await driver.off()
        assert await driver.state() is SwitchState.OFF

    asyncio.run(go())
    assert (tmp_path / "calls.log").read_text().splitlines() == [
        "status pi3.lab.test", "on pi3.lab.test", "status pi3.lab.test", "off pi3.lab.test",
        "status pi3.lab.test"]


def test_command_takes_leading_arguments(tmp_path: Path) -> None:
    log = tmp_path / "argv"
    spec = PowerSpec("command", (("command", f"sh -c 'echo \"$@\" > {log}; echo On' pdu --outlet 3"),))
    driver = driver_for(with_power(spec))
    assert driver is not None
    assert asyncio.run(driver.state()) is SwitchState.ON
    assert log.read_text().split() == ["--outlet", "3", "status", "pi3.lab.test"]


def test_command_failures_are_one_line(script: Path, tmp_path: Path) -> None:
    driver = driver_for(with_power(PowerSpec("command", (("command", str(script)), ("timeout_s", 0.5)))))
    assert driver is not None
    (tmp_path / "refuse").touch()
    with pytest.raises(PowerError) as e:
        asyncio.run(driver.off())
    assert str(e.value) == "pi3.lab.test: command off: exit code 3: outlet 3: relay stuck"
    (tmp_path / "garbled").touch()
    with pytest.raises(PowerError) as e:
        asyncio.run(driver.state())
    assert str(e.value) == "pi3.lab.test: command status: expected on or off on its output, got 'outlet'"
    (tmp_path / "hang").touch()
    started = time.monotonic()
    with pytest.raises(PowerError) as e:
        asyncio.run(driver.state())
    assert str(e.value) == "pi3.lab.test: command status: no end within 0.5 s (killed)"
    assert time.monotonic() - started < 3


def test_command_that_is_not_there(tmp_path: Path) -> None:
    driver = driver_for(with_power(PowerSpec("command", (("command", str(tmp_path / "nope")),))))
    assert driver is not None
    with pytest.raises(PowerError) as e:
        asyncio.run(driver.on())
    assert str(e.value) == f"pi3.lab.test: command on: cannot run {tmp_path / 'nope'}: No such file or directory"


# ----------------------------------------------------------------------------------- uhubctl
STAND_IN = f"""
#!{sys.executable}
'''A stand-in for uhubctl: checks its arguments and prints as uhubctl does; no hub behind it.'''
import json, pathlib, sys
state = pathlib.Path(__file__).with_name("hub.json")
hub = json.loads(state.read_text())
args = sys.argv[1:]
with state.with_name("argv.log").open("a") as log:
    log.write(" ".join(args) + "\\n")
if len(args) not in (4, 6) or args[0] != "-l" or args[2] != "-p" or (len(args) == 6 and (
        args[4] != "-a" or args[5] not in ("on", "off"))):
    sys.exit("stand-in uhubctl: unexpected arguments " + " ".join(args))
location, port = args[1], args[3]
if location != hub["location"]:
    print("No compatible devices detected at location " + location + "!", file=sys.stderr)
    sys.exit(1)
def status(word):
    print("{{}} status for hub {{}} [2109:3431 USB2.0 Hub, USB 2.10, 4 ports, ppps]".format(word, location))
    for p in sorted(hub["ports"]):
        on = hub["ports"][p]
        print("  Port {{}}: {{}}".format(p, "0503 power highspeed enable connect [1d6b:0104]" if on else "0000 off"))
status("Current")
if len(args) == 6:
    want = args[5] == "on"
    print("Sent power {{}} request".format(args[5]))
    if not hub.get("stuck"):
        hub["ports"][port] = want
        state.write_text(json.dumps(hub))
    status("New")
"""


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "uhubctl", STAND_IN)
    (bin_dir / "hub.json").write_text('{"location": "1-1", "ports": {"1": true, "2": true, "3": true}}')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def uhubctl(*extra: tuple[str, object]) -> PowerSpec:
    return PowerSpec("uhubctl", (("location", "1-1"), ("port", 2), *extra))


def test_uhubctl_switches_a_port_with_the_arguments_uhubctl_takes(hub: Path) -> None:
    driver = driver_for(with_power(uhubctl()))
    assert driver is not None

    async def go() -> None:
        assert await driver.state() is SwitchState.ON
        await driver.off()
        assert await driver.state() is SwitchState.OFF
        await driver.on()

    asyncio.run(go())
    assert (hub / "argv.log").read_text().splitlines() == [
        "-l 1-1 -p 2", "-l 1-1 -p 2 -a off", "-l 1-1 -p 2", "-l 1-1 -p 2 -a on"]
    assert '"1": true' in (hub / "hub.json").read_text()


def test_uhubctl_failures(hub: Path) -> None:
    driver = driver_for(with_power(PowerSpec("uhubctl", (("location", "2-1"), ("port", 2)))))
    assert driver is not None
    with pytest.raises(PowerError) as e:
        asyncio.run(driver.off())
    assert str(e.value) == "pi3.lab.test: uhubctl off: exit code 1: No compatible devices detected at location 2-1!"
    driver = driver_for(with_power(uhubctl(("port", 4))))
    assert driver is not None
    with pytest.raises(PowerError) as e:
        asyncio.run(driver.state())
    assert str(e.value) == "pi3.lab.test: uhubctl state: no status of port 4 of hub 1-1 in its output"
    (hub / "hub.json").write_text('{"location": "1-1", "stuck": true, "ports": {"2": true}}')
    driver = driver_for(with_power(uhubctl()))
    assert driver is not None
    with pytest.raises(PowerError) as e:
        asyncio.run(driver.off())
    assert str(e.value) == ("pi3.lab.test: uhubctl off: port 2 of hub 1-1 is still on "
                            "(does this hub switch its ports' power?)")


def test_uhubctl_program_option_and_a_missing_program(tmp_path: Path) -> None:
    driver = driver_for(with_power(uhubctl(("program", str(tmp_path / "uhubctl")))))
    assert driver is not None
    with pytest.raises(PowerError, match=r"^pi3\.lab\.test: uhubctl state: cannot run .*: No such file"):
        asyncio.run(driver.state())


def test_uhubctl_status_lines_as_uhubctl_prints_them() -> None:
    usb3 = "Current status for hub 2 [1d6b:0003 Linux xhci-hcd, USB 3.00, 4 ports, ppps]\n" \
           "  Port 1: 02a0 power 5gbps Rx.Detect\n  Port 2: 0080 off\n"
    assert port_state(usb3, 1) is SwitchState.ON
    assert port_state(usb3, 2) is SwitchState.OFF
    assert port_state(usb3, 3) is SwitchState.UNKNOWN
