"""The readings: throttling bits, thermal zones, CPU sampling, memory, disk, uptime."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
import pytest

from rpiaas_agent import readings
from rpiaas_agent.readings import (
    THROTTLE_FLAGS,
    CpuSampler,
    ThermalZone,
    ThrottleMonitor,
    decode_throttled,
    parse_throttled,
)

from .helpers import fake_thermal_tree, fake_vcgencmd


# ---------------------------------------------------------------- throttling
def test_decode_throttled_bits() -> None:
    flags = decode_throttled(0x50005)  # under-voltage now and since boot; throttled now and since boot
    assert flags["raw"] == "0x50005"
    assert {k for k, v in flags.items() if v is True} == {
        "under_voltage", "throttled", "under_voltage_occurred", "throttled_occurred"}
    assert not any(v for k, v in decode_throttled(0).items() if k != "raw")
    every = decode_throttled(0xF000F)
    assert all(every[name] for name in THROTTLE_FLAGS.values())
    for bit, name in THROTTLE_FLAGS.items():
        assert [k for k, v in decode_throttled(1 << bit).items() if v is True] == [name]


@pytest.mark.parametrize(("output", "value"), [
    ("throttled=0x50005\n", 0x50005), ("throttled=0x0", 0), ("throttled=7", 7), ("garbage", None), ("", None),
])
def test_parse_throttled(output: str, value: int | None) -> None:
    assert parse_throttled(output) == value


def test_throttle_monitor_with_a_fake_vcgencmd(tmp_path: Path) -> None:
    cmd = fake_vcgencmd(tmp_path, "throttled=0x20002")
    monitor = ThrottleMonitor(str(cmd), interval_s=1.0)
    flags = asyncio.run(monitor.read())
    assert flags is not None and flags["arm_frequency_capped"] and flags["arm_frequency_capped_occurred"]
    assert not flags["under_voltage"]


@pytest.mark.parametrize(("output", "code"), [("throttled=0x1", 1), ("VCHI initialization failed", 0)])
def test_throttle_monitor_failing_vcgencmd_gives_none(tmp_path: Path, output: str, code: int) -> None:
    assert asyncio.run(ThrottleMonitor(str(fake_vcgencmd(tmp_path, output, code)), 1.0).read()) is None


def test_throttle_monitor_without_vcgencmd(tmp_path: Path) -> None:
    for command in ("", str(tmp_path / "no-such-vcgencmd"), "no-such-vcgencmd-anywhere"):
        monitor = ThrottleMonitor(command, 1.0)
        assert monitor.executable is None
        assert asyncio.run(monitor.read()) is None
        asyncio.run(asyncio.wait_for(monitor.run(), 1.0))  # returns at once
        assert monitor.flags is None


def test_throttle_monitor_times_out(tmp_path: Path) -> None:
    cmd = tmp_path / "vcgencmd"
    cmd.write_text("#!/bin/sh\nexec sleep 30\n")
    cmd.chmod(0o755)
    monitor = ThrottleMonitor(str(cmd), 1.0)
    monitor.timeout_s = 0.2
    t0 = time.monotonic()
    assert asyncio.run(monitor.read()) is None
    assert time.monotonic() - t0 < 5


# ---------------------------------------------------------------- temperature
def test_no_thermal_zone_is_none(tmp_path: Path) -> None:
    assert ThermalZone(tmp_path).celsius() is None
    assert ThermalZone(tmp_path / "missing").path is None


def test_thermal_zone_of_a_pi(tmp_path: Path) -> None:
    fake_thermal_tree(tmp_path, {"cpu-thermal": "48312"})
    assert ThermalZone(tmp_path).celsius() == 48.312


def test_the_cpu_zone_is_preferred(tmp_path: Path) -> None:
    fake_thermal_tree(tmp_path, {"acpitz": "27800", "iwlwifi_1": "40000", "x86_pkg_temp": "55000"})
    assert ThermalZone(tmp_path).celsius() == 55.0
    other = tmp_path / "other"
    fake_thermal_tree(other, {"acpitz": "27800", "pch": "40000"})
    assert ThermalZone(other).celsius() == 27.8  # no CPU zone: the first readable one


def test_unreadable_zones_are_skipped(tmp_path: Path) -> None:
    fake_thermal_tree(tmp_path, {"cpu-thermal": "not a number", "soc": "31000"})
    assert ThermalZone(tmp_path).celsius() == 31.0


def test_a_zone_that_stops_answering_gives_none(tmp_path: Path) -> None:
    fake_thermal_tree(tmp_path, {"cpu-thermal": "50000"})
    zone = ThermalZone(tmp_path)
    assert zone.celsius() == 50.0
    (tmp_path / "class" / "thermal" / "thermal_zone0" / "temp").unlink()
    assert zone.celsius() is None


def test_real_sysfs_gives_none_or_a_plausible_temperature() -> None:
    t = ThermalZone("/sys").celsius()
    assert t is None or -40 < t < 150


# ---------------------------------------------------------------- CPU, memory, disk, load, uptime
def test_cpu_sampler() -> None:
    sampler = CpuSampler(interval_s=0.05)
    before = sampler.usage_ratio
    assert before is None and sampler.cores == psutil.cpu_count()

    async def run_briefly() -> None:
        task = asyncio.ensure_future(sampler.run())
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run_briefly())
    assert sampler.usage_ratio is not None and len(sampler.usage_ratio) == sampler.cores
    assert all(0.0 <= u <= 1.0 for u in sampler.usage_ratio)


def test_memory() -> None:
    m = readings.memory()
    assert m["total_bytes"] == m["available_bytes"] + m["used_bytes"]
    assert all(isinstance(m[k], int) for k in ("total_bytes", "available_bytes", "used_bytes"))
    assert 0 <= m["used_ratio"] <= 1


def test_disk_usage(tmp_path: Path) -> None:
    d = asyncio.run(readings.disk_usage(str(tmp_path)))
    assert d is not None and d["path"] == str(tmp_path)
    assert d["total_bytes"] > 0 and 0 <= d["free_bytes"] <= d["total_bytes"] and 0 <= d["used_ratio"] <= 1
    assert asyncio.run(readings.disk_usage(str(tmp_path / "missing"))) is None


def test_load_and_uptimes() -> None:
    load = readings.load_average()
    assert load is not None and set(load) == {"1m", "5m", "15m"} and all(v >= 0 for v in load.values())
    system, process = readings.system_uptime_s(), readings.process_uptime_s()
    assert 0 <= process <= system
    # the process started when psutil says it did (to within a clock tick and rounding)
    assert abs(process - (time.time() - psutil.Process().create_time())) < 1.0
