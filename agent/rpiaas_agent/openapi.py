"""The OpenAPI 3.1 document of the agent's HTTP API, served at ``GET /openapi.json``.

:func:`openapi_document` builds it as a plain dict.  The agent's tests check
that it is a valid OpenAPI document, that it lists exactly the routes the app
registers, and that the agent's real answers conform to it.

=====================  =====  ================================================
``GET /ping``          open   ``{"status": "ok"}``: the agent is up
``GET /info``          open   the node report (:mod:`rpiaas_agent.report`)
``GET /metrics``       open   the same report, Prometheus text format 0.0.4
``GET /config``        token  the agent's settings, without the token
``GET /openapi.json``  open   this document
``GET /tasks``         token  the running tasks, then the recently finished ones
``POST /tasks``        token  start a task; 201 with its document
``GET /tasks/{id}``    token  one task
``DELETE /tasks/{id}`` token  kill a task's process group; its final document
=====================  =====  ================================================

``HEAD`` works wherever ``GET`` does.  Every error is a JSON object
``{"error": "...", "status": N}``.  Units are in the field names (``_bytes``,
``_s``, ``_c``, ``_ratio``; ratios are fractions in [0, 1]); a reading the
node does not have is ``null``.
"""

from __future__ import annotations

import copy
from typing import Any

from .prometheus import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .readings import THROTTLE_FLAGS
from .taskspec import COMMON, ENV_NAME_PATTERN, FIELDS, ID_PATTERN, IMAGE_PATTERN, KINDS, LIMITS, REQUIRED

__all__ = ["OPENAPI_PATH", "openapi_document"]

OPENAPI_PATH = "/openapi.json"

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


_RATIO = {"type": "number", "minimum": 0, "maximum": 1}
_BYTES = {"type": "integer", "minimum": 0}
_SECONDS = {"type": "number", "minimum": 0}
_LOAD = {"type": "number", "minimum": 0}
_COUNT = {"type": "integer", "minimum": 0}
_MB = {"type": "number", "minimum": 0}
_NUMBER_OR_NULL = {"type": ["number", "null"], "minimum": 0}


def _task_request(kind: str) -> Schema:
    """The body of ``POST /tasks`` for one kind: a closed object."""
    positive = {"type": "number", "exclusiveMinimum": 0}
    fields: dict[str, Schema] = {
        "id": {"type": "string", "pattern": ID_PATTERN,
               "description": "The caller's name for the task, unique on the node."},
        "kind": {"type": "string", "enum": [kind]},
        "cores": {"type": "integer", "minimum": 1, "maximum": LIMITS["cores"],
                  "description": "CPUs of its own (default 1); at most the node's `cores`."},
        "mem_mb": {**(positive if kind == "memory" else {"type": "number", "minimum": 0}),
                   "maximum": LIMITS["mem_mb"],
                   "description": "Memory reserved (MiB, default 0); a memory task holds it."},
        "notify_url": {"type": "string", "pattern": "^https?://[^\\s]+$",
                       "maxLength": LIMITS["url_chars"],
                       "description": "Where to POST the task's final document when it ends."},
        "work_core_s": {**positive, "maximum": LIMITS["work_core_s"],
                        "description": "Reference work: core-seconds at speed 1.0."},
        "duration_s": {**positive, "maximum": LIMITS["duration_s"]},
        "io_mb": {**positive, "maximum": LIMITS["io_mb"],
                  "description": "MiB written, fsynced and read back per round."},
        "argv": {"type": "array", "minItems": 1, "maxItems": LIMITS["argv_items"],
                 "items": {"type": "string", "minLength": 1, "maxLength": LIMITS["argv_chars"],
                           "pattern": "^[^\\x00]*$"}},
        "env": {"type": "object", "maxProperties": LIMITS["env_items"],
                "propertyNames": {"pattern": ENV_NAME_PATTERN},
                "additionalProperties": {"type": "string", "maxLength": LIMITS["env_chars"],
                                         "pattern": "^[^\\x00]*$"},
                "description": "Variables added to the command's environment (never the "
                               "agent's RPIAAS_AGENT_* settings)."},
        "image": {"type": "string", "pattern": IMAGE_PATTERN,
                  "description": "The OCI image a container task runs (pulled if absent)."},
        "network": {"type": "boolean",
                    "description": "Whether the container has a network (default: none)."},
    }
    names = COMMON + FIELDS[kind]
    return {"type": "object", "required": ["id", "kind", *REQUIRED[kind]],
            "properties": {name: fields[name] for name in names},
            "additionalProperties": False}


