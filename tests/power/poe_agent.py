"""A PoE switch's ports for Net-SNMP's snmpd: a ``pass_persist`` program answering from a state file.

snmpd runs it (``pass_persist .1.3.6.1.2.1.105 PYTHON poe_agent.py STATE LOG``,
and once more for the power subtree) and asks over stdin and stdout in the
pass_persist protocol (snmpd.conf(5)): ``PING``, ``get``, ``getnext``,
``set``.  It answers, for every port ``GROUP.PORT`` of the state file:

- ``pethPsePortAdminEnable`` (1.3.6.1.2.1.105.1.1.1.3.GROUP.PORT, read-write,
  1 powered, 2 not): a SET writes the state file and logs a line;
- ``pethPsePortDetectionStatus`` (…1.6.GROUP.PORT): 3 delivering power, 1 disabled;
- a per-port power reading in mW (:data:`POWER_OID`.GROUP.PORT, under the
  enterprise number RFC 5612 sets aside for documentation, as a vendor's
  power OID would be): 0 while the port is off, else the value of the port's
  power trace at the time asked: a scripted meter.

The state file (JSON, re-read at every request)::

    {"start_unix_s": 1765000000.0,
     "ports": {"1.1": {"admin": 1, "trace_mw": [[0, 2000], [30, 4500]], "sleep_s": 0,
                       "linear": false, "node": {"name": "node1...", "state_dir": "..."}}}}

``trace_mw`` is a step function: ``[t_s, mW]`` pairs, t_s counted from
``start_unix_s``, each value holding until the next step (0 before the
first); with ``"linear": true`` the power moves in a straight line from one
pair to the next instead (and holds the last value).  ``sleep_s`` makes every request about that port wait that long
before the answer (a switch that does not answer in time).  The log gets one
JSON line per SET (``{"set": "1.1", "value": 2, "time_s": ...}``) and per
sleep.

``node`` makes the port power a local testbed's node: the port's SET ends
(``2``) or starts (``1``) that node's agent process, through the same
records and helpers as the ``process`` power driver
(:class:`rpiaas.power.drivers.process.NodeProcess` in ``state_dir``) before
the SET is answered, as a Pi loses power with its port; the log line of
that SET gives the pid ended or started (``"ended"``, ``"started"``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

PETH_PORT = "1.3.6.1.2.1.105.1.1.1"
ADMIN_COLUMN, DETECTION_COLUMN = 3, 6
POWER_OID = "1.3.6.1.4.1.32473.105.1"


def load(state: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(state.read_text())
    return data


def save(state: Path, data: dict[str, Any]) -> None:
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, state)


def log(path: Path, **entry: object) -> None:
    with path.open("a") as f:
        f.write(json.dumps({**entry, "time_s": time.time()}) + "\n")


def trace_mw(port: dict[str, Any], at_s: float) -> float:
    points = port.get("trace_mw", [])
    value = 0.0
    for k, (t_s, mw) in enumerate(points):
        if t_s > at_s:
            break
        value = float(mw)
        if port.get("linear") and k + 1 < len(points) and at_s < points[k + 1][0]:
            t1, mw1 = points[k + 1]
            value += (mw1 - mw) * (at_s - t_s) / (t1 - t_s)
    return value


def switch_node(node: dict[str, Any], on: bool) -> dict[str, int]:
    """End or start the agent process that is ``node``; the pid ended or started, if any."""
    import asyncio

    from rpiaas.power.drivers.process import NodeProcess, running_pid

    proc = NodeProcess(node["name"], Path(node["state_dir"]), float(node.get("timeout_s", 5.0)))
    current = running_pid(proc.state_dir, proc.name)
    if on:
        return {} if current is not None else {"started": proc.start()}
    if current is None:
        return {}
    asyncio.run(proc.end(*current))
    return {"ended": current[0]}


def _key(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.strip(".").split("."))


def objects(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every object this program answers, in OID order: (oid, type, port)."""
    out = []
    for port in data["ports"]:
        out.append((f"{PETH_PORT}.{ADMIN_COLUMN}.{port}", "integer", port))
        out.append((f"{PETH_PORT}.{DETECTION_COLUMN}.{port}", "integer", port))
        out.append((f"{POWER_OID}.{port}", "gauge", port))
    return sorted(out, key=lambda o: _key(o[0]))


def value(data: dict[str, Any], oid: str, port: str) -> int:
    p = data["ports"][port]
    on = p.get("admin", 1) == 1
    if oid.startswith(f"{PETH_PORT}.{ADMIN_COLUMN}."):
        return 1 if on else 2
    if oid.startswith(f"{PETH_PORT}.{DETECTION_COLUMN}."):
        return 3 if on else 1
    # a gauge is an integer: mW, rounded
    return round(trace_mw(p, time.time() - data.get("start_unix_s", 0.0))) if on else 0


def serve(state: Path, logfile: Path, prefix: str) -> None:
    out = sys.stdout
    while True:
        command = sys.stdin.readline()
        if not command:
            return
        command = command.strip()
        if not command:  # snmpd ends a set with an empty line: it asks nothing
            continue
        if command == "PING":
            out.write("PONG\n")
        elif command in ("get", "getnext", "set"):
            oid = sys.stdin.readline().strip().lstrip(".")
            given = sys.stdin.readline().split() if command == "set" else []
            data = load(state)
            found = [o for o in objects(data) if o[0].startswith(prefix)]
            if command == "getnext":
                match = next((o for o in found if _key(o[0]) > _key(oid)), None)
            else:
                match = next((o for o in found if o[0] == oid), None)
            if match is not None and data["ports"][match[2]].get("sleep_s", 0) > 0:
                time.sleep(data["ports"][match[2]]["sleep_s"])
                log(logfile, slept=match[2])
            if command == "set":
                if match is None or not match[0].startswith(f"{PETH_PORT}.{ADMIN_COLUMN}."):
                    out.write("not-writable\n")
                elif len(given) != 2 or given[0] != "integer":
                    out.write("wrong-type\n")
                elif given[1] not in ("1", "2"):
                    out.write("wrong-value\n")
                else:
                    port = data["ports"][match[2]]
                    port["admin"] = int(given[1])
                    done: dict[str, Any]
                    try:
                        done = switch_node(port["node"], port["admin"] == 1) if "node" in port else {}
                    except Exception as e:  # the port is switched; the node's process is what failed
                        done = {"error": f"{type(e).__name__}: {e}"}
                    save(state, data)
                    log(logfile, set=match[2], value=int(given[1]), **done)
                    out.write("DONE\n")
            elif match is None:
                out.write("NONE\n")
            else:
                out.write(f".{match[0]}\n{match[1]}\n{value(data, match[0], match[2])}\n")
        else:
            out.write("NONE\n")
        out.flush()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].lstrip("."))
