"""The OpenAPI 3.1 document of the master's JSON API, served at ``GET /api/v1/openapi.json``.

:func:`openapi_document` builds it as a plain dict, tested like code: valid, exactly the
routes the app registers (under ``/api/v1/``, ``/metrics`` and ``/healthz``), real answers conform.
The API (``GET /metrics``, open, is :mod:`rpiaas.master.metrics`), under ``/api/v1/``:

================================  =====  =============================================
``GET  nodes``                    open   every node with its current state and tasks
``GET  clusters``                 open   the clusters: domain, prefix, node names
``GET  nodes/{name}``             open   one node with its last state changes
``GET  nodes/{name}/history``     open   its samples, ``?start=&end=&resolution=``
``GET  summary``                  open   node counts, mean CPU use, poll latency, the store's state
``GET  openapi.json``             open   this document
``POST nodes/{name}/poll``        token  poll the node now
``POST history/compact``          token  ``{before, resolution}``: downsample old samples
``POST history/purge``            token  ``{before}``: delete old history
``POST runs``                     token  replay a scenario on the testbed (live mode)
``GET  runs``                     open   the live runs since the master started, with progress
``GET  runs/{id}``                open   a run's state, counts, progress and files
``GET  runs/{id}/files/{name}``   open   a file of a completed run's directory
``DELETE runs/{id}``              token  cancel a run
``POST task-ended``               node   an agent pushes a task's end (its node's token)
``POST nodes/{name}/booting``     token  the node was just powered on
``POST nodes/{name}/booted``      node   ``{uptime_s}``: the node has booted (its token,
                                         from its address; see ``boot.py``)
================================  =====  =============================================

Times are unix seconds, durations seconds; ``cpu_util``, ``cpu_per_core`` and
``disk_used_ratio`` are fractions in [0, 1].  Every error is a JSON object
``{"error": "..."}`` with a 4xx or 5xx status.  The dashboard's HTML pages
are not part of the API and not described here.
"""

from __future__ import annotations

import copy
from typing import Any

from ..live.options import RUN_ID_MAX, RUN_ID_PATTERN, TASK_KINDS
from ..live.push import PUSH_SCHEMA
from .http import MIN_RESOLUTION_S, RECENT_STATES

__all__ = ["OPENAPI_PATH", "openapi_document"]

OPENAPI_PATH = "/api/v1/openapi.json"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    """``schema`` or null (JSON Schema 2020-12, as OpenAPI 3.1 has it)."""
    if "type" in schema:
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], description: str = "") -> Schema:
    """A closed JSON object whose properties are all present."""
    out: Schema = {"type": "object", "required": list(properties), "properties": properties,
                   "additionalProperties": False}
    if description:
        out["description"] = description
    return out


_SECONDS = {"type": "number", "minimum": 0}
_FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
_COUNT = {"type": "integer", "minimum": 0}

_STORE_STATUS: Schema = {"type": "string", "pattern": "^(ok|failing: .+)$", "description":
                         "The history store: ok, or failing and why (the master answers from "
                         "its memory meanwhile)."}

