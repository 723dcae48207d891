"""The node's own power: hwmon sensors and a Pi 5's PMIC (rpiaas_agent.power).

The hwmon tests run the reader on a directory laid out as the kernel's sysfs
lays out ``/sys/class/hwmon`` (Documentation/hwmon/sysfs-interface: power in
microwatts, current in milliamperes, voltage in millivolts).  It is the
layout, not a device: no sensor is read.  The PMIC parser runs on output of
``vcgencmd pmic_read_adc`` captured on a Raspberry Pi 5 under load.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rpiaas_agent.config import ConfigError, load_config
from rpiaas_agent.power import PowerMonitor, parse_pmic, read_hwmon

# `vcgencmd pmic_read_adc` on a Raspberry Pi 5 Model B (Raspberry Pi OS bookworm, four busy
# cores), as captured: currents first, then voltages; the indices in brackets are the ADC's
# channels and do not pair a rail's current with its voltage: the rail's name does.
PMIC_CAPTURE = """\
 3V7_WL_SW_A current(0)=0.09368929A
   3V3_SYS_A current(1)=0.08783370A
   1V8_SYS_A current(2)=0.18054710A
  DDR_VDD2_A current(3)=0.22543980A
  DDR_VDDQ_A current(4)=0.06666720A
   1V1_SYS_A current(5)=0.17566740A
    0V8_SW_A current(6)=0.37670900A
  VDD_CORE_A current(7)=6.22421000A
   3V3_DAC_A current(17)=0.00006105A
   3V3_ADC_A current(18)=0.00036630A
   0V8_AON_A current(16)=0.00305250A
      HDMI_A current(22)=0.02417580A
 3V7_WL_SW_V volt(8)=3.69977600V
   3V3_SYS_V volt(9)=3.31003300V
   1V8_SYS_V volt(10)=1.80512600V
  DDR_VDD2_V volt(11)=1.10476100V
  DDR_VDDQ_V volt(12)=0.60146460V
   1V1_SYS_V volt(13)=1.11025500V
    0V8_SW_V volt(14)=0.80146440V
  VDD_CORE_V volt(15)=0.86173300V
   3V3_DAC_V volt(20)=3.31318300V
   3V3_ADC_V volt(21)=3.30677300V
   0V8_AON_V volt(19)=0.80029220V
      HDMI_V volt(23)=5.08664000V
     EXT5V_V volt(24)=5.09066000V
      BATT_V volt(25)=0.00000000V
