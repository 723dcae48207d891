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
        "token_set": {"type": "boolean"},
    }, "The agent's settings, the token left out."),
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
    }
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "rpiaas agent", "version": "1",
                 "description": "A node's readings for the rpiaas master."},
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
