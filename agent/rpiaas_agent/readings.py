"""What the agent measures: CPU usage, temperature, throttling, memory, disk, load, uptime.

Nothing here blocks the event loop for long.  CPU usage is a difference of
counters, so it is sampled in the background (:class:`CpuSampler`) and a
request reads the latest sample.  Throttling needs a ``vcgencmd`` process, so
it is polled in the background too (:class:`ThrottleMonitor`).  The disk is
asked for in a worker thread, because on a netbooted Pi it is NFS and may hang.
Readings that a machine does not have (a thermal zone, ``vcgencmd``) are
``None``, never a made-up 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Union

import psutil

__all__ = [
    "THROTTLE_FLAGS",
    "CpuSampler",
    "ThermalZone",
    "ThrottleMonitor",
    "agent_busy_s",
    "cpu_busy_s",
    "decode_throttled",
    "disk_usage",
    "load_average",
    "memory",
    "parse_throttled",
    "process_uptime_s",
    "system_uptime_s",
]

log = logging.getLogger(__name__)

Number = Union[int, float]


# ---------------------------------------------------------------- CPU usage
class CpuSampler:
    """Per-core CPU usage over the last ``interval_s``, sampled by :meth:`run`.

    ``usage_ratio`` is ``None`` until the first interval has passed: the very
    first reading of the counters has nothing to be compared with.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.cores: int = psutil.cpu_count() or 1
        self.usage_ratio: list[float] | None = None

    def busy_s(self) -> float:
        """The node's busy CPU seconds since boot, summed over its CPUs: a counter from
        ``/proc/stat`` (all but idle, iowait and the guest time already in user)."""
        return cpu_busy_s(psutil.cpu_times())

    def sample(self) -> None:
        """Take one sample: usage since the previous call (non-blocking, reads /proc/stat)."""
        percents = psutil.cpu_percent(interval=None, percpu=True)
        self.usage_ratio = [round(p / 100.0, 4) for p in percents]

    async def run(self) -> None:
        """Sample every ``interval_s`` until cancelled."""
        psutil.cpu_percent(interval=None, percpu=True)  # the reference point
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.sample()
            except Exception:  # a reading must never stop the sampler
                log.exception("cannot read CPU usage")
                self.usage_ratio = None


def cpu_busy_s(times: Any) -> float:
    """Busy seconds in ``psutil.cpu_times()``: the total less idle and iowait, and less
    guest and guest_nice, which Linux counts in user and nice already."""
    total = sum(times)
    for idle in ("idle", "iowait", "guest", "guest_nice"):
        total -= getattr(times, idle, 0.0)
    return max(0.0, float(total))


def agent_busy_s() -> float:
    """This agent's own CPU seconds (user + system), its tasks not included."""
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


# ---------------------------------------------------------------- temperature
_CPU_ZONE_TYPES = ("cpu-thermal", "cpu_thermal", "soc_thermal", "soc-thermal", "x86_pkg_temp")


class ThermalZone:
    """The CPU's thermal zone under ``<sysfs_root>/class/thermal``, if there is one.

    On a Raspberry Pi that is ``thermal_zone0`` of type ``cpu-thermal``.  A zone
    whose type names the CPU or SoC is preferred; else the first zone with a
    readable temperature.  The zone is looked for once, when first read.
    """

    def __init__(self, sysfs_root: str | os.PathLike[str]) -> None:
        self.base = Path(sysfs_root) / "class" / "thermal"
        self._path: Path | None = None
        self._searched = False

    def _find(self) -> Path | None:
        def number(p: Path) -> int:
            digits = p.name[len("thermal_zone"):]
            return int(digits) if digits.isdigit() else 1 << 30

        try:
            zones = sorted(self.base.glob("thermal_zone*"), key=number)
        except OSError:
            return None
        readable = [z for z in zones if _read_millidegrees(z / "temp") is not None]
        for zone in readable:
            try:
                kind = (zone / "type").read_text(encoding="ascii", errors="replace").strip().lower()
            except OSError:
                continue
            if kind in _CPU_ZONE_TYPES or "cpu" in kind or "soc" in kind:
                return zone / "temp"
        return readable[0] / "temp" if readable else None

    @property
    def path(self) -> Path | None:
        """The ``temp`` file read, or ``None`` when this machine has no thermal zone."""
        if not self._searched:
            self._path = self._find()
            self._searched = True
        return self._path

    def celsius(self) -> float | None:
        """The temperature in °C, or ``None`` when there is no zone or it cannot be read."""
        path = self.path
        if path is None:
            return None
        milli = _read_millidegrees(path)
        return None if milli is None else round(milli / 1000.0, 3)


def _read_millidegrees(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):  # no file, a sensor error (EIO/EAGAIN), garbage
        return None