_SCHEMAS: dict[str, Schema] = {
    "Error": _object({"error": {"type": "string"}}, "What went wrong."),
    "Sample": _object({
        "node": {"type": "string", "minLength": 1},
        "time_s": {**_SECONDS, "description": "When measured (unix s); a bucket's start."},
        "cpu_util": _FRACTION,
        "mem_used_mb": {"type": "number", "minimum": 0},
        "mem_total_mb": {"type": "number", "minimum": 0},
        "load1": {"type": "number", "minimum": 0},
        "disk_used_ratio": _FRACTION,
        "temperature_c": _nullable({"type": "number"}),
        "cpu_per_core": _nullable({"type": "array", "items": _FRACTION}),
        "online": {"type": "boolean"},
        "count": {"type": "integer", "minimum": 1,
                  "description": "Raw samples this row stands for (1 for a raw sample)."},
        "resolution_s": {**_SECONDS,
                         "description": "Bucket length it was averaged over (0 for raw)."},
        "cpu_busy_s": _nullable({**_SECONDS, "description":
                                 "The node's busy CPU seconds over its cores, a counter (since boot, "
                                 "or an emulated node's tasks' since its agent started); null on "
                                 "a bucket's mean or where the agent gives none."}),
    }, "One measurement of a node, or the mean over a bucket of them."),
    "StateChange": _object({
        "time_s": _SECONDS,
        "online": {"type": "boolean"},
        "reason": {"type": "string", "description": "Why it went offline; empty when online."},
    }),
    "Node": _object({
        "name": {"type": "string", "minLength": 1},
        "type": {"type": "string", "description": "Its node type, e.g. rpi4b."},
        "address": _nullable({"type": "string"}),
        "agent": {"type": "string", "description": "The agent's base URL."},
        "online": _nullable({"type": "boolean", "description": "null until first polled."}),
        "changed_s": _nullable(_SECONDS),
        "last_ok_s": _nullable(_SECONDS),
        "reason": {"type": "string"},
        "booting_since_s": _nullable({**_SECONDS, "description":
                                      "When it was said to be powered on, until its boot report."}),
        "power_state": _nullable({"type": "string",
                                  "enum": ["off", "booting", "on", "unknown", "failed", None],
                                  "description": "As a live run switched it through its power "
                                                 "driver; null if never switched."}),
        "emulated": _nullable({"type": "boolean", "description":
                               "Whether its agent's last report was an emulated node's (a local "
                               "testbed): CPU and memory of the agent's own tasks against the node "
                               "type's cores and memory, not the host's; null until it answered."}),
        "task_runner": _nullable({"type": "string", "description":
                                  "What a task is on its agent: `process` (a process group), or "
                                  "`timer` (a node of rpiaas-agent-emulated, which serves many "
                                  "emulated nodes in one process); null until it answered."}),
        "clock_offset_s": _nullable({"type": "number"}),  # its clock minus the master's
        "clock_error_s": _nullable({"type": "number"}),  # how far clock_offset_s may be off
        "power": _nullable(_object({
            "power_w": {"type": "number"}, "time_s": _SECONDS,
            "source": {"type": "string", "description": "hwmon, pmic (read by its agent), or the "
                                                        "master-side meter's source."}},
            "Its newest power reading; null without a meter, or before the first reading.")),
        "sample": _nullable(_ref("Sample")),
        "tasks": {"type": "array", "items": _ref("Placement"),
                  "description": "The live runs' tasks started on it and not ended yet."},
        "capacity": _object({"cores": {"type": "integer"}, "mem_mb": {"type": "integer"}},
                            "Its node type's cores and memory."),
        "allocated": _object({"cores": {"type": "integer"}, "mem_mb": {"type": "integer"}},
                             "What the live runs' tasks on it reserve now."),
    }, "A node, its agent's address and its current state."),
    "Placement": _object({
        "run": {"type": "string", "description": "The run's id."},
        "task": {"type": "integer", "description": "The task's id in the run's workload."},
    }, "A task of a live run, on a node."),
    "ClusterGroup": _object({
        "domain": {"type": "string", "description": "Its DNS domain (node names end in it)."},
        "prefix": {"type": "string", "description": "Its IPv4 prefix (addresses prefix.suffix)."},
        "nodes": {"type": "array", "items": {"type": "string"}},
    }, "One cluster of the cluster config."),
    "ClusterList": _object({"clusters": {"type": "array", "items": _ref("ClusterGroup")}}),
    "NodeList": _object({
        "nodes": {"type": "array", "items": _ref("Node")},
        "total": {**_COUNT, "description": "Nodes in all, on every page."},
        "offset": {**_COUNT, "description": "The first node of this page, counted from 0."},
        "limit": _nullable({**_COUNT, "description": "The page size asked for; null: every node."}),
        "store": _STORE_STATUS,
    }),
    "History": _object({
        "node": {"type": "string"},
        "start": _nullable(_SECONDS),
        "end": _nullable(_SECONDS),
        "resolution": _nullable({"type": "number", "minimum": MIN_RESOLUTION_S}),
        "samples": {"type": "array", "items": _ref("Sample")},
    }),
    "PollLatency": _object({
        "answered": _COUNT,
        "failed": _COUNT,
        "window": {**_COUNT, "description": "Answered polls the quantiles are over."},
        "p50_s": _nullable(_SECONDS),
        "p99_s": _nullable(_SECONDS),
        "max_s": _nullable(_SECONDS),
        "last_round_s": _nullable(_SECONDS),
    }, "Latency of the agents' answers since the master started."),
    "Summary": _object({
        "nodes": _COUNT,
        "online": _COUNT,
        "offline": _COUNT,
        "unknown": {**_COUNT, "description": "Not polled yet."},
        "cpu_util_mean": _nullable(_FRACTION),
        "poll_rounds": _COUNT,
        "poll_interval_s": {"type": "number", "exclusiveMinimum": 0},
        "poll_latency": _nullable(_ref("PollLatency")),
        "store": _STORE_STATUS,
        "poll_age": _nullable(_object({
            "nodes": {**_COUNT, "description": "Nodes whose agent answered at least once."},
            "p50_s": _nullable(_SECONDS),
            "p99_s": _nullable(_SECONDS),
            "max_s": _nullable(_SECONDS),
        }, "Seconds since each node's agent last answered a poll, over the nodes.")),
    }),
    "Health": _object({
        "status": {"type": "string", "enum": ["ok", "degraded"],
                   "description": "degraded while the history store fails (the master polls on)."},
        "store": _object({
            "status": _STORE_STATUS,
            "failed_writes": {**_COUNT, "description": "Store writes that failed since start."},
            "pending_samples": {**_COUNT, "description": "Samples kept until the store can write."},
            "dropped_samples": {**_COUNT, "description":
                                "Samples dropped, oldest first, while the store could not write."},
        }),
        "poll_rounds": _COUNT,
    }, "The master's health."),
    "CompactRequest": _object({
        "before": {**_SECONDS, "description": "Compact samples older than this (unix s)."},
        "resolution": {"type": "number", "minimum": MIN_RESOLUTION_S,
                       "description": "Bucket length (s)."},
    }),
    "CompactResult": _object({"replaced": _COUNT, "written": _COUNT}),
    "PurgeRequest": _object({
        "before": {**_SECONDS, "description": "Delete what is older than this (unix s)."},
    }),
    "PurgeResult": _object({"samples": _COUNT, "states": _COUNT, "events": _COUNT, "power": _COUNT}),
    "RunRequest": {
        "type": "object", "required": ["scenario"], "additionalProperties": False,
        "properties": {
            "scenario": {"type": "object",
                         "description": "The scenario as its YAML reads, cluster inlined."},
            "id": {"type": "string", "minLength": 1, "maxLength": RUN_ID_MAX,
                   "pattern": RUN_ID_PATTERN,
                   "description": "The run's id (``rpiaas run --live`` asks for its run "
                                  "directory's name); ``-2``, ``-3``, ... is added when a run "
                                  "has it already.  Default: the scenario's name and the time."},
            "file": {"type": "string", "description": "The scenario's file name (for messages)."},
            "timescale": {"type": "number", "exclusiveMinimum": 0,
                          "description": "Wall seconds per scenario second (default 1)."},
            "task_kind": {"enum": list(TASK_KINDS),
                          "description": "Tasks as sleeps of their modelled runtime, as real "
                                         "work, or each as its kind says (sleep or work)."},
        }},
    "Run": _object({
        "id": {"type": "string"},
        "state": {"enum": ["running", "completed", "failed", "cancelled", "suspended"],
                  "description": "suspended: stopped for lack of disk space, resumable "
                                 "(rpiaas master --resume)."},
        "error": {"type": "string"},
        "held": {"type": "string", "description": "Why the run is held (no new starts: its "
                                                  "journal finds no disk space); empty if not."},
        "held_s": {**_SECONDS, "description": "How long it has been held now."},
        "arrived": _COUNT,
        "ended": _COUNT,
        "queued": _COUNT,
        "running": _COUNT,
        "now_s": {"type": "number", "description": "Scenario time reached (s)."},
    }, "A live run and how far it got."),
    "TaskEnded": PUSH_SCHEMA,  # the one schema the master checks every push with
    "BootReport": _object({
        "uptime_s": {**_SECONDS, "description": "The node's /proc/uptime: seconds since its "
                                                "kernel started, kept as its boot time."},
    }),
    "BootRecorded": _object({
        "node": {"type": "string"},
        "time_s": {**_SECONDS, "description": "When the master recorded it (unix s)."},
        "boot_s": _SECONDS,
        "via": {"enum": ["address", "token"],
                "description": "How the report was recognised as the node's."},
    }),
    "LastBoot": _object({
        "time_s": _SECONDS,
        "boot_s": _nullable(_SECONDS),
        "power_on_s": _nullable({**_SECONDS, "description":
                                 "From the booting call to the report (s), if there was one."}),
    }, "The node's last boot report: when, and its boot time (s)."),
    "TaskEndedResult": _object({"known": {"type": "boolean",
                                          "description": "Whether a run knew the task."}}),
}
_run_detail = copy.deepcopy(_SCHEMAS["Run"])
_run_detail["properties"].update({
    "policy": {"type": "string", "description": "The scenario's placement policy."},
    "queue": _nullable({"type": "string", "description": "Its queue policy, if any."}),
    "task_kind": {"enum": list(TASK_KINDS), "description": "How its tasks run (RunRequest)."},
    "timescale": {"type": "number", "exclusiveMinimum": 0,
                  "description": "Wall seconds per scenario second."},
    "files": {"type": "array", "items": {"type": "string"},
              "description": "Files of the run directory, once completed "
                             "(``runs/{id}/files/{name}``)."},
    "tasks_total": _nullable({**_COUNT, "description": "Tasks in the workload, when known."}),
    "horizon_s": _nullable({"type": "number", "exclusiveMinimum": 0,
                            "description": "The scenario's horizon (scenario s), if any."}),
    "progress": _nullable({**_FRACTION, "description":
                           "Tasks ended over tasks_total when known, else now_s over horizon_s; "
                           "1 once completed; null when neither is known."}),
})
_run_detail["required"] += ["policy", "queue", "task_kind", "timescale", "files", "tasks_total",
                             "horizon_s", "progress"]
