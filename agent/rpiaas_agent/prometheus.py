"""The node report in the Prometheus text exposition format (version 0.0.4).

Every family has ``# HELP`` and ``# TYPE`` lines, names end in their unit
(``_bytes``, ``_seconds``, ``_celsius``, ``_ratio``), and a reading the node
does not have is left out rather than reported as 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Union

__all__ = ["CONTENT_TYPE", "escape_help", "escape_label_value", "format_value", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MB = 1 << 20  # the tasks' mem_mb counts MiB

Sample = tuple[Mapping[str, str], Union[int, float, bool]]


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: int | float | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str, samples: Iterable[Sample]) -> None:
        samples = list(samples)
        if not samples:  # unknown on this node: no family at all
            return
        self.lines.append(f"# HELP {name} {escape_help(help_)}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                inner = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
                self.lines.append(f"{name}{{{inner}}} {format_value(value)}")
            else:
                self.lines.append(f"{name} {format_value(value)}")

    def gauge(self, name: str, help_: str, value: int | float | bool | None,
              labels: Mapping[str, str] | None = None) -> None:
        self.family(name, "gauge", help_, [] if value is None else [(labels or {}, value)])


def render(report: Mapping[str, Any]) -> str:
    """The Prometheus text of a report made by :func:`rpiaas_agent.report.collect`."""
    w = _Writer()
    agent, node, cpu = report["agent"], report["node"], report["cpu"]
    w.gauge("rpiaas_agent_info", "The agent's version and the node it runs on (always 1).", 1,
            {"version": agent["version"], "node": node["name"], "hostname": node["hostname"]})
    w.gauge("rpiaas_emulated", "1 when CPU and memory are those of the agent's own tasks on an "
            "emulated node (a local testbed), 0 when they are the machine's.",
            bool(report.get("emulated")))
    w.gauge("rpiaas_node_uptime_seconds", "Time since the node booted.",
            report["uptime_s"]["system"])
    w.gauge("rpiaas_agent_uptime_seconds", "Time since the agent process started.",
            report["uptime_s"]["process"])
    w.gauge("rpiaas_cpu_cores", "Logical CPU cores of the node.", cpu["cores"])
    w.family("rpiaas_cpu_usage_ratio", "gauge",
             "Share of time each core was busy over the last sampling interval (0 to 1).",
             [({"core": str(i)}, v) for i, v in enumerate(cpu["usage_ratio"] or ())])
    w.family("rpiaas_cpu_busy_seconds_total", "counter",
             "Busy CPU seconds summed over the node's cores: since boot from /proc/stat, or "
             "on an emulated node those of its tasks since the agent started.",
             [({}, cpu["busy_s"])])
    w.family("rpiaas_agent_cpu_seconds_total", "counter",
             "CPU seconds of the agent process itself, its tasks not included.",
             [({}, cpu["agent_busy_s"])])
    w.gauge("rpiaas_cpu_temperature_celsius", "CPU temperature from the thermal zone.",
            cpu["temperature_c"])
    load = report["load"] or {}
    for window in ("1m", "5m", "15m"):
        w.gauge(f"rpiaas_load{window[:-1]}", f"{window[:-1]}-minute load average.",
                load.get(window))
    mem = report["memory"]
    w.gauge("rpiaas_memory_total_bytes", "Total memory.", mem["total_bytes"])
    w.gauge("rpiaas_memory_available_bytes", "Memory available to new processes.",
            mem["available_bytes"])
    w.gauge("rpiaas_memory_used_bytes", "Memory not available to new processes (total - available).",
            mem["used_bytes"])
    disk = report["disk"]
    if disk is not None:
        path = {"path": disk["path"]}
        w.gauge("rpiaas_disk_total_bytes", "Size of the file system holding the path.",
                disk["total_bytes"], path)
        w.gauge("rpiaas_disk_used_bytes", "Used space on the file system.", disk["used_bytes"], path)
        w.gauge("rpiaas_disk_free_bytes", "Space free for unprivileged users.",
                disk["free_bytes"], path)
    throttling = report["throttling"]
    if throttling is not None:
        w.family("rpiaas_throttle_flag", "gauge",
                 "Raspberry Pi throttling flags from `vcgencmd get_throttled` (1 = set).",
                 [({"flag": k}, v) for k, v in throttling.items() if isinstance(v, bool)])
    speed = report["speed"]
    w.gauge("rpiaas_speed_kernel_ops_per_second",
            "Steps of the reference kernel one core runs per CPU second (measured at start).",
            speed["kernel_ops_per_s"])
    w.gauge("rpiaas_speed_relative_ratio",
            "Single-core speed relative to the reference core (1 = the simulator's speed 1.0).",
            speed["relative"])
    power = report.get("power")
    if power is not None:
        w.gauge("rpiaas_node_power_watts", "The node's power, read on the node (hwmon or pmic).",
                power["power_w"], {"source": power["source"]})
    tasks = report["tasks"]
    w.gauge("rpiaas_tasks_running", "Tasks running now.", tasks["running"])
    w.gauge("rpiaas_tasks_cores", "Cores that tasks may hold in all.", tasks["cores"])
    w.gauge("rpiaas_tasks_cores_used", "Cores held by running tasks.", tasks["cores_used"])
    w.gauge("rpiaas_tasks_memory_bytes", "Memory that tasks may hold in all.",
            round(tasks["mem_mb"] * MB))
    w.gauge("rpiaas_tasks_memory_used_bytes", "Memory held by running tasks (as requested).",
            round(tasks["mem_mb_used"] * MB))
    return "\n".join(w.lines) + "\n"