# ---------------------------------------------------------------- throttling (vcgencmd)
# The bits of `vcgencmd get_throttled` (Raspberry Pi documentation, "vcgencmd").
THROTTLE_FLAGS: dict[int, str] = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "under_voltage_occurred",
    17: "arm_frequency_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temperature_limit_occurred",
}
_THROTTLED = re.compile(r"throttled=(0x[0-9a-fA-F]+|[0-9]+)")


def decode_throttled(value: int) -> dict[str, Any]:
    """The flags of a ``get_throttled`` value: "now" bits 0–3, "since boot" bits 16–19.

    >>> decode_throttled(0x50005)["under_voltage"], decode_throttled(0x50005)["throttled"]
    (True, True)
    """
    flags: dict[str, Any] = {"raw": hex(value)}
    flags.update({name: bool(value >> bit & 1) for bit, name in THROTTLE_FLAGS.items()})
    return flags


def parse_throttled(output: str) -> int | None:
    """The value in ``vcgencmd get_throttled`` output (``throttled=0x50005``), or ``None``."""
    m = _THROTTLED.search(output)
    return int(m.group(1), 0) if m else None


class ThrottleMonitor:
    """Raspberry Pi throttling flags, polled from ``vcgencmd get_throttled`` by :meth:`run`.

    ``flags`` stays ``None`` where ``vcgencmd`` is not installed (not a Pi) or
    does not answer.
    """

    timeout_s = 2.0

    def __init__(self, command: str, interval_s: float) -> None:
        self.interval_s = interval_s
        self.executable: str | None = shutil.which(command) if command else None
        self.flags: dict[str, Any] | None = None

    async def read(self) -> dict[str, Any] | None:
        """Run ``vcgencmd get_throttled`` once; the decoded flags or ``None``."""
        if self.executable is None:
            return None
        proc = await asyncio.create_subprocess_exec(
            self.executable, "get_throttled", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            log.warning("%s get_throttled took more than %gs", self.executable, self.timeout_s)
            return None
        except asyncio.CancelledError:  # shutting down: leave no child behind
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        value = parse_throttled(out.decode("ascii", "replace"))
        if proc.returncode != 0 or value is None:
            return None
        return decode_throttled(value)

    async def run(self) -> None:
        """Poll every ``interval_s`` until cancelled (returns at once without ``vcgencmd``)."""
        if self.executable is None:
            return
        while True:
            try:
                self.flags = await self.read()
            except OSError as e:
                log.warning("cannot run %s: %s", self.executable, e)
                self.flags = None
            except Exception:  # a reading must never stop the monitor
                log.exception("cannot read the throttling flags")
                self.flags = None
            await asyncio.sleep(self.interval_s)


# ---------------------------------------------------------------- memory, disk, load, uptime
def memory() -> dict[str, Number]:
    """Memory in bytes; ``used_ratio`` is the share not available to new processes."""
    vm = psutil.virtual_memory()
    used = vm.total - vm.available
    return {"total_bytes": vm.total, "available_bytes": vm.available, "used_bytes": used,
            "used_ratio": round(used / vm.total, 4) if vm.total else 0.0}


async def disk_usage(path: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """Usage of the file system holding ``path``, or ``None`` if it cannot be had in time."""
    loop = asyncio.get_running_loop()
    try:
        du = await asyncio.wait_for(loop.run_in_executor(None, psutil.disk_usage, path), timeout_s)
    except (OSError, asyncio.TimeoutError):
        return None
    return {"path": path, "total_bytes": du.total, "used_bytes": du.used, "free_bytes": du.free,
            "used_ratio": round(du.used / du.total, 4) if du.total else 0.0}


def load_average() -> dict[str, float] | None:
    """The 1, 5 and 15 minute load averages, or ``None`` where the OS has none."""
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return None
    return {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)}


def system_uptime_s() -> float:
    """Seconds since boot, on a clock that does not jump when NTP sets the time.

    A Pi has no real-time clock: its wall clock jumps at the first NTP sync,
    so ``now - boot_time`` would be wrong by that jump.
    """
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        return round(time.clock_gettime(boottime), 3)
    return round(time.time() - float(psutil.boot_time()), 3)


def _process_start_since_boot_s() -> float | None:
    """When this process started, in seconds since boot (Linux: /proc/self/stat field 22)."""
    try:
        stat = Path("/proc/self/stat").read_text(encoding="ascii", errors="replace")
        fields = stat[stat.rindex(")") + 2:].split()  # the name in (...) may hold spaces
        return int(fields[22 - 3]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


_PROCESS_START_S = _process_start_since_boot_s()
_PROCESS_START_WALL = float(psutil.Process().create_time())


def process_uptime_s() -> float:
    """Seconds since this process started, on the same jump-free clock as the system's."""
    if _PROCESS_START_S is not None and getattr(time, "CLOCK_BOOTTIME", None) is not None:
        return round(max(0.0, system_uptime_s() - _PROCESS_START_S), 3)
    return round(max(0.0, time.time() - _PROCESS_START_WALL), 3)
