"""``GET /metrics``: the master in Prometheus text format, parsed by Prometheus's own parser."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from rpiaas.testbed.local import start_local_testbed

pytestmark = [pytest.mark.slow, pytest.mark.integration]

parser = pytest.importorskip("prometheus_client.parser")


def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_the_master_speaks_prometheus(tmp_path: Path) -> None:
    with start_local_testbed(tmp_path, 2, poll_interval_s=0.25) as tb:
        deadline = time.monotonic() + 10
        m = _scrape(tb.master_url)
        while m["rpiaas_master_poll_rounds_total"][0][1] < 3 and time.monotonic() < deadline:
            time.sleep(0.25)
            m = _scrape(tb.master_url)
        nodes = {labels["state"]: v for labels, v in m["rpiaas_nodes"]}
        assert nodes == {"online": 2.0, "offline": 0.0, "unknown": 0.0}
        up = {labels["node"]: (labels["domain"], v) for labels, v in m["rpiaas_node_up"]}
        assert up == {name: ("local.rpiaas.test", 1.0) for name in tb.agents}
        assert {labels["node"] for labels, _ in m["rpiaas_node_cpu_utilization"]} == set(tb.agents)
        assert all(0.0 <= v <= 1.0 for _, v in m["rpiaas_node_cpu_utilization"])
        polls = {labels["result"]: v for labels, v in m["rpiaas_master_polls_total"]}
        assert polls["answered"] >= 2 * 3 and polls["failed"] == 0
        assert m["rpiaas_master_samples_stored_total"][0][1] == polls["answered"]
        latency = {labels["quantile"]: v for labels, v in m["rpiaas_master_poll_latency_seconds"]}
        assert 0 < latency["0.5"] <= latency["0.99"] < 5
        assert m["rpiaas_master_poll_latency_seconds_count"][0][1] == polls["answered"]
        assert {labels["state"]: v for labels, v in m["rpiaas_runs"]} == {
            "running": 0.0, "completed": 0.0, "failed": 0.0, "cancelled": 0.0,
            "suspended": 0.0}
        # a run in progress shows its tasks
        doc = {"name": "scraped", "seed": 1, "cluster": {"clusters": [
            {"domain": "local.rpiaas.test", "prefix": "127.0.1", "count": 2, "type": "rpi4b"}]},
            "workload": {"tasks": [{"id": i, "arrival_s": 0.0, "cores": 1, "mem_mb": 64,
                                    "work_core_s": 30.0} for i in range(1, 4)]},
            "policy": "first_fit"}
        req = urllib.request.Request(
            tb.master_url + "/api/v1/runs", method="POST",
            data=json.dumps({"scenario": doc, "file": "scraped.json"}).encode(),
            headers={"Authorization": f"Bearer {tb.master_token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            run_id = json.load(r)["id"]
        deadline = time.monotonic() + 10
        while True:
            m = _scrape(tb.master_url)
            tasks = {labels["state"]: v for labels, v in m.get("rpiaas_run_tasks", [])
                     if labels["run"] == run_id}
            if tasks.get("running") == 3.0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert tasks == {"queued": 0.0, "running": 3.0, "ended": 0.0}, tasks
        assert {labels["state"]: v for labels, v in m["rpiaas_runs"]}["running"] == 1.0
