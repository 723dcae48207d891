"""What an agent may say about its task's end: the push schema, and the checks against the run.

An agent pushes its task's final document to the master (``POST
/api/v1/task-ended``, with its node's token); the master also reads the same
documents from the agent's ``GET /tasks``.  The node's token proves who speaks,
not that what it says is sane, so every document is checked in two steps
before anything is booked:

1. :func:`check_document`: types and ranges, by :data:`PUSH_SCHEMA`, the one
   schema the master's OpenAPI document also publishes for the route.  Numbers
   are finite (and non-negative where they must be), ``state`` is one of
   :data:`STATES`, and a longer ``error`` than :data:`MAX_ERROR_CHARS` is kept
   cut there, ending in :data:`TRUNCATED`.
2. :func:`check_attempt`: against the run.  The end (``ended_s``, on the node's
   clock, its offset taken out) lies between the attempt's start (when the
   master placed it) and the run's clock now, either widened by
   :data:`SKEW_S`; so does the start the agent measured, which is not after
   the end; the CPU seconds are at most the node's cores times that span.

A document outside them raises :class:`PushRejected`, naming the field: a
push is answered 400 and nothing of it is booked.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_ERROR_CHARS", "MAX_PEAK_RSS_MB", "PUSH_SCHEMA", "SKEW_S", "STATES", "TRUNCATED",
           "PushRejected", "check_attempt", "check_document"]

STATES = ("running", "completed", "failed", "killed")
MAX_ERROR_CHARS = 4096  # a longer error is kept cut to this many characters, TRUNCATED included
TRUNCATED = " [truncated]"
MAX_PEAK_RSS_MB = 1_048_576.0  # 1 TiB: more than any node this framework drives
MAX_EXIT_STATUS = 255  # an exit status, or minus a signal number
SKEW_S = 5.0  # how far a node's times may stray outside the attempt's span (the clock offset's error)

_TIME = {"type": ["number", "null"], "minimum": 0}

PUSH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "state"],
    "properties": {
        "id": {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,128}$",
               "description": "The task's id on its agent, ``RUN.TASK.EPOCH``."},
        "state": {"type": "string", "enum": list(STATES)},
        "kind": {"type": "string", "maxLength": 32},
        "started_s": {**_TIME, "description": "When it started, unix s on the node's clock."},
        "ended_s": {**_TIME, "description":
                    "When it ended, unix s on the node's clock; required once it ended.  It must "
                    f"lie between the attempt's start and the run's clock now, {SKEW_S:g} s of "
                    "skew allowed either side."},
        "exit_status": {"type": ["integer", "null"], "minimum": -MAX_EXIT_STATUS,
                        "maximum": MAX_EXIT_STATUS,
                        "description": "128 + N after signal N, negative if it died of one."},
        "cpu_s": {"type": ["number", "null"], "minimum": 0, "description":
                  "User + system time of its processes (s): at most its node's cores times "
                  "its span."},
        "peak_rss_mb": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_PEAK_RSS_MB,
                        "description": "Peak RSS of its largest process (MiB)."},
        "peak_mem_mb": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_PEAK_RSS_MB,
                        "description": "Peak memory of all its processes, from its cgroup (MiB)."},
        "reason": {"type": ["string", "null"], "maxLength": 32,
                   "description": "Why it failed, in one word: ``oom`` (its memory limit)."},
        "error": {"type": ["string", "null"], "description":
                  f"Why it failed or was killed; kept cut to {MAX_ERROR_CHARS} characters, "
                  f"ending in {TRUNCATED.strip()!r}."},
    },
    "description": "The agent's task document (see the agent's API); fields not listed here "
                   "are ignored.",
}


_LARGEST = sys.float_info.max


class PushRejected(ValueError):
    """A task document outside the push schema or the run: the field, and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _show(value: object) -> str:
    text = f"{value:.12g}" if isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _secs(seconds: float) -> str:
    return f"{seconds:+.3f} s" if abs(seconds) < 1e9 else f"{seconds:+.3g} s"