_SCHEMAS["RunDetail"] = _run_detail
_SCHEMAS["RunList"] = _object({"runs": {"type": "array", "items": _ref("RunDetail")}})
# A node's own document: the Node fields and its last state changes.
_detail = copy.deepcopy(_SCHEMAS["Node"])
_detail["properties"]["states"] = {"type": ["array", "null"], "maxItems": RECENT_STATES,
                                   "items": _ref("StateChange"),
                                   "description": "The last state changes, newest last; null "
                                                  "(and last_boot, last_power_error) while the "
                                                  "history store does not answer."}
_detail["required"].append("states")
_detail["properties"]["store"] = _STORE_STATUS
_detail["required"].append("store")
_SCHEMAS["NodeState"] = copy.deepcopy(_SCHEMAS["Node"])
for _key in ("sample", "tasks", "allocated"):
    del _SCHEMAS["NodeState"]["properties"][_key]
    _SCHEMAS["NodeState"]["required"].remove(_key)
_detail["properties"]["last_boot"] = _nullable(_ref("LastBoot"))
_detail["required"].append("last_boot")
_detail["properties"]["last_power_error"] = _nullable({
    "type": "object", "description": "The last failed or timed-out power call of a live run.",
    "properties": {"time_s": _SECONDS, "action": {"type": "string", "enum": ["on", "off"]},
                   "state": {"type": "string"}, "error": {"type": "string"}},
    "required": ["time_s", "action", "state", "error"]})