_SCHEMAS: dict[str, Schema] = {
    "Error": _object({"error": {"type": "string"},
                      "status": {"type": "integer", "minimum": 400, "maximum": 599}},
                     "What went wrong, and the HTTP status again."),
    "Ping": _object({"status": {"type": "string", "enum": ["ok"]}}),
    "Report": _object({
        "agent": _object({"name": {"type": "string", "enum": ["rpiaas-agent"]},
                          "version": {"type": "string"},
                          "pid": {"type": "integer", "minimum": 1}}),
        "node": _object({"name": {"type": "string",
                                  "description": "The configured name, else the hostname."},
                         "hostname": {"type": "string"}}),
        "time_s": {**_SECONDS, "description": "The node's wall clock (unix s)."},
        "uptime_s": _object({"system": _SECONDS, "process": _SECONDS},
                            "Since boot and since the agent started, on a clock that "
                            "does not jump."),
        "cpu": _object({
            "cores": {"type": "integer", "minimum": 1},
            "usage_ratio": _nullable({"type": "array", "items": _RATIO,
                                      "description": "Per core; null before the first sample."}),
            "usage_ratio_mean": _nullable(_RATIO),
            "busy_s": {**_SECONDS, "description":
                       "Busy CPU seconds over all cores, a counter: since boot (/proc/stat), or "
                       "on an emulated node its tasks' since the agent started."},
            "agent_busy_s": {**_SECONDS, "description": "The agent's own CPU seconds, a counter."},
            "temperature_c": _nullable({"type": "number",
                                        "description": "null without a thermal zone."}),
        }),
        "load": _nullable(_object({"1m": _LOAD, "5m": _LOAD, "15m": _LOAD},
                                  "Load averages; null where the OS has none.")),
        "memory": _object({"total_bytes": _BYTES, "available_bytes": _BYTES,
                           "used_bytes": _BYTES, "used_ratio": _RATIO}),
        "disk": _nullable(_object({"path": {"type": "string"}, "total_bytes": _BYTES,
                                   "used_bytes": _BYTES, "free_bytes": _BYTES,
                                   "used_ratio": _RATIO},
                                  "The file system of ``disk_path``; null if it does not "
                                  "answer in time.")),
        "throttling": _nullable(_object(
            {"raw": {"type": "string", "pattern": "^0x[0-9a-f]+$"},
             **{name: {"type": "boolean"} for name in THROTTLE_FLAGS.values()}},
            "Raspberry Pi throttling flags (vcgencmd get_throttled); null off a Pi.")),
        "speed": _object({"kernel_ops_per_s": _NUMBER_OR_NULL, "relative": _NUMBER_OR_NULL},
                         "The reference kernel's single-core rate, and over the reference "
                         "core's (speed 1.0); null until measured, just after the start."),
        "tasks": _object({"running": _COUNT, "cores_used": _COUNT, "mem_mb_used": _MB,
                          "cores": {"type": "integer", "minimum": 1}, "mem_mb": _MB,
                          "runner": {"type": "string", "enum": ["process", "timer"], "description":
                                     "What a task is: a process group (`process`), or a timer "
                                     "of an emulating process (`timer`: rpiaas-agent-emulated)."},
                          "limits": {"type": "string", "description":
                                     "What holds each task to its cores and mem_mb: `cgroup v1` or "
                                     "`cgroup v2`, else `none: ` and why (not root, no cgroups; a "
                                     "timer is `none: a timer has no process`)."}},
                         "Tasks running, what they hold, and the node's capacity for tasks."),
        "power": _nullable(_object(
            {"source": {"type": "string", "enum": ["hwmon", "pmic"]},
             "power_w": {"type": "number", "description": "Watts."},
             "time_s": {**_SECONDS, "description": "When it was read, on the node's wall clock."},
             "sensors": {"type": "integer", "minimum": 1,
                         "description": "Sensors (hwmon) or rails (pmic) summed."}},
            "The node's power read on the node (`power_source`); null without one.")),
        "emulated": {"type": "boolean", "description":
                     "True when the agent emulates a node on a shared machine (a local "
                     "testbed; the `emulate` setting): `cpu` is then the CPU time of its own "
                     "tasks' processes per emulated core (`cores` of the node type), `memory` "
                     "their resident memory against the node's `mem_mb`, and `load` null. "
                     "False: the machine's own readings."},
    }, "The node report."),
    "Config": _object({
        "host": {"type": "string"},
        "port": {"type": "integer", "minimum": 0, "maximum": 65535},
        "name": {"type": "string"},
        "token_file": {"type": ["string", "null"]},
        "disk_path": {"type": "string"},
        "sysfs_root": {"type": "string"},
        "vcgencmd": {"type": "string"},
        "sample_interval_s": {"type": "number", "exclusiveMinimum": 0},
        "throttle_interval_s": {"type": "number", "exclusiveMinimum": 0},
        "max_body_bytes": {"type": "integer", "minimum": 0},
        "log_level": {"type": "string", "enum": ["debug", "info", "warning", "error"]},
        "access_log": {"type": "boolean"},
        "cores": {"type": ["integer", "null"], "minimum": 1},
        "mem_mb": {"type": ["integer", "null"], "minimum": 1},
        "cpu_set": _nullable({"type": "array", "items": _COUNT}),
        "allow_commands": {"type": "boolean"},
        "oversubscribe": {"type": "boolean"},
        "work_dir": {"type": "string"},
        "max_finished_tasks": _COUNT,
        "master_url": {"type": ["string", "null"]},
        "report_from": {"type": ["string", "null"]},
        "emulate": {"type": "boolean"},
        "power_source": {"type": "string", "enum": ["none", "hwmon", "pmic"]},
        "hwmon_path": {"type": "string"},
        "power_interval_s": {"type": "number", "exclusiveMinimum": 0},
        "container_engine": {"type": "string"},
        "container_runtime": {"type": "string"},
        "registry": {"type": ["string", "null"],
                     "description": "The testbed's image registry (HOST:PORT) container images come from."},
        "token_set": {"type": "boolean"},
    }, "The agent's settings, the token left out."),
    "TaskRequest": {"oneOf": [_task_request(kind) for kind in KINDS],
                    "description": "A task to start; `kind` says which fields it takes."},
    "Task": _object({
        "id": {"type": "string", "pattern": ID_PATTERN},
        "kind": {"type": "string", "enum": list(KINDS)},
        "state": {"type": "string", "enum": ["running", "completed", "failed", "killed"]},
        "cores": {"type": "integer", "minimum": 1},
        "mem_mb": _MB,
        "cpu_ids": {"type": "array", "items": _COUNT},
        "pid": {"type": ["integer", "null"], "minimum": 1},
        "submitted_s": {**_SECONDS, "description": "Unix time."},
        "started_s": _NUMBER_OR_NULL,
        "ended_s": {**_NUMBER_OR_NULL, "description": "Unix time; null while running."},
        "exit_status": {"type": ["integer", "null"],
                        "description": "The worker's: 128 + N after signal N, negative if it "
                                       "died of one."},
        "cpu_s": {**_NUMBER_OR_NULL, "description": "User + system time of all its processes."},
        "peak_rss_mb": {**_NUMBER_OR_NULL,
                        "description": "Peak RSS of its largest process (MiB); null if unknown."},
        "peak_mem_mb": {**_NUMBER_OR_NULL, "description":
                        "Peak memory of all its processes, page cache included (MiB), from its "
                        "cgroup; without a cgroup, peak_rss_mb; null while running."},
        "limits": {"oneOf": [
            {"type": "string", "enum": ["none"]},
            {"type": "object", "additionalProperties": False,
             "required": ["cgroup", "path", "cpu_quota_cores", "cpus", "mem_limit_mb"],
             "properties": {"cgroup": {"type": "string", "enum": ["v1", "v2"]},
                            "path": {"type": "string"},
                            "cpu_quota_cores": {"type": "number", "minimum": 0},
                            "cpus": {"type": ["array", "null"], "items": _COUNT},
                            "mem_limit_mb": {"type": ["number", "null"], "minimum": 0}}}],
            "description": "What holds it: its cgroup (CPU quota, cpuset, memory limit), or "
                           "none (limits_note says why)."},
        "limits_note": {"type": "string", "description": "Why a limit is absent."},
        "reason": {"type": ["string", "null"], "enum": ["oom", None],
                   "description": "oom: killed by its memory limit; null otherwise."},
        "error": {"type": ["string", "null"],
                  "description": "Why it failed or was killed (`oom`: a memory-limit kill); null otherwise."},
        "pull_s": {**_NUMBER_OR_NULL, "description": "A container task's image pull (0: the node had "
                                                     "the image); null for other kinds and while pulling."},
        "output_file": {"type": ["string", "null"],
                        "description": "Where a container task's output is kept (at most 1 MiB)."},
    }, "A task and, once it has ended, how."),
    "TaskList": _object({"tasks": {"type": "array", "items": _ref("Task")}},
                        "Running tasks first, then finished ones, latest end first."),
}


