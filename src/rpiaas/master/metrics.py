"""``GET /metrics``: the master in Prometheus text format (0.0.4).

What a lab's Prometheus scrapes to watch a testbed left running for months:

| metric | type | labels | meaning |
|---|---|---|---|
| ``rpiaas_nodes`` | gauge | ``state`` | nodes online, offline, not polled yet |
| ``rpiaas_node_up`` | gauge | ``node``, ``domain`` | 1 online, 0 offline (absent before the first poll) |
| ``rpiaas_node_cpu_utilization`` | gauge | ``node`` | CPU use at its latest poll, [0, 1] |
| ``rpiaas_node_cpu_busy_seconds_total`` | counter | ``node`` | busy CPU seconds over its cores (the agent's counter) |
| ``rpiaas_node_power_watts`` | gauge | ``node``, ``source`` | its newest metered power (nodes with a meter) |
| ``rpiaas_node_power_reading_timestamp_seconds`` | gauge | ``node`` | when that reading was taken (unix s) |
| ``rpiaas_node_boot_seconds`` | gauge | ``node`` | the node's last reported boot time |
| ``rpiaas_master_poll_rounds_total`` | counter | | poll rounds since start |
| ``rpiaas_master_polls_total`` | counter | ``result`` | polls answered or failed |
| ``rpiaas_master_poll_latency_seconds`` | summary | ``quantile`` | poll latency (recent polls) |
| ``rpiaas_master_samples_stored_total`` | counter | | samples written to the history (its insert rate: ``rate()``) |
| ``rpiaas_master_power_readings_stored_total`` | counter | | power readings written to the history |
| ``rpiaas_master_meter_failures_total`` | counter | | master-side meter reads that failed or timed out |
| ``rpiaas_master_store_up`` | gauge | | 1 while the history store writes, 0 while it fails |
| ``rpiaas_master_store_failed_writes_total`` | counter | | history store writes that failed |
| ``rpiaas_master_store_pending_samples`` | gauge | | samples kept in memory until the store can write |
| ``rpiaas_master_store_dropped_samples_total`` | counter | | samples dropped (oldest first) while it could not |
| ``rpiaas_runs`` | gauge | ``state`` | live runs by state |
| ``rpiaas_run_tasks`` | gauge | ``run``, ``state`` | a running run's tasks: queued, running, ended |
| ``rpiaas_run_held`` | gauge | ``run`` | 1 while a running run is held for lack of disk space |

It reads what the master holds in memory, never the history store, so a
scrape costs nothing however long the history.  Open like the other reads:
it names no credential.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from .keys import POLLER, REGISTRY, RUNS, STORE
from .storeaccess import store_health

__all__ = ["CONTENT_TYPE", "metrics_text", "setup_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUN_STATES = ("running", "completed", "failed", "cancelled", "suspended")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return repr(float(value)) if value == value else "NaN"


class _Text:
    """Families of samples, each with its HELP and TYPE lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[dict[str, str], float]], suffix: str = "") -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{suffix}{{{inner}}} {_num(value)}" if inner
                              else f"{name}{suffix} {_num(value)}")