"""
RAILS = {  # (amperes, volts) of the rails above that have both
    "3V7_WL_SW": (0.09368929, 3.69977600), "3V3_SYS": (0.08783370, 3.31003300),
    "1V8_SYS": (0.18054710, 1.80512600), "DDR_VDD2": (0.22543980, 1.10476100),
    "DDR_VDDQ": (0.06666720, 0.60146460), "1V1_SYS": (0.17566740, 1.11025500),
    "0V8_SW": (0.37670900, 0.80146440), "VDD_CORE": (6.22421000, 0.86173300),
    "3V3_DAC": (0.00006105, 3.31318300), "3V3_ADC": (0.00036630, 3.30677300),
    "0V8_AON": (0.00305250, 0.80029220), "HDMI": (0.02417580, 5.08664000),
}


def test_pmic_sums_volts_times_amperes_over_the_rails_that_have_both() -> None:
    watts, rails = parse_pmic(PMIC_CAPTURE)  # type: ignore[misc]
    assert rails == 12  # EXT5V and BATT have a voltage and no current
    assert watts == pytest.approx(sum(a * v for a, v in RAILS.values()), rel=1e-12)
    assert 6.0 < watts < 7.5  # VDD_CORE alone is 5.36 W under load


def test_pmic_output_of_a_board_without_one_is_no_reading() -> None:
    assert parse_pmic('error=1 error_msg="Command not registered"\n') is None
    assert parse_pmic("") is None
    # a current line whose unit is not A is not read as one
    assert parse_pmic("  VDD_CORE_A current(7)=1.0V\n  VDD_CORE_V volt(15)=0.8V\n") is None
    # NUL-separated (the firmware mailbox's way) reads the same
    assert parse_pmic(PMIC_CAPTURE.replace("\n", "\x00")) == parse_pmic(PMIC_CAPTURE)


def _device(root: Path, name: str, files: dict[str, str]) -> Path:
    """One hwmon device as sysfs shows it: ``hwmonN/name`` and its attribute files."""
    dev = root / name
    dev.mkdir(parents=True)
    for key, value in files.items():
        (dev / key).write_text(value + "\n")
    return dev


def test_hwmon_power_inputs_in_microwatts(tmp_path: Path) -> None:
    root = tmp_path / "class" / "hwmon"
    _device(root, "hwmon0", {"name": "cpu_thermal", "temp1_input": "48000"})  # no power
    _device(root, "hwmon1", {"name": "ina219", "in0_input": "12", "in1_input": "5080",
                             "curr1_input": "640", "power1_input": "3251200"})
    _device(root, "hwmon2", {"name": "ina226", "power1_input": "1500000",
                             "power1_label": "fan board"})
    watts, sensors = read_hwmon(root)  # type: ignore[misc]
    # the INA219's power1 counts, not also its in x curr: a device's power inputs win
    assert (watts, sensors) == (pytest.approx(4.7512), 2)
    assert read_hwmon(root / "hwmon2") == (pytest.approx(1.5), 1)  # one device named directly


def test_hwmon_average_power_where_there_is_no_instant_one(tmp_path: Path) -> None:
    root = tmp_path / "hwmon"  # the ACPI power meter gives power1_average (microwatts) only
    _device(root, "hwmon0", {"name": "power_meter", "power1_average": "41250000",
                             "power1_average_interval": "1000", "curr1_average": "3"})
    assert read_hwmon(root) == (pytest.approx(41.25), 1)


def test_hwmon_current_and_voltage_pairs_where_there_is_no_power(tmp_path: Path) -> None:
    # the INA3221 driver: bus voltage in1..3 (mV), current curr1..3 (mA), shunt voltage in4..6
    root = tmp_path / "hwmon"
    _device(root, "hwmon3", {"name": "ina3221", "in1_input": "5100", "curr1_input": "600",
                             "in2_input": "3300", "curr2_input": "100", "in3_input": "0",
                             "in4_input": "1200", "in5_input": "400", "in6_input": "0"})
    assert read_hwmon(root) == (pytest.approx(5.1 * 0.6 + 3.3 * 0.1 + 0.0), 2)


def test_hwmon_errors_and_nothing_to_read(tmp_path: Path) -> None:
    root = tmp_path / "hwmon"
    assert read_hwmon(root) is None  # no such directory
    _device(root, "hwmon0", {"name": "rpi_volt", "in0_lcrit_alarm": "0"})
    assert read_hwmon(root) is None  # a device without power, current or voltage inputs
    dev = _device(root, "hwmon1", {"name": "ina226", "power1_input": "oops"})
    assert read_hwmon(root) is None  # a sensor that answers garbage (or EIO) gives no reading
    (dev / "power2_input").write_text("2000000\n")
    assert read_hwmon(root) == (pytest.approx(2.0), 1)  # the others still count


def test_monitor_reads_hwmon_with_its_time(tmp_path: Path) -> None:
    root = tmp_path / "hwmon"
    _device(root, "hwmon1", {"name": "ina219", "power1_input": "2750000"})
    mon = PowerMonitor("hwmon", 0.1, str(root))
    reading = asyncio.run(mon.read())
    assert reading is not None and reading["source"] == "hwmon"
    assert reading["power_w"] == pytest.approx(2.75) and reading["sensors"] == 1
    assert isinstance(reading["time_s"], float)
    assert asyncio.run(PowerMonitor("none", 0.1).read()) is None


def test_monitor_runs_vcgencmd_pmic_read_adc(tmp_path: Path) -> None:
    """A stand-in ``vcgencmd`` that prints the captured output: the monitor's process handling."""
    exe = tmp_path / "vcgencmd"
    exe.write_text(f"#!/bin/sh\n[ \"$1\" = pmic_read_adc ] || exit 2\ncat <<'EOF'\n{PMIC_CAPTURE}EOF\n")
    exe.chmod(0o755)
    mon = PowerMonitor("pmic", 0.1, vcgencmd=str(exe))
    reading = asyncio.run(mon.read())
    assert reading is not None and reading["source"] == "pmic" and reading["sensors"] == 12
    assert reading["power_w"] == pytest.approx(sum(a * v for a, v in RAILS.values()), abs=1e-6)
    assert PowerMonitor("pmic", 0.1, vcgencmd=str(tmp_path / "none")).executable is None


def test_config_keys(tmp_path: Path) -> None:
    f = tmp_path / "agent.json"
    f.write_text(json.dumps({"power_source": "hwmon", "hwmon_path": "/sys/class/hwmon/hwmon2",
                             "power_interval_s": 0.5, "work_dir": str(tmp_path)}))
    c = load_config(env={}, config_file=str(f))
    assert (c.power_source, c.hwmon_path, c.power_interval_s) == ("hwmon", "/sys/class/hwmon/hwmon2", 0.5)
    assert load_config(env={}, flags={"work_dir": str(tmp_path)}).power_source == "none"
    with pytest.raises(ConfigError,
                       match=r"^RPIAAS_AGENT_POWER_SOURCE: expected one of none, hwmon, pmic, got .ina219.$"):
        load_config(env={"RPIAAS_AGENT_POWER_SOURCE": "ina219"}, flags={"work_dir": str(tmp_path)})
