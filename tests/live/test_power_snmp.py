"""A local testbed switched and metered through a PoE switch: SNMP end to end.

Real parts only: Net-SNMP's snmpd in a private network namespace
(:mod:`tests.power.snmpbed`), joined to this machine's namespace by a veth
pair with private addresses; :mod:`tests.power.poe_agent` answers the PoE MIB
for its ports, and a SET on port 1.N ends or starts node N's agent process
(the local testbed's, through the ``process`` driver's own records and
helpers).  The master (a real ``rpiaas master`` process) has each node's
``power: {driver: snmp, ...}`` and ``meter: {source: snmp, ...}`` in its
cluster file: it switches the nodes and reads their ports' power (a scripted
power trace, in mW) over SNMP v2c.

A ``consolidate`` run (``--task-kind cpu``: a burst that needs both nodes, a
lull long enough for one to go off, the same burst again) is checked against
the switch's SET log, the processes' pids and the trace's own integral.  Then
the switch goes away mid-run (snmpd stopped): the switch-on fails, the node
is taken as down, the run completes.  A wrong community, on a testbed of its
own: every switch-off fails, the nodes stay on, the run completes.
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpiaas.power.drivers.process import running_pid
from rpiaas.store import open_store
from rpiaas.testbed.local import POWER_DIR, LocalTestbed, start_local_testbed
from rpiaas.testbed.plan import DOMAIN

from ..power.poe_agent import POWER_OID
from ..power.snmpbed import COMMUNITY, SnmpSwitch, snmp_switch, unavailable
from .test_power_local import _get, _post

pytestmark = [pytest.mark.slow, pytest.mark.integration,
              pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))]

N1, N2 = (f"node{i}.{DOMAIN}" for i in (1, 2))
PORTS = {N1: "1.1", N2: "1.2"}
POLL_S = 2.0  # the master polls the agents and reads the meters (an agent answers within it)
# a burst that needs both nodes (4 + 1 one-core CPU tasks), a lull, the same burst again
TASKS = [{"id": i + 1, "arrival_s": 0.1 * i if i < 5 else 12.0 + 0.05 * (i - 5), "cores": 1,
          "mem_mb": 64, "work_core_s": 6.0} for i in range(10)]
# each port's power: straight lines between these points (s after the trace's start, mW),
# a slow triangle wave, a different one per port.  Slow, as a Pi's power moves between
# readings: a reading is timed when its answer reached the master, up to the meter's
# timeout after the switch took its value (the curve moves 20 mW/s: 20 mW in that 1 s)
METER_TIMEOUT_S = 1.0
TRACES = {"1.1": [[40 * k, 2400 + 800 * (k % 2)] for k in range(15)],
          "1.2": [[40 * k, 3300 - 800 * (k % 2)] for k in range(15)]}


def _scenario(name: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "seed": 3, "sample_interval_s": 0.5,
            "cluster": {"clusters": [{"domain": DOMAIN, "prefix": "127.0.1", "count": 2,
                                      "type": "rpi4b"}]},
            "workload": {"tasks": tasks},
            "policy": {"name": "consolidate", "params": {"idle_timeout_s": 2, "min_on": 1}}}




def _testbed(root: Path, sw: SnmpSwitch, community: str, timeout_s: float = 3.0) -> LocalTestbed:
    """Two local nodes, each on its own port of ``sw`` (switched and metered through it)."""
    data = sw.read_state()
    data["start_unix_s"] = time.time()
    for name, port in PORTS.items():
        data["ports"][port].update(admin=1, linear=True, trace_mw=TRACES[port],
                                   node={"name": name, "state_dir": str(root / POWER_DIR)})
    sw.write_state(data)
    snmp = {"host": sw.address, "community": community, "timeout_s": timeout_s, "retries": 0}
    return start_local_testbed(
        root, 2, poll_interval_s=POLL_S,
        power=[{"driver": "snmp", **snmp, "port": int(p.split(".")[1])} for p in PORTS.values()],
        meter=[{"source": "snmp", **snmp, "timeout_s": METER_TIMEOUT_S, "oid": f"{POWER_OID}.{p}", "scale": 0.001}
               for p in PORTS.values()])


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SnmpSwitch, LocalTestbed]]:
    root = tmp_path_factory.mktemp("snmp-e2e")
    with snmp_switch(root / "switch", host_link=True) as sw, _testbed(root / "tb", sw, COMMUNITY) as tb:
        yield sw, tb


def _run(tb: LocalTestbed, scenario: dict[str, Any], during: Any = None) -> tuple[Path, float]:
    """Run ``scenario`` live with CPU tasks to its end (``during()`` called as it goes);
    its result directory and its t0 (unix seconds)."""
    run_id = _post(tb, "/api/v1/runs", {"scenario": scenario, "file": f"{scenario['name']}.yaml",
                                        "timescale": 1.0, "task_kind": "cpu"})["id"]
    run_dir = tb.dir / "runs" / run_id
    deadline = time.monotonic() + 150
    while (state := _get(tb, f"/api/v1/runs/{run_id}")["state"]) == "running":
        assert time.monotonic() < deadline, "the run did not end in 150 s"
        if during is not None:
            during()
        time.sleep(0.1)
    assert state == "completed", state
    t0 = float(json.loads((run_dir / "journal.jsonl").read_text().splitlines()[0])["t0"])
    return run_dir / "result", t0


def _events(result: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (result / "events.jsonl").read_text().splitlines() if line.strip()]


def _tasks_once(result: Path, tasks: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = list(csv.DictReader((result / "tasks.csv").open()))
    assert sorted(int(r["task_id"]) for r in rows) == sorted(int(t["id"]) for t in tasks)
    assert {r["state"] for r in rows} == {"completed"}
    return rows


def trace_energy_j(port: str, start_unix_s: float, a_s: float, b_s: float,
                   on: list[tuple[float, float]]) -> float:
    """The port's energy from unix ``a_s`` to ``b_s``: its trace (straight lines between the
    points) over the stretches it was on, worked out piece by piece, exactly."""
    points = points_w(port, start_unix_s)
    total = 0.0
    for lo, hi in on:
        lo, hi = max(lo, a_s), min(hi, b_s)
        cuts = sorted({lo, hi, *(t for t, _ in points if lo < t < hi)})
        for x, y in itertools.pairwise(cuts):  # straight on each piece: the trapezoid is its integral
            total += (_at(points, x) + _at(points, y)) / 2 * (y - x)
    return total


def points_w(port: str, start_unix_s: float) -> list[tuple[float, float]]:
    """The port's trace as (unix s, W) points."""
    return [(start_unix_s + t, mw / 1000.0) for t, mw in TRACES[port]]