def _type_of(value: object) -> str | None:
    """The JSON Schema type of a parsed JSON value (a finite number only)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if abs(value) <= _LARGEST else None  # no float holds it: not finite
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else None


def _check_value(field: str, value: object, schema: dict[str, Any]) -> None:
    """``value`` against a property's schema (the keywords PUSH_SCHEMA uses)."""
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    got = _type_of(value)
    if got is None or not (got in types or (got == "integer" and "number" in types)):
        raise PushRejected(field, f"expected {' or '.join(types)}, got {_show(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise PushRejected(field, f"expected one of {', '.join(schema['enum'])}, got {_show(value)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise PushRejected(field, f"expected at least {_show(schema['minimum'])}, got {_show(value)}")
        if "maximum" in schema and value > schema["maximum"]:
            raise PushRejected(field, f"expected at most {_show(schema['maximum'])}, got {_show(value)}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise PushRejected(field, f"expected at most {schema['maxLength']} characters, "
                                      f"got {len(value)}")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            raise PushRejected(field, f"expected a task id ({schema['pattern']}), got {_show(value)}")


def check_document(doc: object) -> dict[str, Any]:
    """``doc`` checked against :data:`PUSH_SCHEMA`: a copy, its ``error`` cut to
    :data:`MAX_ERROR_CHARS`; :class:`PushRejected` naming the first field outside it."""
    if not isinstance(doc, dict):
        raise PushRejected("body", f"expected a task document (a JSON object), got {type(doc).__name__}")
    for field in PUSH_SCHEMA["required"]:
        if field not in doc:
            raise PushRejected(field, "missing")
    for field, schema in PUSH_SCHEMA["properties"].items():
        if field in doc:
            _check_value(field, doc[field], schema)
    out = dict(doc)
    for field, schema in PUSH_SCHEMA["properties"].items():
        if "integer" in schema["type"] and isinstance(out.get(field), float):
            out[field] = int(out[field])  # 3.0 is the integer 3 in JSON Schema
    error = out.get("error")
    if isinstance(error, str) and len(error) > MAX_ERROR_CHARS:
        out["error"] = error[:MAX_ERROR_CHARS - len(TRUNCATED)] + TRUNCATED
    return out


def check_attempt(doc: dict[str, Any], placed_unix_s: float, now_unix_s: float,
                  to_local: Callable[[float], float], node_cores: int) -> None:
    """A final document (checked by :func:`check_document`) against its attempt: placed at
    ``placed_unix_s``, the run's clock at ``now_unix_s`` (both on the master's clock);
    ``to_local`` takes a time of the node's clock to the master's.  :class:`PushRejected`
    if it lies outside (see the module)."""
    ended = doc.get("ended_s")
    if ended is None:
        raise PushRejected("ended_s", f"missing: a {doc['state']} task has an end")
    floor, ceiling = placed_unix_s - SKEW_S, now_unix_s + SKEW_S
    end = to_local(float(ended))
    if not floor <= end <= ceiling:
        raise PushRejected("ended_s", f"{_show(ended)} is outside the attempt: on the master's clock "
                                      f"{_secs(end - placed_unix_s)} from its placing, "
                                      f"{_secs(end - now_unix_s)} from now (skew allowed: {SKEW_S:g} s)")
    started = doc.get("started_s")
    if started is not None:
        start = to_local(float(started))
        if not floor <= start <= end:
            raise PushRejected("started_s", f"{_show(started)} is outside the attempt: "
                                            f"{_secs(start - placed_unix_s)} from its placing, "
                                            f"{_secs(start - end)} from its end")
    cpu = doc.get("cpu_s")
    span_s = end - floor
    if cpu is not None and cpu > node_cores * span_s:
        raise PushRejected("cpu_s", f"{_show(cpu)} is more than the node's {node_cores} cores "
                                    f"over the attempt's {span_s:.3f} s (skew included)")