_detail["required"].append("last_power_error")
_SCHEMAS["NodeDetail"] = _detail


def _error(description: str) -> Schema:
    return {"description": description,
            "content": {"application/json": {"schema": _ref("Error")}}}


_RESPONSES: dict[str, Schema] = {
    "BadRequest": _error("A bad parameter or body."),
    "Unauthorized": {**_error("Missing or wrong bearer token, or none configured."),
                     "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
    "NotFound": _error("No such node (or path)."),
    "MethodNotAllowed": {**_error("The path does not take this method."),
                         "headers": {"Allow": {"schema": {"type": "string"}}}},
    "PayloadTooLarge": _error("The body is over the master's ``max_body_bytes``."),
    "UnsupportedMediaType": _error("A body that is not ``application/json``."),
    "ServiceUnavailable": _error("The poller is not running, or the history store did not answer "
                                 "within a second (the reason in the error)."),
    "Forbidden": _error("Not the node's: a boot report without its token or from elsewhere, "
                         "a task end for a task another node runs."),
}


def _responses(ok: Schema, *errors: str) -> dict[str, Schema]:
    out: dict[str, Schema] = {"200": ok}
    for code, name in (("400", "BadRequest"), ("401", "Unauthorized"), ("404", "NotFound"),
                       ("405", "MethodNotAllowed"), ("413", "PayloadTooLarge"),
                       ("415", "UnsupportedMediaType"), ("503", "ServiceUnavailable")):
        if code in errors:
            out[code] = {"$ref": f"#/components/responses/{name}"}
    return out


def _ok(description: str, schema: str | Schema) -> Schema:
    body = _ref(schema) if isinstance(schema, str) else schema
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _get(op_id: str, summary: str, ok: Schema, *errors: str, **extra: Any) -> Schema:
    return {"operationId": op_id, "summary": summary,
            "responses": _responses(ok, "405", *errors), **extra}


def _post(op_id: str, summary: str, ok: Schema, request: str | None, *errors: str,
          **extra: Any) -> Schema:
    out: Schema = {"operationId": op_id, "summary": summary, "security": [{"bearerToken": []}],
                   "responses": _responses(ok, "400", "401", "405", "413", "415", *errors),
                   **extra}
    if request is not None:
        out["requestBody"] = {"required": True,
                              "content": {"application/json": {"schema": _ref(request)}}}
    return out


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "The node's name, ``hostname.domain``."}


