"""Power read on the node itself: Linux hwmon sensors, or a Raspberry Pi 5's PMIC.

The agent's ``power_source`` setting says which (``none`` by default):

- ``hwmon``: the power sensors of the Linux hwmon class under ``hwmon_path``
  (``/sys/class/hwmon``; or one device's directory, ``.../hwmon3``).  In each
  device, the ``power<N>_input`` files (microwatts) are summed; a device that
  has none but gives current and voltage (``curr<N>_input`` in milliamperes,
  ``in<N>_input`` in millivolts, as the INA3221 driver does) counts
  ``in<N> x curr<N>`` for each ``N`` that has both.  INA219 and INA226
  boards give ``power1_input`` themselves.  These are the units of the
  kernel's hwmon sysfs ABI (``Documentation/hwmon/sysfs-interface``).  Every
  device found counts: point ``hwmon_path`` at the board's own device where
  the machine has other power sensors.
- ``pmic``: ``vcgencmd pmic_read_adc`` on a Pi 5, whose lines are
  ``<RAIL>_A current(<n>)=<amperes>A`` and ``<RAIL>_V volt(<n>)=<volts>V``: the
  sum over the rails that have both of volts x amperes.  That is what the
  board's own rails draw after the PMIC's regulators, not the power at the
  USB-C input (``EXT5V_V`` has no current): it leaves out the regulators'
  losses and anything powered straight from 5 V.

:class:`PowerMonitor` reads the source every ``power_interval_s`` in the
background (a sensor on I2C or a ``vcgencmd`` process takes milliseconds)
and keeps the latest reading with its time on the node's wall clock; a
reading that fails is ``None``, never a made-up 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

__all__ = ["POWER_SOURCES", "PowerMonitor", "parse_pmic", "read_hwmon"]

log = logging.getLogger(__name__)

POWER_SOURCES = ("none", "hwmon", "pmic")

_INPUT = re.compile(r"^(power|curr|in)(\d+)_(input|average)$")
_PMIC_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([-+0-9.eE]+)([AV])\s*$")


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):  # a sensor error (EIO, ENODATA) or garbage
        return None


def _device_watts(device: Path) -> tuple[float, int] | None:
    """One hwmon device's power in watts and how many sensors gave it, or None if it has none."""
    power: dict[int, int] = {}
    average: dict[int, int] = {}
    curr: dict[int, int] = {}
    volt: dict[int, int] = {}
    try:
        names = [p.name for p in device.iterdir()]
    except OSError:
        return None
    for name in names:
        m = _INPUT.match(name)
        if m is None or (m.group(3) == "average" and m.group(1) != "power"):
            continue
        kind, n = m.group(1), int(m.group(2))
        value = _read_int(device / name)
        if value is None:
            continue
        if m.group(3) == "average":
            average[n] = value
        else:
            {"power": power, "curr": curr, "in": volt}[kind][n] = value
    if power:  # microwatts
        return sum(power.values()) / 1e6, len(power)
    if average:  # a meter that gives its power averaged only (the ACPI power meter): microwatts
        return sum(average.values()) / 1e6, len(average)
    pairs = [n for n in curr if n in volt]
    if pairs:  # millivolts x milliamperes = microwatts
        return sum(volt[n] * curr[n] for n in pairs) / 1e6, len(pairs)
    return None


def read_hwmon(path: str | Path) -> tuple[float, int] | None:
    """Watts from the hwmon devices at ``path`` (a class directory or one device), and how
    many sensors gave them; None when no device there has a readable power sensor."""
    root = Path(path)
    devices = [root] if (root / "name").exists() else sorted(root.glob("hwmon*"))
    total, sensors = 0.0, 0
    for device in devices:
        got = _device_watts(device)
        if got is not None:
            total += got[0]
            sensors += got[1]
    return (total, sensors) if sensors else None


def parse_pmic(output: str) -> tuple[float, int] | None:
    """Watts from ``vcgencmd pmic_read_adc`` output (the sum over rails of V x I), and how
    many rails had both; None when no rail has both (not a Pi 5, or an error line)."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in output.replace("\x00", "\n").splitlines():
        m = _PMIC_LINE.match(line)
        if m is None or m.group(2) != m.group(4):
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        (amps if m.group(2) == "A" else volts)[m.group(1)] = value
    rails = [r for r in amps if r in volts]
    if not rails:
        return None
    return sum(amps[r] * volts[r] for r in rails), len(rails)


class PowerMonitor:
    """The node's power from ``source`` (``hwmon`` or ``pmic``), read every ``interval_s``.

    :attr:`latest` is ``{"source", "power_w", "time_s", "sensors"}`` (``time_s`` on
    the node's wall clock, when the reading was taken) or ``None``: no source, no
    reading yet, or the last one failed.
    """

    timeout_s = 2.0

    def __init__(self, source: str, interval_s: float, hwmon_path: str = "/sys/class/hwmon",
                 vcgencmd: str = "vcgencmd") -> None:
        self.source = source
        self.interval_s = interval_s
        self.hwmon_path = hwmon_path
        self.executable = shutil.which(vcgencmd) if source == "pmic" and vcgencmd else None
        self.latest: dict[str, Any] | None = None
        if source == "pmic" and self.executable is None:
            log.warning("power_source pmic: no %r command on this node; no power readings",
                        vcgencmd or "vcgencmd")

    async def _pmic(self) -> tuple[float, int] | None:
        assert self.executable is not None
        proc = await asyncio.create_subprocess_exec(
            self.executable, "pmic_read_adc", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        return parse_pmic(out.decode("ascii", "replace")) if proc.returncode == 0 else None

    async def read(self) -> dict[str, Any] | None:
        """One reading now, or None; its time is the middle of the read (a ``vcgencmd``
        process takes tens of milliseconds)."""
        t0 = time.time()
        if self.source == "hwmon":
            loop = asyncio.get_running_loop()
            got = await loop.run_in_executor(None, read_hwmon, self.hwmon_path)
        elif self.source == "pmic" and self.executable is not None:
            got = await self._pmic()
        else:
            return None
        if got is None:
            return None
        return {"source": self.source, "power_w": round(got[0], 6),
                "time_s": round((t0 + time.time()) / 2, 3), "sensors": got[1]}

    async def run(self) -> None:
        """Read every ``interval_s`` until cancelled (returns at once without a source)."""
        if self.source == "none" or (self.source == "pmic" and self.executable is None):
            return
        while True:
            try:
                self.latest = await self.read()
            except asyncio.TimeoutError:
                log.warning("%s pmic_read_adc took more than %gs", self.executable, self.timeout_s)
                self.latest = None
            except OSError as e:
                log.warning("cannot read the node's power (%s): %s", self.source, e)
                self.latest = None
            except Exception:  # a reading must never stop the monitor
                log.exception("cannot read the node's power (%s)", self.source)
                self.latest = None
            await asyncio.sleep(self.interval_s)