def _error(description: str) -> Schema:
    return {"description": description,
            "content": {"application/json": {"schema": _ref("Error")}}}


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _get(op_id: str, summary: str, ok: Schema, token: bool = False) -> Schema:
    responses: dict[str, Schema] = {"200": ok, "405": {"$ref": "#/components/responses/NotAllowed"}}
    out: Schema = {"operationId": op_id, "summary": summary, "responses": responses}
    if token:
        responses["401"] = {"$ref": "#/components/responses/Unauthorized"}
        out["security"] = [{"bearerToken": []}]
    return out


def _secured(op: Schema) -> Schema:
    op["responses"]["401"] = {"$ref": "#/components/responses/Unauthorized"}
    op["responses"]["405"] = {"$ref": "#/components/responses/NotAllowed"}
    op["security"] = [{"bearerToken": []}]
    return op


_TASK_ID = {"name": "id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": ID_PATTERN}}


def _task_paths() -> dict[str, Schema]:
    task = _json("The task.", _ref("Task"))
    unknown = _error("No such task (never started, or long finished).")
    return {
        "/tasks": {
            "get": _secured({"operationId": "listTasks", "summary": "The tasks.",
                             "responses": {"200": _json("The tasks.", _ref("TaskList"))}}),
            "post": _secured({
                "operationId": "startTask",
                "summary": "Start a task: its worker runs in a process group of its own.",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref("TaskRequest")}}},
                "responses": {
                    "201": {**_json("Started.", _ref("Task")),
                            "headers": {"Location": {"required": True,
                                                     "schema": {"type": "string"}}}},
                    "400": _error("Not a task: the message names the field."),
                    "403": _error("A command task, and this agent does not allow them; or a "
                                  "container task, and this node has no container engine."),
                    "409": _error("The id is taken, or the node has not the cores or "
                                  "memory free now (the message says what is)."),
                    "413": _error("The body is over max_body_bytes."),
                    "415": _error("The body is not application/json."),
                    "503": _error("The worker cannot be started (no processes left?)."),
                }}),
        },
        "/tasks/{id}": {
            "parameters": [_TASK_ID],
            "get": _secured({"operationId": "getTask", "summary": "One task.",
                             "responses": {"200": task, "404": unknown}}),
            "delete": _secured({
                "operationId": "killTask",
                "summary": "Kill a running task's process group (SIGTERM, then SIGKILL); "
                           "a finished task is left as it is.",
                "responses": {"200": _json("The task as it ended.", _ref("Task")),
                              "404": unknown}}),
        },
    }