_RUN = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "The run's id."}


def _created(op: Schema) -> Schema:
    """``op`` answering 201 instead of 200."""
    op["responses"]["201"] = op["responses"].pop("200")
    return op


def _query(name: str, minimum: float, description: str) -> Schema:
    # an empty value counts as left out, as an HTML form sends an empty field
    return {"name": name, "in": "query", "required": False, "allowEmptyValue": True,
            "description": description, "schema": {"type": "number", "minimum": minimum}}


def _int_query(name: str, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "allowEmptyValue": True,
            "description": description, "schema": {"type": "integer", "minimum": 0}}


def openapi_document() -> dict[str, Any]:
    """The master API's OpenAPI 3.1 document (a fresh dict on each call)."""
    paths: dict[str, Schema] = {
        "/api/v1/nodes": {"get": _get(
            "listNodes", "Every node (or a page of them) with its agent address and current state.",
            _ok("The nodes in cluster order.", "NodeList"), "400",
            parameters=[_int_query("offset", "Skip this many nodes (default 0)."),
                        _int_query("limit", "At most this many nodes (default: every one).")])},
        "/api/v1/nodes/{name}": {"parameters": [_NAME], "get": _get(
            "getNode", "One node: its state, newest sample and last state changes.",
            _ok("The node.", "NodeDetail"), "404")},
        "/api/v1/nodes/{name}/history": {"parameters": [_NAME], "get": _get(
            "getNodeHistory", "A node's samples in [start, end), optionally downsampled.",
            _ok("The samples, by time.", "History"), "400", "404", "503",
            parameters=[
                _query("start", 0, "From this time on (unix s); open if left out."),
                _query("end", 0, "Before this time (unix s), not before start; open if left out."),
                _query("resolution", MIN_RESOLUTION_S,
                       "Bucket length (s): one mean sample per non-empty bucket."),
            ])},
        "/api/v1/nodes/{name}/poll": {"parameters": [_NAME], "post": _post(
            "pollNode", "Poll the node now; its document afterwards.",
            _ok("The node after the poll.", "NodeDetail"), None, "404", "503",
            description="Takes no body (or an empty JSON object).")},
        "/api/v1/clusters": {"get": _get(
            "listClusters", "The cluster config's clusters (domain, prefix, node names).",
            _ok("The clusters in config order.", "ClusterList"))},
        "/metrics": {"get": _get("getMetrics", "The master in Prometheus text format 0.0.4.", {
            "description": "The metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}})},
        "/healthz": {"get": _get(
            "getHealth", "ok, or degraded while the history store fails (200 either way).",
            _ok("The master's health.", "Health"))},
        "/api/v1/summary": {"get": _get(
            "getSummary", "Node counts, mean CPU use of the online nodes, poll latency.",
            _ok("The summary.", "Summary"))},
        "/api/v1/history/compact": {"post": _post(
            "compactHistory", "Replace samples before ``before`` by bucket means.",
            _ok("Rows replaced and written.", "CompactResult"), "CompactRequest")},
        "/api/v1/history/purge": {"post": _post(
            "purgeHistory", "Delete samples, power readings, state changes and events before ``before``.",
            _ok("Rows deleted, by kind.", "PurgeResult"), "PurgeRequest")},
        "/api/v1/runs": {
            "get": _get("listRuns", "The live runs since this master started.",
                        _ok("The runs.", "RunList")),
            "post": _created(_post(
                "startRun", "Replay a scenario on the testbed through the same control plane.",
                _ok("The run, started.", "Run"), "RunRequest"))},
        "/api/v1/runs/{id}": {
            "parameters": [_RUN],
            "get": _get("getRun", "A run's state and counts.", _ok("The run.", "RunDetail"), "404"),
            "delete": {**_post("cancelRun", "Cancel a run: its tasks are killed, no result.",
                               _ok("The run, cancelled.", "Run"), None, "404"),
                       "responses": _responses(_ok("The run.", "Run"), "401", "404", "405")}},
        "/api/v1/runs/{id}/files/{name}": {
            "parameters": [_RUN, {"name": "name", "in": "path", "required": True,
                                  "schema": {"type": "string"}}],
            "get": _get("getRunFile", "A file of a completed run's directory.",
                        {"description": "The file.", "content": {"text/plain": {
                            "schema": {"type": "string"}}}}, "404")},
        "/api/v1/nodes/{name}/booted": {"parameters": [_NAME], "post": {
            **_post("nodeBooted", "The node reports that it has booted (with its node token, "
                    "from its own address).",
                    _ok("The boot as recorded.", "BootRecorded"), "BootReport", "404"),
            "security": [{"nodeToken": []}],
            "responses": {**_responses(_ok("The boot as recorded.", "BootRecorded"),
                                       "400", "404", "405", "413", "415"),
                          "403": {"$ref": "#/components/responses/Forbidden"}}}},
        "/api/v1/nodes/{name}/booting": {"parameters": [_NAME], "post": _post(
            "nodeBooting", "The node was just powered on: booting until its boot report.",
            _ok("The node.", "NodeState"), None, "404",
            description="Takes no body (or an empty JSON object).")},
        "/api/v1/task-ended": {"post": {**_post(
            "taskEnded", "An agent pushes a task's end (with its node's token); a task running "
            "on another node is refused (403), a document outside the schema or its attempt "
            "too (400, naming the field; nothing is booked).",
            _ok("Whether a run knew the task.", "TaskEndedResult"), "TaskEnded"),
            "security": [{"nodeToken": []}],
            "responses": {**_responses(_ok("Whether a run knew the task.", "TaskEndedResult"),
                                       "400", "401", "405", "413", "415"),
                          "403": {"$ref": "#/components/responses/Forbidden"}}}},
        OPENAPI_PATH: {"get": _get(
            "getOpenApi", "This document.",
            _ok("The OpenAPI document.", {"type": "object"}))},
    }
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "rpiaas master", "version": "1",
                 "description": "Nodes, their state and history, as polled from their agents. "
                                "Reading is open; POST needs the bearer token."},
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "responses": _RESPONSES,
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer"},
                "nodeToken": {"type": "http", "scheme": "bearer",
                              "description": "A node's own token: HMAC-SHA256 of the node's "
                                             "name keyed with the master's node secret, in "
                                             "hex."}},
        },
    })