def metrics_text(app: web.Application) -> str:
    """The exposition of ``app``'s master (see the module's table)."""
    registry = app[REGISTRY]
    poller = app.get(POLLER)
    runs = app.get(RUNS)
    entries = list(registry)
    out = _Text()
    out.family("rpiaas_nodes", "gauge", "Nodes by state.", [
        ({"state": "online"}, sum(e.online is True for e in entries)),
        ({"state": "offline"}, sum(e.online is False for e in entries)),
        ({"state": "unknown"}, sum(e.online is None for e in entries))])
    out.family("rpiaas_node_up", "gauge", "1 if the node answered its polls, 0 if not.",
               [({"node": e.name, "domain": e.node.domain}, float(e.online))
                for e in entries if e.online is not None])
    out.family("rpiaas_node_cpu_utilization", "gauge", "CPU use at the node's latest poll.",
               [({"node": e.name}, e.sample.cpu_util) for e in entries if e.sample is not None])
    out.family("rpiaas_node_cpu_busy_seconds_total", "counter",
               "Busy CPU seconds over the node's cores, its agent's counter (since the node's boot,"
               " or on an emulated node its tasks' since the agent started).",
               [({"node": e.name}, e.sample.cpu_busy_s) for e in entries
                if e.sample is not None and e.sample.cpu_busy_s is not None])
    out.family("rpiaas_node_power_watts", "gauge",
               "The node's newest metered power (agent-side hwmon or pmic, or a master-side meter).",
               [({"node": e.name, "source": e.power.source}, e.power.watts)
                for e in entries if e.power is not None])
    out.family("rpiaas_node_power_reading_timestamp_seconds", "gauge",
               "When the node's newest power reading was taken (unix seconds).",
               [({"node": e.name}, e.power.time_s) for e in entries if e.power is not None])
    out.family("rpiaas_node_boot_seconds", "gauge", "The node's last reported boot time.",
               [({"node": e.name}, e.boot_s) for e in entries if e.boot_s is not None])
    if poller is not None:
        lat = poller.latency
        out.family("rpiaas_master_poll_rounds_total", "counter", "Poll rounds since start.",
                   [({}, poller.rounds)])
        out.family("rpiaas_master_polls_total", "counter", "Polls answered or failed since start.",
                   [({"result": "answered"}, lat.answered), ({"result": "failed"}, lat.failed)])
        doc = lat.to_json()
        quantiles = [({"quantile": q}, float(v)) for q, key in
                     (("0.5", "p50_s"), ("0.99", "p99_s")) if (v := doc.get(key)) is not None]
        out.family("rpiaas_master_poll_latency_seconds", "summary",
                   "Poll latency over the recent polls.", quantiles)
        out.lines += [f"rpiaas_master_poll_latency_seconds_count {lat.answered}",
                      f"rpiaas_master_poll_latency_seconds_sum {_num(lat.total_s)}"]
        out.family("rpiaas_master_samples_stored_total", "counter",
                   "Samples written to the history since start.", [({}, poller.samples_stored)])
        out.family("rpiaas_master_power_readings_stored_total", "counter",
                   "Power readings written to the history since start.", [({}, poller.power_stored)])
        out.family("rpiaas_master_meter_failures_total", "counter",
                   "Master-side power meter reads that failed or timed out since start.",
                   [({}, poller.meter_failures)])
    store = app.get(STORE)
    if store is not None:
        health = store_health(store, poller.writer if poller is not None else None)
        out.family("rpiaas_master_store_up", "gauge",
                   "1 while the history store writes, 0 while it fails.",
                   [({}, float(health["status"] == "ok"))])
        out.family("rpiaas_master_store_failed_writes_total", "counter",
                   "History store writes that failed since start.", [({}, health["failed_writes"])])
        out.family("rpiaas_master_store_pending_samples", "gauge",
                   "Samples kept in memory until the history store can write them.",
                   [({}, health["pending_samples"])])
        out.family("rpiaas_master_store_dropped_samples_total", "counter",
                   "Samples dropped, oldest first, while the history store could not write.",
                   [({}, health["dropped_samples"])])
    live: list[Any] = list(runs.runs.values()) if runs is not None else []
    out.family("rpiaas_runs", "gauge", "Live runs by state.",
               [({"state": s}, sum(r.status.state == s for r in live)) for s in RUN_STATES])
    tasks: list[tuple[dict[str, str], float]] = []
    for r in live:
        if r.status.state == "running":
            st = r.status
            tasks += [({"run": r.id, "state": "queued"}, st.queued),
                      ({"run": r.id, "state": "running"}, st.running),
                      ({"run": r.id, "state": "ended"}, st.ended)]
    out.family("rpiaas_run_tasks", "gauge", "A running run's tasks by state.", tasks)
    out.family("rpiaas_run_held", "gauge",
               "1 while a running run is held for lack of disk space (no new starts).",
               [({"run": r.id}, float(bool(r.status.held))) for r in live
                if r.status.state == "running"])
    return "\n".join(out.lines) + "\n"


async def metrics(request: web.Request) -> web.Response:
    """The master in Prometheus text format."""
    return web.Response(body=metrics_text(request.app).encode(), headers={"Content-Type": CONTENT_TYPE})


def setup_metrics(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