def openapi_document() -> dict[str, Any]:
    """The agent API's OpenAPI 3.1 document (a fresh dict on each call)."""
    paths: dict[str, Schema] = {
        "/ping": {"get": _get("ping", "Whether the agent is up.",
                              _json("It is.", _ref("Ping")))},
        "/info": {"get": _get("getInfo", "The node report.",
                              _json("The report.", _ref("Report")))},
        "/metrics": {"get": _get("getMetrics", "The node report in Prometheus text format.", {
            "description": "The metrics.",
            "content": {METRICS_CONTENT_TYPE: {"schema": {"type": "string"}}}})},
        "/config": {"get": _get("getConfig", "The agent's settings, without the token.",
                                _json("The settings.", _ref("Config")), token=True)},
        OPENAPI_PATH: {"get": _get("getOpenApi", "This document.",
                                   _json("The OpenAPI document.", {"type": "object"}))},
        **_task_paths(),
    }
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "rpiaas agent", "version": "1",
                 "description": "A node's readings, and its tasks, for the rpiaas master."},
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "responses": {
                "Unauthorized": {**_error("Missing or wrong bearer token, or none configured."),
                                 "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
                "NotAllowed": {**_error("The path does not take this method."),
                               "headers": {"Allow": {"schema": {"type": "string"}}}},
            },
            "securitySchemes": {"bearerToken": {"type": "http", "scheme": "bearer"}},
        },
    })