def slope_w_per_s(port: str) -> float:
    """The port's trace's steepest slope (W/s)."""
    return max(abs(w1 - w0) / (t1 - t0) for (t0, w0), (t1, w1) in itertools.pairwise(points_w(port, 0.0)))


def _at(points: list[tuple[float, float]], t: float) -> float:
    for (t0, w0), (t1, w1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return w0 + (w1 - w0) * (t - t0) / (t1 - t0)
    raise AssertionError(f"{t} is outside the trace")


def test_consolidate_through_a_poe_switch(bed: tuple[SnmpSwitch, LocalTestbed]) -> None:
    sw, tb = bed
    first = {name: running_pid(tb.dir / POWER_DIR, name) for name in PORTS}
    assert all(first.values()), first
    sets_before = len([e for e in sw.log_entries() if "set" in e])
    started = time.monotonic()
    result, t0 = _run(tb, _scenario("poe", TASKS))
    wall_s = time.monotonic() - started
    record = json.loads((result / "run.json").read_text())
    rows = _tasks_once(result, TASKS)
    events = _events(result)
    assert not [e for e in events if e.get("power") == "error"], events

    # consolidate switched one node off in the lull and on again for the second burst
    cycled = [e["node"] for e in events if e.get("act") == "power_on"]
    assert len(cycled) == 1, cycled
    off = cycled[0]
    offs = [e["t"] for e in events if e.get("act") == "power_off" and e["node"] == off]
    ons = [e["t"] for e in events if e.get("act") == "power_on" and e["node"] == off]
    boots = [e["t"] for e in events if e.get("ev") == "booted" and e["node"] == off]
    assert len(offs) == 1 and len(ons) == 1 and len(boots) == 1, (offs, ons, boots)
    assert offs[0] < ons[0] < boots[0]
    # no task started on it while it was off or booting
    assert not [r for r in rows if r["node"] == off and offs[0] < float(r["start_s"]) < boots[0]]
    assert [r for r in rows if r["node"] == off and float(r["start_s"]) >= boots[0]]

    # the switch's log: each SET the run made, on the node's port, with the pid it ended or started
    sets = [e for e in sw.log_entries() if "set" in e][sets_before:]
    port = PORTS[off]
    mine = [e for e in sets if e["set"] == port]
    assert [e["value"] for e in mine] == [2, 1], sets
    old, new = first[off], running_pid(tb.dir / POWER_DIR, off)
    assert old is not None and new is not None and new[0] != old[0]
    assert mine[0]["ended"] == old[0] and mine[1]["started"] == new[0]
    assert t0 + offs[0] <= mine[0]["time_s"] <= t0 + ons[0] <= mine[1]["time_s"] <= t0 + boots[0]
    # the other node's port: at most a switch-off once its last task ended (idle at the end)
    kept = ({N1, N2} - {off}).pop()
    kept_sets = [e for e in sets if e["set"] == PORTS[kept]]
    assert [e["value"] for e in kept_sets] in ([], [2]), kept_sets
    last_end = max(float(r["end_s"]) for r in rows if r["node"] == kept)
    assert all(e["time_s"] >= t0 + last_end for e in kept_sets)

    # what the run recorded: switched through the driver, one power cycle (or two, with the
    # kept node's at the end), one boot, and each metered node's energy measured
    summary = record["summary"]
    assert record["sources"]["switching"] == "switched"
    assert summary["power_cycles"] == 1 + len(kept_sets) and summary["boots"] == 1
    assert record["sources"]["energy_j"] == "measured" and record["gaps"] == []
    duration_s = summary["duration_s"]
    a, b = t0, t0 + duration_s
    start_unix_s = sw.read_state()["start_unix_s"]
    store = open_store(str(tb.dir / "history.db"))
    try:  # when the master read each meter (only the times: the values are the run's to integrate)
        readings = {name: store.power(name, a - 10, b + 10) for name in PORTS}
    finally:
        store.close()
    figures = []
    for node in record["nodes"]:
        name = node["node"]
        assert node["energy_source"] == "measured"
        port_sets = [e for e in sets if e["set"] == PORTS[name]]
        # the port was on from before the run, off from each SET 2 to the next SET 1
        on: list[tuple[float, float]] = []
        since: float | None = a - 1.0
        for e in port_sets:
            if e["value"] == 2 and since is not None:
                on.append((since, e["time_s"]))
                since = None
            elif e["value"] == 1 and since is None:
                since = e["time_s"]
        if since is not None:
            on.append((since, b + 1.0))
        truth = trace_energy_j(PORTS[name], start_unix_s, a, b, on)
        # a switch is a step, which a meter sees only at its next reading: between the last
        # reading before it and the first after, a trapezoid draws a straight line (from the
        # trace's power to 0, or back).  Which readings came before and which after, the
        # readings say (0 W: the port was off; the trace is never 0); where on the master's
        # clock each was taken, their times.  Everywhere else: the trace's own integral.
        points = points_w(PORTS[name], start_unix_s)
        got = readings[name]
        expected = on_s = 0.0
        for r0, r1 in itertools.pairwise(got):
            lo, hi = max(r0.time_s, a), min(r1.time_s, b)
            if hi <= lo:
                continue
            on0, on1 = r0.watts > 0, r1.watts > 0
            on_s += (hi - lo) if on0 or on1 else 0.0
            if on0 and on1:
                expected += trace_energy_j(PORTS[name], start_unix_s, lo, hi, [(lo, hi)])
            elif on0 or on1:
                w0 = _at(points, r0.time_s) if on0 else 0.0
                w1 = _at(points, r1.time_s) if on1 else 0.0
                slope = (w1 - w0) / (r1.time_s - r0.time_s)
                expected += (2 * w0 + slope * (lo + hi - 2 * r0.time_s)) / 2 * (hi - lo)
        # as many steps in the readings as SETs in the switch's log
        flips = [r1 for r0, r1 in itertools.pairwise(got)
                 if (r0.watts > 0) != (r1.watts > 0) and a < r1.time_s and r0.time_s < b]
        assert len(flips) == len([e for e in port_sets if a < e["time_s"] < b]), (flips, port_sets)
        step_j = expected - truth
        error = node["energy_j"] - expected
        # a reading's value is the trace's up to the meter's timeout before its time: at most
        # the trace's steepest slope times that timeout, over each second the port was on
        bound_j = slope_w_per_s(PORTS[name]) * METER_TIMEOUT_S * on_s + 1e-6
        figures.append(f"{name}: trace's integral {truth:.3f} J, its switch steps drawn as the "
                       f"readings' straight lines {step_j:+.3f} J, expected {expected:.3f} J, "
                       f"measured {node['energy_j']:.3f} J ({100 * error / expected:+.3f} %, "
                       f"bound {100 * bound_j / expected:.3f} %)")
        assert abs(error) <= bound_j, figures
    print(f"\nrun {duration_s:.1f} s (wall {wall_s:.1f} s); " + "; ".join(figures))


def test_a_switch_gone_mid_run_is_an_error_event_and_the_run_completes(
        bed: tuple[SnmpSwitch, LocalTestbed]) -> None:
    """snmpd stopped once a node is off: its switch-on fails, it is taken as down, the other
    node runs the second burst; the readings stop, a gap in run.json, not filled."""
    sw, tb = bed

    sets_before = len([e for e in sw.log_entries() if "set" in e])

    def stop_once_off() -> None:
        if any(e.get("value") == 2 for e in [e for e in sw.log_entries() if "set" in e][sets_before:]):
            sw.stop_snmpd()

    result, _ = _run(tb, _scenario("gone", TASKS), stop_once_off)
    assert sw.proc.poll() is not None, "no node was switched off"
    _tasks_once(result, TASKS)
    events = _events(result)
    off = next(e["node"] for e in events if e.get("act") == "power_off")
    errors = [e for e in events if e.get("power") == "error" and e["node"] == off]
    assert errors and errors[-1]["action"] == "on" and errors[-1]["state"] == "failed", errors
    assert all("no answer" in e["error"] and COMMUNITY not in e["error"] for e in errors)
    assert [e for e in events if e.get("ev") == "node_down" and e["node"] == off], events
    assert running_pid(tb.dir / POWER_DIR, off) is None  # never started again
    node = _get(tb, f"/api/v1/nodes/{off}")
    assert node["power_state"] == "failed" and "no answer" in node["last_power_error"]["error"]
    record = json.loads((result / "run.json").read_text())
    assert record["gaps"], "the readings stopped with the switch: a gap"
    tb.stop()  # the next test starts a testbed of its own


def test_a_wrong_community_is_an_error_event_and_the_run_completes(tmp_path: Path) -> None:
    with snmp_switch(tmp_path / "switch", host_link=True) as sw, \
            _testbed(tmp_path / "tb", sw, "not-the-" + COMMUNITY, timeout_s=1) as tb:
        result, _ = _run(tb, _scenario("wrong-community", TASKS))
        _tasks_once(result, TASKS)
        errors = [e for e in _events(result) if e.get("power") == "error"]
        assert "off" in {e["action"] for e in errors}, errors
        assert all("wrong community" in e["error"] for e in errors), errors
        assert not any(COMMUNITY in json.dumps(e) for e in errors)
        # the switch saw no SET, and no agent ended
        assert not [e for e in sw.log_entries() if "set" in e]
        assert all(running_pid(tb.dir / POWER_DIR, name) for name in PORTS)
        node = _get(tb, f"/api/v1/nodes/{errors[0]['node']}")
        assert node["last_power_error"] is not None and COMMUNITY not in json.dumps(node)
